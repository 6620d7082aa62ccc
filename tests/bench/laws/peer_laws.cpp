#include "laws/peer_laws.hpp"

#include <algorithm>
#include <cmath>

namespace eqd::bench {
namespace {
constexpr double kNsPerS = 1e9;
// Same resolution as eqd's core, so that no law earns setpoint travel from rounding noise.
constexpr double kSetpointResolution_W = 0.5;
}  // namespace

PeerLaw::PeerLaw(const core::CoreConfig& cfg, double period_s)
    : channels_(cfg.channels), period_s_(period_s) {
  const std::size_t n = channels_.size();
  samples_.assign(n, core::Sample{});
  is_buffer_.assign(n, 0);
  commands_.assign(n, core::Command{});
  buses_.resize(cfg.buses.size());
  for (std::size_t b = 0; b < buses_.size(); ++b) {
    buses_[b].target_W = cfg.buses[b].target_W;
    buses_[b].lease_ms = cfg.buses[b].lease_ms;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!channels_[i].assigned) continue;
    is_buffer_[i] = 1;
    Bus_& bus = buses_[channels_[i].bus];
    bus.buffers.push_back(i);
  }
  for (Bus_& bus : buses_) {
    const std::size_t m = bus.buffers.size();
    bus.windows.assign(m, core::WindowState{});
    bus.headroom.assign(m, core::Headroom{});
    bus.out_W.assign(m, 0.0);
    bus.scratch.assign(m, 0.0);
  }
}

void PeerLaw::on_sample(std::size_t i, const core::Sample& s) noexcept { samples_[i] = s; }

void PeerLaw::publish(std::size_t i, bool equalize, double setpoint_W) noexcept {
  core::Command& c = commands_[i];
  const std::uint32_t lease = buses_[channels_[i].bus].lease_ms;
  if (c.sequence != 0 && c.equalize == equalize && std::abs(c.setpoint_W - setpoint_W) < kSetpointResolution_W)
    return;
  c.setpoint_W = setpoint_W;
  c.equalize = equalize;
  c.lease_ms = lease;
  ++c.sequence;
}

void PeerLaw::cycle(std::int64_t now_ns) noexcept {
  const bool due = now_ns >= next_update_ns_;
  if (due) next_update_ns_ = now_ns + static_cast<std::int64_t>(std::llround(period_s_ * kNsPerS));

  for (std::size_t b = 0; b < buses_.size(); ++b) {
    Bus_& bus = buses_[b];
    if (bus.buffers.empty()) continue;
    BusView v;
    v.now_s = static_cast<double>(now_ns) / kNsPerS;
    v.target_W = bus.target_W;
    // Free power with the converter efficiency eqd's core also applies.
    for (std::size_t i = 0; i < channels_.size(); ++i) {
      if (channels_[i].bus != b || is_buffer_[i] || !samples_[i].valid) continue;
      v.free_W += core::to_bus_W(samples_[i].power_W, channels_[i].efficiency);
    }
    bool over_headroom = false;
    for (std::size_t k = 0; k < bus.buffers.size(); ++k) {
      const std::size_t i = bus.buffers[k];
      const core::Sample& s = samples_[i];
      const core::BufferLimits& lim = channels_[i].limits;
      core::Headroom h = core::compute_headroom(lim, s.voltage_V, bus.windows[k]);
      const bool usable = s.valid && s.equalization_mode;
      if (!usable) h.charge_W = h.discharge_W = 0.0;
      if (commands_[i].setpoint_W > h.charge_W + 1e-9 || -commands_[i].setpoint_W > h.discharge_W + 1e-9)
        over_headroom = true;
      const double eff = lim.efficiency;
      h.charge_W /= eff;
      h.discharge_W *= eff;
      bus.headroom[k] = h;
      if (!usable) continue;
      v.capacity_charge_W += h.charge_W;
      v.capacity_discharge_W += h.discharge_W;
      v.rated_W += std::max(lim.max_charge_W / eff, lim.max_discharge_W * eff);
      v.eq_measured_W += core::to_bus_W(s.power_W, eff);
    }
    const double previous = std::clamp(bus.command_W, -v.capacity_discharge_W, v.capacity_charge_W);
    if (due) bus.command_W = std::clamp(decide(b, v, previous), -v.capacity_discharge_W, v.capacity_charge_W);
    // Like eqd's core: a headroom reduction applies at once, otherwise the split stays put between updates.
    if (!due && !over_headroom) continue;
    bus.command_W = std::clamp(bus.command_W, -v.capacity_discharge_W, v.capacity_charge_W);
    core::allocate(bus.command_W, bus.headroom.data(), bus.buffers.size(), bus.out_W.data(), bus.scratch.data());
    for (std::size_t k = 0; k < bus.buffers.size(); ++k) {
      const std::size_t i = bus.buffers[k];
      const core::BufferLimits& lim = channels_[i].limits;
      const double battery_W = core::to_battery_W(bus.out_W[k], lim.efficiency);
      // Buffers are put into equalization mode at once (at 0 W) so that they become usable.
      publish(i, true, battery_W);
    }
  }
}

EvccStepperLaw::EvccStepperLaw(const core::CoreConfig& cfg, const Params& p)
    : PeerLaw(cfg, p.period_s), p_(p), state_(cfg.buses.size()) {}

double EvccStepperLaw::decide(std::size_t b, const BusView& v, double previous_W) noexcept {
  State_& s = state_[b];
  const double candidate =
      std::clamp(previous_W + (v.target_W - v.net_W()), -v.capacity_discharge_W, v.capacity_charge_W);
  const double min_W = p_.min_fraction * v.rated_W;
  const bool demand = min_W > 0.0 && std::abs(candidate) >= min_W;
  constexpr double kTol_s = 1e-6;
  if (!s.enabled) {
    if (!demand) {
      s.demand_since_s = -1.0;
      return 0.0;
    }
    if (s.demand_since_s < 0.0) s.demand_since_s = v.now_s;
    if (v.now_s - s.demand_since_s + kTol_s < p_.enable_delay_s) return 0.0;
    s.enabled = true;
    s.no_demand_since_s = -1.0;
    return candidate;
  }
  if (demand) {
    s.no_demand_since_s = -1.0;
    return candidate;
  }
  if (s.no_demand_since_s < 0.0) s.no_demand_since_s = v.now_s;
  if (v.now_s - s.no_demand_since_s + kTol_s >= p_.disable_delay_s) {
    s.enabled = false;
    s.demand_since_s = -1.0;
    return 0.0;
  }
  // Waiting out the disable delay at the minimum power, in the direction still asked for.
  const double dir = candidate != 0.0 ? candidate : previous_W;
  return dir >= 0.0 ? min_W : -min_W;
}

PidLaw::PidLaw(const core::CoreConfig& cfg, const Params& p)
    : PeerLaw(cfg, p.period_s), p_(p), state_(cfg.buses.size()) {}

double PidLaw::decide(std::size_t b, const BusView& v, double /*previous_W*/) noexcept {
  State_& s = state_[b];
  const double measured = v.eq_measured_W;
  if (s.first) {
    s.last_measured_W = measured;
    s.first = false;
  }
  const double error = v.target_W - v.net_W();
  // OpenEMS order: the output uses the sum before this cycle's error is added.
  const double out = p_.kp * error + p_.ki * s.error_sum - p_.kd * (measured - s.last_measured_W);
  s.last_measured_W = measured;
  if (p_.ki > 0.0)
    s.error_sum = std::clamp(s.error_sum + error, -v.capacity_discharge_W / p_.ki, v.capacity_charge_W / p_.ki);
  if (p_.output_tau_s <= 0.0) return out;
  // The filter state is clamped like the command, so a saturated bus does not wind the filter up.
  s.filtered_W += (1.0 - std::exp(-p_.period_s / p_.output_tau_s)) * (out - s.filtered_W);
  s.filtered_W = std::clamp(s.filtered_W, -v.capacity_discharge_W, v.capacity_charge_W);
  return s.filtered_W;
}

FeedForwardLaw::FeedForwardLaw(const core::CoreConfig& cfg, const Params& p)
    : PeerLaw(cfg, p.period_s), p_(p), stage_W_(cfg.buses.size(), std::vector<double>(std::max(p.stages, 1), 0.0)) {}

double FeedForwardLaw::decide(std::size_t b, const BusView& v, double /*previous_W*/) noexcept {
  std::vector<double>& st = stage_W_[b];
  const double a = 1.0 - std::exp(-p_.period_s * static_cast<double>(st.size()) / p_.tau_s);
  double in = std::clamp(v.target_W - v.free_W, -v.capacity_discharge_W, v.capacity_charge_W);
  for (double& x : st) {
    x += a * (in - x);
    in = x;
  }
  return in;
}

}  // namespace eqd::bench
