/// @file meter_trim.cpp
/// MeterTrim: a first-order low-pass of measured - computed, clamped; it holds, then decays, while the
/// meter is not comparable. The reasons are in meter_trim.hpp.

#include "eqd/core/meter_trim.hpp"

#include <algorithm>
#include <cmath>

namespace eqd::core {

const char* to_string(MeterTrimState s) noexcept {
  switch (s) {
    case MeterTrimState::off:
      return "off";
    case MeterTrimState::waiting:
      return "waiting";
    case MeterTrimState::tracking:
      return "tracking";
    case MeterTrimState::clamped:
      return "clamped";
    case MeterTrimState::holding:
      return "holding";
    case MeterTrimState::decaying:
      return "decaying";
  }
  return "?";
}

double applied_trim_W(const MeterTrimValue& v, std::int64_t now_ns) noexcept {
  if (v.stamp_ns <= 0 || now_ns - v.stamp_ns > v.valid_ns || !std::isfinite(v.bias_W) || !(v.max_W > 0.0)) return 0.0;
  return std::clamp(v.bias_W, -v.max_W, v.max_W);
}

void MeterTrim::update(std::int64_t now_ns, bool comparable, double difference_W) noexcept {
  const double dt_s = last_ns_ >= 0 ? std::clamp(static_cast<double>(now_ns - last_ns_) * 1e-9, 0.0, kMaxStep_s) : 0.0;
  last_ns_ = now_ns;
  const double keep = std::exp(-dt_s / p_.tau_s);  // e^(-dt/tau): what is left of the old bias
  if (comparable && std::isfinite(difference_W)) {
    last_comparable_ns_ = now_ns;
    const double next = difference_W + keep * (bias_W_ - difference_W);
    bias_W_ = std::clamp(next, -p_.max_W, p_.max_W);
    state_ = std::abs(next) >= p_.max_W ? MeterTrimState::clamped : MeterTrimState::tracking;
    return;
  }
  if (bias_W_ == 0.0) {
    state_ = MeterTrimState::waiting;
    return;
  }
  if (last_comparable_ns_ >= 0 && static_cast<double>(now_ns - last_comparable_ns_) * 1e-9 < p_.hold_s) {
    state_ = MeterTrimState::holding;
    return;
  }
  bias_W_ *= keep;
  // Below half a watt the bias is gone (and the state says so instead of decaying for ever).
  if (std::abs(bias_W_) < 0.5) {
    bias_W_ = 0.0;
    state_ = MeterTrimState::waiting;
  } else {
    state_ = MeterTrimState::decaying;
  }
}

}  // namespace eqd::core
