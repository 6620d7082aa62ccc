#pragma once
/// @file predictor.hpp
/// Learned forecasts: each test channel's battery-side power `horizon_s` ahead, predicted from that
/// channel's own history, for channels whose controller announces nothing (docs/control.md, "Learned
/// forecasts"). Cyclers repeat: a drive-cycle test loops the same profile, a cycle-life test the same
/// charge / rest / discharge steps, so what a channel did before says what it will do next.
///
/// - Step-keyed, when the controller reports step and cycle numbers (Sample::step_index,
///   Sample::cycle_index): the last occurrence of each step is kept as a trace over time in step, with
///   the step that followed it and how long it lasted; the forecast replays it, and expects a step that
///   ended on a condition (a voltage, a current) to last as long as last time plus the drift between its
///   last two occurrences.
/// - Pattern-based, without step numbers: for every lag up to max_lag_s the mean |x(t) − x(t − lag)| is
///   kept (exponentially weighted); the lag at which the channel repeats best is replayed.
/// - Skill-gated: every forecast is scored when its time comes against persistence (the power now held
///   for horizon_s). skill = 1 − MAE(forecast) / MAE(persistence) over skill_tau_s; a channel's forecast
///   is published only while its skill is above skill_on (off again below skill_off), so a predictor
///   that does not beat persistence is the same as "nothing announced".
///
/// The predictor runs on its own thread (the daemon's, once per second) and publishes through
/// LearnedForecasts, which the control thread reads lock-free: per bus, the learned path of the coming
/// seconds (LearnedAhead: the expected change of the free power, second by second, from the channels
/// whose forecast is in use), rebuilt whole every second so that a channel whose gate opens or closes
/// moves every second of it at once. The control thread never waits for it, and a missing or late one
/// (older than 2 s) counts as nothing learned.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "eqd/core/forecast_path.hpp"
#include "eqd/core/sample.hpp"
#include "eqd/core/seqlock.hpp"

namespace eqd::core {

class ControlCore;

/// Tuning of the predictor (docs/control.md gives the reasons). Plain data.
struct PredictorParams {
  std::uint32_t ring_s = 4096;     ///< pattern history (s); bounds memory: 4 bytes per second
  std::uint32_t max_lag_s = 3600;  ///< longest repetition period the pattern matcher finds (< ring_s)
  /// The same for a step-keyed channel's step that has no trace yet (its own repetition: a pulse step's
  /// levels, a looped drive profile): half the memory, periods up to 30 minutes.
  std::uint32_t step_ring_s = 3072;
  std::uint32_t step_max_lag_s = 2700;
  std::uint32_t min_overlap_s = 120;  ///< a lag is scored only after this many comparisons
  double match_tau_s = 600.0;         ///< memory of the per-lag mismatch
  double skill_tau_s = 1200.0;        ///< memory of the skill score
  double skill_on = 0.2;              ///< publish while skill is above this ...
  double skill_off = 0.05;            ///< ... until it falls below this
  std::uint32_t max_steps = 16;       ///< step traces kept per channel (least recently seen dropped)
  std::uint32_t trace_cap = 2048;     ///< samples per step trace; longer steps are kept at coarser resolution
};

/// The forecast of one channel as published: the power (battery side, W), and the second of the core's
/// clock it was made in. Trivially copyable.
struct LearnedForecast {
  float power_W = std::numeric_limits<float>::quiet_NaN();
  std::uint32_t made_s = 0;
};

/// Lock-free table of the newest learned forecast and skill of every channel, and the skill of every
/// bus. Thread-safety: one writer (the predictor's thread); any number of readers on any thread
/// (the control thread reads forecasts; metrics and the control API read skills). Sized at construction.
class LearnedForecasts {
 public:
  LearnedForecasts(std::size_t channels, std::size_t buses);

  /// Bus b's learned path (see LearnedAhead). The control thread reads it once per second; lock-free.
  [[nodiscard]] LearnedAhead ahead(std::size_t b) const noexcept { return ahead_[b].load(); }
  void publish_ahead(std::size_t b, const LearnedAhead& a) noexcept { ahead_[b].store(a); }
  /// Channel i's own forecast for its horizon (for display: eqctl, metrics), NaN while its gate is closed.
  [[nodiscard]] LearnedForecast forecast(std::size_t i) const noexcept;
  void publish(std::size_t i, float power_W, std::int64_t made_s) noexcept;

  /// Skill of channel i's predictor (NaN: not scored yet / not learning) and whether its forecast is
  /// published (skill gate open).
  [[nodiscard]] float skill(std::size_t i) const noexcept;
  [[nodiscard]] bool in_use(std::size_t i) const noexcept;
  void set_skill(std::size_t i, float skill, bool in_use) noexcept;
  /// Whether channel i is in its bus's learned path made at second made_s (LearnedAhead::made_s). The
  /// predictor marks every channel once per tick, before it publishes the paths; a reader that holds the
  /// path of second P asks for P and gets the right answer also while the predictor is marking P + 1
  /// (each mark keeps the one before it). The control thread asks once per second per channel.
  [[nodiscard]] bool in_path(std::size_t i, std::int64_t made_s) const noexcept;
  void mark_path(std::size_t i, std::int64_t made_s, bool in_path) noexcept;
  /// Skill of a bus's learned path (its bus-level gate: forecasting the bus's free power horizon/2
  /// ahead against persistence; NaN: not scored).
  [[nodiscard]] float bus_skill(std::size_t b) const noexcept;
  void set_bus_skill(std::size_t b, float skill) noexcept;

  [[nodiscard]] std::size_t channel_count() const noexcept { return n_; }
  [[nodiscard]] std::size_t bus_count() const noexcept { return nb_; }

 private:
  std::size_t n_, nb_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> forecast_;  ///< made_s << 32 | float bits
  std::unique_ptr<std::atomic<std::uint32_t>[]>
      skill_;  ///< float bits of the skill; in use: low bit of a separate word
  std::unique_ptr<std::atomic<std::uint8_t>[]> in_use_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> in_path_;  ///< made_s << 2 | in that path << 1 | in the one before
  std::unique_ptr<std::atomic<std::uint32_t>[]> bus_skill_;
  std::unique_ptr<Seqlock<LearnedAhead>[]> ahead_;
};

/// The learner of one channel. Thread-safety: not thread-safe; owned by the predictor's thread.
/// Allocates when it first sees a kind of history (pattern buffers, a new step), never per second
/// afterwards except when a step ends (its recording becomes the step's trace).
class ChannelPredictor {
 public:
  ChannelPredictor() = default;

  /// Feed the channel's power at second t_s (one call per second; a gap of seconds is filled with the
  /// last power). horizon_s: how far ahead to forecast (1..120). cycle/step: Sample::kNoIndex/kNoStep
  /// when not reported. Returns the forecast for t_s + horizon_s (NaN: none, or gate closed).
  float observe(const PredictorParams& p, std::int64_t t_s, float power_W, std::uint32_t cycle, std::uint16_t step,
                std::uint32_t horizon_s);

  /// Forget everything (the channel became a buffer, or the horizon or the kind of history changed).
  void reset();
  /// Keep what was learned but not the timeline: after a long gap, or when the clock is another one
  /// (eqd restarted and restored this learner). observe() calls it itself when it sees such a gap.
  void rebase();

  [[nodiscard]] double skill() const noexcept;  ///< NaN until scored over at least horizon_s
  [[nodiscard]] bool gate_open() const noexcept { return gate_open_; }
  [[nodiscard]] bool step_keyed() const noexcept { return step_mode_; }
  /// The method's forecast of the power h seconds after the last observed second (1..120), whatever
  /// the gate says; NaN where it has none. Valid right after observe().
  [[nodiscard]] float forecast_ahead(std::uint32_t h) const noexcept {
    if (!step_mode_) return predict_pattern(h);
    const float f = predict_step(h);
    return f != f && !ring_.empty() ? predict_pattern(h) : f;  // a step without a trace: its own repetition
  }
  /// Bytes of heap this learner holds (for the memory budget, docs/benchmarks.md).
  [[nodiscard]] std::size_t memory_bytes() const noexcept;

  /// Append the learned state to out (versioned binary, little-endian host layout). save/load round
  /// trip exactly; load returns false (and leaves the learner reset) on any inconsistency.
  void save(std::vector<std::uint8_t>& out) const;
  bool load(std::span<const std::uint8_t> in);

 private:
  struct StepTrace {
    std::uint16_t step = Sample::kNoStep;
    std::uint16_t next_step = Sample::kNoStep;     ///< the step that followed last time
    std::uint32_t res_s = 1;                       ///< seconds per trace sample
    std::uint32_t dur_last_s = 0, dur_prev_s = 0;  ///< how long the last two occurrences lasted (0 = unknown)
    std::uint64_t seen = 0;                        ///< LRU stamp
    std::vector<float> W;
    [[nodiscard]] double expected_s() const noexcept;
    [[nodiscard]] float at(double t_in_step_s) const noexcept;
  };

  float predict_step(std::uint32_t horizon_s) const noexcept;
  /// Step mode: the step-keyed forecast, or, while the present step has no trace, the pattern matcher's.
  float step_forecast(const PredictorParams& p, float x, std::uint32_t horizon_s);
  /// Drop the pattern matcher's history and lag errors (and give their memory back).
  void release_pattern();
  float predict_pattern(std::uint32_t horizon_s) const noexcept;
  void push_pattern(const PredictorParams& p, float x);
  void push_step(const PredictorParams& p, float x, std::uint32_t cycle, std::uint16_t step);
  const StepTrace* find(std::uint16_t step) const noexcept;
  void score(const PredictorParams& p, float x, std::uint32_t horizon_s) noexcept;

  // Common
  std::int64_t last_t_ = std::numeric_limits<std::int64_t>::min();
  float last_W_ = 0.0F;
  std::uint32_t horizon_s_ = 0;
  bool step_mode_ = false;
  bool gate_open_ = false;
  std::uint64_t count_ = 0;  ///< seconds observed since the last reset
  // Scoring: what was forecast for, and what the power was at, each of the last 128 seconds.
  static constexpr std::size_t kScoreRing = 128;  ///< > ForecastPath::kMaxHorizon_s
  std::vector<float> made_;                       ///< forecast made at second k for k + horizon (NaN: persistence)
  std::vector<float> seen_;                       ///< power at second k
  double mae_f_ = 0.0, mae_p_ = 0.0, scale_W_ = 0.0;
  double fast_f_ = 0.0, fast_p_ = 0.0;  ///< the same over skill_tau_s / 8 (closes the gate)
  std::uint64_t scored_ = 0;
  // Pattern
  std::vector<float> ring_;  ///< power of second k at k % ring_s (pattern mode)
  std::vector<float> err_;   ///< err_[L-1]: EWMA of |x(t) − x(t − L)|, not bias-corrected
  std::uint32_t best_lag_ = 0;
  /// Seconds pushed into ring_ since it was (re)started: lags and replay reach back this far only (after
  /// a rebase, and in step mode where the ring runs only while the present step has no trace yet).
  std::uint64_t pat_n_ = 0;
  bool program_started_ = false;  ///< the reset was a program starting: its first step is seen from its start
  // Step-keyed
  std::vector<StepTrace> traces_;
  StepTrace rec_;  ///< the occurrence being recorded
  std::uint32_t cur_cycle_ = Sample::kNoIndex;
  std::uint16_t cur_step_ = Sample::kNoStep;
  std::uint32_t in_step_s_ = 0;  ///< seconds since the present step started
  bool rec_from_start_ = false;  ///< the recording began at the step's start (else it is not kept)
  std::uint64_t stamp_ = 0;
};

/// The predictor of a whole core: one learner per channel, driven once per second from the core's
/// sample slots and snapshots, publishing into the core's LearnedForecasts. Thread-safety: not
/// thread-safe; one thread (the daemon's predictor thread, or a harness) calls tick().
class Predictor {
 public:
  explicit Predictor(std::size_t channels, PredictorParams p = {});

  /// Learn from and forecast every test channel of every bus whose params have learn_forecast, and
  /// publish. Work is done once per new second of now_ns; other calls return at once.
  void tick(std::int64_t now_ns, ControlCore& core);

  [[nodiscard]] const ChannelPredictor& channel(std::size_t i) const noexcept { return ch_[i]; }
  ChannelPredictor& channel(std::size_t i) noexcept { return ch_[i]; }
  [[nodiscard]] std::size_t channel_count() const noexcept { return ch_.size(); }
  [[nodiscard]] const PredictorParams& params() const noexcept { return p_; }
  /// Heap bytes held by all learners.
  [[nodiscard]] std::size_t memory_bytes() const noexcept;

 private:
  PredictorParams p_;
  std::vector<ChannelPredictor> ch_;
  /// The bus-level gate: the learned path is used only while it forecasts the bus's free power better
  /// than persistence. Good forecasts of some channels can hurt when the others (not learned) change
  /// the other way: staggered pulses whose sum is smooth, half of them foreseen, would move the buffers
  /// for steps that cancel out. Scored like a channel, on the bus's free power horizon/2 ahead.
  struct BusGate {
    static constexpr std::size_t kRing = 128;
    std::array<float, kRing> predicted{};  ///< bus free power forecast at second k for k + horizon/2
    std::array<float, kRing> seen{};       ///< bus free power at second k
    std::array<std::int64_t, kRing> at{};  ///< which second each slot holds (-1: none)
    double mae_f = 0.0, mae_p = 0.0, scale_W = 0.0;
    std::uint64_t scored = 0;
    std::uint32_t horizon_s = 0;
    bool open = false;
    BusGate() { at.fill(-1); }
    /// Score the forecast made horizon/2 ago against free_W, record this second's, update the gate.
    void update(const PredictorParams& p, std::int64_t now_s, double free_W, double predicted_W,
                std::uint32_t horizon_s);
    [[nodiscard]] double skill() const noexcept;
  };
  std::vector<double> bus_free_W_;
  std::vector<LearnedAhead> ahead_;  ///< per bus, rebuilt every tick
  std::vector<BusGate> gates_;       ///< per bus
  std::int64_t last_s_ = std::numeric_limits<std::int64_t>::min();
};

}  // namespace eqd::core
