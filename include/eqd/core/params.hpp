#pragma once
/// @file params.hpp
/// Plain parameter structs of the control law. Trivially copyable so that they travel through the
/// request queue and the snapshot. Units are in the names; config keys carry the same names.

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

namespace eqd::core {

/// Physical bounds of every power, voltage and current eqd accepts from configuration, the control
/// API or the state file (docs/configuration.md, "Physical bounds"). Far above any battery lab (the
/// largest cycler channels are a few hundred kW, 1500 V DC systems, a few kA) yet far below values
/// that break the arithmetic: 1e308 W overflows the first sum to infinity. 1e7 is also below 2^24, so
/// every whole watt up to the bound is exact in an f32 register.
inline constexpr double kMaxPower_W = 10.0e6;    ///< |power|, W: 10 MW (target, limits, deadband; slew per s)
inline constexpr double kMaxVoltage_V = 2000.0;  ///< voltage window, V: 0..2000 V (above 1500 V DC systems)
inline constexpr double kMaxCurrent_A = 10.0e3;  ///< current limit magnitude, A: 10 kA

/// The control law of a bus (config: `law`; registry in bus_law.hpp). Fixed for the life of a
/// ControlCore: a change takes effect through a reload (the law object is built with the core).
enum class LawKind : std::uint8_t {
  damped = 0,    ///< eqd's damped law (equalizer.hpp, docs/control.md)
  adaptive = 1,  ///< a bank of trackers chosen by their recent history (adaptive_law.hpp)
  planned = 2,   ///< a receding-horizon plan over the known path, else adaptive (planned_law.hpp)
};

/// What a bus aims for (config and `eqctl set`: `mode`). Any law serves either: the mode only decides
/// the desired equalization power (desired_eq_W()), every safety rule of the core applies alike.
enum class BusMode : std::uint8_t {
  balance = 0,  ///< net power -> target_W (eqd's behaviour before issue #17)
  caps = 1,     ///< net power kept within [-export_limit_W, import_limit_W]; buffers at rest inside
};
/// The names of BusMode as the config, the API and the state file spell them (index = value).
inline constexpr std::array<const char*, 2> kBusModeNames{"balance", "caps"};

/// Control parameters of one bus. Validated by validate() before they reach the control thread.
struct BusParams {
  /// The bus's control law (config: law); not settable at run time. planned by default (with the
  /// statistical path and a travel weight of 8 s): on the benchmark's 13 scenarios with nothing announced
  /// it leaves 0.444 of no equalization on average against the adaptive law's 0.477, with no peer lower
  /// at its actuation on any of them (docs/control.md "Which law by default"). Without a path it is the
  /// adaptive law.
  LawKind law = LawKind::planned;
  double target_W = 0.0;           ///< net power the bus aims for (config: target_W)
  double tau_s = 15.0;             ///< time constant of damped actuation (config: tau_s), 10..20 s nominal
  double deadband_W = 50.0;        ///< changes of the desired total smaller than this are ignored (deadband_W)
  double slew_W_per_s = 0.0;       ///< max rate of change of the total command; 0 = auto: capacity / tau_s
  double flip_dwell_s = 10.0;      ///< a charge<->discharge reversal must persist this long (flip_dwell_s)
  double update_interval_s = 1.0;  ///< period of command updates (actuation step) (update_interval_s)
  double trim_tau_s = 60.0;        ///< time constant of the slow tracking trim; 0 = off (trim_tau_s)
  double trim_max_fraction = 0.1;  ///< trim bound as a fraction of bus capacity (trim_max_fraction)
  double hold_max_s = 60.0;        ///< how long stale test data may hold the total before ramping to 0 W
  std::int64_t max_age_ms = 2000;  ///< a sample older than this is stale (max_age_ms)
  std::uint32_t lease_ms = 5000;   ///< setpoint validity at the controller (lease_ms)
  /// Steer by the free power the controllers announce (Sample::forecast_W, see ForecastPath) instead of
  /// the present one, so that the damped response is centred on an announced step rather than lagging
  /// it by tau_s. Channels that announce nothing count with their present power.
  bool use_forecast = true;
  /// How far ahead the controllers announce (s, 1..120); must be the controllers' own horizon. Learned
  /// forecasts are made for the same horizon.
  double forecast_horizon_s = 30.0;
  /// Learn each test channel's power from its own history (Predictor, docs/control.md "Learned
  /// forecasts") and, for channels that announce nothing, feed the forecast into the same path as an
  /// announcement (with use_forecast) while it beats persistence. An announcement always wins.
  bool learn_forecast = true;
  /// Law `planned` only (with use_forecast): where nothing is announced or learned for the bus, plan
  /// over a statistical forecast of its free power fitted online from its own last minutes, while that
  /// forecast beats persistence and a shadow plan on it beats the adaptive law (StatFitter,
  /// StatShadowGate, docs/control.md "Statistical forecasts"). On by default: with the default travel
  /// weight the gate keeps the adaptive law on the drive labs and plans where the path helps. With any
  /// other law it does nothing: the adaptive law steering by such a path was worse on every drive load.
  bool stat_forecast = true;
  /// Law `planned`: what a watt of setpoint travel costs in the plan's objective, in W·s of grid
  /// exchange (config: plan_travel_weight_s, 0..60 s). 8 s by default: the weight of 6-12 s with the most
  /// scenarios meeting issue #15 item 1's actuation goal and then the least exchange (bench_laws,
  /// 2026-12-05). Smaller values buy exchange with movement: on the drive cycle with learned and
  /// statistical paths 0.2 s gave 0.282 of no equalization at 650 kW of travel and 66 flips/h, 8 s 0.640
  /// at 153 kW and 28/h (docs/control.md "The receding-horizon planner").
  double plan_travel_weight_s = 8.0;
  /// balance (net -> target_W) or caps (net within [-export_limit_W, import_limit_W]) (config: mode).
  BusMode mode = BusMode::balance;
  /// caps mode: the most the bus may draw from the grid (net power > 0 is import), W >= 0
  /// (config: import_limit_W). 0 = no import: caps mode with both limits 0 balances to 0 W.
  double import_limit_W = 0.0;
  /// caps mode: the most the bus may feed back into the grid (net < 0 is export), W >= 0, a magnitude
  /// (config: export_limit_W). 0 = no export (a connection that must not feed back).
  double export_limit_W = 0.0;
  /// caps mode and caps windows: the period (s) over which the import cap holds (config:
  /// import_limit_average_s). 0 = the net power at every instant (the default); a divisor of 900 s, e.g. 900 = the
  /// average import over the wall clock's quarter hour, the figure utilities bill as the demand charge (docs/control.md
  /// "Quarter-hour average caps"): early in a quarter the import may pass the cap as long as the quarter's energy stays
  /// within cap x 900 s.
  double import_limit_average_s = 0.0;
  /// Valley filling (docs/control.md "Valley filling"): ahead of a caps window of the bus's schedule,
  /// charge the buffers to the energy that window needed on earlier days, plus fill_margin (config:
  /// valley_fill). Only buffers with a capacity_Wh count.
  bool valley_fill = true;
  /// Margin over the largest need of the window on the earlier days kept (fraction, 0..5) (fill_margin).
  double fill_margin = 0.25;
  /// How long before a caps window the buffers may start charging for it (s, > 0) (fill_lead_s): the
  /// charge is spread over this time, so a longer lead charges more gently.
  double fill_lead_s = 10800.0;
  /// The need assumed for a window not yet seen whole, Wh (0 = wait until it has been seen once)
  /// (fill_energy_Wh).
  double fill_energy_Wh = 0.0;
  /// Level shaving (docs/control.md "Shaving below the cap"): while a caps window is active, what the
  /// buffers hold beyond its need (and a reserve learned from the needs' spread) lowers the import
  /// below the window's cap, planned over the window's recorded profile (config: level_shaving).
  bool level_shaving = true;
  /// Set by the control core every cycle, never configured: the extra power (W, bus side) the buffers
  /// take now to prepare for the next caps window (0 = none). Laws read it through desired_eq_W().
  double fill_W = 0.0;
};

/// The equalization power (bus side, positive = into the buffers) that brings the net power
/// free_W + E into the aim band with the least |E|: target_W - free_W in balance mode; in caps mode
/// only the part of free_W outside the band, and 0 W inside it (the buffers rest). Valley filling's
/// fill_W is added in balance mode (the net aims at target_W + fill_W) and is what the buffers take
/// inside the band in caps mode, as far as the band allows. Every law steers by this instead of
/// target_W - free_W. Any thread.
constexpr double desired_eq_W(const BusParams& p, double free_W) noexcept {
  if (p.mode != BusMode::caps) return p.target_W + p.fill_W - free_W;
  if (free_W > p.import_limit_W) return p.import_limit_W - free_W;
  if (free_W < -p.export_limit_W) return -p.export_limit_W - free_W;
  // Inside the band: rest, or the fill, kept so that the net stays within the band.
  if (p.fill_W == 0.0) return 0.0;
  return p.fill_W > 0.0 ? (p.fill_W < p.import_limit_W - free_W ? p.fill_W : p.import_limit_W - free_W) : 0.0;
}

/// How far the net power is outside the aim band (signed; net - (target_W + fill_W) in balance mode, 0
/// inside the caps band). Any thread.
constexpr double residual_of(const BusParams& p, double net_W) noexcept {
  if (p.mode != BusMode::caps) return net_W - (p.target_W + p.fill_W);
  if (net_W > p.import_limit_W) return net_W - p.import_limit_W;
  if (net_W < -p.export_limit_W) return net_W + p.export_limit_W;
  return 0.0;
}

/// One bus parameter that may change at run time: one row of the run-time parameter table, from which
/// the configuration keys, the control API's `set`, the state file (state.json), the API's answers and
/// eqctl are driven. Its name is the config key, the API field and the state file's key alike.
/// Cross-field rules (tau_s within 10..20 s unless allow_any_tau) stay in validate(). Plain constant data.
/// A choice (`mode`) is a name everywhere outside the core (config, JSON, eqctl) and its index as the
/// number (runtime_value); only BusMode is a choice so far, a second enum would widen `choice`.
struct RuntimeParam {
  const char* name;
  const char* unit;           ///< "s", "W"; "" for a flag or a choice
  bool flag;                  ///< a boolean (JSON true/false) rather than a number
  double BusParams::*number;  ///< the field of a number (nullptr for a flag or a choice)
  bool BusParams::*boolean;   ///< the field of a flag (nullptr for a number or a choice)
  double min;                 ///< bounds of a number as the configuration accepts it
  double max;
  bool min_exclusive;                         ///< the value must be > min (tau_s > 0)
  const char* help;                           ///< one line for eqctl and the docs
  BusMode BusParams::*choice = nullptr;       ///< the field of a choice (nullptr otherwise)
  const char* const* choice_names = nullptr;  ///< a choice's names, index = value
  std::size_t choice_count = 0;
};

/// The run-time parameter table. A new settable parameter is one row here (docs/architecture.md).
inline constexpr std::array<RuntimeParam, 16> kRuntimeParams{{
    {"tau_s", "s", false, &BusParams::tau_s, nullptr, 0.0, std::numeric_limits<double>::infinity(), true,
     "time constant of the damped actuation (10..20 s unless allow_any_tau)"},
    {"deadband_W", "W", false, &BusParams::deadband_W, nullptr, 0.0, kMaxPower_W, false,
     "changes of the desired total smaller than this are ignored"},
    {"target_W", "W", false, &BusParams::target_W, nullptr, -kMaxPower_W, kMaxPower_W, false,
     "net power the bus aims for"},
    {"use_forecast", "", true, nullptr, &BusParams::use_forecast, 0.0, 0.0, false,
     "steer by the announced or learned free power ahead"},
    {"learn_forecast", "", true, nullptr, &BusParams::learn_forecast, 0.0, 0.0, false,
     "learn each test channel's power from its own history"},
    {"stat_forecast", "", true, nullptr, &BusParams::stat_forecast, 0.0, 0.0, false,
     "law planned: plan over a statistical forecast of the free power where nothing is announced or learned"},
    {"plan_travel_weight_s", "s", false, &BusParams::plan_travel_weight_s, nullptr, 0.0, 60.0, false,
     "law planned: W·s of grid exchange one W of setpoint travel costs in the plan (larger: calmer)"},
    {"mode", "", false, nullptr, nullptr, 0.0, 0.0, false,
     "balance (net power to target_W) or caps (net power within -export_limit_W..import_limit_W)", &BusParams::mode,
     kBusModeNames.data(), kBusModeNames.size()},
    {"import_limit_W", "W", false, &BusParams::import_limit_W, nullptr, 0.0, kMaxPower_W, false,
     "caps mode: the most the bus may draw from the grid"},
    {"export_limit_W", "W", false, &BusParams::export_limit_W, nullptr, 0.0, kMaxPower_W, false,
     "caps mode: the most the bus may feed back into the grid"},
    {"import_limit_average_s", "s", false, &BusParams::import_limit_average_s, nullptr, 0.0, 900.0, false,
     "caps: 0 = cap the net power now; a divisor of 900 s = cap its average over that part of the quarter hour"},
    {"valley_fill", "", true, nullptr, &BusParams::valley_fill, 0.0, 0.0, false,
     "charge the buffers ahead of a caps window for the energy it needed on earlier days"},
    {"fill_margin", "", false, &BusParams::fill_margin, nullptr, 0.0, 5.0, false,
     "valley filling: margin over the window's largest need, a fraction of the smallest kept (charged once)"},
    {"fill_lead_s", "s", false, &BusParams::fill_lead_s, nullptr, 0.0, 7.0 * 86400.0, true,
     "valley filling: how long before a caps window the buffers may start charging for it"},
    {"fill_energy_Wh", "Wh", false, &BusParams::fill_energy_Wh, nullptr, 0.0, 1.0e9, false,
     "valley filling: the need assumed for a window not yet seen whole (0 = wait for one)"},
    {"level_shaving", "", true, nullptr, &BusParams::level_shaving, 0.0, 0.0, false,
     "caps window: hold the import below its cap (not below the month's peak so far) with what the buffers store "
     "beyond its need"},
}};

/// The row named `name`, or nullptr. Any thread.
constexpr const RuntimeParam* find_runtime_param(std::string_view name) noexcept {
  for (const RuntimeParam& r : kRuntimeParams)
    if (name == r.name) return &r;
  return nullptr;
}

/// A parameter's value as a number (a flag as 0 or 1, a choice as its index). Any thread.
constexpr double runtime_value(const RuntimeParam& r, const BusParams& p) noexcept {
  if (r.choice != nullptr) return static_cast<double>(p.*r.choice);
  return r.flag ? (p.*r.boolean ? 1.0 : 0.0) : p.*r.number;
}

/// Sets a parameter from a number (a flag from 0 or non-zero, a choice from its index; an index out
/// of range is stored as is and refused by validate()). Any thread.
constexpr void set_runtime_value(const RuntimeParam& r, BusParams& p, double v) noexcept {
  if (r.choice != nullptr)
    p.*r.choice = static_cast<BusMode>(v >= 0.0 && v < 256.0 ? static_cast<std::uint8_t>(v) : 255);
  else if (r.flag)
    p.*r.boolean = v != 0.0;
  else
    p.*r.number = v;
}

/// The index of choice `name` in row r, or -1 (not a choice, or no such name). Any thread.
constexpr int find_runtime_choice(const RuntimeParam& r, std::string_view name) noexcept {
  for (std::size_t i = 0; i < r.choice_count; ++i)
    if (name == r.choice_names[i]) return static_cast<int>(i);
  return -1;
}

/// The name of choice index v of row r, or nullptr (not a choice, or out of range). Any thread.
constexpr const char* runtime_choice_name(const RuntimeParam& r, double v) noexcept {
  if (r.choice == nullptr || !(v >= 0.0) || v >= static_cast<double>(r.choice_count)) return nullptr;
  return r.choice_names[static_cast<std::size_t>(v)];
}

/// Limits and window of one equalization channel (buffer battery). All magnitudes positive.
struct BufferLimits {
  double max_charge_W = 0.0;
  double max_discharge_W = 0.0;
  double max_charge_A = 0.0;
  double max_discharge_A = 0.0;
  double v_min_V = 0.0;        ///< never discharge below this voltage
  double v_max_V = 0.0;        ///< never charge above this voltage
  double hysteresis_V = 0.05;  ///< after hitting a limit, re-enter only this far inside the window
  /// Efficiency of the buffer's converter (0.5..1). eqd balances bus-side power, but controllers
  /// report battery-side power: charging at P draws P / efficiency from the bus, discharging at P
  /// delivers P * efficiency. Without it the converter losses would stay in the grid.
  double efficiency = 1.0;
  /// Usable energy of the battery between v_min_V and v_max_V, Wh (0 = not known). Valley filling
  /// counts the stored energy of the buffers that have one (docs/control.md "Valley filling").
  double capacity_Wh = 0.0;
  /// A window in state of charge (%), applied besides the voltage window when the controller reports
  /// the battery's state of charge (Sample::soc_pct; SunSpec storage): never charge at or above
  /// soc_max_pct, never discharge at or below soc_min_pct. 0..100 (the default) = the device's own.
  double soc_min_pct = 0.0;
  double soc_max_pct = 100.0;
};

/// Bus-side power of a battery-side power through a converter of efficiency `eff`. Any thread.
constexpr double to_bus_W(double battery_W, double eff) noexcept {
  return battery_W >= 0.0 ? battery_W / eff : battery_W * eff;
}
/// Battery-side power that draws/delivers `bus_W` on the bus. Any thread.
constexpr double to_battery_W(double bus_W, double eff) noexcept { return bus_W >= 0.0 ? bus_W * eff : bus_W / eff; }

/// Whether stat_forecast takes effect: only with law planned and use_forecast (docs/control.md
/// "Statistical forecasts"); elsewhere the setting is kept and does nothing. Any thread.
[[nodiscard]] constexpr bool stat_forecast_acts(const BusParams& p) noexcept {
  return p.stat_forecast && p.use_forecast && p.law == LawKind::planned;
}

/// Returns nullptr when p is valid, else a static message naming the offending field. Powers are
/// bounded by kMaxPower_W. allow_any_tau: accept tau_s outside 10..20 s (the user overrode the nominal range).
const char* validate(const BusParams& p, bool allow_any_tau) noexcept;

/// Returns nullptr when l is valid, else a static message naming the offending field. Powers,
/// voltages and currents are bounded by kMaxPower_W, kMaxVoltage_V and kMaxCurrent_A.
const char* validate(const BufferLimits& l) noexcept;

}  // namespace eqd::core
