#include "eqd/sim/controller_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace eqd::sim {

namespace {
constexpr double kForecastPeriod_s = 1.0;      // how often a controller refreshes its announcements
constexpr double kForecastResolution_s = 1.0;  // step of the program run-ahead (programs are in whole seconds)
}  // namespace

const char* to_string(CommandResult r) noexcept {
  switch (r) {
    case CommandResult::accepted:
      return "accepted";
    case CommandResult::refused_running:
      return "refused_running";
    case CommandResult::refused_fault:
      return "refused_fault";
    case CommandResult::refused_watchdog:
      return "refused_watchdog";
    case CommandResult::bad_channel:
      return "bad_channel";
  }
  return "?";
}

ControllerModel::ControllerModel(ControllerParams p, std::vector<ChannelSpec> specs) : params_(std::move(p)) {
  channels_.reserve(specs.size());
  for (ChannelSpec& s : specs) {
    Battery battery(s.battery, *s.ocv);
    Converter converter(s.converter);
    Channel c{std::move(s), std::move(battery), converter, ScheduleRunner{}};
    // The runner points into the shared_ptr's Schedule, which stays put when channels_ moves.
    c.runner = ScheduleRunner(c.spec.schedule.get());
    c.mode = c.runner.active() ? Mode::schedule : Mode::idle;
    c.reading.voltage_V = c.battery.terminal_voltage_V(0.0);
    c.truth.voltage_V = c.reading.voltage_V;
    c.truth.soc = c.battery.soc();
    c.reading.state = c.mode == Mode::schedule ? core::ChannelState::running : core::ChannelState::idle;
    set_program_position(c);  // a running channel says where it is from the first reading on
    channels_.push_back(std::move(c));
  }
}

void ControllerModel::set_program_position(Channel& c) noexcept {
  // The program position as a cycler shows it, only while the program runs (not while it waits for its
  // start, nor after it ended); a number the profile fields cannot carry (beyond their "not reported"
  // values) is not reported rather than wrapped.
  const bool in_program = c.mode == Mode::schedule && c.runner.started() && !c.runner.finished();
  const std::size_t step = c.runner.step_index();
  const std::uint64_t pass = c.runner.pass();
  ChannelReading& r = c.reading;
  r.step_index = in_program && step < core::Sample::kNoStep ? static_cast<std::uint16_t>(step) : core::Sample::kNoStep;
  r.cycle_index =
      in_program && pass < core::Sample::kNoIndex ? static_cast<std::uint32_t>(pass) : core::Sample::kNoIndex;
}

void ControllerModel::leave_equalization(Channel& c) noexcept {
  c.mode = Mode::idle;
  c.setpoint_W = 0.0;
  c.lease_until_s = -1.0;
}

CommandResult ControllerModel::set_command(std::size_t ch, bool equalize, double setpoint_W, std::uint32_t lease_ms,
                                           double now_s) noexcept {
  if (ch >= channels_.size() || !std::isfinite(setpoint_W)) return CommandResult::bad_channel;
  Channel& c = channels_[ch];
  if (c.mode == Mode::fault) return CommandResult::refused_fault;
  if (!equalize) {
    if (c.mode == Mode::equalize) leave_equalization(c);
    return c.mode == Mode::schedule ? CommandResult::refused_running : CommandResult::accepted;
  }
  if (c.mode == Mode::schedule) return CommandResult::refused_running;
  if (watchdog_tripped_) return CommandResult::refused_watchdog;
  if (c.mode != Mode::equalize) {
    c.mode = Mode::equalize;
    // The watchdog starts counting when the first channel enters equalization without a heartbeat.
    if (!heartbeat_seen_) last_heartbeat_change_s_ = now_s;
  }
  c.setpoint_W = setpoint_W;
  c.lease_until_s = lease_ms > 0 ? now_s + static_cast<double>(lease_ms) / 1000.0 : -1.0;
  return CommandResult::accepted;
}

void ControllerModel::heartbeat(std::uint32_t value, double now_s) noexcept {
  if (heartbeat_seen_ && value == last_heartbeat_) return;
  heartbeat_seen_ = true;
  last_heartbeat_ = value;
  last_heartbeat_change_s_ = now_s;
  watchdog_tripped_ = false;
}

double ControllerModel::effective_setpoint_W(std::size_t ch, double now_s) const noexcept {
  const Channel& c = channels_[ch];
  if (c.mode != Mode::equalize) return 0.0;
  if (c.lease_until_s >= 0.0 && now_s > c.lease_until_s) return 0.0;
  return c.setpoint_W;
}

void ControllerModel::step(double now_s, double dt_s, std::mt19937_64& rng) noexcept {
  if (params_.heartbeat_timeout_ms > 0.0 && !watchdog_tripped_) {
    bool any_eq = false;
    for (const Channel& c : channels_) any_eq = any_eq || c.mode == Mode::equalize;
    if (any_eq && (now_s - last_heartbeat_change_s_) * 1000.0 > params_.heartbeat_timeout_ms) {
      watchdog_tripped_ = true;
      ++watchdog_trips_;
      for (Channel& c : channels_)
        if (c.mode == Mode::equalize) leave_equalization(c);
    }
  }
  // Measurement noise: Irwin-Hall sum of four 16-bit uniforms from one draw, scaled to unit variance.
  // Bounded (+-3.46 sigma) and about 5x cheaper than std::normal_distribution, which dominated the
  // profile of an hour-long 64-channel run; for sensor noise the shape of the tails does not matter.
  const auto unit = [](std::mt19937_64& g) {
    const std::uint64_t u = g();
    const double sum = static_cast<double>((u & 0xFFFF) + ((u >> 16) & 0xFFFF) + ((u >> 32) & 0xFFFF) + (u >> 48));
    return (sum / 65536.0 - 2.0) * 1.7320508075688772;
  };
  // Forecasts are refreshed once a second, as a controller would, not every plant step.
  const bool refresh_forecast = params_.forecast_horizon_s > 0.0 && now_s + dt_s >= next_forecast_s_ - 1e-9;
  if (refresh_forecast) next_forecast_s_ = now_s + dt_s + kForecastPeriod_s;
  for (std::size_t k = 0; k < channels_.size(); ++k) {
    Channel& c = channels_[k];
    Target t;
    switch (c.mode) {
      case Mode::schedule:
        t = c.runner.target();
        break;
      case Mode::equalize:
        t.kind = TargetKind::power;
        t.value = effective_setpoint_W(k, now_s);
        break;
      case Mode::idle:
      case Mode::fault:
        break;
    }
    const ConverterOutput out = c.converter.step(t, c.battery, dt_s);
    if (c.mode == Mode::schedule) {
      c.runner.advance(dt_s, out);
      if (!c.runner.active()) c.mode = Mode::idle;
    }
    // Draw noise for every channel every step, stalled or not, so that one channel's stall does not
    // shift the random stream of the others (traces stay comparable across scenarios).
    const double nv = params_.noise_V > 0.0 ? params_.noise_V * unit(rng) : 0.0;
    const double na = params_.noise_A > 0.0 ? params_.noise_A * unit(rng) : 0.0;
    c.truth = {out.voltage_V, out.current_A, out.power_W, out.bus_power_W, c.battery.soc(), c.mode == Mode::equalize};
    if (c.stalled) continue;
    ChannelReading& r = c.reading;
    r.voltage_V = out.voltage_V + nv;
    r.current_A = out.current_A + na;
    r.power_W = r.voltage_V * r.current_A;
    if (params_.forecast_horizon_s <= 0.0 || c.mode != Mode::schedule) {
      r.forecast_W = std::numeric_limits<double>::quiet_NaN();  // no program, nothing to announce
    } else if (refresh_forecast || std::isnan(r.forecast_W)) {
      const ConverterParams& cp = c.converter.params();
      r.forecast_W =
          std::clamp(c.runner.forecast_at_W(params_.forecast_horizon_s, kForecastResolution_s, r.voltage_V, r.power_W),
                     -cp.max_discharge_W, cp.max_charge_W);
    }
    set_program_position(c);
    r.fault_code = c.fault_code;
    r.equalization_mode = c.mode == Mode::equalize;
    switch (c.mode) {
      case Mode::idle:
        r.state = core::ChannelState::idle;
        break;
      case Mode::schedule:
        r.state = core::ChannelState::running;
        break;
      case Mode::equalize:
        r.state = core::ChannelState::equalizing;
        break;
      case Mode::fault:
        r.state = core::ChannelState::fault;
        break;
    }
    ++c.counter;
    r.sequence = c.counter;
  }
}

core::Sample ControllerModel::sample(std::size_t ch, std::int64_t receive_time_ns) const noexcept {
  const ChannelReading& r = channels_[ch].reading;
  core::Sample s;
  s.voltage_V = r.voltage_V;
  s.current_A = r.current_A;
  s.power_W = r.power_W;
  s.forecast_W = static_cast<float>(r.forecast_W);
  s.step_index = r.step_index;
  s.cycle_index = r.cycle_index;
  s.controller_time_ms = 0;
  s.receive_time_ns = receive_time_ns;
  s.sequence = r.sequence;
  s.fault_code = r.fault_code;
  s.state = r.state;
  s.equalization_mode = r.equalization_mode;
  s.valid = true;
  return s;
}

void ControllerModel::inject_fault(std::size_t ch, std::uint16_t code) noexcept {
  if (ch >= channels_.size()) return;
  Channel& c = channels_[ch];
  if (c.mode != Mode::fault) c.mode_before_fault = c.mode == Mode::schedule ? Mode::schedule : Mode::idle;
  c.mode = Mode::fault;
  c.setpoint_W = 0.0;
  c.lease_until_s = -1.0;
  c.fault_code = code == 0 ? 1 : code;
  c.converter.trip();
}

void ControllerModel::clear_fault(std::size_t ch) noexcept {
  if (ch >= channels_.size() || channels_[ch].mode != Mode::fault) return;
  Channel& c = channels_[ch];
  c.fault_code = 0;
  c.mode = c.mode_before_fault == Mode::schedule && c.runner.active() ? Mode::schedule : Mode::idle;
}

void ControllerModel::set_stalled(std::size_t ch, bool stalled) noexcept {
  if (ch < channels_.size()) channels_[ch].stalled = stalled;
}

}  // namespace eqd::sim
