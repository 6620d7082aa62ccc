#pragma once
/// @file meter_link.hpp
/// A bus's grid meter (issue #19, docs/devices.md "Grid meter"): one Modbus TCP device read on its
/// own I/O thread (never the control thread) — a SunSpec meter (models 201-204, found by eqd's SunSpec
/// chain walk, io/sunspec/models.hpp) or one plain register described like a register-map field
/// (io/modbus/register_map.hpp). Each reading is mapped to eqd's sign (+ = import: energy from the grid
/// into the bus), compared with the bus's computed net power (core::MeterCheck) and published
/// lock-free (a Seqlock) for the control API and the metrics. The computed net stays the control
/// input; the control thread never sees the meter's reading. With `trim` (opt-in) the link also runs the bus's
/// meter trim (core::MeterTrim) on its thread and publishes the bias for the control thread, which adds
/// it to the bus's free power (docs/control.md "Meter trim").

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "eqd/core/meter_check.hpp"
#include "eqd/core/meter_trim.hpp"
#include "eqd/core/seqlock.hpp"
#include "eqd/io/link_thread.hpp"
#include "eqd/io/modbus/register_map.hpp"
#include "eqd/io/modbus/transaction.hpp"
#include "eqd/io/sunspec/models.hpp"

namespace eqd::io::meter {

/// How the power is found on the device.
enum class MeterSource : std::uint8_t {
  sunspec,  ///< a SunSpec meter: marker, chain, the first model of 201..204, W x 10^W_SF
  modbus,   ///< one register field: raw x scale + offset (a device without SunSpec)
};
/// The device's sign of power. SunSpec's meter definitions do not fix it (docs/devices.md).
enum class MeterSign : std::uint8_t {
  import_positive,  ///< > 0 = power drawn from the grid (eqd's own sign)
  export_positive,  ///< > 0 = power fed into the grid: eqd negates it
};
[[nodiscard]] const char* to_string(MeterSource s) noexcept;
[[nodiscard]] const char* to_string(MeterSign s) noexcept;

/// What the journal hears from a meter.
enum class MeterNotice : std::uint8_t {
  error,         ///< a link or device error (only when its text changes: no flood while offline)
  info,          ///< the device's identity (SunSpec model 1), once
  disagreement,  ///< measured and computed disagree (once per episode): a warning
  agreement,     ///< the episode ended
};

/// Everything one meter link is made of. Plain data.
struct MeterLinkConfig {
  std::string bus;  ///< the bus it measures (messages: "meter of bus main")
  MeterSource source = MeterSource::sunspec;
  std::string host;
  std::uint16_t port = 502;
  int unit_id = 1;
  int base_address = -1;  ///< sunspec: -1 = find the marker at 0, 40000, 50000
  modbus::Field power{};  ///< modbus: where the power is (table, address, type, word order, scale, offset)
  MeterSign sign = MeterSign::import_positive;
  double poll_hz = 1.0;
  int timeout_ms = 500;
  int backoff_initial_ms = 500;
  int backoff_max_ms = 30000;
  core::MeterCheckParams check{};
  bool trim = false;  ///< run the meter trim and publish it (publish_trim)
  core::MeterTrimParams trim_params{};
  std::int64_t trim_valid_ns = 10'000'000'000;  ///< MeterTrimValue::valid_ns (eqd: 2 x max_age_ms)
  /// Where the trim goes (eqd: ControlCore::meter_trim_slot(bus).store, this link its only writer).
  /// Called on the meter's I/O thread after every poll period while `trim` is on.
  std::function<void(const core::MeterTrimValue&)> publish_trim;
  /// The bus's computed net power as the control thread last published it (eqd sign) and the
  /// monotonic time of that cycle; false: none yet. Called on the meter's I/O thread (a seqlock read).
  std::function<bool(double& net_W, std::int64_t& cycle_ns)> computed;
  /// The journal. Called on the meter's I/O thread.
  std::function<void(MeterNotice kind, const char* message)> on_notice;
};

/// What the meter link publishes. Trivially copyable (Seqlock payload).
struct MeterStatus {
  double power_W = std::numeric_limits<double>::quiet_NaN();       ///< grid power, eqd's sign (+ = import)
  double computed_W = std::numeric_limits<double>::quiet_NaN();    ///< the bus's net as computed at that reading
  double difference_W = std::numeric_limits<double>::quiet_NaN();  ///< power_W - computed_W
  double frequency_Hz = std::numeric_limits<double>::quiet_NaN();  ///< SunSpec Hz where implemented
  double trim_W = 0.0;                                             ///< the meter trim's bias (eqd sign); 0 without trim
  std::int64_t reading_ns = 0;  ///< monotonic time of the last valid reading (0: none yet)
  std::uint64_t readings = 0;   ///< valid readings
  std::uint64_t errors = 0;     ///< failed connects, discoveries, reads and refused values
  std::uint64_t episodes = 0;   ///< disagreements so far
  std::uint16_t model = 0;      ///< the SunSpec meter model read (201..204); 0: modbus source or not found
  bool connected = false;
  bool valid = false;         ///< the last poll gave a power value
  bool disagreement = false;  ///< an episode is going on
  core::MeterTrimState trim_state = core::MeterTrimState::off;
  char last_error[120] = {};
};

/// Thread-safety: start()/stop() from the owner thread; status() from any thread (lock-free).
/// Everything else runs on the link's own I/O thread.
class MeterLink {
 public:
  /// Throws std::invalid_argument naming the bus for a bad configuration (rates, field).
  explicit MeterLink(MeterLinkConfig cfg);
  ~MeterLink();
  MeterLink(const MeterLink&) = delete;
  MeterLink& operator=(const MeterLink&) = delete;

  void start();
  void stop();
  [[nodiscard]] MeterStatus status() const noexcept { return status_.load(); }
  [[nodiscard]] const MeterLinkConfig& config() const noexcept { return cfg_; }

 private:
  void run();
  int read(bool input, std::uint32_t address, int count, std::uint16_t* dest);
  bool connect_link(std::int64_t t_ns);
  void close_link();
  void poll(std::int64_t t_ns);
  void error(const std::string& message);

  MeterLinkConfig cfg_;
  // I/O thread only:
  modbus::Transactor tx_;
  void* ctx_ = nullptr;  // modbus_t*
  sunspec::Discovery dev_;
  std::vector<std::uint16_t> regs_;
  core::MeterCheck check_;
  core::MeterTrim trim_;
  std::int64_t next_connect_ns_ = 0;
  int backoff_ms_ = 500;
  int consecutive_timeouts_ = 0;
  bool identity_logged_ = false;
  std::string last_reported_;
  MeterStatus local_{};
  // Shared:
  core::Seqlock<MeterStatus> status_;
  LinkThread thread_;  // last: joined before the members its thread uses are destroyed
};

}  // namespace eqd::io::meter
