/// @file rig_backend.cpp
/// The simulated rig behind the servers (see rig_backend.hpp).

#include "rig_backend.hpp"

#include <cstdio>

#include "eqd/io/modbus/register_map.hpp"

namespace eqd::sim {

std::size_t RigBackend::channel_count() const { return plant_.rig.controller(controller_).channel_count(); }

ServedReading RigBackend::read(std::size_t ch) {
  const std::lock_guard<std::mutex> lock(plant_.mutex);
  const ChannelReading& r = plant_.rig.controller(controller_).reading(ch);
  ServedReading out;
  out.voltage_V = r.voltage_V;
  out.current_A = r.current_A;
  out.power_W = r.power_W;
  out.state_code = static_cast<std::uint16_t>(r.state);
  out.fault_code = r.fault_code;
  out.equalizing = r.equalization_mode;
  out.sample_counter = r.sequence;
  out.forecast_W = r.forecast_W;  // NaN when the controller announces nothing
  out.step_index = r.step_index;  // not reported without a running schedule
  out.cycle_index = r.cycle_index;
  return out;
}

void RigBackend::command(std::size_t ch, bool equalize, double setpoint_W, std::uint32_t lease_ms) {
  const std::lock_guard<std::mutex> lock(plant_.mutex);
  ControllerModel& c = plant_.rig.controller(controller_);
  const CommandResult result = c.set_command(ch, equalize, setpoint_W, lease_ms, plant_.rig.now_s());
  if (log_ && result != CommandResult::accepted && equalize)
    std::fprintf(stderr, "eqsim: %s/%zu: command refused: %s\n", c.params().name.c_str(), ch + 1, to_string(result));
}

void RigBackend::heartbeat(std::uint16_t value) {
  const std::lock_guard<std::mutex> lock(plant_.mutex);
  plant_.rig.controller(controller_).heartbeat(value, plant_.rig.now_s());
}

void RigBackend::released(std::size_t ch, ReleaseReason why) {
  (why == ReleaseReason::lease_expired ? plant_.lease_releases : plant_.heartbeat_releases).fetch_add(1);
  if (log_)
    std::fprintf(stderr, "eqsim: %s/%zu: released by the controller (%s)\n",
                 plant_.rig.controller(controller_).params().name.c_str(), ch + 1,
                 why == ReleaseReason::lease_expired ? "lease expired" : "heartbeat lost");
}

std::uint16_t served_capabilities(const ControllerParams& params) noexcept {
  // Every simulated controller knows its channels' programs, so each reports the program position.
  std::uint16_t caps = 0x1F | io::modbus::capability::kProgram;
  if (params.forecast_horizon_s > 0.0) caps |= io::modbus::capability::kForecast;
  return caps;
}

}  // namespace eqd::sim
