// The announced free-power path of one bus and its centred median. See forecast_path.hpp.
#include "eqd/core/forecast_path.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "eqd/core/median.hpp"

namespace eqd::core {

namespace {
constexpr std::int64_t kNsPerS = 1'000'000'000;
}  // namespace

ForecastPath::ForecastPath()
    : past_W_(kSlots, 0.0),
      past_s_(kSlots, -1),
      ahead_W_(kSlots, 0.0),
      ahead_s_(kSlots, -1),
      window_(kSlots, 0.0),
      path_W_(kMaxHorizon_s, 0.0),
      steer_W_(std::numeric_limits<double>::quiet_NaN()) {}

void ForecastPath::reset() noexcept {
  std::fill(past_s_.begin(), past_s_.end(), -1);
  std::fill(ahead_s_.begin(), ahead_s_.end(), -1);
  last_s_ = -1;
  path_n_ = 0;
  statistical_ = false;
  steer_W_ = std::numeric_limits<double>::quiet_NaN();
}

void ForecastPath::update(std::int64_t now_ns, double free_W, double announcing_present_W, double announced_W,
                          std::uint32_t announcing, double horizon_s, double tau_s, const LearnedAhead* learned,
                          double learned_present_W, const double* stat_delta_W) noexcept {
  if (now_ns < 0 || !(horizon_s >= 1.0)) {
    steer_W_ = std::numeric_limits<double>::quiet_NaN();
    path_n_ = 0;
    statistical_ = false;
    return;
  }
  if (horizon_s != horizon_s_) {
    reset();  // announcements made for another horizon sit in the wrong slots
    horizon_s_ = horizon_s;
  }
  const std::int64_t sec = now_ns / kNsPerS;
  if (sec == last_s_) return;  // one bin per second: the steer value holds within the second
  last_s_ = sec;
  const auto slot = [](std::int64_t s) { return static_cast<std::size_t>(s % kSlots); };
  past_W_[slot(sec)] = free_W;
  past_s_[slot(sec)] = sec;
  const double unannounced_W = free_W - announcing_present_W;  // channels that announce nothing, now
  const std::int64_t horizon = std::min<std::int64_t>(std::lround(horizon_s), kMaxHorizon_s);
  // A learned path counts while it is at most 2 s old and made for this horizon.
  const bool use_learned = learned != nullptr && learned->channels > 0 && learned->made_s >= 0 &&
                           sec - learned->made_s >= 0 && sec - learned->made_s <= 2 &&
                           static_cast<std::int64_t>(learned->horizon_s) == horizon;
  const bool use_stat = announcing == 0 && !use_learned && stat_delta_W != nullptr;
  statistical_ = use_stat;
  if (announcing == 0 && !use_learned && !use_stat) {
    steer_W_ = std::numeric_limits<double>::quiet_NaN();  // nothing announced or learned: the law uses free_W
    path_n_ = 0;
    return;
  }
  if (announcing > 0) {
    ahead_W_[slot(sec + horizon)] = announced_W;
    ahead_s_[slot(sec + horizon)] = sec + horizon;
  }
  // The window: centred `lead` ahead, reaching to the end of the announced horizon.
  const std::int64_t lead = std::min<std::int64_t>(std::lround(std::max(0.0, tau_s)), horizon / 2);
  const std::int64_t half = horizon - lead;
  const double rest_W = unannounced_W - learned_present_W;  // neither announced nor learned: as now
  std::size_t n = 0;
  for (std::int64_t k = sec + lead - half; k <= sec + lead + half; ++k) {
    if (k <= sec) {
      if (k >= 0 && past_s_[slot(k)] == k) window_[n++] = past_W_[slot(k)];
    } else {
      // Announced at k - horizon; a second with no announcement (start-up, a gap) keeps today's power.
      const double announcing_W = announcing > 0 && ahead_s_[slot(k)] == k ? ahead_W_[slot(k)] : announcing_present_W;
      // The others: as now; where learned, the rest as now and the learned channels as expected then.
      double others_W = unannounced_W;
      if (use_learned) {
        const std::int64_t h = std::min<std::int64_t>(k - learned->made_s, horizon);
        if (h >= 1)
          others_W = rest_W + learned->present_W + static_cast<double>(learned->delta_W[static_cast<std::size_t>(h)]);
      } else if (use_stat) {
        others_W = unannounced_W + stat_delta_W[k - sec];  // the whole free power, as forecast
      }
      window_[n++] = announcing_W + others_W;
      // The window ends at sec + horizon (<= kMaxHorizon_s): every coming second is in path_W_.
      path_W_[static_cast<std::size_t>(k - sec - 1)] = window_[n - 1];
    }
  }
  path_n_ = static_cast<int>(horizon);
  if (n == 0) {
    steer_W_ = free_W;
    return;
  }
  steer_W_ = median_in_place(window_.data(), n);
}

}  // namespace eqd::core
