#pragma once
/// @file views.hpp
/// What the layers above the daemon (the control API, metrics) see of a running rig, and how they
/// ask it for a change: small interfaces that daemon::Daemon implements and tests fake
/// (tests/fakes/fake_rig.hpp), so that control/ and metrics/ never depend on the Daemon itself.
///
/// - SnapshotView: the control thread's published state (bus, channel and cycle snapshots, the
///   latest sample of each channel, the stall state), as copies.
/// - LinkView: each controller link's state and statistics.
/// - RigView: both, plus the Directory of names, the configuration the rig was built from, the
///   control loop's overruns and the clock of the samples.
/// - RequestSink: the control thread's request queue and its responses.
///
/// Thread-safety (every implementation must keep it): the views' members are const, lock-free for
/// the control thread (seqlock reads and atomics: a reader never makes the control thread wait) and
/// may be called from any thread at once. RequestSink's members may be called from any thread, one
/// caller of poll_response() at a time. An implementation outlives everything that holds it.

#include <cstddef>
#include <cstdint>
#include <limits>

#include "eqd/config/config.hpp"
#include "eqd/core/control_core.hpp"
#include "eqd/core/sample.hpp"
#include "eqd/core/snapshot.hpp"
#include "eqd/daemon/directory.hpp"
#include "eqd/io/link.hpp"
#include "eqd/io/meter/meter_link.hpp"

namespace eqd::daemon {

/// A stall of the control thread as seen from outside it. Pure data.
struct StallView {
  bool stalled = false;       ///< the last cycle is older than the liveness bound now
  double cycle_age_s = -1.0;  ///< now - last cycle (-1: no cycle yet)
  double bound_s = 0.0;       ///< control_loop.liveness_timeout_ms
  /// Stalls so far: those the core counted when its cycles resumed, plus the one going on now.
  std::uint64_t stalls = 0;
};

/// Stall state of `core` at now_ns (monotonic, the clock passed to its cycles). Any thread
/// (lock-free reads).
[[nodiscard]] StallView stall_view(const core::ControlCore& core, std::int64_t now_ns) noexcept;

/// A test channel's learned forecast as the predictor published it (docs/control.md, "Learned
/// forecasts"). Pure data; NaN = none.
struct LearnedView {
  float skill = std::numeric_limits<float>::quiet_NaN();       ///< 1 − MAE(forecast) / MAE(persistence)
  float forecast_W = std::numeric_limits<float>::quiet_NaN();  ///< its power forecast_horizon_s ahead, when in use
  bool in_use = false;                                         ///< the skill gate is open: the law counts it
};

/// The predictor thread's statistics. Pure data.
struct PredictorView {
  bool running = false;
  std::uint64_t ticks = 0, saves = 0, save_errors = 0, tick_errors = 0, memory_bytes = 0;
  double last_tick_s = 0.0, max_tick_s = 0.0;
};

/// Channel i's learned forecast in `core`. Any thread (lock-free reads).
[[nodiscard]] LearnedView learned_view(const core::ControlCore& core, core::ChannelIndex i) noexcept;

/// The control thread's published state. Indices are the core's: bus b < bus_count(), channel
/// i < channel_count(); other indices are undefined behaviour, as with ControlCore.
class SnapshotView {
 public:
  virtual ~SnapshotView() = default;

  [[nodiscard]] virtual std::size_t bus_count() const noexcept = 0;
  [[nodiscard]] virtual std::size_t channel_count() const noexcept = 0;
  /// Bus b as published by the last cycle (power, energy, parameters, status).
  [[nodiscard]] virtual core::BusSnapshot bus(core::BusIndex b) const noexcept = 0;
  /// Channel i's role, health, setpoint and limits as last published.
  [[nodiscard]] virtual core::ChannelSnapshot channel(core::ChannelIndex i) const noexcept = 0;
  /// The latest sample of channel i as its link published it.
  [[nodiscard]] virtual core::Sample sample(core::ChannelIndex i) const noexcept = 0;
  /// The control thread's counters and cycle histograms.
  [[nodiscard]] virtual core::CycleStats cycle_stats() const noexcept = 0;
  /// Whether the control thread is stalled at now_ns (the clock of RigView::now_ns()).
  [[nodiscard]] virtual StallView stall(std::int64_t now_ns) const noexcept = 0;
  /// Channel i's learned forecast and skill; bus b's skill; the predictor thread. Defaults: nothing
  /// learned (a view over a rig without a predictor).
  [[nodiscard]] virtual LearnedView learned(core::ChannelIndex i) const noexcept {
    (void)i;
    return {};
  }
  [[nodiscard]] virtual float bus_forecast_skill(core::BusIndex b) const noexcept {
    (void)b;
    return std::numeric_limits<float>::quiet_NaN();
  }
  [[nodiscard]] virtual PredictorView predictor() const noexcept { return {}; }

 protected:
  SnapshotView() = default;
  SnapshotView(const SnapshotView&) = default;
  SnapshotView& operator=(const SnapshotView&) = default;
};

/// The snapshots of a ControlCore, for readers that have a core but no daemon (tests, benchmarks).
/// Thread-safety: as SnapshotView; `core` must outlive it.
class CoreSnapshots final : public SnapshotView {
 public:
  explicit CoreSnapshots(const core::ControlCore& core) noexcept : core_(&core) {}

  [[nodiscard]] std::size_t bus_count() const noexcept override { return core_->bus_count(); }
  [[nodiscard]] std::size_t channel_count() const noexcept override { return core_->channel_count(); }
  [[nodiscard]] core::BusSnapshot bus(core::BusIndex b) const noexcept override { return core_->bus(b); }
  [[nodiscard]] core::ChannelSnapshot channel(core::ChannelIndex i) const noexcept override {
    return core_->channel(i);
  }
  [[nodiscard]] core::Sample sample(core::ChannelIndex i) const noexcept override {
    return core_->sample_slot(i).load();
  }
  [[nodiscard]] core::CycleStats cycle_stats() const noexcept override { return core_->stats(); }
  [[nodiscard]] StallView stall(std::int64_t now_ns) const noexcept override { return stall_view(*core_, now_ns); }
  [[nodiscard]] LearnedView learned(core::ChannelIndex i) const noexcept override { return learned_view(*core_, i); }
  [[nodiscard]] float bus_forecast_skill(core::BusIndex b) const noexcept override {
    return core_->learned().bus_skill(b);
  }

 private:
  const core::ControlCore* core_;
};

/// The controllers' links, by controller index (the order of Directory::controllers). A controller
/// without a link (c >= link_count()) reads as absent.
class LinkView {
 public:
  virtual ~LinkView() = default;

  /// Links there are; normally one per controller.
  [[nodiscard]] virtual std::size_t link_count() const noexcept = 0;
  /// Whether controller c's link is connected now; false without a link.
  [[nodiscard]] virtual bool link_connected(std::size_t c) const noexcept = 0;
  /// Controller c's statistics into `out`; false (and `out` untouched) without a link.
  virtual bool link_stats(std::size_t c, io::LinkStats& out) const = 0;
  /// Controller c's configured poll (or status) rate in Hz; 0 without a link.
  [[nodiscard]] virtual double link_poll_hz(std::size_t c) const noexcept = 0;

 protected:
  LinkView() = default;
  LinkView(const LinkView&) = default;
  LinkView& operator=(const LinkView&) = default;
};

/// A bus's grid meter as its I/O thread last published it (docs/devices.md, "Grid meter"). Pure data.
struct MeterView {
  bool configured = false;  ///< the bus has a meter (buses[].meter)
  io::meter::MeterStatus status{};
  double age_s = -1.0;  ///< now - the last valid reading (-1: none yet)
  /// Connected, its last poll valid and the reading no older than max_age_ms: power_W means something.
  bool ok = false;
  double tolerance_W = 0.0;
  double persistence_s = 0.0;
  const char* transport = "";  ///< sunspec | modbus
  const char* sign = "";       ///< import_positive | export_positive
  bool trim = false;           ///< meter.trim: the meter trim is on (status.trim_W, status.trim_state)
  double trim_tau_s = 0.0;
  double trim_max_W = 0.0;
};

/// Everything a reader sees of a running rig.
class RigView : public SnapshotView, public LinkView {
 public:
  /// Bus b's grid meter; default: none (a rig without meters, test fakes).
  [[nodiscard]] virtual MeterView meter(core::BusIndex b) const noexcept {
    (void)b;
    return {};
  }
  /// Names of buses, controllers and channels; their indices are the snapshots'.
  [[nodiscard]] virtual const Directory& directory() const noexcept = 0;
  /// The configuration the rig was built from (bus settings such as allow_any_tau, the configured
  /// equalization channels and their limits).
  [[nodiscard]] virtual const config::Config& config() const noexcept = 0;
  /// Periods the control loop skipped because a cycle ran late.
  [[nodiscard]] virtual std::uint64_t control_overruns() const noexcept = 0;
  /// The clock of the samples' receive_time_ns and of stall(): monotonic ns in a daemon.
  [[nodiscard]] virtual std::int64_t now_ns() const noexcept = 0;
};

/// Where changes go: the control thread's request queue. Responses come back by Request::id, in
/// the order the control thread handled the requests.
class RequestSink {
 public:
  virtual ~RequestSink() = default;

  /// Queues `r` for the control thread; false when the queue is full (the caller reports busy).
  [[nodiscard]] virtual bool submit(const core::Request& r) = 0;
  /// Takes one response if there is one. One caller at a time.
  [[nodiscard]] virtual bool poll_response(core::Response& out) = 0;

 protected:
  RequestSink() = default;
  RequestSink(const RequestSink&) = default;
  RequestSink& operator=(const RequestSink&) = default;
};

}  // namespace eqd::daemon
