#pragma once
/// @file can_server.hpp
/// Simulated channel controllers on a CAN bus, speaking a CAN signal map (the eqd CAN profile by
/// default): each sends one status frame per channel every status period and takes command and
/// heartbeat frames. Same ControllerBackend adapter as the Modbus servers (modbus_server.hpp), so
/// eqsim serves the same plant on either transport.
///
/// Controller-side rules (docs/can-profile.md), as on Modbus:
/// - a command frame is checked as a whole (channel in range, enable 0/1, finite values) before
///   anything is applied; a bad one is dropped and counted;
/// - lease: a channel in equalization whose lease (ms, 0 = none) expires without a refresh is taken
///   to 0 W and out of equalization;
/// - heartbeat: while any channel is in equalization, if the heartbeat frame's counter does not
///   change for heartbeat_timeout_ms, every channel is taken to 0 W and out of equalization.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "eqd/io/can/codec.hpp"
#include "eqd/io/can/signal_map.hpp"
#include "modbus_server.hpp"

namespace eqd::sim {

/// One simulated controller on the bus.
struct CanServedController {
  std::string name = "sim";
  std::uint32_t node_id = 1;  ///< added to the map's identifiers
  std::shared_ptr<ControllerBackend> backend;
  io::can::SignalMap map = io::can::default_can_profile();  ///< channel_count forced to the backend's
  std::uint16_t heartbeat_timeout_ms = 3000;                ///< 0 = no heartbeat watchdog
  /// Announce forecasts: when the map has a forecast frame, send one per channel (ServedReading::
  /// forecast_W; NaN as "not available") right after its status frame, every forecast_period_ms. A map
  /// with forecast_power in its status frame carries it there whatever this says.
  bool send_forecast = false;
  std::uint32_t forecast_period_ms = 1000;
  /// Report the program position (ServedReading::step_index / cycle_index): with the built-in profiles
  /// the program frame 0x500 + node id, built here from docs/can-profile.md, sent for a channel right
  /// before the status frame that first shows a new position and with its status frame every
  /// program_period_ms otherwise; with a custom map that has a program frame, the same through that
  /// map. A map with step_index / cycle_index in its status frame carries them there whatever this says.
  bool send_program = false;
  std::uint32_t program_period_ms = 1000;
};

/// Counters of one served controller. Plain values.
struct CanServerStats {
  std::uint64_t status_sent = 0;
  std::uint64_t status_dropped = 0;  ///< status frames the socket refused (queue full)
  std::uint64_t forecast_sent = 0;   ///< forecast frames sent
  std::uint64_t program_sent = 0;    ///< program frames sent
  std::uint64_t commands = 0;        ///< valid command frames applied
  std::uint64_t rejected = 0;        ///< command frames refused (bad channel, enable, value, length)
  std::uint64_t heartbeats = 0;      ///< heartbeat counter changes
  std::uint64_t lease_releases = 0;
  std::uint64_t heartbeat_releases = 0;
};

/// The built-in profiles' program frame of channel k (0-based) of node `node_id`, laid out from
/// docs/can-profile.md rather than from the client's signal map (so that a misreading of the profile on
/// either side shows up in the tests): id 0x500 + node id, classic, 8 bytes: channel number (1-based),
/// step_index (16 bits, Intel), cycle_index (32 bits, Intel), one reserved byte 0. 0xFFFF / 0xFFFFFFFF
/// = not reported. Any thread (pure).
io::can::Frame spec_program_frame(std::uint32_t node_id, std::size_t k, std::uint16_t step_index,
                                  std::uint32_t cycle_index);

/// Serves controllers on one socket (a CAN_RAW socket on an interface, or one end of a socketpair in
/// tests) with one thread. Thread-safety: construct/start/stop from one thread; stats(),
/// inject_stall(), send_frame() from any thread.
class CanServer {
 public:
  /// Takes ownership of `fd` (non-blocking, one kernel can_frame/canfd_frame per read and write).
  /// Throws std::invalid_argument naming the controller if a map does not compile or ids collide.
  CanServer(std::vector<CanServedController> controllers, int fd, double status_hz);
  /// Opens a CAN_RAW socket on `interface` (FD frames enabled if any map uses them). Throws
  /// std::runtime_error naming the interface on failure.
  static std::unique_ptr<CanServer> on_interface(const std::string& interface,
                                                 std::vector<CanServedController> controllers, double status_hz);
  ~CanServer();
  CanServer(const CanServer&) = delete;
  CanServer& operator=(const CanServer&) = delete;

  /// Start the serving thread (idempotent).
  void start();
  /// Stop and join (idempotent; within a few ms).
  void stop();
  [[nodiscard]] std::size_t size() const noexcept { return units_.size(); }
  /// Counters of controller i.
  [[nodiscard]] CanServerStats stats(std::size_t i) const;
  /// Fault injection: controller i sends no status frames (and ignores commands) for `duration`.
  void inject_stall(std::size_t i, std::chrono::milliseconds duration);
  /// Fault injection: send any frame (e.g. an error frame) on the server's socket. False if refused.
  bool send_frame(const io::can::Frame& f);

 private:
  struct Unit;
  void serve();
  void receive();
  void tick(std::chrono::steady_clock::time_point now);
  std::vector<std::unique_ptr<Unit>> units_;
  int fd_ = -1;
  double status_hz_ = 10.0;
  mutable std::mutex mutex_;  ///< guards units_' state against stats()/inject_stall()
  std::atomic<bool> running_{false};
  std::thread thread_;
};

}  // namespace eqd::sim
