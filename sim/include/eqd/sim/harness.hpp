#pragma once
/// @file harness.hpp
/// Virtual-time harness: a Rig, a control law (by default the real eqd::core::ControlCore) and link
/// delays run in lockstep without threads or sockets, with per-bus recording and metrics.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "eqd/core/control_core.hpp"
#include "eqd/core/predictor.hpp"
#include "eqd/core/sample.hpp"
#include "eqd/sim/rig.hpp"

namespace eqd::sim {

/// What the harness drives in place of eqd: samples of every channel in, per-channel commands out.
/// Implementations: ControlCoreLaw (the real eqd core, whose per-bus control laws are core::BusLaw:
/// another law is plugged in through CoreConfig::make_law and keeps eqd's headroom, allocation and
/// safety rules), and the benchmark's "no equalization". Not a control law of one bus (core::BusLaw).
/// Thread-safety: the harness calls every method from its single thread.
class RigLaw {
 public:
  virtual ~RigLaw() = default;
  /// A sample of global channel i arrived (after the link delay). Called before cycle().
  virtual void on_sample(std::size_t i, const core::Sample& s) noexcept = 0;
  /// Run one control cycle at virtual time now_ns.
  virtual void cycle(std::int64_t now_ns) noexcept = 0;
  /// Latest command for global channel i (the harness forwards it after the command delay).
  [[nodiscard]] virtual core::Command command(std::size_t i) const noexcept = 0;
  /// Short name for reports.
  [[nodiscard]] virtual const char* name() const noexcept = 0;
  /// Bus b's target schedule in the harness's clock (virtual ns), re-expanded at least every virtual
  /// hour when the scenario has a wall clock (harness.start_local), as eqd's ScheduleThread does every
  /// minute. Default: ignored (a law without schedules sees only the bus's own aim).
  virtual void set_schedule(std::size_t /*bus*/, const core::BusSchedule& /*s*/) noexcept {}
};

/// CoreConfig for a rig: one BusParams per bus, buffers assigned with their BufferLimits.
core::CoreConfig make_core_config(const Rig& rig);

/// The real eqd control core behind the RigLaw interface, with whatever per-bus laws its config builds.
class ControlCoreLaw final : public RigLaw {
 public:
  explicit ControlCoreLaw(const core::CoreConfig& cfg) : core_(cfg), plans_(cfg.buses.size()) {}
  void on_sample(std::size_t i, const core::Sample& s) noexcept override {
    core_.sample_slot(static_cast<core::ChannelIndex>(i)).store(s);
  }
  /// A cycle, then the plans its laws asked for, as eqd's planner thread would (they are commanded
  /// from the next cycle on).
  void cycle(std::int64_t now_ns) noexcept override {
    core_.cycle(now_ns);
    if (core_.plans()) plans_.serve(core_.plan_board());
  }
  [[nodiscard]] core::Command command(std::size_t i) const noexcept override {
    return core_.command_slot(static_cast<core::ChannelIndex>(i)).load();
  }
  [[nodiscard]] const char* name() const noexcept override { return "eqd-core"; }
  void set_schedule(std::size_t bus, const core::BusSchedule& s) noexcept override {
    core_.set_schedule(static_cast<core::BusIndex>(bus), s);
  }
  /// The wrapped core (snapshots, request queue).
  core::ControlCore& core() noexcept { return core_; }

 private:
  core::ControlCore core_;
  core::PlanService plans_;
};

/// The real eqd core with its learned forecasts: a core::Predictor ticked after every cycle, as eqd's
/// predictor thread does once per second (its forecasts reach the core from the next cycle on).
/// strip_announcements: the controllers' announcements are dropped on arrival, as if they announced
/// nothing, so that only learned forecasts can reach the law; strip_steps: so are step and cycle
/// numbers, as from controllers that do not report them (the predictor then finds the repetition itself).
class LearningCoreLaw final : public RigLaw {
 public:
  LearningCoreLaw(const core::CoreConfig& cfg, bool strip_announcements, bool strip_steps = false,
                  core::PredictorParams pp = {})
      : core_(cfg),
        predictor_(cfg.channels.size(), pp),
        plans_(cfg.buses.size()),
        strip_(strip_announcements),
        strip_steps_(strip_steps) {}
  void on_sample(std::size_t i, const core::Sample& s) noexcept override {
    core::Sample c = s;
    if (strip_) c.forecast_W = std::numeric_limits<float>::quiet_NaN();
    if (strip_steps_) {
      c.step_index = core::Sample::kNoStep;
      c.cycle_index = core::Sample::kNoIndex;
    }
    core_.sample_slot(static_cast<core::ChannelIndex>(i)).store(c);
  }
  void cycle(std::int64_t now_ns) noexcept override {
    core_.cycle(now_ns);
    // The predictor allocates while it learns a new step (never in the core's cycle); an allocation
    // failure here would end a benchmark run, as it would end eqd's predictor thread, not the control.
    predictor_.tick(now_ns, core_);
    if (core_.plans()) plans_.serve(core_.plan_board());
  }
  [[nodiscard]] core::Command command(std::size_t i) const noexcept override {
    return core_.command_slot(static_cast<core::ChannelIndex>(i)).load();
  }
  [[nodiscard]] const char* name() const noexcept override { return "eqd-core+predictor"; }
  void set_schedule(std::size_t bus, const core::BusSchedule& s) noexcept override {
    core_.set_schedule(static_cast<core::BusIndex>(bus), s);
  }
  core::ControlCore& core() noexcept { return core_; }
  core::Predictor& predictor() noexcept { return predictor_; }

 private:
  core::ControlCore core_;
  core::Predictor predictor_;
  core::PlanService plans_;
  bool strip_;
  bool strip_steps_;
};

/// A two-rate tariff with a demand charge (scenario YAML: `tariff:`), for the cost figures of BusMetrics.
/// Grid import only is billed (export earns nothing). Plain data.
struct Tariff {
  bool defined = false;
  core::ScheduleWindow peak{};  ///< the peak-rate period (days, start, end of the wall clock); its aim unused
  double peak_price_per_kWh = 0.0;
  double offpeak_price_per_kWh = 0.0;
  double demand_price_per_kW = 0.0;  ///< per kW of the highest quarter-hour average import of the run
};

/// Timing of the harness (scenario YAML: `harness:`).
struct HarnessConfig {
  double duration_s = 3600.0;       ///< duration_s
  double plant_dt_s = 0.1;          ///< plant_dt_s: plant integration step
  double sample_period_s = 0.1;     ///< sample_period_s: how often samples are delivered and the law cycles
  double link_delay_s = 0.0;        ///< link_delay_s: sample age on arrival
  double command_delay_s = 0.0;     ///< command_delay_s: command travel time to the controller
  double heartbeat_period_s = 1.0;  ///< heartbeat_period_s
  double record_period_s = 1.0;     ///< record_period_s: time-series resolution
  double metrics_from_s = 0.0;  ///< metrics_from_s: grid exchange, residual RMS/peak, flips, travel ignore earlier data
  double flip_threshold_W =
      0.0;  ///< flip_threshold_W: |command| below this does not count as a direction (0 = 1 % of rated)
  /// start_local given: the wall clock of virtual time 0 is known, target schedules are expanded and
  /// tariff periods read on it. Quarter hours are counted on it either way (from local 00:00 if not given).
  bool calendar = false;
  std::int64_t start_local_s = 0;   ///< start_local: local wall time at 0 s, seconds since 1970-01-01T00:00 local
  std::int64_t utc_offset_min = 0;  ///< utc_offset_min: local - UTC of the scenario's fixed zone (no DST)
  Tariff tariff;                    ///< the scenario's `tariff:` (not under harness: in the YAML)
};

/// Something that happens to the rig or eqd at a given time (scenario YAML: `events:`).
struct Event {
  enum class Kind : std::uint8_t { inject_fault, clear_fault, stall, unstall, offline, online, kill_eqd, restart_eqd };
  double at_s = 0.0;
  Kind kind = Kind::inject_fault;
  std::size_t channel = 0;     ///< global channel index (fault/stall)
  std::size_t controller = 0;  ///< offline/online
  std::uint16_t code = 1;      ///< inject_fault
};

/// Per-bus time series, preallocated for the whole run (one entry per record period).
struct BusTrace {
  std::vector<double> t_s;
  std::vector<double> free_W;                   ///< test channels, battery side, noise-free
  std::vector<double> eq_commanded_W;           ///< sum of setpoints of buffers with equalize=true
  std::vector<double> eq_measured_W;            ///< channels in equalization mode, battery side
  std::vector<double> residual_W;               ///< free + eq_measured - target (battery side)
  std::vector<double> grid_net_W;               ///< bus side (grid meter)
  std::vector<double> grid_free_W;              ///< bus side, test channels only
  std::vector<std::size_t> buffers;             ///< global indices of the bus's buffers
  std::vector<double> setpoint_W;               ///< [record][buffer] flattened: commanded setpoint
  std::vector<double> buffer_power_W;           ///< [record][buffer] flattened: measured power
  std::vector<double> buffer_voltage_V;         ///< [record][buffer] flattened
  std::vector<std::uint8_t> buffer_equalizing;  ///< [record][buffer] flattened (controller's flag)
};

/// Metrics of one bus over a run.
struct BusMetrics {
  double rated_eq_W = 0.0;
  double grid_import_J = 0.0, grid_export_J = 0.0;  ///< with equalization (bus side), from metrics_from_s
  double free_import_J = 0.0, free_export_J = 0.0;  ///< without (test channels only, bus side), from metrics_from_s
  double residual_rms_W = 0.0;                      ///< from metrics_from_s
  double residual_peak_W = 0.0;
  double direction_flips = 0.0;
  double flips_per_hour = 0.0;
  double setpoint_travel_W = 0.0;  ///< sum of |change| of the total commanded power, from metrics_from_s
  double buffer_v_min_V = 0.0, buffer_v_max_V = 0.0;  ///< extremes over all buffers
  double window_margin_min_V = 0.0;  ///< min over buffers and time of distance inside the window (< 0: outside)
  /// Highest average grid import over a whole quarter hour of the wall clock (the utilities' demand
  /// figure), bus side, from metrics_from_s; the same for the free power (no equalization). 0: none.
  double peak_import_15min_W = 0.0, free_peak_import_15min_W = 0.0;
  double buffer_throughput_J = 0.0;  ///< energy through the buffers, battery side, charge + discharge
  /// Change of the buffers' stored energy over the same span, battery side (charge - discharge; > 0:
  /// more stored at the end). A span that ends before a law has put back what it gave (a recharge
  /// running past midnight) counts less throughput for it: throughput - this is the throughput with
  /// the stored energy balanced (twice the discharge), what the comparison of issue #17 also reads.
  double buffer_stored_change_J = 0.0;
  /// With a tariff: import energy x its period's price, with and without equalization, and the demand
  /// charge (peak_import_15min kW x demand price).
  double energy_cost = 0.0, free_energy_cost = 0.0;
  double demand_charge = 0.0, free_demand_charge = 0.0;
  /// grid exchange with / without equalization: (import+export) / (free import+export); 1 if no free exchange.
  [[nodiscard]] double exchange_ratio() const noexcept {
    const double without = free_import_J + free_export_J;
    return without > 0.0 ? (grid_import_J + grid_export_J) / without : 1.0;
  }
};

/// Step-response figures of one bus after a step at step_at_s, computed from its trace.
struct StepResponse {
  double settle_s = -1.0;           ///< time after the step until |residual| stays within band (-1: never)
  double overshoot_fraction = 0.0;  ///< max residual in the step's direction after the step / |step|
  double step_W = 0.0;              ///< change of the desired equalization power
};
StepResponse step_response(const BusTrace& tr, double step_at_s, double band_W) noexcept;

/// Runs a rig and a law in virtual time. Thread-safety: not thread-safe; one thread.
/// run() allocates nothing: traces and delay lines are sized in the constructor.
class Harness {
 public:
  /// The law must outlive the harness. Events may be given in any order.
  Harness(Rig& rig, RigLaw& law, const HarnessConfig& cfg, std::vector<Event> events = {});

  /// Run until cfg.duration_s (or until `until_s` if smaller and > 0).
  void run(double until_s = 0.0) noexcept;
  [[nodiscard]] double now_s() const noexcept { return now_s_; }

  [[nodiscard]] const BusTrace& trace(std::size_t bus) const noexcept { return traces_[bus]; }
  /// Metrics so far (the rig's meters plus the recorded trace).
  [[nodiscard]] BusMetrics metrics(std::size_t bus) const noexcept;
  [[nodiscard]] const HarnessConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] bool eqd_alive() const noexcept { return alive_; }

 private:
  struct Timed {
    std::int64_t due_ns = 0;
    core::Sample sample{};
    core::Command command{};
  };
  /// Fixed-capacity FIFO of timed items (samples or commands of one channel).
  struct DelayLine {
    std::vector<Timed> ring;
    std::size_t head = 0, size = 0;
    bool push(const Timed& t) noexcept;
    bool pop_due(std::int64_t now_ns, Timed& out) noexcept;
  };

  void apply_event(const Event& e) noexcept;
  void record() noexcept;
  /// Expands every bus's target schedule (and the tariff's peak period) at virtual now_ns and hands them
  /// to the law.
  void expand_calendar(std::int64_t now_ns) noexcept;
  /// The quarter-hour blocks of the wall clock: closes the one that ended before now_ns, opens the next.
  void track_quarters(std::int64_t now_ns) noexcept;
  [[nodiscard]] double price_per_kWh(std::int64_t at_ns) const noexcept;

  Rig& rig_;
  RigLaw& law_;
  HarnessConfig cfg_;
  std::vector<Event> events_;
  std::size_t next_event_ = 0;
  std::vector<DelayLine> sample_lines_;
  std::vector<DelayLine> command_lines_;
  std::vector<std::uint32_t> last_sequence_;
  std::vector<std::uint8_t> delivered_any_;
  std::vector<core::Command> applied_;  ///< last command applied at each controller (eq_commanded)
  std::vector<BusTrace> traces_;
  std::vector<double> prev_total_cmd_W_;
  std::vector<double> travel_W_;
  std::vector<double> flips_;
  std::vector<int> last_dir_;
  std::vector<double> res_sq_sum_, res_peak_;
  std::vector<std::uint64_t> res_n_;
  std::vector<double> vmin_, vmax_, margin_;
  std::vector<double> rated_W_;          ///< per bus, cached
  std::vector<BusMeter> meter_at_from_;  ///< per bus: the meters when metrics_from_s was reached
  bool meters_taken_ = false;
  std::vector<std::size_t> bus_of_;  ///< per channel, cached
  // Wall clock (cfg_.calendar): schedules in the harness's clock, per bus, and the tariff's peak period.
  std::vector<core::BusSchedule> schedules_;
  core::BusSchedule tariff_periods_{};
  std::int64_t start_utc_ns_ = 0;
  std::int64_t next_expand_ns_ = 0;
  // Quarter hours of the wall clock: the block being measured, where it began, and per bus the meters
  // at its start and the running figures.
  std::int64_t quarter_ = 0;
  std::int64_t quarter_start_ns_ = 0;
  bool quarter_open_ = false, quarter_whole_ = false;
  std::vector<double> q_import0_J_, q_free0_J_;
  std::vector<double> peak_q_W_, free_peak_q_W_, cost_, free_cost_;
  std::vector<double> throughput_J_;
  std::vector<double> stored_change_J_;  ///< per bus: signed battery-side energy into the buffers
  double now_s_ = 0.0;
  std::int64_t step_ = 0;
  std::uint32_t heartbeat_ = 0;
  bool alive_ = true;
};

}  // namespace eqd::sim
