#pragma once
/// @file schedule.hpp
/// Test programs of simulated channels: rest, CC, CP, CC-CV, pulse trains, CSV profiles and one-off
/// random programs, as a sequence of steps that may repeat.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eqd/sim/converter.hpp"

namespace eqd::sim {

/// A time series read from CSV (`time_s,value` with one header line). Immutable once loaded; share
/// as const between channels and threads.
struct Profile {
  std::string path;
  std::vector<double> time_s;  ///< strictly increasing, first >= 0
  std::vector<double> value;   ///< W or A, depending on the step that uses it
  /// Linear interpolation at t_s (clamped at both ends).
  [[nodiscard]] double at(double t_s) const noexcept;
  [[nodiscard]] double end_s() const noexcept { return time_s.empty() ? 0.0 : time_s.back(); }
};

/// Read a profile CSV. Throws InputError "path:line: message" on a missing file, a missing header,
/// a row without exactly two numeric fields, or a time that does not increase.
std::shared_ptr<const Profile> load_profile(const std::string& path);

enum class StepType : std::uint8_t { rest, cc, cp, cc_cv, pulse, profile, random };
/// Name as used in YAML ("rest", "cc", ...).
const char* to_string(StepType t) noexcept;

/// One level of a pulse train.
struct PulseLevel {
  double value = 0.0;  ///< A or W (see Step::pulse_kind), signed
  double duration_s = 0.0;
};

/// One step of a schedule. Which fields matter depends on `type` (see docs/sim.md).
struct Step {
  StepType type = StepType::rest;
  double duration_s = 0.0;  ///< ends the step after this long; 0 = no time limit (needs another end)
  double value = 0.0;       ///< cc, cc_cv: current_A; cp: power_W (signed)
  double until_V = 0.0;     ///< cc, cp: end when the terminal reaches this voltage (0 = none)
  double cv_V = 0.0;        ///< cc_cv: voltage held in the CV phase
  double cutoff_A = 0.0;    ///< cc_cv: end when |I| falls below this in the CV phase
  TargetKind pulse_kind = TargetKind::current;  ///< pulse, profile: what value means
  std::vector<PulseLevel> levels;               ///< pulse
  std::shared_ptr<const Profile> profile;       ///< profile
  double scale = 1.0;                           ///< profile: multiplier of the CSV values
  bool loop = false;                            ///< profile: wrap around at its end
  /// profile with until_V: true when the profile is a net discharge (scale x its time-weighted mean < 0),
  /// so that until_V is reached by falling; false: a net charge, reached by rising. Set by the loader.
  bool until_falling = true;
  // random: levels drawn uniformly from [value, value_max], each held for a time drawn uniformly from
  // [hold_min_s, hold_max_s]; with probability rest_fraction a level is 0 (a pause between pulses).
  // The step's length is drawn from [duration_s, duration_max_s] each time it starts (duration_max_s 0:
  // always duration_s). Draws are keyed by (Schedule::seed, seed, step index, pass, draw number): the
  // same rig gives the same program, and no two passes give the same one.
  double value_max = 0.0;
  double hold_min_s = 0.0;
  double hold_max_s = 0.0;
  double duration_max_s = 0.0;
  double rest_fraction = 0.0;
  std::uint64_t seed = 0;
};

/// A channel's program. Plain data.
struct Schedule {
  std::vector<Step> steps;
  int repeat = 1;              ///< passes through `steps`; 0 = forever
  double start_delay_s = 0.0;  ///< rest this long before the first step
  /// The channel's own random stream (random steps): the rig loader derives it from the rig's seed and
  /// the channel's place, so that two channels with the same program draw different levels.
  std::uint64_t seed = 0;
};

/// Deterministic 64-bit mixing of a key with a value (the splitmix64 finaliser): what the random steps
/// and the loader's per-channel draws are keyed by. Pure; the same inputs give the same output anywhere.
[[nodiscard]] std::uint64_t mix_seed(std::uint64_t key, std::uint64_t value) noexcept;
/// A uniform double in [0, 1) from a mixed key (53 bits).
[[nodiscard]] double unit_from_seed(std::uint64_t key) noexcept;

/// Runs a Schedule. Thread-safety: not thread-safe; owned by the rig's thread. No allocation per step.
class ScheduleRunner {
 public:
  ScheduleRunner() = default;
  /// s must outlive the runner (channels keep their Schedule in a shared_ptr).
  explicit ScheduleRunner(const Schedule* s);

  /// The converter request for now (the present step at its elapsed time).
  [[nodiscard]] Target target() const noexcept;
  /// Account for dt_s having passed with outcome `out`; moves to the next step when this one ends.
  void advance(double dt_s, const ConverterOutput& out) noexcept;

  /// Battery-side power the program will ask for horizon_s from now, as a controller that knows its own
  /// test program announces it (eqd's Sample::forecast_W): time-based step changes, start delays, pulse
  /// levels and profile values exactly; a current as power at voltage_V; what the program cannot know
  /// by persistence: a step ended by a voltage or current condition is assumed to go on, and a CV phase
  /// to stay at present_W. The program is run ahead on a copy in steps of at most resolution_s (so that
  /// no step is skipped); no allocation.
  [[nodiscard]] double forecast_at_W(double horizon_s, double resolution_s, double voltage_V,
                                     double present_W) const noexcept;

  [[nodiscard]] bool finished() const noexcept;
  /// The start delay is over (a program with none starts at once).
  [[nodiscard]] bool started() const noexcept { return started_; }
  [[nodiscard]] bool active() const noexcept { return schedule_ != nullptr && !finished(); }
  /// The step being run (0-based index into Schedule::steps) and the number of completed passes through
  /// the steps: together they say where the program is, which is what a load predictor keys its history by.
  [[nodiscard]] std::size_t step_index() const noexcept { return index_; }
  [[nodiscard]] std::uint64_t pass() const noexcept { return pass_; }
  [[nodiscard]] double step_elapsed_s() const noexcept { return elapsed_s_; }
  /// Length of the present step when it is time-bound (a random step's drawn length), else 0.
  [[nodiscard]] double step_length_s() const noexcept { return step_length_s_; }

 private:
  void next_step() noexcept;
  /// Per-step state on entering index_: a random step draws its length and first level.
  void enter_step() noexcept;
  /// Draw number `draws_` of the present random step, uniform in [0, 1).
  [[nodiscard]] double draw() noexcept;
  void draw_level(const Step& s) noexcept;

  const Schedule* schedule_ = nullptr;
  std::size_t index_ = 0;
  std::uint64_t pass_ = 0;
  double elapsed_s_ = 0.0;
  double delay_left_s_ = 0.0;
  bool started_ = false;
  bool in_cv_ = false;
  double step_length_s_ = 0.0;  ///< time limit of the present step (Step::duration_s or a random draw)
  double level_value_ = 0.0;    ///< random: the level in force
  double level_left_s_ = 0.0;   ///< random: time until the next level is drawn
  std::uint64_t draws_ = 0;     ///< random: draws made in the present step (the counter of the key)
};

}  // namespace eqd::sim
