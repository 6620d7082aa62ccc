/// @file meter_check.cpp
/// MeterCheck: a difference that persists starts an episode, agreement that persists ends it.

#include "eqd/core/meter_check.hpp"

#include <cmath>

namespace eqd::core {

MeterEvent MeterCheck::update(std::int64_t now_ns, bool comparable, double measured_W, double computed_W) noexcept {
  if (!comparable || !std::isfinite(measured_W) || !std::isfinite(computed_W)) {
    change_since_ns_ = -1;
    return MeterEvent::none;
  }
  difference_W_ = measured_W - computed_W;
  const bool differs = std::abs(difference_W_) > p_.tolerance_W;
  if (differs == disagreement_) {  // the present state holds
    change_since_ns_ = -1;
    return MeterEvent::none;
  }
  if (change_since_ns_ < 0) change_since_ns_ = now_ns;
  if (static_cast<double>(now_ns - change_since_ns_) * 1e-9 < p_.persistence_s) return MeterEvent::none;
  change_since_ns_ = -1;
  disagreement_ = differs;
  if (!differs) return MeterEvent::disagreement_ended;
  ++episodes_;
  return MeterEvent::disagreement_started;
}

}  // namespace eqd::core
