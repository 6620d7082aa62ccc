// Target schedules: expansion of local-time windows into UTC occurrences (off the control thread) and
// the control thread's lookup. See schedule.hpp.
#include "eqd/core/schedule.hpp"

#include <algorithm>
#include <cmath>

namespace eqd::core {

namespace {

constexpr std::int64_t kDay_s = 86400;
constexpr std::int64_t kNsPerS = 1'000'000'000;

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Monday = 0 for a count of days since 1970-01-01, which was a Thursday.
int weekday_monday0(std::int64_t day) { return static_cast<int>(((day % 7) + 7 + 3) % 7); }

bool within(double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; }

}  // namespace

std::int64_t local_to_utc_s(std::int64_t local_s, UtcOffsetFn offset) {
  // The offsets in force half a day either side: no zone changes twice within a day, so these are the
  // only candidates. A candidate is right when the offset at the instant it gives is itself.
  const std::int64_t before = offset(local_s - kDay_s / 2);
  const std::int64_t after = offset(local_s + kDay_s / 2);
  std::int64_t best = 0;
  bool found = false;
  for (const std::int64_t o : {before, after}) {
    const std::int64_t u = local_s - o;
    if (offset(u) == o && (!found || u < best)) {
      best = u;
      found = true;
    }
  }
  if (found) return best;
  // In the gap of a change to summer time (the clock jumps over local_s): the change itself, the first
  // instant whose offset is `after`, found by bisection between the two candidates.
  std::int64_t lo = local_s - std::max(before, after), hi = local_s - std::min(before, after);
  while (hi - lo > 1) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    (offset(mid) == before ? lo : hi) = mid;
  }
  return hi;
}

BusSchedule expand_schedule(const ScheduleWindow* windows, std::size_t count, std::int64_t from_ns,
                            UtcOffsetFn offset) {
  BusSchedule s;
  count = std::min(count, kMaxScheduleWindows);
  std::copy(windows, windows + count, s.windows.begin());
  s.window_count = static_cast<std::uint16_t>(count);
  const std::int64_t from_s = floor_div(from_ns, kNsPerS);
  s.valid_from_ns = (from_s - kDay_s) * kNsPerS;
  s.valid_until_ns = (from_s + 3 * kDay_s) * kNsPerS;
  // Local calendar days whose windows may overlap the span: from the day before its start (a window
  // across midnight) to its last day.
  const std::int64_t first_day = floor_div(from_s - kDay_s + offset(from_s - kDay_s), kDay_s) - 1;
  const std::int64_t last_day = floor_div(from_s + 3 * kDay_s + offset(from_s + 3 * kDay_s), kDay_s);
  std::array<WindowOccurrence, kMaxScheduleWindows * 6> all{};
  std::size_t n = 0;
  for (std::int64_t day = first_day; day <= last_day; ++day) {
    const int wd = weekday_monday0(day);
    for (std::size_t w = 0; w < count && n < all.size(); ++w) {
      const ScheduleWindow& win = windows[w];
      if ((win.days & (1U << wd)) == 0) continue;
      const std::int64_t start_local = day * kDay_s + win.start_min * 60LL;
      const std::int64_t end_local = (win.end_min > win.start_min ? day : day + 1) * kDay_s + win.end_min * 60LL;
      WindowOccurrence o;
      o.start_ns = local_to_utc_s(start_local, offset) * kNsPerS;
      o.end_ns = local_to_utc_s(end_local, offset) * kNsPerS;
      o.window = static_cast<std::uint16_t>(w);
      // Emptied by a jump of the clock, or outside the span: nothing to keep.
      if (o.end_ns <= o.start_ns || o.end_ns <= s.valid_from_ns || o.start_ns >= s.valid_until_ns) continue;
      all[n++] = o;
    }
  }
  std::sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n),
            [](const WindowOccurrence& a, const WindowOccurrence& b) {
              return a.start_ns != b.start_ns ? a.start_ns < b.start_ns : a.window < b.window;
            });
  n = std::min(n, kMaxWindowOccurrences);
  std::copy(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), s.occurrences.begin());
  s.occurrence_count = static_cast<std::uint16_t>(n);
  // Truncated: what is held is only valid up to the first occurrence left out.
  if (n == kMaxWindowOccurrences) s.valid_until_ns = std::min(s.valid_until_ns, s.occurrences[n - 1].start_ns);
  s.marks = calendar_marks(from_ns, offset);
  return s;
}

void shift_schedule(BusSchedule& s, std::int64_t delta_ns) noexcept {
  for (std::size_t i = 0; i < s.occurrence_count && i < kMaxWindowOccurrences; ++i) {
    s.occurrences[i].start_ns += delta_ns;
    s.occurrences[i].end_ns += delta_ns;
  }
  s.valid_from_ns += delta_ns;
  s.valid_until_ns += delta_ns;
  shift_marks(s.marks, delta_ns);
}

int active_occurrence(const BusSchedule& s, std::int64_t now_ns) noexcept {
  int best = -1;
  const std::size_t n = std::min<std::size_t>(s.occurrence_count, kMaxWindowOccurrences);
  for (std::size_t i = 0; i < n; ++i) {
    const WindowOccurrence& o = s.occurrences[i];
    if (o.start_ns > now_ns) break;  // sorted by start
    if (now_ns < o.end_ns && (best < 0 || o.window < s.occurrences[static_cast<std::size_t>(best)].window))
      best = static_cast<int>(i);
  }
  return best;
}

int active_window(const BusSchedule& s, std::int64_t now_ns) noexcept {
  const int k = active_occurrence(s, now_ns);
  return k < 0 ? -1 : s.occurrences[static_cast<std::size_t>(k)].window;
}

BusParams apply_window(const BusParams& base, const ScheduleWindow& w) noexcept {
  BusParams p = base;
  p.mode = w.mode;
  if (w.mode == BusMode::caps) {
    if (std::isfinite(w.import_limit_W)) p.import_limit_W = w.import_limit_W;
    if (std::isfinite(w.export_limit_W)) p.export_limit_W = w.export_limit_W;
  } else {
    p.target_W = w.target_W;
  }
  return p;
}

const char* validate(const ScheduleWindow& w) noexcept {
  if ((w.days & 0x7f) == 0 || (w.days & 0x80) != 0) return "days: at least one day of the week";
  if (w.start_min < 0 || w.start_min >= 1440) return "start: must be within 00:00..23:59";
  if (w.end_min < 1 || w.end_min > 1440) return "end: must be within 00:01..24:00";
  if (w.end_min == w.start_min) return "end: must differ from start (00:00-24:00 is a whole day)";
  if (w.mode != BusMode::balance && w.mode != BusMode::caps) return "mode: must be balance or caps";
  if (!within(w.target_W, -kMaxPower_W, kMaxPower_W)) return "target_W: must be within -1e7..1e7 W (|power| <= 10 MW)";
  if (!std::isnan(w.import_limit_W) && !within(w.import_limit_W, 0.0, kMaxPower_W))
    return "import_limit_W: must be within 0..1e7 W (10 MW)";
  if (!std::isnan(w.export_limit_W) && !within(w.export_limit_W, 0.0, kMaxPower_W))
    return "export_limit_W: must be within 0..1e7 W (10 MW)";
  return nullptr;
}

}  // namespace eqd::core
