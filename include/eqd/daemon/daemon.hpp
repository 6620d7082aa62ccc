#pragma once
/// @file daemon.hpp
/// The running daemon: control core, control thread and one link per controller, built from a
/// Config. It is the RigView and RequestSink (views.hpp) through which the control API and metrics
/// see and change it. Thread-safety: construct, start(), shutdown() from the main thread; the
/// accessors and the views' members are const and safe from any thread once started.

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <memory>
#include <vector>

#include "eqd/config/config.hpp"
#include "eqd/core/control_core.hpp"
#include "eqd/daemon/control_loop.hpp"
#include "eqd/daemon/planner_thread.hpp"
#include "eqd/daemon/schedule_thread.hpp"
#include "eqd/daemon/predictor_thread.hpp"
#include "eqd/daemon/rig.hpp"
#include "eqd/daemon/views.hpp"
#include "eqd/io/link.hpp"

namespace eqd::daemon {

/// Result of a clean shutdown: which controllers acknowledged the stop of their buffers.
struct ShutdownReport {
  std::vector<std::string> acknowledged;
  std::vector<std::string> timed_out;  ///< their controllers will release by lease/heartbeat expiry
};

class Daemon final : public RigView, public RequestSink {
 public:
  /// Adjusts the rig plan before the core is built (e.g. persisted assignments). Main thread.
  using PlanHook = daemon::PlanHook;

  /// Builds everything; throws std::exception with a clear message on failure (nothing started).
  /// initial_energy / initial_demand: a predecessor's bus counters and demand maxima (reload), by bus
  /// name; the demand maxima otherwise come from state_dir/demand.json.
  explicit Daemon(const config::Config& cfg, const PlanHook& adjust_plan = {},
                  const std::map<std::string, core::EnergyCounters>& initial_energy = {},
                  const std::map<std::string, core::DemandSeed>& initial_demand = {});
  ~Daemon() override;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Start the control thread and the pollers.
  void start();
  /// Stop equalization (0 W, leave equalization mode), wait for the controllers to acknowledge or
  /// for `timeout`, then stop every thread. Idempotent.
  ShutdownReport shutdown(std::chrono::milliseconds timeout);
  /// Handover to a successor Daemon (configuration reload, new controllers): stop every thread
  /// WITHOUT releasing the buffers. They keep their last setpoint until their lease runs out; a
  /// successor started within the lease adopts them at their present power (no step to 0 W).
  /// Idempotent; afterwards only shutdown()/destruction are allowed (both then do nothing).
  void detach();
  /// Energy counted so far per bus name (to carry over a handover). Any thread.
  [[nodiscard]] std::map<std::string, core::EnergyCounters> energy_by_bus() const;
  /// The buses' demand maxima of today and this month, for a successor (reload). Any thread.
  [[nodiscard]] std::map<std::string, core::DemandSeed> demand_by_bus() const;

  [[nodiscard]] const config::Config& config() const noexcept override { return cfg_; }
  [[nodiscard]] const Directory& directory() const noexcept override { return plan_.directory; }
  [[nodiscard]] core::ControlCore& core() noexcept { return *core_; }
  [[nodiscard]] const core::ControlCore& core() const noexcept { return *core_; }
  [[nodiscard]] const ControlLoop& loop() const noexcept { return *loop_; }
  /// The predictor thread (learned forecasts) and its statistics.
  [[nodiscard]] const PredictorThread& predictor_thread() const noexcept { return *predictor_; }
  [[nodiscard]] const PlannerThread& planner_thread() const noexcept { return *planner_; }
  /// One link per controller, in the order of directory().controllers.
  [[nodiscard]] const std::vector<std::unique_ptr<io::Link>>& links() const noexcept { return links_; }

  // RigView: the core's snapshots, the links, the loop's overruns and CLOCK_MONOTONIC.
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
  [[nodiscard]] PredictorView predictor() const noexcept override;
  [[nodiscard]] std::size_t link_count() const noexcept override { return links_.size(); }
  [[nodiscard]] bool link_connected(std::size_t c) const noexcept override {
    return c < links_.size() && links_[c]->connected();
  }
  bool link_stats(std::size_t c, io::LinkStats& out) const override;
  [[nodiscard]] double link_poll_hz(std::size_t c) const noexcept override {
    return c < links_.size() ? links_[c]->poll_hz() : 0.0;
  }
  [[nodiscard]] std::uint64_t control_overruns() const noexcept override { return loop_->overruns(); }
  [[nodiscard]] std::int64_t now_ns() const noexcept override { return monotonic_ns(); }
  /// Bus b's grid meter (a lock-free read of what its I/O thread published). Any thread.
  [[nodiscard]] MeterView meter(core::BusIndex b) const noexcept override;

  // RequestSink: the core's request queue.
  [[nodiscard]] bool submit(const core::Request& r) override { return core_->submit(r); }
  [[nodiscard]] bool poll_response(core::Response& out) override { return core_->poll_response(out); }

 private:
  /// One MeterLink per bus with buses[].meter (not started). Constructor only.
  void make_meters();

  config::Config cfg_;
  RigPlan plan_;
  std::unique_ptr<core::ControlCore> core_;
  std::unique_ptr<ControlLoop> loop_;
  std::unique_ptr<PredictorThread> predictor_;
  std::unique_ptr<PlannerThread> planner_;    ///< runs only when some bus has law `planned`
  std::unique_ptr<ScheduleThread> schedule_;  ///< target schedules and the calendar of demand figures
  std::vector<std::unique_ptr<io::Link>> links_;
  /// One per bus (the directory's order); null where the bus has no meter.
  std::vector<std::unique_ptr<io::meter::MeterLink>> meters_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace eqd::daemon
