// Per-bus demand figures and the calendar marks they need. See demand_meter.hpp.
#include "eqd/core/demand_meter.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "eqd/core/params.hpp"
#include "eqd/core/schedule.hpp"

namespace eqd::core {

namespace {

constexpr std::int64_t kNsPerS = 1'000'000'000;
constexpr std::int64_t kQuarter_ns = 900 * kNsPerS;
constexpr std::int64_t kDay_s = 86400;

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

CalendarMarks calendar_marks(std::int64_t from_ns, std::int64_t (*offset)(std::int64_t utc_s)) {
  using namespace std::chrono;
  CalendarMarks m;
  const std::int64_t from_s = floor_div(from_ns, kNsPerS);
  // Quarter hours of the wall clock: UTC quarter hours shifted by the offset's part below 15 min (0 for
  // every zone but the few with 45-minute offsets).
  m.quarter_origin_ns = (floor_div(from_s, 900) * 900 - (offset(from_s) % 900)) * kNsPerS;
  const std::int64_t today = floor_div(from_s + offset(from_s), kDay_s);
  for (std::size_t i = 0; i < m.midnights_ns.size(); ++i)
    m.midnights_ns[i] = local_to_utc_s((today - 1 + static_cast<std::int64_t>(i)) * kDay_s, offset) * kNsPerS;
  const year_month_day ymd{sys_days{days{today}}};
  const year_month_day next = year_month_day{ymd.year() / ymd.month() / 1} + months{1};
  const std::int64_t next_day = sys_days{next}.time_since_epoch().count();
  m.next_month_ns = local_to_utc_s(next_day * kDay_s, offset) * kNsPerS;
  m.calendar = true;
  return m;
}

void shift_marks(CalendarMarks& m, std::int64_t delta_ns) noexcept {
  m.quarter_origin_ns += delta_ns;
  for (std::int64_t& t : m.midnights_ns) t += delta_ns;
  m.next_month_ns += delta_ns;
}

void DemandMeter::update(std::int64_t now_ns, double import_J, const CalendarMarks& m) noexcept {
  if (!m.calendar) return;
  // Never back to an earlier quarter hour (the origin may come back a few microseconds moved).
  // The origin is only a phase: its quarter hour moves with each re-made calendar, the index must not.
  const std::int64_t phase = m.quarter_origin_ns - floor_div(m.quarter_origin_ns, kQuarter_ns) * kQuarter_ns;
  const std::int64_t block = std::max(block_, floor_div(now_ns - phase, kQuarter_ns));
  if (block != block_) {
    // A quarter hour closes: its average counts only if this meter saw all of it.
    if (block_whole_ && block == block_ + 1) {
      last_W_ = std::max(0.0, import_J - block_start_J_) / 900.0;
      max_day_W_ = std::isnan(max_day_W_) ? last_W_ : std::max(max_day_W_, last_W_);
      max_month_W_ = std::isnan(max_month_W_) ? last_W_ : std::max(max_month_W_, last_W_);
    }
    // Entered at its start (within a cycle of it) when the previous one was being measured.
    block_whole_ = block == block_ + 1;
    block_ = block;
    block_start_J_ = import_J;
  }
  // The local day and month roll after the quarter hour that ends at midnight was counted in the old.
  std::int64_t day_start = day_start_ns_;
  for (const std::int64_t t : m.midnights_ns)
    if (t <= now_ns) day_start = std::max(day_start, t);
  // A new day only a good while after the last one started: the marks are re-made every minute from
  // two clocks read one after the other, so the same midnight may come back a few microseconds apart.
  constexpr std::int64_t kHour_ns = 3600 * kNsPerS;
  if (day_start_ns_ == std::numeric_limits<std::int64_t>::min()) {
    day_start_ns_ = day_start;
  } else if (day_start > day_start_ns_ + kHour_ns) {
    max_day_W_ = kNaN;
    day_start_ns_ = day_start;
  }
  if (month_end_ns_ == std::numeric_limits<std::int64_t>::min()) month_end_ns_ = m.next_month_ns;
  if (now_ns >= month_end_ns_) {
    max_month_W_ = kNaN;
    // The calendar made before the month began still names its start: 31 days at most until the
    // next one, corrected below by the first calendar made in the new month.
    month_end_ns_ = m.next_month_ns > now_ns ? m.next_month_ns : now_ns + 31 * kDay_s * kNsPerS;
  } else if (m.next_month_ns > now_ns && m.next_month_ns < month_end_ns_ - kHour_ns) {
    // A calendar made within the month names its true end (a month of 28-30 days ends before the 31
    // days assumed at its start; a month's maximum must not run into the next one's first days).
    month_end_ns_ = m.next_month_ns;
  }
}

void AverageCap::update(std::int64_t now_ns, double import_J, const CalendarMarks& m, double period_s) noexcept {
  const auto period_ns = static_cast<std::int64_t>(std::llround(period_s * 1e9));
  if (!m.calendar || period_ns <= 0 || period_ns != period_ns_) {
    // No calendar, or a new period: start over from the next whole interval.
    block_ = std::numeric_limits<std::int64_t>::min();
    period_ns_ = m.calendar ? period_ns : 0;
    whole_ = false;
    if (period_ns_ <= 0) return;
  }
  // The period divides the quarter hour: the quarter hours' phase is the intervals' phase too.
  const std::int64_t phase = m.quarter_origin_ns - floor_div(m.quarter_origin_ns, period_ns_) * period_ns_;
  const std::int64_t block = std::max(block_, floor_div(now_ns - phase, period_ns_));
  if (block != block_) {
    whole_ = block_ != std::numeric_limits<std::int64_t>::min() && block == block_ + 1;
    block_ = block;
    start_ns_ = phase + block * period_ns_;
    start_J_ = import_J;
  }
  now_ns_ = now_ns;
  import_J_ = import_J;
}

double AverageCap::elapsed_s() const noexcept {
  return block_ == std::numeric_limits<std::int64_t>::min() ? std::numeric_limits<double>::quiet_NaN()
                                                            : static_cast<double>(now_ns_ - start_ns_) / kNsPerS;
}

double AverageCap::allowed_W(double cap_W, double ceiling_W, double guard_s) const noexcept {
  if (!whole_ || !std::isfinite(cap_W)) return std::numeric_limits<double>::quiet_NaN();
  const double period_s = static_cast<double>(period_ns_) / kNsPerS;
  const double elapsed = elapsed_s();
  const double left_s = std::max(period_s - elapsed, std::max(guard_s, 1e-3));
  // The budget left spread over the time left, written as the cap less what the interval is ahead of
  // (or behind) the cap's pace, spread over the time left: the same while more than guard_s is left.
  // In the last guard_s only the lead or lag is spread as if guard_s were left: dividing the whole
  // budget by guard_s there ramped an import exactly on pace down towards 0 W in every interval's
  // last tau_s (a dip of the buffers each quarter hour under a steady load; peak_window).
  const double cap_eff_W = cap_W * (1.0 - kMargin);
  const double ahead_J = (import_J_ - start_J_) - cap_eff_W * elapsed;
  // Never above the rating nor the bound of any power the core handles, never below 0 (an interval
  // already over its budget is held as low as the buffers can).
  return std::clamp(cap_eff_W - ahead_J / left_s, 0.0, std::min(ceiling_W, kMaxPower_W));
}

}  // namespace eqd::core
