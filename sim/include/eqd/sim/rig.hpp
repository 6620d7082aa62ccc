#pragma once
/// @file rig.hpp
/// A simulated rig: controllers x channels on one or more buses, with the true grid meter of each bus.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "eqd/core/params.hpp"
#include "eqd/core/schedule.hpp"
#include "eqd/sim/controller_model.hpp"

namespace eqd::sim {

/// One bus of the rig (YAML: `buses[]`).
struct BusSpec {
  std::string name;
  core::BusParams params{};  ///< control parameters handed to eqd (target_W, tau_s, ...)
  /// Target schedule (YAML: `schedule`, eqd's config syntax): windows of the harness's wall clock
  /// (harness.start_local) with their own target or caps; the harness expands them for the law.
  std::vector<core::ScheduleWindow> schedule;
};

/// One controller and its channels (YAML: `controllers[]`).
struct ControllerSpec {
  ControllerParams params{};
  std::vector<ChannelSpec> channels;
};

/// A full rig description, as loaded from YAML. Plain data.
struct RigSpec {
  std::string name = "rig";
  std::string source;      ///< file it came from (for messages)
  std::uint64_t seed = 1;  ///< seeds the measurement noise
  std::vector<BusSpec> buses;
  std::vector<ControllerSpec> controllers;
};

/// Load and validate a rig YAML file. Throws InputError "file:line:col: key.path: message".
RigSpec load_rig_spec(const std::string& path);

class Rig;
/// Load a rig YAML file and build it (load_rig_spec + Rig). Throws InputError.
Rig load_rig(const std::string& path);

/// Where a channel lives, plus its eqd-facing name "CONTROLLER/INDEX".
struct ChannelRef {
  std::size_t controller = 0;
  std::size_t index = 0;  ///< channel index within the controller (0-based)
  std::string name;
};

/// What the grid meter of one bus knows (bus side, noise-free). Energies in J, all positive.
struct BusMeter {
  double net_W = 0.0;          ///< all channels of the bus
  double free_W = 0.0;         ///< channels not in equalization mode (test channels)
  double eq_W = 0.0;           ///< channels in equalization mode
  double grid_import_J = 0.0;  ///< integral of max(net, 0)
  double grid_export_J = 0.0;  ///< integral of max(-net, 0)
  double free_import_J = 0.0;  ///< same for free power only: the grid without equalization
  double free_export_J = 0.0;
};

/// The simulated rig. Thread-safety: not thread-safe; one thread owns it. step() does not allocate.
/// Channels have a global index (controllers in order, then channels in order) used by the harness
/// and by eqd's CoreConfig.
class Rig {
 public:
  explicit Rig(const RigSpec& spec);
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;
  Rig(Rig&&) = default;
  Rig& operator=(Rig&&) = default;

  /// Advance the plant by dt_s and integrate every bus's grid meter.
  void step(double dt_s) noexcept;
  [[nodiscard]] double now_s() const noexcept { return now_s_; }

  [[nodiscard]] const RigSpec& spec() const noexcept { return spec_; }
  [[nodiscard]] std::size_t bus_count() const noexcept { return spec_.buses.size(); }
  [[nodiscard]] std::size_t controller_count() const noexcept { return controllers_.size(); }
  [[nodiscard]] std::size_t channel_count() const noexcept { return refs_.size(); }
  [[nodiscard]] const ChannelRef& channel_ref(std::size_t i) const noexcept { return refs_[i]; }
  [[nodiscard]] const ChannelSpec& channel_spec(std::size_t i) const noexcept;
  [[nodiscard]] const ChannelReading& reading(std::size_t i) const noexcept;
  [[nodiscard]] const ChannelTruth& truth(std::size_t i) const noexcept;
  /// Global index of "CONTROLLER/INDEX", if any.
  [[nodiscard]] std::optional<std::size_t> find_channel(const std::string& name) const;
  [[nodiscard]] std::optional<std::size_t> find_controller(const std::string& name) const;
  [[nodiscard]] std::optional<std::size_t> find_bus(const std::string& name) const;

  [[nodiscard]] ControllerModel& controller(std::size_t c) noexcept { return controllers_[c]; }
  [[nodiscard]] const ControllerModel& controller(std::size_t c) const noexcept { return controllers_[c]; }
  [[nodiscard]] const BusMeter& bus_meter(std::size_t b) const noexcept { return meters_[b]; }

  /// Sum of the configured ratings max(max_charge_W, max_discharge_W) of the bus's buffers.
  [[nodiscard]] double rated_eq_W(std::size_t bus) const noexcept;

  // Fault injection by global channel index / controller index.
  void inject_fault(std::size_t i, std::uint16_t code) noexcept;
  void clear_fault(std::size_t i) noexcept;
  void set_stalled(std::size_t i, bool stalled) noexcept;
  void set_offline(std::size_t controller, bool offline) noexcept;

 private:
  RigSpec spec_;
  std::vector<ControllerModel> controllers_;
  std::vector<ChannelRef> refs_;
  std::vector<BusMeter> meters_;
  std::mt19937_64 rng_;
  double now_s_ = 0.0;
};

}  // namespace eqd::sim
