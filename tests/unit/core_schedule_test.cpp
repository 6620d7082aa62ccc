// Issue #17, target schedules and demand figures: windows of local time expanded into UTC occurrences
// across midnight and across the 2026 daylight-saving changes of Europe/Berlin (29 March 02:00 CET ->
// 03:00 CEST, 25 October 03:00 CEST -> 02:00 CET, both at 01:00 UTC), the control thread's lookup.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "../fakes/core_fixture.hpp"
#include "eqd/core/demand_meter.hpp"
#include "eqd/core/schedule.hpp"
#include "eqd/util/local_time.hpp"

using namespace eqd::core;

namespace {

constexpr std::int64_t kNs = 1'000'000'000;

// Seconds since the epoch of a civil date and time read as UTC (also: a local wall time as "local s").
std::int64_t civil_s(int y, int mo, int d, int h, int mi) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return static_cast<std::int64_t>(timegm(&tm));
}

// The test process runs in Europe/Berlin (the tz database's rules, through the daemon's own function).
struct Berlin {
  Berlin() {
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
  }
};

std::int64_t berlin(std::int64_t utc_s) {
  static const Berlin once;
  return eqd::util::local_utc_offset_s(utc_s);
}

ScheduleWindow window(std::uint8_t days, int start_min, int end_min) {
  ScheduleWindow w;
  w.days = days;
  w.start_min = start_min;
  w.end_min = end_min;
  w.mode = BusMode::caps;
  w.import_limit_W = 5000.0;
  return w;
}

constexpr std::uint8_t kWeekdays = 0x1f, kEveryDay = 0x7f, kFriday = 1U << 4;

std::vector<WindowOccurrence> occurrences(const BusSchedule& s) {
  return {s.occurrences.begin(), s.occurrences.begin() + s.occurrence_count};
}

}  // namespace

TEST_CASE("schedule: local wall time to UTC across the 2026 changes in Europe/Berlin", "[schedule]") {
  CHECK(berlin(civil_s(2026, 1, 15, 12, 0)) == 3600);
  CHECK(berlin(civil_s(2026, 7, 15, 12, 0)) == 7200);
  CHECK(local_to_utc_s(civil_s(2026, 3, 28, 17, 0), berlin) == civil_s(2026, 3, 28, 16, 0));
  CHECK(local_to_utc_s(civil_s(2026, 3, 29, 1, 59), berlin) == civil_s(2026, 3, 29, 0, 59));
  // 02:30 does not exist on 29 March: the clock jumps from 02:00 to 03:00 at 01:00 UTC.
  CHECK(local_to_utc_s(civil_s(2026, 3, 29, 2, 30), berlin) == civil_s(2026, 3, 29, 1, 0));
  CHECK(local_to_utc_s(civil_s(2026, 3, 29, 2, 0), berlin) == civil_s(2026, 3, 29, 1, 0));
  CHECK(local_to_utc_s(civil_s(2026, 3, 29, 3, 0), berlin) == civil_s(2026, 3, 29, 1, 0));
  CHECK(local_to_utc_s(civil_s(2026, 3, 29, 17, 0), berlin) == civil_s(2026, 3, 29, 15, 0));
  // 02:30 happens twice on 25 October: its first occurrence (still summer time).
  CHECK(local_to_utc_s(civil_s(2026, 10, 25, 2, 30), berlin) == civil_s(2026, 10, 25, 0, 30));
  CHECK(local_to_utc_s(civil_s(2026, 10, 25, 3, 0), berlin) == civil_s(2026, 10, 25, 2, 0));
  CHECK(local_to_utc_s(civil_s(2026, 10, 25, 17, 0), berlin) == civil_s(2026, 10, 25, 16, 0));
}

TEST_CASE("schedule: weekday evening windows follow the wall clock over the spring change", "[schedule]") {
  const ScheduleWindow w = window(kWeekdays, 17 * 60, 20 * 60);
  // From Friday 27 March 2026, 18:00 UTC (one day back, three ahead): Thursday's, Friday's (CET),
  // nothing on the weekend, Monday's (CEST).
  const BusSchedule s = expand_schedule(&w, 1, civil_s(2026, 3, 27, 18, 0) * kNs, berlin);
  const std::vector<WindowOccurrence> o = occurrences(s);
  REQUIRE(o.size() == 3);
  CHECK(o[0].start_ns == civil_s(2026, 3, 26, 16, 0) * kNs);
  CHECK(o[1].start_ns == civil_s(2026, 3, 27, 16, 0) * kNs);
  CHECK(o[1].end_ns == civil_s(2026, 3, 27, 19, 0) * kNs);
  CHECK(o[2].start_ns == civil_s(2026, 3, 30, 15, 0) * kNs);
  CHECK(o[2].end_ns == civil_s(2026, 3, 30, 18, 0) * kNs);
  CHECK(active_window(s, civil_s(2026, 3, 27, 18, 59) * kNs) == 0);
  CHECK(active_window(s, civil_s(2026, 3, 27, 19, 0) * kNs) == -1);   // the end is not in the window
  CHECK(active_window(s, civil_s(2026, 3, 28, 16, 30) * kNs) == -1);  // Saturday
  CHECK(active_window(s, civil_s(2026, 3, 30, 15, 0) * kNs) == 0);    // Monday 17:00 CEST
  CHECK(active_window(s, civil_s(2026, 3, 30, 14, 59) * kNs) == -1);
}

TEST_CASE("schedule: a night window across midnight is an hour shorter in spring, longer in autumn", "[schedule]") {
  const ScheduleWindow w = window(kEveryDay, 22 * 60, 6 * 60);
  const BusSchedule spring = expand_schedule(&w, 1, civil_s(2026, 3, 28, 12, 0) * kNs, berlin);
  bool seen_spring = false;
  for (const WindowOccurrence& o : occurrences(spring)) {
    if (o.start_ns != civil_s(2026, 3, 28, 21, 0) * kNs) continue;
    seen_spring = true;
    CHECK(o.end_ns == civil_s(2026, 3, 29, 4, 0) * kNs);  // 06:00 CEST
    CHECK(o.end_ns - o.start_ns == 7 * 3600 * kNs);
  }
  CHECK(seen_spring);
  CHECK(active_window(spring, civil_s(2026, 3, 29, 1, 30) * kNs) == 0);  // 03:30 CEST, inside
  CHECK(active_window(spring, civil_s(2026, 3, 29, 4, 0) * kNs) == -1);
  const BusSchedule autumn = expand_schedule(&w, 1, civil_s(2026, 10, 24, 12, 0) * kNs, berlin);
  bool seen_autumn = false;
  for (const WindowOccurrence& o : occurrences(autumn)) {
    if (o.start_ns != civil_s(2026, 10, 24, 20, 0) * kNs) continue;  // 22:00 CEST
    seen_autumn = true;
    CHECK(o.end_ns == civil_s(2026, 10, 25, 5, 0) * kNs);  // 06:00 CET
    CHECK(o.end_ns - o.start_ns == 9 * 3600 * kNs);
  }
  CHECK(seen_autumn);
}

TEST_CASE("schedule: the days are the days a window starts, and overlaps go to the window listed first", "[schedule]") {
  std::vector<ScheduleWindow> w{window(kFriday, 22 * 60, 2 * 60), window(kEveryDay, 0, 24 * 60)};
  w[1].mode = BusMode::balance;
  w[1].target_W = 800.0;
  // January: CET all along.
  const BusSchedule s = expand_schedule(w.data(), w.size(), civil_s(2026, 1, 16, 12, 0) * kNs, berlin);
  // Friday 16 January 2026 23:00 and Saturday 01:00 local: the Friday window; Friday 01:00: only the day.
  CHECK(active_window(s, civil_s(2026, 1, 16, 22, 0) * kNs) == 0);
  CHECK(active_window(s, civil_s(2026, 1, 17, 0, 0) * kNs) == 0);
  CHECK(active_window(s, civil_s(2026, 1, 17, 1, 0) * kNs) == 1);  // 02:00 local: its end
  CHECK(active_window(s, civil_s(2026, 1, 16, 0, 0) * kNs) == 1);
  // The whole-day window's occurrences meet end to start: never a gap between days.
  for (std::int64_t t = civil_s(2026, 1, 16, 0, 0); t < civil_s(2026, 1, 18, 0, 0); t += 600)
    REQUIRE(active_window(s, t * kNs) >= 0);
  // What a window changes: mode and target, or mode and the limits it names.
  BusParams base;
  base.target_W = -100.0;
  base.export_limit_W = 700.0;
  const BusParams in_caps = apply_window(base, w[0]);
  CHECK(in_caps.mode == BusMode::caps);
  CHECK(in_caps.import_limit_W == 5000.0);
  CHECK(in_caps.export_limit_W == 700.0);  // not named by the window: the bus's own
  const BusParams in_balance = apply_window(base, w[1]);
  CHECK(in_balance.mode == BusMode::balance);
  CHECK(in_balance.target_W == 800.0);
}

TEST_CASE("schedule: a window inside the spring gap is dropped that day only", "[schedule]") {
  const ScheduleWindow w = window(kEveryDay, 2 * 60, 2 * 60 + 30);
  const BusSchedule s = expand_schedule(&w, 1, civil_s(2026, 3, 28, 12, 0) * kNs, berlin);
  for (const WindowOccurrence& o : occurrences(s)) {
    CHECK(o.end_ns - o.start_ns == 1800 * kNs);
    CHECK_FALSE((o.start_ns >= civil_s(2026, 3, 29, 0, 0) * kNs && o.start_ns < civil_s(2026, 3, 29, 12, 0) * kNs));
  }
  CHECK(s.occurrence_count == 3);  // 28, 30, 31 March (the 27th's ended before the span)
}

TEST_CASE("schedule: windows out of range are refused", "[schedule]") {
  ScheduleWindow w = window(kWeekdays, 17 * 60, 20 * 60);
  CHECK(validate(w) == nullptr);
  w.days = 0;
  CHECK(validate(w) != nullptr);
  w.days = kWeekdays;
  w.end_min = w.start_min;
  CHECK(std::string(validate(w)).rfind("end:", 0) == 0);
  w.end_min = 1441;
  CHECK(validate(w) != nullptr);
  w.end_min = 1440;
  CHECK(validate(w) == nullptr);
  w.import_limit_W = -1.0;
  CHECK(std::string(validate(w)).rfind("import_limit_W:", 0) == 0);
  w.import_limit_W = std::nan("");
  CHECK(validate(w) == nullptr);  // the bus's own
}

namespace {
// A bus in caps mode (import <= 1500 W, export <= 500 W) with a test channel 0 drawing 1000 W, inside
// the band, and a buffer, channel 1.
BusParams caps_band() {
  BusParams p;
  p.mode = BusMode::caps;
  p.import_limit_W = 1500.0;
  p.export_limit_W = 500.0;
  return p;
}
void load_inside_band(eqd::test::CoreFixture& f) {
  f.state[0] = ChannelState::running;
  f.power[0] = 1000.0;
  REQUIRE(f.assign(1) == ResponseStatus::ok);
}
// A schedule of one window that balances to 0 W, in force from start_ns to end_ns (the core's clock).
BusSchedule balance_window(std::int64_t start_ns, std::int64_t end_ns) {
  ScheduleWindow w;
  w.mode = BusMode::balance;
  w.target_W = 0.0;
  BusSchedule s;
  s.windows[0] = w;
  s.window_count = 1;
  s.occurrences[0] = {start_ns, end_ns, 0};
  s.occurrence_count = 1;
  return s;
}
}  // namespace

TEST_CASE("schedule: the control core aims by the active window and by the bus's own params outside",
          "[schedule][control_core]") {
  eqd::test::CoreFixture f(2, caps_band());
  load_inside_band(f);  // the buffer rests
  f.core->set_schedule(0, balance_window(f.now_ns + 60 * kNs, f.now_ns + 240 * kNs));
  f.run_s(50.0);
  CHECK(f.power[1] == 0.0);
  CHECK(f.core->bus(0).active_window == -1);
  CHECK(f.core->bus(0).active_mode == BusMode::caps);
  f.run_s(120.0);  // inside the window
  CHECK(f.core->bus(0).active_window == 0);
  CHECK(f.core->bus(0).active_mode == BusMode::balance);
  CHECK(f.core->bus(0).params.mode == BusMode::caps);  // the bus's own parameters are unchanged
  CHECK(f.power[1] == Approx(-1000.0).margin(60.0));
  f.run_s(150.0);  // after it: back to the bus's own caps, the buffer to rest through the ramp
  CHECK(f.core->bus(0).active_window == -1);
  CHECK(std::abs(f.power[1]) < 5.0);
}

TEST_CASE("schedule: the control core follows a schedule published again mid-run, and one emptied",
          "[schedule][control_core]") {
  // The core copies a bus's schedule only when a new one was published (its slot's version): a second
  // and a third set_schedule() must each take effect at the next cycle.
  eqd::test::CoreFixture f(2, caps_band());
  load_inside_band(f);
  f.core->set_schedule(0, balance_window(f.now_ns + 3600 * kNs, f.now_ns + 7200 * kNs));  // an hour from now
  f.run_s(10.0);
  CHECK(f.core->bus(0).active_window == -1);
  f.core->set_schedule(0, balance_window(f.now_ns - kNs, f.now_ns + 600 * kNs));  // moved to now
  f.run_s(1.0);
  CHECK(f.core->bus(0).active_window == 0);
  CHECK(f.core->bus(0).active_mode == BusMode::balance);
  f.core->set_schedule(0, BusSchedule{});  // no windows any more
  f.run_s(1.0);
  CHECK(f.core->bus(0).active_window == -1);
  CHECK(f.core->bus(0).active_mode == BusMode::caps);
}

TEST_CASE("demand: calendar marks of the wall clock in Europe/Berlin around the spring change", "[schedule][demand]") {
  const CalendarMarks m = calendar_marks(civil_s(2026, 3, 28, 12, 7) * kNs, berlin);
  REQUIRE(m.calendar);
  CHECK(m.quarter_origin_ns % (900 * kNs) == 0);
  CHECK(m.midnights_ns[0] == civil_s(2026, 3, 26, 23, 0) * kNs);  // 27 March 00:00 CET
  CHECK(m.midnights_ns[2] == civil_s(2026, 3, 28, 23, 0) * kNs);  // 29 March 00:00 CET
  CHECK(m.midnights_ns[3] == civil_s(2026, 3, 29, 22, 0) * kNs);  // 30 March 00:00 CEST: a 23-hour day
  CHECK(m.next_month_ns == civil_s(2026, 3, 31, 22, 0) * kNs);    // 1 April 00:00 CEST
}

namespace {
std::int64_t utc_zone(std::int64_t) { return 0; }

// Runs a meter from `from_s` for `seconds` at a constant import of `power_W` (1 s steps), the
// calendar re-made every minute as the daemon does.
void run_meter(DemandMeter& d, double& import_J, std::int64_t& t_s, double power_W, std::int64_t seconds) {
  // import_J at t_s is what was drawn up to t_s; the meter also sees the run's last instant.
  for (std::int64_t k = 0; k < seconds; ++k, ++t_s) {
    d.update(t_s * kNs, import_J, calendar_marks(t_s / 60 * 60 * kNs, utc_zone));
    import_J += power_W;
  }
  d.update(t_s * kNs, import_J, calendar_marks(t_s / 60 * 60 * kNs, utc_zone));
}
}  // namespace

TEST_CASE("demand: quarter-hour averages and their maxima roll with the day and the month", "[schedule][demand]") {
  DemandMeter d;
  double import_J = 0.0;
  std::int64_t t = civil_s(2026, 1, 31, 23, 20);
  run_meter(d, import_J, t, 9000.0, 600);  // joined 23:15-23:30 mid-way: not counted
  CHECK(std::isnan(d.last_quarter_W()));
  CHECK(std::isnan(d.max_month_W()));
  run_meter(d, import_J, t, 4000.0, 900);  // 23:30-23:45
  CHECK(d.last_quarter_W() == Approx(4000.0));
  CHECK(d.max_day_W() == Approx(4000.0));
  run_meter(d, import_J, t, 8000.0, 900);  // 23:45-00:00, counted in January; then 1 February
  CHECK(d.last_quarter_W() == Approx(8000.0));
  CHECK(std::isnan(d.max_day_W()));        // a new day
  CHECK(std::isnan(d.max_month_W()));      // and a new month
  run_meter(d, import_J, t, 2000.0, 900);  // 00:00-00:15
  CHECK(d.max_day_W() == Approx(2000.0));
  CHECK(d.max_month_W() == Approx(2000.0));
  run_meter(d, import_J, t, 6000.0, 900);
  run_meter(d, import_J, t, 1000.0, 900);
  CHECK(d.last_quarter_W() == Approx(1000.0));
  CHECK(d.max_day_W() == Approx(6000.0));
  // The next midnight: the day's maximum starts anew, the month's keeps 6 kW.
  run_meter(d, import_J, t, 500.0, 24 * 3600 - 3 * 900 + 900);
  CHECK(d.max_day_W() == Approx(500.0));
  CHECK(d.max_month_W() == Approx(6000.0));
}

TEST_CASE("demand: the month's maximum starts anew at every month's start, a short one too", "[schedule][demand]") {
  // The daemon re-makes the calendar every minute, off the cycle: at a month's first instant the
  // calendar the meter holds may still be the one made before it (the month's end it names is now).
  DemandMeter d;
  double import_J = 0.0;
  const auto run = [&](std::int64_t& t_s, double power_W, std::int64_t seconds) {
    for (std::int64_t k = 0; k < seconds; ++k, ++t_s) {
      d.update(t_s * kNs, import_J, calendar_marks(((t_s - 30) / 60 * 60 + 30) * kNs, utc_zone));
      import_J += power_W;
    }
  };
  std::int64_t t = civil_s(2026, 1, 31, 23, 0);
  run(t, 5000.0, 3600 + 1800 + 1);           // into February
  CHECK(d.max_month_W() == Approx(5000.0));  // its first two quarters
  t = civil_s(2026, 2, 28, 23, 0);           // the last hour of February (a jump, as a pause)
  run(t, 6000.0, 3600);
  run(t, 1000.0, 1800 + 1);  // 1 March: 28 days after the last start, not 31
  CHECK(d.last_quarter_W() == Approx(1000.0));
  CHECK(d.max_month_W() == Approx(1000.0));
  CHECK(d.max_day_W() == Approx(1000.0));
}

TEST_CASE("demand: maxima seeded by a restart survive until a higher quarter or the day's end", "[schedule][demand]") {
  DemandMeter d;
  d.seed(7000.0, 9000.0);  // saved today and this month by the eqd before this one
  double import_J = 0.0;
  std::int64_t t = civil_s(2026, 3, 10, 10, 0);
  run_meter(d, import_J, t, 3000.0, 1800);  // two quarters below the seeds
  CHECK(d.last_quarter_W() == Approx(3000.0));
  CHECK(d.max_day_W() == Approx(7000.0));
  CHECK(d.max_month_W() == Approx(9000.0));
  run_meter(d, import_J, t, 8000.0, 900);  // above the day's seed, below the month's
  CHECK(d.max_day_W() == Approx(8000.0));
  CHECK(d.max_month_W() == Approx(9000.0));
  t = civil_s(2026, 3, 11, 0, 0);           // the next day (a jump: its first quarter is not counted)
  run_meter(d, import_J, t, 1000.0, 1800);  // the day's maximum starts anew, the month's stays
  CHECK(d.max_day_W() == Approx(1000.0));
  CHECK(d.max_month_W() == Approx(9000.0));
}
