#pragma once
/// @file control_core.hpp
/// The control core: sample store, command mailboxes, request queue, per-bus law and allocation, and
/// the published snapshot. Sizes are fixed at construction; cycle() never allocates, blocks, throws or logs.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "eqd/core/allocator.hpp"
#include "eqd/core/bus_law.hpp"
#include "eqd/core/device_limits.hpp"
#include "eqd/core/forecast_path.hpp"
#include "eqd/core/meter_trim.hpp"
#include "eqd/core/plan_board.hpp"
#include "eqd/core/params.hpp"
#include "eqd/core/predictor.hpp"
#include "eqd/core/sample.hpp"
#include "eqd/core/seqlock.hpp"
#include "eqd/core/schedule.hpp"
#include "eqd/core/snapshot.hpp"
#include "eqd/core/spsc_queue.hpp"
#include "eqd/core/stat_forecast.hpp"
#include "eqd/core/valley_fill.hpp"

namespace eqd::core {

using ChannelIndex = std::uint32_t;
using BusIndex = std::uint16_t;
/// ChannelConfig::bus (and ChannelSnapshot::bus) of a channel that belongs to no known bus. Such a
/// channel is sampled and its snapshot published, but it adds nothing to any bus's free power,
/// announced power, hold on stale data or health counts, and it can never become a buffer (assign,
/// release refused as invalid). Never a valid index: a core has at most 65535 buses (0..65534).
inline constexpr BusIndex kNoBus = 0xFFFF;

/// Static description of one channel (fixed for the life of a ControlCore).
struct ChannelConfig {
  /// The channel's bus, or kNoBus: a channel whose bus is not known (a discovered controller that
  /// announces no bus eqd has) is sampled and published but counts in no bus's balance.
  BusIndex bus = 0;
  bool assigned = false;  ///< start as an equalization channel (from config or persisted state)
  BufferLimits limits{};  ///< used when assigned
  /// Efficiency of the channel's converter (0.5..1): its reported battery-side power is turned into
  /// bus-side power for the free power (a buffer uses limits.efficiency instead).
  double efficiency = 1.0;
};

/// Everything a ControlCore needs to be built.
struct CoreConfig {
  std::vector<BusParams> buses;
  std::vector<ChannelConfig> channels;
  /// Energy already counted per bus (carried over a configuration handover); empty or one per bus.
  std::vector<EnergyCounters> initial_energy;
  /// Valley filling's window needs per bus as persisted (daemon: state_dir/window_needs.json), by
  /// window index of the bus's schedule; empty or one per bus.
  std::vector<WindowNeeds> initial_window_needs;
  /// The buses' demand maxima of today and this month as persisted (daemon: state_dir/demand.json);
  /// empty or one per bus.
  std::vector<DemandSeed> initial_demand;
  std::size_t request_capacity = 256;
  /// Liveness bound of the control cycle (control_loop.liveness_timeout_ms). Links send heartbeats and
  /// equalize commands only while the last cycle is younger than this; the core re-confirms every live
  /// command at a quarter of it; a gap between two cycles longer than this is a stall, after which a
  /// buffer is commanded again only once a sample received after the stall has been taken.
  std::int64_t liveness_ms = 1000;
  /// Builds each bus's law; empty: make_bus_law(params.law), the registry. Benchmarks and tests plug
  /// other laws in here (tests/bench/laws/peer_laws.hpp); a factory that returns nullptr is an error.
  LawFactory make_law;
};

/// A change for the control thread. Trivially copyable.
enum class RequestKind : std::uint8_t { assign, release, set_params, stop_all, resume };
struct Request {
  std::uint64_t id = 0;  ///< echoed in the Response
  RequestKind kind = RequestKind::assign;
  ChannelIndex channel = 0;  ///< assign / release
  BusIndex bus = 0;          ///< set_params
  BufferLimits limits{};     ///< assign
  BusParams params{};        ///< set_params (already validated)
};

enum class ResponseStatus : std::uint8_t {
  ok = 0,
  pending = 1,          ///< assign accepted; the channel is unreachable now and will be taken when it returns
  refused_running = 2,  ///< the channel is running a test
  refused_fault = 3,    ///< the channel is in fault
  refused_invalid = 4,  ///< bad index or parameters
  already = 5,          ///< nothing to do (already assigned / not assigned)
};
const char* to_string(ResponseStatus s) noexcept;

struct Response {
  std::uint64_t id = 0;
  ResponseStatus status = ResponseStatus::ok;
};

/// Thread-safety:
/// - sample_slot(i).store(): exactly one I/O thread per channel (the owner of its controller).
/// - command_slot(i).load()/try_load(): any thread (the owning I/O thread polls it).
/// - device_limits_slot(i).store(): exactly one I/O thread per channel (as sample_slot); load(): any.
/// - submit(), poll_response(): any thread; producers serialise on an internal mutex, the control
///   thread side is lock-free.
/// - channel(), bus(), stats(): any thread, lock-free.
/// - cycle(), record_timing(): the control thread only.
class ControlCore {
 public:
  explicit ControlCore(const CoreConfig& cfg);
  ControlCore(const ControlCore&) = delete;
  ControlCore& operator=(const ControlCore&) = delete;

  [[nodiscard]] std::size_t channel_count() const noexcept { return hot_.size(); }
  [[nodiscard]] std::size_t bus_count() const noexcept { return buses_.size(); }

  /// Where the owning I/O thread publishes samples of channel i.
  Seqlock<Sample>& sample_slot(ChannelIndex i) noexcept { return samples_[i]; }
  const Seqlock<Sample>& sample_slot(ChannelIndex i) const noexcept { return samples_[i]; }
  /// One attempt to read the words of a sample that the cycle's pass 1 reads for a test channel
  /// (voltage, power, receive time, the word of forecast_W, the word of state and valid: 5 of 8); the
  /// other fields of `s` are left as they were. Inline: bench_core's baseline reads the same, as
  /// cheaply. Any thread.
  static bool try_load_pass1_words(const Seqlock<Sample>& slot, Sample& s) noexcept {
    constexpr auto kWordOf = [](std::size_t offset) { return offset / 8; };
    static_assert(kWordOf(offsetof(Sample, valid)) == kWordOf(offsetof(Sample, state)) &&
                      kWordOf(offsetof(Sample, forecast_W) + 3) == kWordOf(offsetof(Sample, forecast_W)),
                  "pass 1's fields must lie in the words it loads");
    return slot.try_load_words<kWordOf(offsetof(Sample, voltage_V)), kWordOf(offsetof(Sample, power_W)),
                               kWordOf(offsetof(Sample, receive_time_ns)), kWordOf(offsetof(Sample, forecast_W)),
                               kWordOf(offsetof(Sample, state))>(s);
  }
  /// Where the owning I/O thread publishes the device's own power limits of channel i, when its device
  /// reports them (SunSpec storage); all NaN otherwise. The control thread reads a buffer's slot every
  /// cycle (one atomic word) and recomputes its headroom when the word changes.
  DeviceLimitsSlot& device_limits_slot(ChannelIndex i) noexcept { return device_limits_[i]; }
  const DeviceLimitsSlot& device_limits_slot(ChannelIndex i) const noexcept { return device_limits_[i]; }
  /// Where the control thread publishes commands for channel i (latest wins, sequence-numbered).
  const Seqlock<Command>& command_slot(ChannelIndex i) const noexcept { return commands_[i]; }

  /// Queue a request for the control thread. False when the queue is full (caller reports busy).
  [[nodiscard]] bool submit(const Request& r);
  /// Fetch one response. Any single consumer thread at a time (serialised internally).
  [[nodiscard]] bool poll_response(Response& out);

  [[nodiscard]] ChannelSnapshot channel(ChannelIndex i) const noexcept { return channel_snap_[i].load(); }
  [[nodiscard]] BusSnapshot bus(BusIndex b) const noexcept { return bus_snap_[b].load(); }

  /// Installs bus b's target schedule: its windows and their occurrences in this core's clock (the
  /// one passed to cycle(); daemon::ScheduleThread shifts them from UTC). From the next cycle on, the
  /// window active at the cycle's time replaces the bus's mode and target or limits (apply_window);
  /// outside every window the bus's own parameters apply. One writer thread at a time.
  void set_schedule(BusIndex b, const BusSchedule& s) noexcept { schedules_[b].store(s); }
  /// Where bus b's meter trim is published (issue #19, meter_trim.hpp): each cycle the control thread
  /// reads it without waiting (a slot mid-store every attempt keeps the last value read) and adds
  /// applied_trim_W() to the bus's free power. One writer thread per bus (its meter's I/O thread); a
  /// bus whose slot is never written runs exactly as without a meter.
  Seqlock<MeterTrimValue>& meter_trim_slot(BusIndex b) noexcept { return meter_trims_[b]; }
  [[nodiscard]] CycleStats stats() const noexcept { return stats_snap_.load(); }
  /// Bus b's valley-filling window needs, as last recorded (published when one is recorded). Any thread.
  [[nodiscard]] WindowNeeds window_needs(BusIndex b) const noexcept { return needs_snap_[b].load(); }

  /// Learned forecasts of the test channels (written by a Predictor's thread, read by the control
  /// thread for buses with learn_forecast; skills read by metrics and the control API). Any thread.
  LearnedForecasts& learned() noexcept { return learned_; }
  /// Where bus b's statistical forecast model is published (stat_forecast.hpp): one writer thread (the
  /// predictor thread, StatForecasts::tick); the control thread reads it once per second for buses with
  /// law `planned`, use_forecast and stat_forecast, without waiting (a slot mid-store: no path that
  /// second).
  Seqlock<StatModel>& stat_model_slot(BusIndex b) noexcept { return stat_models_[b]; }
  /// The board where buses with law `planned` ask for plans; served by the planner thread (PlanService).
  /// The board itself is thread-safe as plan_board.hpp says.
  PlanBoard& plan_board() noexcept { return plans_; }
  /// Whether any bus's law is `planned` (then the daemon runs a planner thread). Any thread.
  [[nodiscard]] bool plans() const noexcept { return plans_wanted_; }
  [[nodiscard]] const LearnedForecasts& learned() const noexcept { return learned_; }
  /// Converter efficiency of channel i as configured (fixed for the core's life). Any thread.
  [[nodiscard]] float efficiency(ChannelIndex i) const noexcept { return hot_[i].efficiency; }

  /// Monotonic time (the clock passed to cycle()) at which the last cycle completed; 0 before the
  /// first. Links read it to prove that the control cycle, not only their own thread, is alive. Any
  /// thread (an atomic).
  [[nodiscard]] const std::atomic<std::int64_t>& cycle_clock() const noexcept { return cycle_clock_; }
  /// The liveness bound in ns (CoreConfig::liveness_ms). Any thread.
  [[nodiscard]] std::int64_t liveness_ns() const noexcept { return liveness_ns_; }
  /// True when a cycle ran and the last one completed longer than the liveness bound before now_ns
  /// (the control thread is stalled now). Any thread.
  [[nodiscard]] bool stalled(std::int64_t now_ns) const noexcept {
    const std::int64_t last = cycle_clock_.load(std::memory_order_acquire);
    return last != 0 && now_ns - last > liveness_ns_;
  }

  /// One control cycle at time now_ns (monotonic ns, or virtual time in tests). Control thread only.
  void cycle(std::int64_t now_ns) noexcept;
  /// Record how long the last cycle took and how late it started. Control thread only.
  void record_timing(std::int64_t duration_ns, std::int64_t lateness_ns) noexcept;

 private:
  /// Per-channel state read every cycle for every channel: 8 bytes, so that a cycle over a million
  /// test channels touches little more memory than the samples themselves, and writes it only on change.
  struct Hot {
    BusIndex bus = 0;
    Role role = Role::test;
    Health health = Health::offline;  ///< as last published
    float efficiency = 1.0F;          ///< converter efficiency for bus-side test power
    /// Bus-side power of this channel's battery-side power (to_bus_W()). A multiplication by a stored
    /// 1 / efficiency instead of the division was measured no faster (bench_core, 2026-12-04) and
    /// differs in the last bit, which a closed loop amplifies. Efficiency 1 (every test channel that
    /// does not configure one) skips the division and the sign test: the same bits (x / 1 and x * 1
    /// are exact), 7 % off the cycle at 1k channels (docs/benchmarks.md).
    [[nodiscard]] double to_bus(double battery_W) const noexcept {
      return efficiency == 1.0F ? battery_W : to_bus_W(battery_W, static_cast<double>(efficiency));
    }
  };
  /// Per-channel state kept only while the channel is (or is becoming) a buffer.
  struct Cold {
    BufferLimits limits{};
    /// The device's own limits as last read from device_limits_slot() (and their raw word, to see a
    /// change with one compare); the headroom honours min(limits, device).
    DeviceLimits device{};
    std::uint64_t device_bits = DeviceLimitsSlot::pack(DeviceLimits{});
    WindowState window{};
    Headroom headroom{};
    /// compute_headroom() depends only on the limits, the voltage and the window state, and gives the
    /// same result (and window) when called again with the same voltage: it is recomputed only when the
    /// voltage's bits differ from the last call's or the limits (configured or the device's) or window
    /// were reset (headroom_stale).
    double headroom_voltage_V = 0.0;
    float headroom_soc_pct = 0.0F;  ///< the state of charge of that call (NaN: none reported)
    bool headroom_stale = true;
    double headroom_bus_charge_W = 0.0;     ///< headroom.charge_W / limits.efficiency (bus side)
    double headroom_bus_discharge_W = 0.0;  ///< headroom.discharge_W * limits.efficiency (bus side)
    /// max(max_charge_W / efficiency, max_discharge_W * efficiency), within the device's limits
    double rated_bus_W = 0.0;
    Command command{};
    double voltage_V = 0.0;
    double power_W = 0.0;
    float soc_pct = std::numeric_limits<float>::quiet_NaN();  ///< as reported (NaN: not reported)
    double setpoint_W = 0.0;
    std::int64_t receive_time_ns = 0;
    ChannelState state = ChannelState::offline;
    Health health = Health::offline;
    bool equalization_mode = false;
    EnergyGauge gauge{};          ///< stored energy estimate (valley filling; buffers with capacity_Wh)
    ChannelSnapshot published{};  ///< last published snapshot (publish on change)
  };
  /// Per-bus accumulators, reset every cycle; kept apart from BusState so that the pass over all
  /// channels touches one small array.
  struct alignas(64) Accum {
    /// max(1, now - max_age) (saturated): a sample received at or after this is fresh. Set with the reset.
    std::int64_t fresh_from_ns = 0;
    double free_W = 0.0;
    double announcing_present_W = 0.0;  ///< present free power of the channels that announce
    double announced_W = 0.0;           ///< what those channels announce for forecast_horizon_s ahead
    std::uint32_t announcing = 0;       ///< channels with a finite announcement
    bool any_test_stale = false;
    bool any_fresh = false;
    std::uint32_t channels = 0, buffers = 0, pending = 0, stale = 0, faulted = 0, offline = 0;
    /// Count a known test channel: its battery-side power and announcement (forecast_W) through a
    /// converter of h.efficiency, bus side. Defined in control_core.cpp (inline, hot path).
    void add_test(double power_W, float forecast_W, const Hot& h) noexcept;
  };
  struct BusState {
    BusParams params{};
    std::unique_ptr<BusLaw> law;       ///< built with the core (CoreConfig::make_law); never null
    std::int64_t hold_since_ns = -1;   ///< bus_mode()'s memory
    ForecastPath path;                 ///< measured/announced free power, for use_forecast
    LearnedAhead learned{};            ///< the bus's learned path, reread once per second
    std::int64_t learned_read_s = -1;  ///< second it was read in (-1: not learning)
    double learned_present_W = 0.0;    ///< bus-side power, when read, of the channels in `learned`
    StatPath stat;                     ///< the statistical path's evaluation (stat_forecast)
    EnergyCounters energy{};
    DemandMeter demand;                 ///< quarter-hour import averages (issue #17), fed after the energy
    AverageCap average;                 ///< the interval's import so far, for import_limit_average_s
    WindowNeeds needs;                  ///< caps windows' needs on earlier days (valley filling)
    std::uint32_t needs_published = 0;  ///< needs.records() when last published
    FillPlan fill{};                    ///< valley filling's plan of the last cycle
    /// The control thread's copy of the bus's schedule (2-3 KB), copied again only when set_schedule()
    /// published another (schedule_version: the slot's version it was copied at; 1, odd: never).
    BusSchedule schedule{};
    std::uint64_t schedule_version = 1;
    // Level shaving: the occurrence whose level is held, the highest level held in it so far, and the
    // month's highest quarter-hour import when it started (0: none yet), below which it never shaves.
    std::int64_t level_start_ns = -1;
    double level_held_W = 0.0;
    double level_floor_W = 0.0;
    std::vector<ChannelIndex> buffers;  ///< channels whose role is not test (capacity reserved)
    std::vector<ChannelIndex> usable;   ///< buffers allocated to this cycle (capacity reserved)
    std::vector<Headroom> headroom;     ///< scratch for allocate(), capacity reserved
    std::vector<double> alloc_out;
    std::vector<double> alloc_scratch;
    std::int64_t last_command_ns = -1;
    std::int64_t last_cycle_ns = -1;
    double command_W = 0.0;  ///< total last allocated
    MeterTrimValue trim{};   ///< the meter trim as last read from meter_trims_
    double trim_W = 0.0;     ///< the trim applied this cycle (applied_trim_W; 0: none)
    double eq_commanded_W = 0.0;
    double eq_measured_W = 0.0;
    double desired_W = 0.0;
    double capacity_charge_W = 0.0;
    double capacity_discharge_W = 0.0;
    BusStatus status = BusStatus::idle;
    /// What run_bus() publishes, every field rewritten every cycle but `params`, which is written where
    /// the parameters change (constructor, set_params): a cycle does not copy them again.
    BusSnapshot snap{};
  };

  void handle_request(const Request& r, std::int64_t now_ns) noexcept;
  void handle_assign(const Request& r, std::int64_t now_ns) noexcept;
  void handle_release(const Request& r, std::int64_t now_ns) noexcept;
  void handle_set_params(const Request& r) noexcept;
  /// The fields of a sample that the cycle uses: what pass 1 hands to pass1_other() and a buffer keeps.
  struct Reading {
    double voltage_V, power_W;
    std::int64_t receive_time_ns;
    float forecast_W;
    float soc_pct;
    ChannelState state;
    bool equalization_mode;
    bool valid;
  };
  static Reading reading(const Sample& s) noexcept {
    return {s.voltage_V, s.power_W, s.receive_time_ns, s.forecast_W, s.soc_pct, s.state, s.equalization_mode, s.valid};
  }
  void take_sample(ChannelIndex i, const Reading& s, Health health) noexcept;

  /// Pass 1 for one channel, the long way: the whole sample read again from `slot`, to pass1_other().
  [[gnu::noinline]] void take_long_way(ChannelIndex i, std::int64_t now_ns, const Seqlock<Sample>& slot) noexcept;
  /// Pass 1 for one channel, the long way; s == nullptr: its slot could not be read this cycle.
  [[gnu::noinline]] void pass1_other(ChannelIndex i, std::int64_t now_ns, const Reading* s) noexcept;
  /// Once per second: read the learned paths and the present power of their channels.
  void refresh_learned(std::int64_t now_ns) noexcept;
  void respond(std::uint64_t id, ResponseStatus s) noexcept;
  void set_role(ChannelIndex i, Role role) noexcept;
  void publish_command(ChannelIndex i, bool equalize, double setpoint_W, std::int64_t now_ns) noexcept;
  /// Re-confirm channel i's equalize command (same sequence, new issued_ns) when it is older than a
  /// quarter of the liveness bound, so that its link may keep refreshing it.
  void confirm_command(ChannelIndex i, std::int64_t now_ns) noexcept;
  static void refresh_headroom(Cold& c) noexcept;
  void publish_channel(ChannelIndex i) noexcept;
  // Pass 2 for one bus (control_core_bus.cpp), in this order: the buffers' roles and what they can
  // give, the law's input, the law, allocation, commands, energy, the snapshot.
  void run_bus(BusIndex b, std::int64_t now_ns) noexcept;
  /// The bus's free power with this cycle's meter trim (exactly acc.free_W without one): what the law,
  /// the forecast path and valley filling work with.
  [[nodiscard]] double trimmed_free_W(BusIndex b) const noexcept {
    const double t = buses_[b].trim_W;
    return t != 0.0 ? acc_[b].free_W + t : acc_[b].free_W;
  }
  /// What gather_buffers() finds among a bus's buffers (bus side).
  struct BusGather {
    double cap_charge_W = 0.0, cap_discharge_W = 0.0, rated_W = 0.0, measured_W = 0.0;
    bool newer_than_command = true;  ///< every usable buffer's sample is newer than the last command
    bool lost_buffer = false;        ///< a buffer with a non-zero setpoint is no longer usable
    bool exceeded = false;           ///< a usable buffer's setpoint is beyond its headroom
  };
  /// A pending or releasing buffer's next step; false: it was released (a test channel again).
  bool step_role(BusIndex b, ChannelIndex i, bool fresh, std::int64_t now_ns) noexcept;
  BusGather gather_buffers(BusIndex b, std::int64_t now_ns) noexcept;
  LawInput law_input(BusIndex b, std::int64_t now_ns, const BusGather& g) noexcept;
  void reallocate(BusIndex b, double command_W) noexcept;
  /// Publishes changed commands and snapshots of the bus's buffers; returns their total setpoint (bus side).
  double command_buffers(BusIndex b, std::int64_t now_ns) noexcept;
  /// Books the bus's energy over dt_s (the time since its previous cycle, capped; 0 at the first).
  void account_energy(BusIndex b, std::int64_t now_ns, double dt_s, double measured_W) noexcept;
  /// Valley filling for this cycle: the buffers' gauges, the active caps window's need, and the plan;
  /// returns the aim with the plan's fill_W. dt_s: time since the bus's previous cycle (0: first).
  BusParams valley_fill(BusIndex b, std::int64_t now_ns, double dt_s, const BusSchedule& sched, int occurrence,
                        const BusParams& aim) noexcept;
  // Level shaving in an active caps window: the aim with its import cap lowered to the level held.
  BusParams shave(BusIndex b, const WindowOccurrence& occ, const FillBuffers& fb, const BusParams& aim,
                  std::int64_t now_ns) noexcept;
  /// import_limit_average_s: the aim with its import cap replaced by the import allowed now so that the
  /// interval's average stays at the cap (AverageCap); the aim itself when the setting is 0, the aim is
  /// not caps, or the interval was not seen whole. in_window: a schedule window is in force (the bus's
  /// own cap, in caps mode, is then the instantaneous ceiling).
  [[nodiscard]] BusParams average_cap(BusIndex b, const BusParams& aim, bool in_window) const noexcept;
  void publish_bus(BusIndex b, const BusParams& aim, int window, const LawInput& in, const LawOutput& out,
                   double commanded_W, const Capacity& cap) noexcept;

  std::vector<Hot> hot_;
  std::vector<Cold> cold_;
  std::vector<BusState> buses_;
  // The four per-bus vectors below have one entry more, last: that of the channels of no bus
  // (kNoBus; their hot_.bus is buses_.size()), which nothing reads.
  std::vector<Accum> acc_;                ///< per bus
  std::vector<std::uint8_t> learning_;    ///< per bus (as acc_, + the no-bus entry): a learned path is in use
  std::int64_t learned_read_s_ = -1;      ///< second the learned paths were last read in
  std::vector<std::int64_t> max_age_ns_;  ///< per bus, from params.max_age_ms
  std::vector<std::array<std::uint32_t, 5>> health_counts_;  ///< per bus, channels by Health
  std::vector<std::uint32_t> channels_per_bus_;
  std::unique_ptr<Seqlock<Sample>[]> samples_;
  std::unique_ptr<Seqlock<Command>[]> commands_;
  /// One word per channel, written by its link only when the device's limits change: packed (8 bytes
  /// each) rather than a cache line each, since the writes are rare and only buffers' words are read.
  std::unique_ptr<DeviceLimitsSlot[]> device_limits_;
  std::unique_ptr<Seqlock<ChannelSnapshot>[]> channel_snap_;
  std::unique_ptr<Seqlock<BusSnapshot>[]> bus_snap_;
  std::unique_ptr<Seqlock<BusSchedule>[]> schedules_;       ///< per bus, written by set_schedule()
  std::unique_ptr<Seqlock<WindowNeeds>[]> needs_snap_;      ///< per bus, published when a need is recorded
  std::unique_ptr<Seqlock<MeterTrimValue>[]> meter_trims_;  ///< per bus, written by the bus's meter thread
  std::unique_ptr<Seqlock<StatModel>[]> stat_models_;       ///< per bus, written by the predictor thread
  Seqlock<CycleStats> stats_snap_;
  CycleStats stats_{};
  SpscQueue<Request> requests_;
  SpscQueue<Response> responses_;
  std::mutex submit_mutex_;    ///< serialises producers; never taken by the control thread
  std::mutex response_mutex_;  ///< serialises response consumers; never taken by the control thread
  std::int64_t last_cycle_ns_ = -1;
  std::int64_t liveness_ns_ = 0;
  /// Start of the first cycle after the last stall (the minimum: none yet). A buffer whose newest sample
  /// is not newer is neither used nor commanded: what it did during the stall is unknown.
  std::int64_t resume_ns_ = std::numeric_limits<std::int64_t>::min();
  std::atomic<std::int64_t> cycle_clock_{0};
  LearnedForecasts learned_;
  PlanBoard plans_;
  bool plans_wanted_ = false;
  bool stopping_ = false;
};

}  // namespace eqd::core
