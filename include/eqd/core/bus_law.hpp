#pragma once
/// @file bus_law.hpp
/// The seam between the control core and a control law: what a law sees of one bus at one step, what
/// it answers, and the interface every law implements (today's damped law, the benchmark's peer laws,
/// laws to come). The core owns everything around the law that must not differ between laws: the
/// samples and their health, the bus's mode (hold on stale test data, ramp down without fresh data,
/// idle without usable buffers), the buffers' headroom and windows, the allocation among buffers, the
/// capacity clamp and the commands. See docs/architecture.md, "Adding a control law".

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>

#include "eqd/core/params.hpp"

namespace eqd::core {

/// What a bus is doing, decided by the core before the law runs (LawInput::mode) and published per
/// bus. A law must honour the mode: see BusLaw.
enum class BusStatus : std::uint8_t {
  ok = 0,         ///< tracking normally
  idle = 1,       ///< no usable equalization channel: total command is 0 W
  holding = 2,    ///< some test channel is stale: total held (no reaction to unknown data)
  ramp_down = 3,  ///< no fresh data (or held too long): ramping the total to 0 W
  saturated = 4,  ///< the desired total exceeds the buffers' headroom (published only, never a mode)
};
const char* to_string(BusStatus s) noexcept;

/// What a law sees of one bus at one step (bus-side powers, W; positive = into the buffers).
struct LawInput {
  std::int64_t now_ns = 0;
  BusStatus mode = BusStatus::ok;  ///< ok, holding, ramp_down or idle (decided by bus_mode())
  double free_W = 0.0;             ///< sum of fresh test-channel power
  /// Free power announced for the controllers' forecast horizon (free_W where nothing is announced);
  /// NaN: no forecast at all (the law uses free_W).
  double free_forecast_W = std::numeric_limits<double>::quiet_NaN();
  double eq_measured_W = 0.0;              ///< sum of measured power of usable equalization channels
  double capacity_charge_W = 0.0;          ///< sum of usable buffers' charge headroom (>= 0)
  double capacity_discharge_W = 0.0;       ///< sum of usable buffers' discharge headroom (>= 0, magnitude)
  double rated_W = 0.0;                    ///< sum of usable buffers' max(charge, discharge) rating (for auto slew)
  bool any_test_stale = false;             ///< a test channel's sample is stale or invalid
  bool any_fresh = false;                  ///< at least one channel of the bus has a fresh sample
  bool samples_newer_than_command = true;  ///< every usable buffer reported since the last command
  /// The free power's known path over the coming seconds (announced or learned, bus side, with
  /// use_forecast): free_path_W[k] is k + 1 s after the current second, k < free_path_n. Null / 0: no
  /// path. Valid during step() only (ForecastPath::ahead_W()).
  const double* free_path_W = nullptr;
  int free_path_n = 0;
};

/// A law's answer for one step.
struct LawOutput {
  double command_W = 0.0;  ///< total equalization power to allocate (positive = buffers charge)
  double desired_W = 0.0;  ///< what full equalization would ask for now (target - free)
  double aim_W = 0.0;      ///< what the law steers toward (target - announced free power, if used)
  bool updated = false;    ///< a new command was computed this step (the core re-allocates)
};

/// Actuation counters of a law, published per bus (eqctl status, metrics).
struct LawCounters {
  std::uint64_t updates = 0;          ///< steps that computed a new command
  std::uint64_t direction_flips = 0;  ///< charge <-> discharge reversals of the command
  double setpoint_travel_W = 0.0;     ///< sum of |change of command|
  std::uint64_t plans_applied = 0;    ///< updates that commanded a plan's first step (law planned)
};

/// The buffers' capacity as a closed interval of total bus-side power, lo_W <= 0 <= hi_W.
struct Capacity {
  double lo_W = 0.0;  ///< -(discharge headroom)
  double hi_W = 0.0;  ///< charge headroom
  [[nodiscard]] double clamp(double v) const noexcept;
  [[nodiscard]] bool empty() const noexcept { return hi_W <= 0.0 && lo_W >= 0.0; }
};
/// The capacity of a step's input (negative headroom counts as none).
Capacity capacity_of(const LawInput& in) noexcept;

/// Move `from` toward `to` by at most `max_step` (>= 0). Any thread.
double slew(double from, double to, double max_step) noexcept;
/// +1, -1 or 0 (|v| <= eps: no direction). Any thread.
int sign_of(double v, double eps) noexcept;

/// A control law of one bus. The core calls step() once per cycle for every bus, from the control
/// thread; step() must not block, allocate, throw, log or do I/O (construction may allocate).
/// Contract, checked for every registered law by tests/unit/core_law_conformance_test.cpp:
/// - the command stays within [-capacity_discharge_W, capacity_charge_W] (the core clamps it again
///   and replaces a non-finite one by 0 W, but a law relying on that is a bug);
/// - mode idle: 0 W; holding: the previous command (clamped), no reaction to the free power;
///   ramp_down: toward 0 W, never away from it, reaching it within a few tau_s;
/// - only the BusParams it documents are read; unknown fields are ignored.
/// Thread-safety: not thread-safe; one law object per bus, used by one thread at a time.
class BusLaw {
 public:
  virtual ~BusLaw() = default;
  /// One step at in.now_ns. Any thread (the owning one).
  virtual LawOutput step(const LawInput& in, const BusParams& p) noexcept = 0;
  [[nodiscard]] virtual LawCounters counters() const noexcept = 0;
  /// The law's name as in the config (`law:`), for logs and reports.
  [[nodiscard]] virtual const char* name() const noexcept = 0;
};

/// The name of a law kind as the config spells it (`law: damped`). Any thread.
const char* to_string(LawKind k) noexcept;
/// Parse a config name into a law kind. False when no registered law has that name. Any thread.
bool parse_law_kind(const char* name, LawKind& out) noexcept;
/// The names of every registered law, comma-separated (for error messages). Any thread.
const char* law_names() noexcept;
/// A new law of that kind (the registry: one line per law). Allocates; never on the control thread.
std::unique_ptr<BusLaw> make_bus_law(LawKind k);

/// Builds the law of one bus; CoreConfig::make_law. Called at construction of a ControlCore only.
using LawFactory = std::function<std::unique_ptr<BusLaw>(std::uint16_t bus, const BusParams& p)>;

/// The bus's mode this step, from the health of its samples: ramp_down when nothing is fresh, holding
/// while some test channel is stale (for at most p.hold_max_s, then ramp_down), else ok. `hold_since_ns`
/// is the mode's memory (-1: not holding). Pure apart from it; any thread.
BusStatus bus_mode(bool any_fresh, bool any_test_stale, std::int64_t now_ns, const BusParams& p,
                   std::int64_t& hold_since_ns) noexcept;

}  // namespace eqd::core
