// Valley filling: the caps windows' needs, the buffers' stored energy and the charge ahead of a
// window. See valley_fill.hpp. Control thread (observe, update); plan_fill() is pure.
#include "eqd/core/valley_fill.hpp"

#include <algorithm>
#include <cmath>

namespace eqd::core {

namespace {
constexpr double kNsPerS = 1e9;
// An occurrence first seen this long after its start (eqd started, or the schedule was reloaded, in the
// middle of it) is not measured: its need would be too small and would make the next charge short.
constexpr double kWholeSlack_s = 5.0;
// A deficit below this fraction of the capacity is not worth a charge (no trickle of a few watts).
constexpr double kDeficitFloor = 0.005;
}  // namespace

void WindowNeeds::observe(const WindowOccurrence* active, bool caps_window, std::int64_t now_ns, double dt_s,
                          double need_W, double free_W) noexcept {
  const bool same = active != nullptr && window_ == active->window && start_ns_ == active->start_ns;
  if (window_ >= 0 && !same) {
    // The measured occurrence is over. Kept only if it was seen from its start and ran to its end (not
    // cut short by a reload that changed the schedule).
    if (whole_ && now_ns >= end_ns_) {
      Profile profile;
      for (std::size_t j = 0; j < kProfileBins; ++j)
        profile[j] =
            bin_s_[j] > 0.0 ? static_cast<float>(bin_J_[j] / bin_s_[j]) : std::numeric_limits<float>::quiet_NaN();
      record(window_, sum_J_, &profile);
    }
    window_ = -1;
  }
  if (active == nullptr || !caps_window) return;
  if (window_ < 0) {
    window_ = active->window;
    start_ns_ = active->start_ns;
    end_ns_ = active->end_ns;
    sum_J_ = 0.0;
    bin_J_.fill(0.0);
    bin_s_.fill(0.0);
    whole_ = static_cast<double>(now_ns - active->start_ns) / kNsPerS <= kWholeSlack_s + dt_s;
    return;
  }
  if (!(dt_s > 0.0)) return;
  if (std::isfinite(need_W) && need_W > 0.0) sum_J_ += need_W * dt_s;
  if (std::isfinite(free_W) && end_ns_ > start_ns_) {
    const double pos = static_cast<double>(now_ns - start_ns_) / static_cast<double>(end_ns_ - start_ns_);
    const auto j = static_cast<std::size_t>(std::clamp(pos * kProfileBins, 0.0, kProfileBins - 1.0));
    bin_J_[j] += free_W * dt_s;
    bin_s_[j] += dt_s;
  }
}

void WindowNeeds::record(int w, double need_J, const Profile* profile) noexcept {
  if (w < 0 || w >= static_cast<int>(kMaxScheduleWindows) || !std::isfinite(need_J) || need_J < 0.0) return;
  const auto k = static_cast<std::size_t>(w);
  need_J_[k][head_[k]] = need_J;
  if (profile != nullptr)
    profile_W_[k][head_[k]] = *profile;
  else
    profile_W_[k][head_[k]].fill(std::numeric_limits<float>::quiet_NaN());
  head_[k] = static_cast<std::uint8_t>((head_[k] + 1) % kDays);
  if (count_[k] < kDays) ++count_[k];
  ++records_;
}

std::size_t WindowNeeds::slot(int w, int k) const noexcept {
  const auto i = static_cast<std::size_t>(w);
  // head_ is the next slot to write: with a full ring the oldest sits there.
  const std::size_t first = count_[i] < kDays ? 0 : head_[i];
  return (first + static_cast<std::size_t>(k)) % kDays;
}

double WindowNeeds::kept_J(int w, int k) const noexcept {
  if (w < 0 || w >= static_cast<int>(kMaxScheduleWindows) || k < 0 || k >= seen(w))
    return std::numeric_limits<double>::quiet_NaN();
  return need_J_[static_cast<std::size_t>(w)][slot(w, k)];
}

const WindowNeeds::Profile* WindowNeeds::kept_profile(int w, int k) const noexcept {
  if (w < 0 || w >= static_cast<int>(kMaxScheduleWindows) || k < 0 || k >= seen(w)) return nullptr;
  return &profile_W_[static_cast<std::size_t>(w)][slot(w, k)];
}

double WindowNeeds::extreme_J(int w, bool largest) const noexcept {
  if (w < 0 || w >= static_cast<int>(kMaxScheduleWindows)) return std::numeric_limits<double>::quiet_NaN();
  const auto k = static_cast<std::size_t>(w);
  if (count_[k] == 0) return std::numeric_limits<double>::quiet_NaN();
  double m = largest ? 0.0 : need_J_[k][0];  // the largest is never below 0 J
  for (std::size_t i = 0; i < count_[k]; ++i) m = largest ? std::max(m, need_J_[k][i]) : std::min(m, need_J_[k][i]);
  return m;
}

double WindowNeeds::largest_J(int w) const noexcept { return extreme_J(w, true); }

double WindowNeeds::smallest_J(int w) const noexcept { return extreme_J(w, false); }

int WindowNeeds::seen(int w) const noexcept {
  return w < 0 || w >= static_cast<int>(kMaxScheduleWindows) ? 0 : count_[static_cast<std::size_t>(w)];
}

void EnergyGauge::update(double capacity_J, const WindowState& w, double window_pos, double power_W, double dt_s,
                         bool soc_reported) noexcept {
  if (!(capacity_J > 0.0)) {
    known = false;
    return;
  }
  if (soc_reported) {
    stored_J = std::clamp(window_pos, 0.0, 1.0) * capacity_J;
    known = true;
    return;
  }
  if (!known) {
    stored_J = std::clamp(window_pos, 0.0, 1.0) * capacity_J;
    known = true;
  } else if (std::isfinite(power_W) && dt_s > 0.0) {
    stored_J += power_W * dt_s;
  }
  // The window's edges are the gauge's reference: a buffer blocked at v_max is full, at v_min empty.
  if (w.charge_blocked) stored_J = capacity_J;
  if (w.discharge_blocked) stored_J = 0.0;
  stored_J = std::clamp(stored_J, 0.0, capacity_J);
}

FillPlan plan_fill(const BusSchedule& s, int active_window, std::int64_t now_ns, const WindowNeeds& needs,
                   const BusParams& p, const FillBuffers& b) noexcept {
  FillPlan plan;
  plan.stored_J = b.stored_J;
  plan.capacity_J = b.capacity_J;
  if (!p.valley_fill || s.window_count == 0) return plan;
  // The next start of a caps window (occurrences are sorted by start).
  const WindowOccurrence* next = nullptr;
  const std::size_t n = std::min<std::size_t>(s.occurrence_count, kMaxWindowOccurrences);
  for (std::size_t i = 0; i < n && next == nullptr; ++i) {
    const WindowOccurrence& o = s.occurrences[i];
    if (o.start_ns > now_ns && o.window < s.window_count && s.windows[o.window].mode == BusMode::caps) next = &o;
  }
  if (next == nullptr) return plan;
  plan.window = next->window;
  plan.starts_in_s = static_cast<double>(next->start_ns - now_ns) / kNsPerS;
  const double seen_J = fill_need_J(needs, next->window, p.fill_margin);
  const double base_J = std::isfinite(seen_J) ? seen_J : p.fill_energy_Wh * 3600.0 * (1.0 + p.fill_margin);
  if (!(base_J > 0.0) && !std::isfinite(seen_J)) return plan;  // not seen yet, nothing assumed
  // The window's need is bus side; the buffers must hold it battery side: discharging E delivers
  // E * efficiency to the bus.
  const double eff = std::clamp(b.efficiency, 0.5, 1.0);
  plan.need_J = base_J / eff;
  if (!(b.capacity_J > 0.0)) {
    plan.shortfall_J = plan.need_J;
    return plan;
  }
  const double charge_s = std::clamp(plan.starts_in_s, 0.0, p.fill_lead_s);
  const double reachable_J = std::min(b.capacity_J, b.stored_J + b.charge_rate_W * eff * charge_s);
  plan.shortfall_J = std::max(0.0, plan.need_J - reachable_J);
  // While a caps window is in force it has the buffers; the next one is prepared for after it.
  const bool caps_active = active_window >= 0 && active_window < s.window_count &&
                           s.windows[static_cast<std::size_t>(active_window)].mode == BusMode::caps;
  const double deficit_J = std::min(plan.need_J, b.capacity_J) - b.stored_J;
  if (caps_active || plan.starts_in_s > p.fill_lead_s || deficit_J <= kDeficitFloor * b.capacity_J) return plan;
  // Spread over the time left, so that the charge is in two time constants before the start (the
  // damped law needs about that to hand the buffers over to the window's caps).
  const double time_s = std::max(plan.starts_in_s - 2.0 * p.tau_s, p.tau_s);
  plan.fill_W = std::min(deficit_J / time_s / eff, b.charge_rate_W);
  return plan;
}

namespace {

/// A profile every bin of which was seen (a partial one would make a hole look like no load).
bool complete(const WindowNeeds::Profile& p) noexcept {
  return std::all_of(p.begin(), p.end(), [](float v) { return std::isfinite(v); });
}

/// Energy above level_W over bins [first, end) (the first counted for first_share of it), each bin_s long.
double above_J(const std::array<double, WindowNeeds::kProfileBins>& env, std::size_t first, double first_share,
               double bin_s, double level_W) noexcept {
  double sum = 0.0;
  for (std::size_t j = first; j < env.size(); ++j)
    sum += std::max(0.0, env[j] - level_W) * bin_s * (j == first ? first_share : 1.0);
  return sum;
}

}  // namespace

double shave_level(const WindowNeeds& needs, int w, const ShaveInput& in) noexcept {
  constexpr std::size_t kBins = WindowNeeds::kProfileBins;
  if (!std::isfinite(in.cap_W) || !(in.window_s > 0.0) || !(in.elapsed_s >= 0.0) || in.elapsed_s >= in.window_s)
    return in.cap_W;
  const double bin_s = in.window_s / static_cast<double>(kBins);
  // Per bin the highest of the complete profiles kept, and the largest ratio of an occurrence's
  // measured need to the energy above the cap of its own profile.
  std::array<double, kBins> env{};
  env.fill(-std::numeric_limits<double>::infinity());
  double scale = 1.0;
  int profiles = 0;
  for (int k = 0; k < needs.seen(w); ++k) {
    const WindowNeeds::Profile* p = needs.kept_profile(w, k);
    if (p == nullptr || !complete(*p)) continue;
    ++profiles;
    double own_J = 0.0;
    for (std::size_t j = 0; j < kBins; ++j) {
      env[j] = std::max(env[j], static_cast<double>((*p)[j]));
      own_J += std::max(0.0, static_cast<double>((*p)[j]) - in.cap_W) * bin_s;
    }
    const double need_J = needs.kept_J(w, k);
    if (own_J > 0.0 && need_J > own_J) scale = std::max(scale, std::min(need_J / own_J, 3.0));
  }
  if (profiles == 0) return in.cap_W;
  const double at = in.elapsed_s / bin_s;
  const auto first = std::min(static_cast<std::size_t>(at), kBins - 1);
  const double first_share = 1.0 - (at - static_cast<double>(first));
  const auto need_at = [&](double level_W) { return scale * above_J(env, first, first_share, bin_s, level_W); };
  const double budget_J = in.available_J - in.reserve * need_at(in.cap_W);
  if (!(budget_J > need_at(in.cap_W))) return in.cap_W;
  // The lowest level the rating can hold at the highest bin ahead, and never an export.
  double peak_W = 0.0;
  for (std::size_t j = first; j < kBins; ++j) peak_W = std::max(peak_W, env[j]);
  double lo = std::clamp(peak_W - std::max(in.discharge_W, 0.0), 0.0, in.cap_W);
  if (need_at(lo) <= budget_J) return lo;
  double hi = in.cap_W;  // need_at(hi) < budget <= need_at(lo): bisect (need falls as the level rises)
  for (int i = 0; i < 40 && hi - lo > 1.0; ++i) {
    const double mid = 0.5 * (lo + hi);
    (need_at(mid) <= budget_J ? hi : lo) = mid;
  }
  return hi;
}

double fill_need_J(const WindowNeeds& needs, int w, double fill_margin) noexcept {
  if (needs.seen(w) == 0) return std::numeric_limits<double>::quiet_NaN();
  const double margin = std::max(fill_margin, 0.0);
  const double largest_J = needs.largest_J(w);
  return largest_J + std::max(margin * needs.smallest_J(w), 0.5 * margin * largest_J);
}

double need_reserve(const WindowNeeds& needs, int w, double fill_margin) noexcept {
  const int n = needs.seen(w);
  const double margin = std::max(fill_margin, 0.0);
  // Until three occurrences show how much a window's need varies, all of the margin is kept back:
  // one earlier day says nothing of the next (peak_day's evening needed 16 % more on its second day).
  if (n < 3) return margin;
  double mean = 0.0;
  for (int k = 0; k < n; ++k) mean += needs.kept_J(w, k);
  mean /= n;
  if (!(mean > 0.0)) return margin;
  double var = 0.0;
  for (int k = 0; k < n; ++k) var += (needs.kept_J(w, k) - mean) * (needs.kept_J(w, k) - mean);
  const double spread = std::sqrt(var / (n - 1)) / mean;
  return std::clamp(2.0 * spread, std::min(0.05, margin), margin);
}

}  // namespace eqd::core
