#pragma once
/// @file modbus_server.hpp
/// Modbus servers that make simulated channel controllers speak the eqd default profile (or any valid
/// RegisterMap) on 127.0.0.1 (TCP) or on a serial line / pseudo-terminal (RTU). They know nothing of
/// the plant model: a ControllerBackend adapts whatever produces readings and takes commands.
///
/// Controller-side rules implemented here (docs/modbus-profile.md):
/// - a command write is checked as a whole before anything is applied: cmd_enable not 0/1, a NaN or
///   infinite setpoint or lease -> exception ILLEGAL_DATA_VALUE (0x03), nothing applied;
/// - lease: a channel in equalization whose lease (ms, 0 = none) expires without a refresh is taken
///   to 0 W and out of equalization;
/// - heartbeat: while any channel is in equalization, if the heartbeat register does not change for
///   heartbeat_timeout_ms, every channel is taken to 0 W and out of equalization;
/// - unknown unit id: no reply at all (the client times out), like common gateways and pymodbus.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "eqd/io/modbus/register_map.hpp"

namespace eqd::sim {

/// One channel as the controller reports it. Sign: positive power/current = charging.
struct ServedReading {
  double voltage_V = 0.0;
  double current_A = 0.0;
  double power_W = 0.0;
  std::uint16_t state_code = 0;  ///< raw code (default profile: eqd::core::ChannelState values)
  std::uint16_t fault_code = 0;
  bool equalizing = false;
  std::uint32_t sample_counter = 0;
  /// Announced power one forecast horizon ahead (W, + = charging); NaN = nothing
  /// announced (served as the field's "not available" value). Served only when the map has
  /// forecast_power (the default profile: when `capabilities` has capability::kForecast).
  double forecast_W = std::numeric_limits<double>::quiet_NaN();
  /// Program position (eqd::core::Sample::kNoStep / kNoIndex = not reported, served as "not
  /// available"). Served by a controller whose capabilities have capability::kProgram (the default
  /// profile's program block) or whose map names step_index / cycle_index.
  std::uint16_t step_index = 0xFFFF;
  std::uint32_t cycle_index = 0xFFFF'FFFF;
};

/// Why a server released a channel by itself.
enum class ReleaseReason : std::uint8_t { lease_expired, heartbeat_lost };

/// What a served controller talks to. Every call is made by the server's thread for that controller
/// while it holds that controller's mutex, so an implementation needs no locking against the server;
/// it must not block for long (it delays the reply).
class ControllerBackend {
 public:
  virtual ~ControllerBackend() = default;
  /// Channels of this controller (fixed).
  [[nodiscard]] virtual std::size_t channel_count() const = 0;
  /// Current reading of `channel` (< channel_count()).
  virtual ServedReading read(std::size_t channel) = 0;
  /// A validated command for `channel`: enter/stay in (equalize) or leave equalization mode, power
  /// setpoint_W (0 when !equalize), lease_ms (0 = no lease). Also called with (false, 0, 0) when the
  /// server releases a channel itself (lease expiry, heartbeat loss).
  virtual void command(std::size_t channel, bool equalize, double setpoint_W, std::uint32_t lease_ms) = 0;
  /// The supervisor wrote the heartbeat register (new value).
  virtual void heartbeat(std::uint16_t value) { (void)value; }
  /// The server released `channel` by itself (after command(channel, false, 0, 0)).
  virtual void released(std::size_t channel, ReleaseReason why) { (void)channel, (void)why; }
};

/// Counters of one served controller. Plain values copied under the controller's mutex.
struct ServerStats {
  std::uint64_t requests = 0;         ///< frames received for this unit
  std::uint64_t replies = 0;          ///< normal replies
  std::uint64_t exceptions = 0;       ///< exception replies (injected or validation)
  std::uint64_t rejected_writes = 0;  ///< writes refused with ILLEGAL_DATA_VALUE
  std::uint64_t commands = 0;         ///< command() calls from client writes
  std::uint64_t ignored_unit = 0;     ///< frames for another unit id (no reply)
  std::uint64_t dropped_stalled = 0;  ///< frames dropped while stalled
  std::uint64_t heartbeats = 0;       ///< heartbeat register changes
  std::uint64_t lease_releases = 0;
  std::uint64_t heartbeat_releases = 0;
  std::uint64_t clients = 0;  ///< connections accepted (TCP)
};

/// One simulated controller to serve.
struct ServedController {
  std::string name = "sim";        ///< for messages
  std::uint16_t port = 0;          ///< TCP port on `host`; 0 = any free port (see port())
  std::string host = "127.0.0.1";  ///< IPv4 address to listen on (eqsim --listen)
  std::uint8_t unit_id = 1;        ///< requests for other unit ids get no reply
  std::shared_ptr<ControllerBackend> backend;
  /// channel_count forced to the backend's; served as with_capabilities(map, capabilities): a gated
  /// forecast_power block exists only when `capabilities` announces it (else reading it is an
  /// ILLEGAL_DATA_ADDRESS, as on a controller without the feature).
  io::modbus::RegisterMap map = io::modbus::default_profile();
  std::uint16_t heartbeat_timeout_ms = 3000;  ///< 0 = no heartbeat watchdog
  /// Value of the capabilities register: 0x1F = lease, heartbeat, measured power, eq_flag,
  /// sample_counter; add io::modbus::capability::kForecast (0x20) to serve forecast_power and
  /// io::modbus::capability::kProgram (0x40) to serve the program block (step_index, cycle_index).
  std::uint16_t capabilities = 0x1F;
};

namespace detail {
class ControllerImage;
}

/// Fault injection and counters common to the TCP and RTU servers. Thread-safe: any thread.
class ServedControllerHandle {
 public:
  explicit ServedControllerHandle(std::shared_ptr<detail::ControllerImage> image) : image_(std::move(image)) {}
  /// Stop answering for `duration`: frames received meanwhile are read and dropped (no reply).
  void inject_stall(std::chrono::milliseconds duration);
  /// Answer the next `count` requests (< 0: all until clear_faults()) with Modbus exception `code`.
  void inject_exceptions(std::uint8_t code, int count);
  /// End stall and exception injection.
  void clear_faults();
  /// Copy of the counters.
  [[nodiscard]] ServerStats stats() const;

 private:
  std::shared_ptr<detail::ControllerImage> image_;
};

/// A libmodbus TCP server serving one or more controllers, each on its own port of 127.0.0.1, each
/// with one thread that multiplexes any number of clients with select().
/// Thread-safety: construct/start/stop from one thread; port(), controller() from any thread.
class ModbusServer {
 public:
  /// Binds every port now (throws std::runtime_error naming the controller and port on failure).
  explicit ModbusServer(std::vector<ServedController> controllers);
  ~ModbusServer();
  ModbusServer(const ModbusServer&) = delete;
  ModbusServer& operator=(const ModbusServer&) = delete;

  /// Start the serving threads (idempotent).
  void start();
  /// Stop serving, close every socket and join the threads (idempotent; within ~20 ms).
  void stop();
  /// Port controller i listens on (the chosen one when configured 0).
  [[nodiscard]] std::uint16_t port(std::size_t i) const;
  /// Fault injection and statistics of controller i.
  [[nodiscard]] ServedControllerHandle controller(std::size_t i) const;
  [[nodiscard]] std::size_t size() const noexcept { return units_.size(); }

 private:
  struct Unit;
  void serve(Unit& u);
  std::vector<std::unique_ptr<Unit>> units_;
  std::atomic<bool> running_{false};
};

/// Serial line settings of an RTU server.
struct RtuServerConfig {
  std::string device;  ///< e.g. a socat pty link
  int baud = 115200;
  char parity = 'N';
  int data_bits = 8;
  int stop_bits = 1;
};

/// A libmodbus RTU server for one controller on a serial device (one thread).
/// Thread-safety: construct/start/stop from one thread; controller() from any thread.
class RtuServer {
 public:
  /// Opens the device now (throws std::runtime_error naming the device on failure).
  RtuServer(const RtuServerConfig& serial, ServedController controller);
  ~RtuServer();
  RtuServer(const RtuServer&) = delete;
  RtuServer& operator=(const RtuServer&) = delete;
  void start();
  void stop();
  [[nodiscard]] ServedControllerHandle controller() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A fake controller for tests and benchmarks: each channel follows its setpoint exactly while in
/// equalization (power_W = setpoint_W), otherwise reports its test power; voltage 50 V + power/1000.
/// Explicit fault injection per channel. Thread-safety: every method is thread-safe (own mutex), so a
/// test may inject faults while a server thread calls read()/command().
class FakeControllerBackend : public ControllerBackend {
 public:
  /// What a fault-injected channel reports instead of its true value.
  enum class Fault : std::uint8_t { none, nan_voltage, voltage_out_of_range, power_out_of_range };
  /// A channel reports forecast_W = NaN (nothing announced) until set_forecast().
  explicit FakeControllerBackend(std::size_t channels);

  [[nodiscard]] std::size_t channel_count() const override;
  ServedReading read(std::size_t channel) override;
  void command(std::size_t channel, bool equalize, double setpoint_W, std::uint32_t lease_ms) override;
  void heartbeat(std::uint16_t value) override;
  void released(std::size_t channel, ReleaseReason why) override;

  /// Power a channel draws when not equalizing (its own test), W.
  void set_test_power(std::size_t channel, double power_W);
  /// Make `channel` report `f` until cleared with Fault::none.
  void inject_fault(std::size_t channel, Fault f);
  /// Announced forecast of `channel` (any value, including NaN = none and infinities).
  void set_forecast(std::size_t channel, double forecast_W);
  /// Program position of `channel` (0xFFFF / 0xFFFFFFFF = not reported, the default).
  void set_program(std::size_t channel, std::uint16_t step_index, std::uint32_t cycle_index);

  /// Last command of a channel, how many command() calls it received (client writes and server
  /// releases) and how many of those were server releases.
  struct Record {
    bool equalize = false;
    double setpoint_W = 0.0;
    std::uint32_t lease_ms = 0;
    std::uint64_t commands = 0;
    std::uint64_t releases = 0;
    std::chrono::steady_clock::time_point last_command{};
  };
  [[nodiscard]] Record record(std::size_t channel) const;
  [[nodiscard]] std::uint64_t heartbeat_count() const;
  [[nodiscard]] std::uint16_t last_heartbeat() const;

 private:
  struct Channel {
    Record rec;
    double test_power_W = 0.0;
    double forecast_W = std::numeric_limits<double>::quiet_NaN();
    std::uint16_t step_index = 0xFFFF;
    std::uint32_t cycle_index = 0xFFFF'FFFF;
    std::uint32_t counter = 0;
    Fault fault = Fault::none;
  };
  mutable std::mutex mutex_;
  std::vector<Channel> channels_;
  std::uint64_t heartbeats_ = 0;
  std::uint16_t last_heartbeat_ = 0;
};

}  // namespace eqd::sim
