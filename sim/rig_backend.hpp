#pragma once
/// @file rig_backend.hpp
/// The simulated rig behind the Modbus and CAN servers: one plant shared by the plant thread and every
/// server thread, and the ControllerBackend adapter that serves one of its controllers (readings,
/// announced forecasts, commands, heartbeat). Used by eqsim and by the tests that put eqd's links
/// against the real plant model.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "eqd/sim/rig.hpp"
#include "modbus_server.hpp"

namespace eqd::sim {

/// One plant shared by the plant thread and the server threads: every call goes through `mutex`.
/// Lock order: a server thread holds its controller's lock, then this one; the plant thread only this.
struct Plant {
  explicit Plant(Rig r) : rig(std::move(r)) {}
  Rig rig;
  std::mutex mutex;
  /// Channels the servers released by themselves (lease expiry, heartbeat loss), for reports.
  std::atomic<std::uint64_t> lease_releases{0};
  std::atomic<std::uint64_t> heartbeat_releases{0};
};

/// Serves controller `controller` of a Plant: read() is the controller's ChannelReading (with its
/// announced forecast_W and program position), command()/heartbeat() go to the ControllerModel at the rig's time.
/// Thread-safety: locks plant.mutex in every call.
class RigBackend final : public ControllerBackend {
 public:
  /// `log`: print refused commands and server releases on stderr (eqsim); tests pass false.
  RigBackend(Plant& plant, std::size_t controller, bool log = true)
      : plant_(plant), controller_(controller), log_(log) {}
  [[nodiscard]] std::size_t channel_count() const override;
  ServedReading read(std::size_t ch) override;
  void command(std::size_t ch, bool equalize, double setpoint_W, std::uint32_t lease_ms) override;
  void heartbeat(std::uint16_t value) override;
  void released(std::size_t ch, ReleaseReason why) override;

 private:
  Plant& plant_;
  std::size_t controller_;
  bool log_;
};

/// The capabilities register a served controller of `params` reports: 0x1F and
/// io::modbus::capability::kProgram (0x5F), plus io::modbus::capability::kForecast when it announces
/// forecasts (forecast_horizon_s > 0; 0x7F).
std::uint16_t served_capabilities(const ControllerParams& params) noexcept;

}  // namespace eqd::sim
