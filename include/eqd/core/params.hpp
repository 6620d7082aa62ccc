#pragma once
/// @file params.hpp
/// Plain parameter structs of the control law. Trivially copyable so that they travel through the
/// request queue and the snapshot. Units are in the names; config keys carry the same names.

#include <array>
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

/// Control parameters of one bus. Validated by validate() before they reach the control thread.
struct BusParams {
  /// The bus's control law (config: law); not settable at run time. adaptive by default: on loads
  /// nobody announces it leaves the least in the grid of eqd's laws at no more flips (docs/control.md).
  LawKind law = LawKind::adaptive;
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
};

/// One bus parameter that may change at run time: one row of the run-time parameter table, from which
/// the configuration keys, the control API's `set`, the state file (state.json), the API's answers and
/// eqctl are driven. Its name is the config key, the API field and the state file's key alike.
/// Cross-field rules (tau_s within 10..20 s unless allow_any_tau) stay in validate(). Plain constant data.
struct RuntimeParam {
  const char* name;
  const char* unit;           ///< "s", "W"; "" for a flag
  bool flag;                  ///< a boolean (JSON true/false) rather than a number
  double BusParams::*number;  ///< the field of a number (nullptr for a flag)
  bool BusParams::*boolean;   ///< the field of a flag (nullptr for a number)
  double min;                 ///< bounds of a number as the configuration accepts it
  double max;
  bool min_exclusive;  ///< the value must be > min (tau_s > 0)
  const char* help;    ///< one line for eqctl and the docs
};

/// The run-time parameter table. A new settable parameter is one row here (docs/architecture.md).
inline constexpr std::array<RuntimeParam, 5> kRuntimeParams{{
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
}};

/// The row named `name`, or nullptr. Any thread.
constexpr const RuntimeParam* find_runtime_param(std::string_view name) noexcept {
  for (const RuntimeParam& r : kRuntimeParams)
    if (name == r.name) return &r;
  return nullptr;
}

/// A parameter's value as a number (a flag as 0 or 1). Any thread.
constexpr double runtime_value(const RuntimeParam& r, const BusParams& p) noexcept {
  return r.flag ? (p.*r.boolean ? 1.0 : 0.0) : p.*r.number;
}

/// Sets a parameter from a number (a flag from 0 or non-zero). Any thread.
constexpr void set_runtime_value(const RuntimeParam& r, BusParams& p, double v) noexcept {
  if (r.flag)
    p.*r.boolean = v != 0.0;
  else
    p.*r.number = v;
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
};

/// Bus-side power of a battery-side power through a converter of efficiency `eff`. Any thread.
constexpr double to_bus_W(double battery_W, double eff) noexcept {
  return battery_W >= 0.0 ? battery_W / eff : battery_W * eff;
}
/// Battery-side power that draws/delivers `bus_W` on the bus. Any thread.
constexpr double to_battery_W(double bus_W, double eff) noexcept { return bus_W >= 0.0 ? bus_W * eff : bus_W / eff; }

/// Returns nullptr when p is valid, else a static message naming the offending field. Powers are
/// bounded by kMaxPower_W. allow_any_tau: accept tau_s outside 10..20 s (the user overrode the nominal range).
const char* validate(const BusParams& p, bool allow_any_tau) noexcept;

/// Returns nullptr when l is valid, else a static message naming the offending field. Powers,
/// voltages and currents are bounded by kMaxPower_W, kMaxVoltage_V and kMaxCurrent_A.
const char* validate(const BufferLimits& l) noexcept;

}  // namespace eqd::core
