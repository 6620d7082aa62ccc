#pragma once
/// @file controller_model.hpp
/// One simulated channel controller: its channels (battery + converter + schedule), the
/// equalization step with its controller-side safety (setpoint lease, supervisor heartbeat watchdog),
/// and explicit fault injection. Transport-free: the harness calls it directly; Modbus/CAN servers
/// written later drive the same methods.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "eqd/core/params.hpp"
#include "eqd/core/sample.hpp"
#include "eqd/sim/battery.hpp"
#include "eqd/sim/converter.hpp"
#include "eqd/sim/schedule.hpp"

namespace eqd::sim {

/// Static description of one simulated channel.
struct ChannelSpec {
  BatteryParams battery{};
  std::shared_ptr<const OcvTable> ocv;  ///< required
  ConverterParams converter{};
  std::shared_ptr<const Schedule> schedule;  ///< null: no test program (idle until assigned)
  std::size_t bus = 0;                       ///< index into the rig's buses
  bool buffer = false;                       ///< assigned to eqd as an equalization channel at start
  core::BufferLimits limits{};               ///< eqd's window and limits (buffers)
};

/// Controller-level settings.
struct ControllerParams {
  std::string name = "ctl";
  double heartbeat_timeout_ms = 3000.0;  ///< heartbeat_timeout_ms: watchdog period (0 = no watchdog)
  double noise_V = 0.0;                  ///< std dev of voltage measurement noise
  double noise_A = 0.0;                  ///< std dev of current measurement noise
  /// forecast_horizon_s: the controller announces, for each running channel, the power its test program
  /// will draw this far ahead (ChannelReading::forecast_W), refreshed every second; 0 = announces nothing.
  double forecast_horizon_s = 0.0;
};

/// Result of set_command().
enum class CommandResult : std::uint8_t {
  accepted = 0,
  refused_running = 1,   ///< the channel runs a test schedule
  refused_fault = 2,     ///< the channel is faulted
  refused_watchdog = 3,  ///< the heartbeat watchdog has tripped and no new heartbeat came yet
  bad_channel = 4,
};
const char* to_string(CommandResult r) noexcept;

/// What the controller reports for one channel (its registers). Frozen while the channel is stalled.
struct ChannelReading {
  double voltage_V = 0.0;  ///< measured (with noise)
  double current_A = 0.0;  ///< measured (with noise)
  double power_W = 0.0;    ///< measured battery-side power
  /// Announced power forecast_horizon_s ahead (battery side); NaN = nothing announced.
  double forecast_W = std::numeric_limits<double>::quiet_NaN();
  /// Program position while the channel runs its schedule: the step (ScheduleRunner::step_index(),
  /// first step 0; also 0 during the start delay) and the pass (ScheduleRunner::pass(), first pass 0).
  /// Without a running schedule (idle, equalizing, finished, faulted): Sample::kNoStep / kNoIndex.
  std::uint16_t step_index = core::Sample::kNoStep;
  std::uint32_t cycle_index = core::Sample::kNoIndex;
  std::uint32_t sequence = 0;  ///< sample counter; frozen while stalled
  std::uint16_t fault_code = 0;
  core::ChannelState state = core::ChannelState::idle;
  bool equalization_mode = false;
};

/// Plant truth of one channel (noise-free, never frozen): for the grid meter and the harness' metrics.
struct ChannelTruth {
  double voltage_V = 0.0;  ///< terminal voltage
  double current_A = 0.0;
  double power_W = 0.0;      ///< battery side
  double bus_power_W = 0.0;  ///< bus side (what the grid meter sees)
  double soc = 0.0;
  bool equalizing = false;  ///< in equalization mode
};

/// A simulated controller. Thread-safety: not thread-safe; one thread (the harness or the simulator's
/// server loop) calls everything, including step().
class ControllerModel {
 public:
  ControllerModel(ControllerParams p, std::vector<ChannelSpec> channels);

  [[nodiscard]] const ControllerParams& params() const noexcept { return params_; }
  [[nodiscard]] std::size_t channel_count() const noexcept { return channels_.size(); }
  [[nodiscard]] const ChannelSpec& spec(std::size_t ch) const noexcept { return channels_[ch].spec; }

  /// Supervisor command for one channel. equalize=true enters (or stays in) equalization mode and
  /// follows setpoint_W (battery side, clamped by the converter) until now_s + lease_ms (lease_ms 0 =
  /// no lease); equalize=false leaves equalization mode (power 0, idle).
  CommandResult set_command(std::size_t ch, bool equalize, double setpoint_W, std::uint32_t lease_ms,
                            double now_s) noexcept;
  /// Supervisor heartbeat register write. Only a change of value counts as life.
  void heartbeat(std::uint32_t value, double now_s) noexcept;

  /// Advance every channel by dt_s ending at now_s + dt_s. rng draws the measurement noise.
  void step(double now_s, double dt_s, std::mt19937_64& rng) noexcept;

  /// Latest reading of channel ch.
  [[nodiscard]] const ChannelReading& reading(std::size_t ch) const noexcept { return channels_[ch].reading; }
  /// Plant truth of channel ch.
  [[nodiscard]] const ChannelTruth& truth(std::size_t ch) const noexcept { return channels_[ch].truth; }
  /// The reading as an eqd sample (what an I/O thread would publish), stamped receive_time_ns.
  [[nodiscard]] core::Sample sample(std::size_t ch, std::int64_t receive_time_ns) const noexcept;

  /// Fault injection: the channel trips (0 A at once), leaves equalization mode and reports `code`.
  void inject_fault(std::size_t ch, std::uint16_t code) noexcept;
  /// Clear a fault: a test channel resumes its schedule, any other channel becomes idle.
  void clear_fault(std::size_t ch) noexcept;
  /// Stalled: the controller keeps answering but the reading (and its sample counter) freezes.
  void set_stalled(std::size_t ch, bool stalled) noexcept;
  /// Offline: the link is down; the plant keeps running, the harness delivers no samples.
  void set_offline(bool offline) noexcept { offline_ = offline; }
  [[nodiscard]] bool offline() const noexcept { return offline_; }
  /// True once the watchdog tripped, until a heartbeat change re-arms it.
  [[nodiscard]] bool watchdog_tripped() const noexcept { return watchdog_tripped_; }
  /// Number of times the heartbeat watchdog tripped.
  [[nodiscard]] std::uint64_t watchdog_trips() const noexcept { return watchdog_trips_; }

  [[nodiscard]] const Battery& battery(std::size_t ch) const noexcept { return channels_[ch].battery; }
  [[nodiscard]] const ScheduleRunner& runner(std::size_t ch) const noexcept { return channels_[ch].runner; }
  /// Setpoint in force now (0 after lease expiry or outside equalization mode).
  [[nodiscard]] double effective_setpoint_W(std::size_t ch, double now_s) const noexcept;

 private:
  enum class Mode : std::uint8_t { idle, schedule, equalize, fault };
  struct Channel {
    ChannelSpec spec;
    Battery battery;
    Converter converter;
    ScheduleRunner runner;
    ChannelReading reading{};
    ChannelTruth truth{};
    Mode mode = Mode::idle;
    Mode mode_before_fault = Mode::idle;
    double setpoint_W = 0.0;
    double lease_until_s = 0.0;  ///< < 0: no lease
    std::uint32_t counter = 0;
    std::uint16_t fault_code = 0;
    bool stalled = false;
  };

  void leave_equalization(Channel& c) noexcept;
  /// ChannelReading::step_index / cycle_index from the channel's mode and runner (the reading thread).
  static void set_program_position(Channel& c) noexcept;

  ControllerParams params_;
  std::vector<Channel> channels_;
  std::uint32_t last_heartbeat_ = 0;
  double last_heartbeat_change_s_ = 0.0;
  bool heartbeat_seen_ = false;
  bool watchdog_tripped_ = false;
  std::uint64_t watchdog_trips_ = 0;
  bool offline_ = false;
  double next_forecast_s_ = 0.0;  ///< when the announced forecasts are next refreshed
};

}  // namespace eqd::sim
