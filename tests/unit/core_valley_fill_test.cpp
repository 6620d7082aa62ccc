// Issue #17, valley filling: ahead of a caps window the buffers are charged to the energy that window
// needed on earlier days (plus a margin), within the caps outside the window and the buffers' windows.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>

#include "../fakes/core_fixture.hpp"
#include "eqd/core/valley_fill.hpp"

using namespace eqd::core;
using eqd::test::CoreFixture;

namespace {

constexpr std::int64_t kS = 1'000'000'000;

// One caps window (import <= cap_W) with occurrences at the given starts (core clock), each len_s long.
BusSchedule caps_schedule(std::initializer_list<std::int64_t> starts_ns, double len_s, double cap_W) {
  BusSchedule s;
  s.window_count = 1;
  s.windows[0].mode = BusMode::caps;
  s.windows[0].import_limit_W = cap_W;
  for (std::int64_t start : starts_ns) {
    WindowOccurrence& o = s.occurrences[s.occurrence_count++];
    o.start_ns = start;
    o.end_ns = start + static_cast<std::int64_t>(len_s * 1e9);
    o.window = 0;
  }
  s.valid_from_ns = 0;
  s.valid_until_ns = std::numeric_limits<std::int64_t>::max();
  return s;
}

BusParams fill_params() {
  BusParams p;
  p.mode = BusMode::caps;
  p.import_limit_W = 3000.0;
  p.export_limit_W = 0.0;
  p.fill_lead_s = 3600.0;
  p.fill_margin = 0.25;
  return p;
}

// One bus with parameters p: channel 0 a test channel drawing test_W, channel 1 a 2 kW buffer of
// capacity_Wh.
CoreFixture buffer_rig(const BusParams& p, double test_W, double capacity_Wh) {
  CoreFixture f(2, p);
  f.state[0] = ChannelState::running;
  f.power[0] = test_W;
  BufferLimits l = CoreFixture::limits(2000.0);
  l.capacity_Wh = capacity_Wh;
  REQUIRE(f.assign(1, l) == ResponseStatus::ok);
  return f;
}

// The level-shaving rig: 2 kW of test load, a 1000 Wh buffer that reports soc_pct; no valley filling in
// between (the stored energy is the test's).
CoreFixture level_rig(float soc_pct) {
  BusParams p = fill_params();
  p.valley_fill = false;
  CoreFixture f = buffer_rig(p, 2000.0, 1000.0);
  f.soc[1] = soc_pct;
  return f;
}

// `s` with the schedule thread's calendar: quarter hours from origin_ns, one long day (only the months
// matter), the next month at next_month_ns.
BusSchedule with_months(BusSchedule s, std::int64_t origin_ns, std::int64_t next_month_ns) {
  s.marks.calendar = true;
  s.marks.quarter_origin_ns = origin_ns;
  s.marks.midnights_ns.fill(0);
  s.marks.next_month_ns = next_month_ns;
  return s;
}
}  // namespace

TEST_CASE("valley filling: the fill is added to the aim and kept within the caps band", "[valley_fill]") {
  BusParams p;
  p.target_W = 100.0;
  p.fill_W = 400.0;
  CHECK(desired_eq_W(p, 300.0) == 200.0);  // balance: net -> target + fill
  CHECK(residual_of(p, 500.0) == 0.0);
  p.mode = BusMode::caps;
  p.import_limit_W = 1000.0;
  p.export_limit_W = 200.0;
  CHECK(desired_eq_W(p, 0.0) == 400.0);      // inside the band: the buffers take the fill
  CHECK(desired_eq_W(p, 800.0) == 200.0);    // ... only as far as the import cap allows
  CHECK(desired_eq_W(p, 1500.0) == -500.0);  // over the cap: the cap wins, the buffers discharge
  CHECK(desired_eq_W(p, -500.0) == 300.0);   // over the export cap: absorb the excess
  p.fill_W = 0.0;
  CHECK(desired_eq_W(p, 0.0) == 0.0);
}

TEST_CASE("valley filling: a caps window's need is kept only from occurrences seen whole", "[valley_fill]") {
  WindowNeeds n;
  WindowOccurrence o{100 * kS, 200 * kS, 0};
  CHECK(std::isnan(n.largest_J(0)));
  // Seen from its start: 1500 W for 100 s.
  for (std::int64_t t = 100; t < 200; ++t) n.observe(&o, true, t * kS, 1.0, 1500.0);
  n.observe(nullptr, false, 200 * kS, 1.0, 0.0);
  CHECK(n.seen(0) == 1);
  CHECK(n.largest_J(0) == Approx(1500.0 * 99.0));  // the first second starts the measurement
  // Joined 50 s late (eqd started in the middle of it): not kept.
  WindowOccurrence late{1000 * kS, 1100 * kS, 0};
  for (std::int64_t t = 1050; t < 1100; ++t) n.observe(&late, true, t * kS, 1.0, 9000.0);
  n.observe(nullptr, false, 1100 * kS, 1.0, 0.0);
  CHECK(n.seen(0) == 1);
  // Cut short (the schedule changed before its end): not kept.
  WindowOccurrence cut{2000 * kS, 2100 * kS, 0};
  for (std::int64_t t = 2000; t < 2050; ++t) n.observe(&cut, true, t * kS, 1.0, 9000.0);
  n.observe(nullptr, false, 2050 * kS, 1.0, 0.0);
  CHECK(n.seen(0) == 1);
  // A balance window is not measured.
  WindowOccurrence bal{3000 * kS, 3100 * kS, 1};
  for (std::int64_t t = 3000; t <= 3100; ++t) n.observe(t < 3100 ? &bal : nullptr, false, t * kS, 1.0, 9000.0);
  CHECK(n.seen(1) == 0);
  // A week is kept: the eighth need pushes out the first.
  for (int d = 0; d < 7; ++d) n.record(0, 100.0);
  CHECK(n.seen(0) == 7);
  CHECK(n.largest_J(0) == 100.0);
}

TEST_CASE("valley filling: the energy gauge counts power and is set at the window's edges", "[valley_fill]") {
  EnergyGauge g;
  WindowState w;
  g.update(3600.0, w, 0.25, 0.0, 0.0);
  CHECK(g.stored_J == Approx(900.0));  // first seen: from the window position
  g.update(3600.0, w, 0.25, 100.0, 2.0);
  CHECK(g.stored_J == Approx(1100.0));
  g.update(3600.0, w, 0.25, -5000.0, 1.0);
  CHECK(g.stored_J == 0.0);  // never below empty
  w.charge_blocked = true;
  g.update(3600.0, w, 1.0, 0.0, 1.0);
  CHECK(g.stored_J == 3600.0);  // at v_max: full, whatever was counted
  w = WindowState{};
  w.discharge_blocked = true;
  g.update(3600.0, w, 0.0, 0.0, 1.0);
  CHECK(g.stored_J == 0.0);
  g.update(0.0, w, 0.5, 0.0, 1.0);  // capacity unknown
  CHECK_FALSE(g.known);
  // A reported state of charge is taken as it is (its place in the SoC window), power not counted.
  w = WindowState{};
  g.update(3600.0, w, 0.3, 5000.0, 10.0, true);
  CHECK(g.stored_J == Approx(1080.0));
}

TEST_CASE("valley filling: the plan charges the deficit evenly within the lead, and no more", "[valley_fill]") {
  const BusSchedule s = caps_schedule({10'000 * kS}, 1800.0, 1000.0);
  WindowNeeds needs;
  BusParams p = fill_params();
  FillBuffers b{/*stored*/ 1.0e6, /*capacity*/ 10.0e6, /*rate*/ 3000.0, /*eff*/ 1.0};
  SECTION("a window not seen and nothing assumed: no plan") {
    const FillPlan f = plan_fill(s, -1, 9000 * kS, needs, p, b);
    CHECK(f.window == 0);
    CHECK(f.starts_in_s == Approx(1000.0));
    CHECK(std::isnan(f.need_J));
    CHECK(f.fill_W == 0.0);
  }
  SECTION("a window seen: its need plus the margin, spread over the time left") {
    needs.record(0, 4.0e6);
    FillPlan f = plan_fill(s, -1, 5000 * kS, needs, p, b);  // 5000 s ahead, lead 3600 s: not yet
    CHECK(f.need_J == Approx(5.0e6));
    CHECK(f.fill_W == 0.0);
    CHECK(f.shortfall_J == 0.0);
    f = plan_fill(s, -1, 7000 * kS, needs, p, b);  // 3000 s ahead: 4 MJ over 3000 - 2 tau
    CHECK(f.fill_W == Approx(4.0e6 / (3000.0 - 30.0)));
    b.efficiency = 0.8;  // converter losses: more stored for the same need, more from the bus to store it
    CHECK(plan_fill(s, -1, 7000 * kS, needs, p, b).need_J == Approx(5.0e6 / 0.8));
    CHECK(plan_fill(s, -1, 7000 * kS, needs, p, b).fill_W == Approx((5.0e6 / 0.8 - 1.0e6) / 2970.0 / 0.8));
    b.efficiency = 1.0;
    b.stored_J = 5.0e6;  // enough stored: nothing
    CHECK(plan_fill(s, -1, 7000 * kS, needs, p, b).fill_W == 0.0);
    b.stored_J = 1.0e6;
    p.valley_fill = false;
    CHECK(plan_fill(s, -1, 7000 * kS, needs, p, b).window == -1);
  }
  SECTION("the need beyond the capacity: charge to full and say the shortfall") {
    needs.record(0, 40.0e6);
    const FillPlan f = plan_fill(s, -1, 9000 * kS, needs, p, b);
    CHECK(f.need_J == Approx(50.0e6));
    CHECK(f.fill_W == Approx(3000.0));  // 9 MJ in 970 s is beyond the rating: the rating
    CHECK(f.shortfall_J == Approx(50.0e6 - (1.0e6 + 3000.0 * 1000.0)));
  }
  SECTION("the assumed need for a window not seen yet, and no charge while a caps window is in force") {
    p.fill_energy_Wh = 1000.0;
    CHECK(plan_fill(s, -1, 7000 * kS, needs, p, b).need_J == Approx(3.6e6 * 1.25));
    CHECK(plan_fill(s, 0, 7000 * kS, needs, p, b).fill_W == 0.0);
    b.capacity_J = 0.0;  // no buffer with a capacity: the whole need is short
    const FillPlan f = plan_fill(s, -1, 7000 * kS, needs, p, b);
    CHECK(f.fill_W == 0.0);
    CHECK(f.shortfall_J == Approx(4.5e6));
  }
}

TEST_CASE("valley filling: the margin is charged once on growing needs, and a jump is still covered", "[valley_fill]") {
  WindowNeeds n;
  CHECK(std::isnan(fill_need_J(n, 0, 0.25)));
  // One evening seen: the need and all of the margin. peak_day's second evening needed 16 % more.
  n.record(0, 100.0);
  CHECK(fill_need_J(n, 0, 0.25) == Approx(125.0));
  CHECK(fill_need_J(n, 0, 0.25) >= 116.0);
  // A need growing by 2 a day: each day's target grows by the growth only, the margin (25, charged for
  // the first day's 100) is not charged again (the largest x 1.25 charged 2.5 more each day); every
  // next day's need is inside the target.
  double before = fill_need_J(n, 0, 0.25);
  for (int d = 1; d <= 6; ++d) {
    n.record(0, 100.0 + 2.0 * d);
    const double now = fill_need_J(n, 0, 0.25);
    CHECK(now - before == Approx(2.0));
    CHECK(now - n.largest_J(0) == Approx(25.0));
    CHECK(now >= 100.0 + 2.0 * (d + 1));
    before = now;
  }
  // A week later the first day leaves the kept needs: the margin follows the smallest kept (102).
  n.record(0, 114.0);
  CHECK(fill_need_J(n, 0, 0.25) == Approx(114.0 + 0.25 * 102.0));
  // A jump of 20 % on steady needs is inside the margin already stored, and the next target has the
  // margin above the jump.
  WindowNeeds j;
  for (int d = 0; d < 3; ++d) j.record(0, 100.0);
  CHECK(fill_need_J(j, 0, 0.25) == Approx(125.0));
  CHECK(fill_need_J(j, 0, 0.25) >= 120.0);
  j.record(0, 120.0);
  CHECK(fill_need_J(j, 0, 0.25) == Approx(145.0));
  // A light day in the week (20) does not thin the margin below half of it over the largest.
  j.record(0, 20.0);
  CHECK(fill_need_J(j, 0, 0.25) == Approx(120.0 * 1.125));
  // No margin: the largest kept.
  CHECK(fill_need_J(n, 0, 0.0) == Approx(114.0));
}

TEST_CASE("valley filling in the core: charge ahead within the caps, hold the window's cap, learn its need",
          "[valley_fill]") {
  // Test channel 0, buffer 1 (2 kW, 1 kWh between 40 and 56 V). The bus: caps, import <= 3 kW; a window
  // with import <= 1 kW from t0 + 2 h for 20 min; 600 Wh assumed; lead 1 h.
  BusParams p = fill_params();
  p.fill_energy_Wh = 600.0;
  // 2.8 kW: inside the band (3 kW): in caps mode the buffer rests, but leaves 200 W for a fill.
  CoreFixture f = buffer_rig(p, 2800.0, 1000.0);
  f.voltage[1] = 42.0;  // 1/8 of the window: about 125 Wh stored
  const std::int64_t t0 = f.now_ns;
  const std::int64_t start = t0 + 7200 * kS;
  f.core->set_schedule(0, caps_schedule({start, start + 86400 * kS}, 1200.0, 1000.0));

  // Before the lead: at rest.
  f.run_s(3000.0);
  BusSnapshot s = f.core->bus(0);
  CHECK(s.fill.window == 0);
  CHECK(s.fill.need_J == Approx(600.0 * 3600.0 * 1.25));  // efficiency 1: bus side = battery side
  CHECK(s.fill.stored_J == Approx(125.0 * 3600.0));
  CHECK(s.fill.fill_W == 0.0);
  CHECK(std::abs(f.power[1]) < 1.0);

  // Within the lead, but the load (2.8 kW) is above the window's own cap (1 kW): charging now would
  // make a demand peak before the window, so nothing is charged.
  f.run_s(900.0);
  s = f.core->bus(0);
  CHECK(s.fill.fill_W == 0.0);
  CHECK(std::abs(f.power[1]) < 1.0);
  // A valley (500 W): the buffer fills it up to the window's cap, not beyond (the plan asks more).
  f.power[0] = 500.0;
  f.run_s(300.0);
  s = f.core->bus(0);
  CHECK(s.fill.fill_W == Approx(500.0));
  CHECK(f.power[1] == Approx(500.0).margin(30.0));
  CHECK(s.net_W <= 1000.0 + 30.0);
  // A deeper valley: the fill is what the plan asks (deficit / time left), no more.
  f.power[0] = 0.0;
  f.run_s(300.0);
  s = f.core->bus(0);
  CHECK(s.fill.fill_W > 0.0);
  CHECK(s.fill.fill_W < 1000.0);
  CHECK(f.power[1] == Approx(s.fill.fill_W).margin(60.0));
  // The buffer reaches the top of its window: charging stops at once, and the gauge says full.
  f.voltage[1] = 56.0;
  f.run_s(1.0);
  CHECK(f.power[1] <= 0.0);
  s = f.core->bus(0);
  CHECK(s.fill.stored_J == Approx(1000.0 * 3600.0));
  CHECK(s.fill.fill_W == 0.0);
  f.voltage[1] = 50.0;
  f.run_s(7200.0 - 3000.0 - 900.0 - 600.0 - 1.0 + 60.0);  // into the window
  // In the window: 2.5 kW against a 1 kW cap: the buffer gives the excess.
  f.power[0] = 2500.0;
  f.run_s(600.0);
  s = f.core->bus(0);
  CHECK(s.active_window == 0);
  CHECK(s.net_W == Approx(1000.0).margin(60.0));
  CHECK(s.fill.fill_W == 0.0);
  f.run_s(600.0);  // past the end: 1.5 kW over the cap for 1140 s of the 1200 s is the next one's need
  s = f.core->bus(0);
  CHECK(s.active_window == -1);
  CHECK(s.fill.starts_in_s > 80000.0);
  CHECK(s.fill.need_J == Approx(1500.0 * 1140.0 * 1.25).margin(1500.0 * 1.25));
}

TEST_CASE("valley filling in the core: a window seen whole sets the next day's need", "[valley_fill]") {
  CoreFixture f = buffer_rig(fill_params(), 2000.0, 2000.0);
  const std::int64_t start = f.now_ns + 60 * kS;
  f.core->set_schedule(0, caps_schedule({start, start + 7200 * kS}, 600.0, 1000.0));
  f.run_s(30.0);
  CHECK(std::isnan(f.core->bus(0).fill.need_J));  // nothing seen, nothing assumed: no plan
  f.run_s(700.0);                                 // the whole first occurrence
  const BusSnapshot s = f.core->bus(0);
  // It needed 1 kW (2 kW over a 1 kW cap) for 10 min: what the cap asked of the buffers, whatever they gave.
  CHECK(s.fill.window == 0);
  CHECK(s.fill.need_J == Approx(1000.0 * 600.0 * 1.25).margin(1000.0 * 1.25));
}

TEST_CASE("a buffer that reports its state of charge: its SoC window holds in the core, and the gauge reads it",
          "[valley_fill][soc]") {
  CoreFixture f(2);
  f.state[0] = ChannelState::running;
  f.power[0] = -1500.0;  // test channel feeding back 1.5 kW: the buffer should absorb it
  f.voltage[1] = 48.0;   // mid-window by voltage
  f.soc[1] = 95.0F;      // but above its SoC window
  BufferLimits l = CoreFixture::limits(2000.0);
  l.capacity_Wh = 1000.0;
  l.soc_min_pct = 10.0;
  l.soc_max_pct = 90.0;
  REQUIRE(f.assign(1, l) == ResponseStatus::ok);
  f.run_s(60.0);
  CHECK(f.power[1] <= 0.0);  // not charged: the SoC window, not the voltage, says full
  CHECK(f.core->channel(1).headroom_charge_W == 0.0);
  f.soc[1] = 50.0F;
  f.run_s(120.0);
  CHECK(f.power[1] == Approx(1500.0).margin(50.0));  // room again: it absorbs the export
  CHECK(f.core->channel(1).window_pos == Approx(0.5));
  // Discharging stops at soc_min_pct.
  f.power[0] = 1500.0;
  f.soc[1] = 10.0F;
  f.run_s(120.0);
  CHECK(f.power[1] >= 0.0);
  CHECK(f.core->channel(1).headroom_discharge_W == 0.0);
}

TEST_CASE("level shaving: an occurrence's profile is recorded with its need", "[valley_fill][level]") {
  WindowNeeds n;
  WindowOccurrence o{0, 480 * kS, 0};  // 48 bins of 10 s
  for (std::int64_t t = 0; t < 480; ++t) n.observe(&o, true, t * kS, 1.0, 100.0, t < 240 ? 1000.0 : 3000.0);
  n.observe(nullptr, false, 480 * kS, 1.0, 0.0, 0.0);
  REQUIRE(n.seen(0) == 1);
  const WindowNeeds::Profile* p = n.kept_profile(0, 0);
  REQUIRE(p != nullptr);
  CHECK((*p)[0] == Approx(1000.0));
  CHECK((*p)[23] == Approx(1000.0));
  CHECK((*p)[24] == Approx(3000.0));
  CHECK((*p)[47] == Approx(3000.0));
  n.record(0, 5.0);  // recorded without a profile (a restored older history)
  CHECK(std::isnan((*n.kept_profile(0, 1))[0]));
  CHECK(n.kept_profile(0, 2) == nullptr);
}

TEST_CASE("level shaving: the level uses what is stored beyond the need and its reserve", "[valley_fill][level]") {
  // A window of 3600 s whose load was 2 kW throughout, against a 1 kW cap: it needed 3.6 MJ.
  WindowNeeds n;
  WindowNeeds::Profile flat{};
  flat.fill(2000.0F);
  n.record(0, 1000.0 * 3600.0, &flat);
  ShaveInput in;
  in.cap_W = 1000.0;
  in.window_s = 3600.0;
  in.discharge_W = 5000.0;
  in.available_J = 5.4e6;  // 1.5 x the need
  // Nothing kept back: (2000 - L) x 3600 s = 5.4 MJ.
  CHECK(shave_level(n, 0, in) == Approx(500.0).margin(1.0));
  // A reserve of a quarter of the need at the cap (0.9 MJ) is kept back: (2000 - L) x 3600 = 4.5 MJ.
  in.reserve = 0.25;
  CHECK(shave_level(n, 0, in) == Approx(750.0).margin(1.0));
  // Halfway through with half of it left: the same level for the rest.
  in.reserve = 0.0;
  in.elapsed_s = 1800.0;
  in.available_J = 2.7e6;
  CHECK(shave_level(n, 0, in) == Approx(500.0).margin(1.0));
  in.elapsed_s = 0.0;
  in.available_J = 5.4e6;
  // The rating bounds it: 1.2 kW of discharge holds no level below 800 W at 2 kW.
  in.discharge_W = 1200.0;
  CHECK(shave_level(n, 0, in) == Approx(800.0).margin(1.0));
  in.discharge_W = 5000.0;
  // Nothing beyond the need: the cap.
  in.available_J = 3.0e6;
  CHECK(shave_level(n, 0, in) == 1000.0);
  // The measured need was twice what the profile's means show above the cap (swings within the bins):
  // the energy above a level counts twice as well, (2000 - L) x 3600 x 2 = 9 MJ.
  WindowNeeds swing;
  swing.record(0, 2.0 * 1000.0 * 3600.0, &flat);
  in.available_J = 9.0e6;
  CHECK(shave_level(swing, 0, in) == Approx(750.0).margin(1.0));
  // No profile kept (older history), or after the window: the cap.
  WindowNeeds old;
  old.record(0, 3.6e6);
  CHECK(shave_level(old, 0, in) == 1000.0);
  in.elapsed_s = 3600.0;
  CHECK(shave_level(n, 0, in) == 1000.0);
}

TEST_CASE("level shaving: the reserve is learned from the needs' spread", "[valley_fill][level]") {
  WindowNeeds n;
  n.record(0, 100.0);
  n.record(0, 100.0);
  CHECK(need_reserve(n, 0, 0.25) == 0.25);  // fewer than three: all of the margin
  n.record(0, 100.0);
  CHECK(need_reserve(n, 0, 0.25) == 0.05);  // no spread: the floor
  n.record(0, 130.0);                       // mean 107.5, sd 15: 2 x 0.1395
  CHECK(need_reserve(n, 0, 0.5) == Approx(2.0 * 15.0 / 107.5));
  CHECK(need_reserve(n, 0, 0.25) == 0.25);  // never more than the margin
}

TEST_CASE("level shaving in the core: below the cap with what is spare, never lower later, up when short",
          "[valley_fill][level]") {
  // Test channel 0 draws 2 kW in every occurrence of a 600 s window capped at 1 kW (need 0.6 MJ).
  // Buffer 1 (2 kW) reports its state of charge: its stored energy is what the test sets.
  CoreFixture f = level_rig(30.0F);  // 300 Wh = 1.08 MJ
  const std::int64_t t0 = f.now_ns + 60 * kS;
  const std::int64_t day = 3600 * kS;
  f.core->set_schedule(0, caps_schedule({t0, t0 + day, t0 + 2 * day, t0 + 3 * day}, 600.0, 1000.0));
  // The first occurrence: no profile yet, the cap.
  f.run_s(60.0 + 300.0);
  BusSnapshot s = f.core->bus(0);
  CHECK(s.fill.level_W == 1000.0);
  CHECK(s.net_W == Approx(1000.0).margin(30.0));
  f.run_s(3600.0 - 300.0);  // its end is recorded; into the second occurrence
  // The second: 1.08 MJ against a need of 0.6 MJ and a reserve of 0.25 x 0.6 MJ (one occurrence seen):
  // (2000 - L) x 600 s = 0.93 MJ, L = 450 W.
  f.run_s(100.0);
  s = f.core->bus(0);
  REQUIRE(f.core->window_needs(0).seen(0) == 1);
  CHECK(s.fill.level_W == Approx(450.0).margin(5.0));
  f.run_s(60.0);
  CHECK(f.core->bus(0).net_W == Approx(450.0).margin(30.0));
  // Later in it, with the same energy reported (as if the load had been lower than recorded), the
  // remaining need is smaller, but a lower level would buy nothing: the level held stays.
  f.run_s(300.0);
  CHECK(f.core->bus(0).fill.level_W == Approx(450.0).margin(5.0));
  // The energy runs short: 5 % (180 kJ) against ~139 s left, 139 kJ at the cap and 35 kJ of reserve:
  // (2000 - L) x 139 s = 145 kJ, L ~ 957 W: up, not beyond the cap.
  f.soc[1] = 5.0F;
  f.run_s(1.0);
  s = f.core->bus(0);
  CHECK(s.fill.level_W == Approx(957.0).margin(15.0));
  f.soc[1] = 3.0F;  // 108 kJ: not even the cap's need and its reserve
  f.run_s(1.0);
  CHECK(f.core->bus(0).fill.level_W == 1000.0);
  // Off: the cap.
  f.run_s(3600.0 - 462.0 + 100.0);  // into the third occurrence
  f.soc[1] = 30.0F;
  Request off;
  off.kind = RequestKind::set_params;
  off.bus = 0;
  off.params = f.core->bus(0).params;  // the rig's parameters, level shaving off
  off.params.level_shaving = false;
  REQUIRE(f.request(off) == ResponseStatus::ok);
  f.run_s(60.0);
  s = f.core->bus(0);
  CHECK(std::isnan(s.fill.level_W));
  CHECK(s.net_W == Approx(1000.0).margin(30.0));
}

TEST_CASE("level shaving in the core: never below the month's highest quarter hour, anew each month",
          "[valley_fill][level]") {
  // As above: 2 kW in every 600 s occurrence of a window capped at 1 kW (need 0.6 MJ), 1.08 MJ
  // reported stored, so the energy alone would allow 450 W. The wall clock's quarter hours start at
  // `origin`; months end at origin + 1800 s and origin + 5400 s.
  CoreFixture f = level_rig(30.0F);
  const std::int64_t origin = f.now_ns;
  const auto schedule = [&](std::int64_t next_month_s) {
    return with_months(caps_schedule({origin + 900 * kS, origin + 4500 * kS, origin + 8100 * kS}, 600.0, 1000.0),
                       origin, origin + next_month_s * kS);
  };
  f.core->set_schedule(0, schedule(1800));
  // The first occurrence (the cap: no profile yet) in the old month; the month ends at 1800 s.
  f.run_s(1800.0 + 1.0);
  CHECK(std::isnan(f.core->bus(0).demand_max_month_W));  // a new month: no quarter of it yet
  f.core->set_schedule(0, schedule(5400));               // the schedule thread's next calendar
  // The new month's quarters at 700 W: its highest so far.
  f.power[0] = 700.0;
  f.run_s(4500.0 - 1801.0);  // to the second occurrence's start
  CHECK(f.core->bus(0).demand_max_month_W == Approx(700.0).margin(1.0));
  // 450 W would do (the energy allows it), but the bill already counts 700 W this month: 700 W.
  f.power[0] = 2000.0;
  f.run_s(60.0);
  BusSnapshot s = f.core->bus(0);
  REQUIRE(s.active_window == 0);
  CHECK(s.fill.level_W == Approx(700.0).margin(1.0));
  CHECK(s.net_W == Approx(700.0).margin(30.0));
  f.run_s(300.0);  // and it stays there (nothing above 700 W completed in between)
  CHECK(f.core->bus(0).fill.level_W == Approx(700.0).margin(1.0));
  f.run_s(240.0);
  // After it, 300 W; the month ends at 5400 s: the next month's highest so far is 300 W.
  f.power[0] = 300.0;
  f.run_s(5400.0 + 1.0 - 5100.0);
  CHECK(std::isnan(f.core->bus(0).demand_max_month_W));
  f.core->set_schedule(0, schedule(1'000'000));
  f.run_s(8100.0 - 5401.0);  // to the third occurrence's start
  CHECK(f.core->bus(0).demand_max_month_W == Approx(300.0).margin(1.0));
  f.power[0] = 2000.0;
  f.run_s(100.0);
  s = f.core->bus(0);
  REQUIRE(s.active_window == 0);
  CHECK(s.fill.level_W == Approx(450.0).margin(5.0));  // a new month: the level the energy allows
  CHECK(s.net_W == Approx(450.0).margin(30.0));
}

TEST_CASE("level shaving in the core: a month that starts within an occurrence plans the rest afresh",
          "[valley_fill][level]") {
  // 2 kW in 1200 s occurrences capped at 1 kW (need 1.2 MJ); 2.16 MJ reported stored: 450 W would do
  // from the start. The second occurrence runs over the month's end (origin + 5400 s).
  CoreFixture f = level_rig(60.0F);
  const std::int64_t origin = f.now_ns;
  // The first occurrence is last month's.
  BusSchedule sched =
      with_months(caps_schedule({origin + 900 * kS, origin + 4500 * kS}, 1200.0, 1000.0), origin, origin + 2700 * kS);
  f.core->set_schedule(0, sched);
  f.run_s(2100.0);  // the first occurrence: its profile and need
  f.power[0] = 700.0;
  f.run_s(601.0);
  sched.marks.next_month_ns = origin + 5400 * kS;  // the calendar made in the new month
  f.core->set_schedule(0, sched);
  f.run_s(4500.0 - 2701.0);  // this month's highest quarter so far: 700 W
  f.power[0] = 2000.0;
  f.run_s(60.0);
  BusSnapshot s = f.core->bus(0);
  REQUIRE(s.active_window == 0);
  CHECK(s.demand_max_month_W == Approx(700.0).margin(1.0));
  CHECK(s.fill.level_W == Approx(700.0).margin(1.0));  // the month's peak, not the 450 W the energy allows
  sched.marks.next_month_ns = origin + 5400 * kS + 31 * 86400 * kS;  // the calendar made after it
  f.core->set_schedule(0, sched);
  f.run_s(5400.0 + 30.0 - 4560.0);  // 30 s into the next month
  s = f.core->bus(0);
  REQUIRE(s.active_window == 0);
  CHECK(std::isnan(s.demand_max_month_W));
  // Planned afresh: 270 s left, all of the energy for them, the rating the only bound: 0 W.
  CHECK(s.fill.level_W < 100.0);
  CHECK(s.net_W < 150.0);
}
