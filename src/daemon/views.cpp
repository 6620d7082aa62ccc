// The daemon's views (see views.hpp): what is not a one-line forward to the core.
#include "eqd/daemon/views.hpp"

#include <atomic>

namespace eqd::daemon {

namespace {
constexpr double kNsPerS = 1e9;
}  // namespace

StallView stall_view(const core::ControlCore& core, std::int64_t now_ns) noexcept {
  StallView v;
  const core::CycleStats st = core.stats();
  const std::int64_t last = core.cycle_clock().load(std::memory_order_acquire);
  v.bound_s = static_cast<double>(core.liveness_ns()) / kNsPerS;
  v.stalls = st.stalls;
  if (last == 0) return v;  // not started yet: nothing to call a stall
  v.cycle_age_s = static_cast<double>(now_ns - last) / kNsPerS;
  v.stalled = core.stalled(now_ns);
  if (v.stalled) ++v.stalls;  // the core counts it only when it cycles again
  return v;
}

LearnedView learned_view(const core::ControlCore& core, core::ChannelIndex i) noexcept {
  const core::LearnedForecasts& l = core.learned();
  LearnedView v;
  v.skill = l.skill(i);
  v.in_use = l.in_use(i);
  if (v.in_use) v.forecast_W = l.forecast(i).power_W;
  return v;
}

}  // namespace eqd::daemon
