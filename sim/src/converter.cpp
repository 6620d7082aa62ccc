#include "eqd/sim/converter.hpp"

#include <algorithm>
#include <cmath>

namespace eqd::sim {

Converter::Converter(const ConverterParams& p) : params_(p) {}

void Converter::trip() noexcept {
  current_A_ = 0.0;
  ring_.fill(Target{});
}

ConverterOutput Converter::step(const Target& t, Battery& battery, double dt_s) noexcept {
  if (delay_dt_s_ != dt_s) {
    delay_dt_s_ = dt_s;
    const double n = dt_s > 0.0 ? std::round(params_.dead_time_s / dt_s) : 0.0;
    delay_steps_ = std::min<std::size_t>(static_cast<std::size_t>(std::max(0.0, n)), kDelaySlots - 1);
    const double tau = params_.tau_conv_s;
    alpha_ = tau > 0.0 ? 1.0 - std::exp(-dt_s / tau) : 1.0;
  }
  // Ring: write the new request, read the one delay_steps_ old.
  ring_[head_] = t;
  const Target& d = ring_[(head_ + kDelaySlots - delay_steps_) % kDelaySlots];
  head_ = (head_ + 1) % kDelaySlots;

  const double v_max = d.cv_V > 0.0 ? std::min(d.cv_V, params_.v_max_V) : params_.v_max_V;
  const double v_min = d.min_V > 0.0 ? std::max(d.min_V, params_.v_min_V) : params_.v_min_V;

  double want_A = 0.0;
  switch (d.kind) {
    case TargetKind::off:
      want_A = 0.0;
      break;
    case TargetKind::current:
      want_A = d.value;
      break;
    case TargetKind::power: {
      // The power loop divides by the voltage it measures now (including the present current's drop).
      const double v = std::max(battery.terminal_voltage_V(current_A_), 0.1);
      want_A = d.value / v;
      break;
    }
  }
  // "off" also goes through the loop: the current decays with tau_conv_s rather than jumping.
  double i = current_A_ + alpha_ * (want_A - current_A_);

  // Current and power limits (power limit evaluated at the present terminal voltage).
  i = std::clamp(i, -params_.max_discharge_A, params_.max_charge_A);
  const double v_now = std::max(battery.terminal_voltage_V(i), 0.1);
  if (i * v_now > params_.max_charge_W) i = params_.max_charge_W / v_now;
  if (-i * v_now > params_.max_discharge_W) i = -params_.max_discharge_W / v_now;

  // Voltage limits act at once (the voltage loop is much faster than the current command path):
  // charging never pushes the terminal above v_max, discharging never pulls it below v_min.
  bool limited = false;
  if (i > 0.0) {
    const double i_cv = std::max(0.0, battery.current_for_voltage_A(v_max));
    if (i > i_cv) {
      i = i_cv;
      limited = true;
    }
  } else if (i < 0.0) {
    const double i_min = std::min(0.0, battery.current_for_voltage_A(v_min));
    if (i < i_min) {
      i = i_min;
      limited = true;
    }
  }
  current_A_ = i;

  ConverterOutput out;
  out.current_A = i;
  out.voltage_V = battery.terminal_voltage_V(i);
  out.power_W = out.voltage_V * i;
  out.bus_power_W = bus_side_W(out.power_W, params_.efficiency);
  out.voltage_limited = limited;
  battery.step(i, dt_s);
  return out;
}

}  // namespace eqd::sim
