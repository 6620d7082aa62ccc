// Validation and names of the core's plain types. No allocation: messages are static strings.
#include <cmath>
#include <cstring>

#include "eqd/core/allocator.hpp"
#include "eqd/core/bus_law.hpp"
#include "eqd/core/control_core.hpp"
#include "eqd/core/forecast_path.hpp"
#include "eqd/core/params.hpp"
#include "eqd/core/snapshot.hpp"

namespace eqd::core {

namespace {
bool finite_nonneg(double v) { return std::isfinite(v) && v >= 0.0; }
bool within(double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; }
}  // namespace

// Messages carry the bounds as text: they are static strings (no allocation on any thread), so the
// numbers are spelled out; a static_assert keeps them in step with the constants.
static_assert(kMaxPower_W == 1e7 && kMaxVoltage_V == 2000.0 && kMaxCurrent_A == 1e4,
              "update the messages of validate() to the new bounds");

const char* validate(const BusParams& p, bool allow_any_tau) noexcept {
  if (!within(p.target_W, -kMaxPower_W, kMaxPower_W)) return "target_W: must be within -1e7..1e7 W (|power| <= 10 MW)";
  if (std::strcmp(to_string(p.law), "unknown") == 0) return "law: not a registered control law";
  if (p.mode != BusMode::balance && p.mode != BusMode::caps) return "mode: must be balance or caps";
  if (!within(p.import_limit_W, 0.0, kMaxPower_W)) return "import_limit_W: must be within 0..1e7 W (10 MW)";
  if (!within(p.export_limit_W, 0.0, kMaxPower_W))
    return "export_limit_W: must be within 0..1e7 W (10 MW; a magnitude: export is net power below -export_limit_W)";
  if (!within(p.import_limit_average_s, 0.0, 900.0) ||
      p.import_limit_average_s != std::floor(p.import_limit_average_s) ||
      (p.import_limit_average_s > 0.0 && std::fmod(900.0, p.import_limit_average_s) != 0.0))
    return "import_limit_average_s: must be 0 (the net power now) or a whole number of seconds dividing 900 (e.g. 300, "
           "900: the quarter hour)";
  if (!std::isfinite(p.tau_s) || p.tau_s <= 0.0) return "tau_s: must be > 0";
  if (!allow_any_tau && (p.tau_s < 10.0 || p.tau_s > 20.0))
    return "tau_s: must be within 10..20 s (set allow_any_tau: true to override)";
  if (!within(p.deadband_W, 0.0, kMaxPower_W)) return "deadband_W: must be within 0..1e7 W (10 MW)";
  if (!within(p.slew_W_per_s, 0.0, kMaxPower_W)) return "slew_W_per_s: must be within 0..1e7 W/s (10 MW/s; 0 = auto)";
  if (!finite_nonneg(p.flip_dwell_s)) return "flip_dwell_s: must be >= 0";
  if (!std::isfinite(p.update_interval_s) || p.update_interval_s <= 0.0 || p.update_interval_s > p.tau_s)
    return "update_interval_s: must be > 0 and <= tau_s";
  if (!finite_nonneg(p.trim_tau_s)) return "trim_tau_s: must be >= 0 (0 = off)";
  if (!std::isfinite(p.trim_max_fraction) || p.trim_max_fraction < 0.0 || p.trim_max_fraction > 0.5)
    return "trim_max_fraction: must be within 0..0.5";
  if (!finite_nonneg(p.hold_max_s)) return "hold_max_s: must be >= 0";
  if (p.max_age_ms <= 0) return "max_age_ms: must be > 0";
  if (p.lease_ms == 0) return "lease_ms: must be > 0";
  if (!std::isfinite(p.forecast_horizon_s) || p.forecast_horizon_s < 1.0 ||
      p.forecast_horizon_s > ForecastPath::kMaxHorizon_s)
    return "forecast_horizon_s: must be within 1..120 s";
  if (!within(p.plan_travel_weight_s, 0.0, 60.0)) return "plan_travel_weight_s: must be within 0..60 s";
  if (!within(p.fill_margin, 0.0, 5.0)) return "fill_margin: must be within 0..5";
  if (!std::isfinite(p.fill_lead_s) || p.fill_lead_s <= 0.0 || p.fill_lead_s > 7.0 * 86400.0)
    return "fill_lead_s: must be > 0 and at most 604800 s (a week)";
  if (!within(p.fill_energy_Wh, 0.0, 1.0e9)) return "fill_energy_Wh: must be within 0..1e9 Wh";
  if (!within(p.fill_W, -kMaxPower_W, kMaxPower_W)) return "fill_W: must be within -1e7..1e7 W";
  return nullptr;
}

const char* validate(const BufferLimits& l) noexcept {
  if (!within(l.max_charge_W, 0.0, kMaxPower_W)) return "max_charge_W: must be within 0..1e7 W (10 MW)";
  if (!within(l.max_discharge_W, 0.0, kMaxPower_W)) return "max_discharge_W: must be within 0..1e7 W (10 MW)";
  if (l.max_charge_W == 0.0 && l.max_discharge_W == 0.0)
    return "max_charge_W/max_discharge_W: at least one must be > 0";
  if (!within(l.max_charge_A, 0.0, kMaxCurrent_A))
    return "max_charge_A: must be within 0..10000 A (10 kA; 0 = no current limit)";
  if (!within(l.max_discharge_A, 0.0, kMaxCurrent_A))
    return "max_discharge_A: must be within 0..10000 A (10 kA; 0 = no current limit)";
  if (!within(l.v_min_V, 0.0, kMaxVoltage_V)) return "v_min_V: must be within 0..2000 V";
  if (!within(l.v_max_V, 0.0, kMaxVoltage_V)) return "v_max_V: must be within 0..2000 V";
  if (!(l.v_min_V < l.v_max_V)) return "v_min_V: must be below v_max_V";
  if (!finite_nonneg(l.hysteresis_V) || 2.0 * l.hysteresis_V >= l.v_max_V - l.v_min_V)
    return "hysteresis_V: must be >= 0 and less than half the window";
  if (!std::isfinite(l.efficiency) || l.efficiency < 0.5 || l.efficiency > 1.0)
    return "efficiency: must be within 0.5..1";
  if (!within(l.capacity_Wh, 0.0, 1.0e9)) return "capacity_Wh: must be within 0..1e9 Wh (0 = not known)";
  if (!within(l.soc_min_pct, 0.0, 100.0) || !within(l.soc_max_pct, 0.0, 100.0) ||
      !(l.soc_max_pct - l.soc_min_pct > 2.0 * kSocHysteresis_pct))
    return "soc_min_pct/soc_max_pct: must be within 0..100 % with soc_min_pct more than 2 % below soc_max_pct";
  return nullptr;
}

const char* to_string(ChannelState s) noexcept {
  switch (s) {
    case ChannelState::idle:
      return "idle";
    case ChannelState::running:
      return "running";
    case ChannelState::paused:
      return "paused";
    case ChannelState::fault:
      return "fault";
    case ChannelState::equalizing:
      return "equalizing";
    case ChannelState::offline:
      return "offline";
  }
  return "unknown";
}

const char* to_string(BusStatus s) noexcept {
  switch (s) {
    case BusStatus::ok:
      return "ok";
    case BusStatus::idle:
      return "idle";
    case BusStatus::holding:
      return "holding";
    case BusStatus::ramp_down:
      return "ramp_down";
    case BusStatus::saturated:
      return "saturated";
  }
  return "unknown";
}

const char* to_string(Role r) noexcept {
  switch (r) {
    case Role::test:
      return "test";
    case Role::pending:
      return "pending";
    case Role::equalization:
      return "equalization";
    case Role::releasing:
      return "releasing";
  }
  return "unknown";
}

const char* to_string(Health h) noexcept {
  switch (h) {
    case Health::ok:
      return "ok";
    case Health::stale:
      return "stale";
    case Health::invalid:
      return "invalid";
    case Health::fault:
      return "fault";
    case Health::offline:
      return "offline";
  }
  return "unknown";
}

const char* to_string(ResponseStatus s) noexcept {
  switch (s) {
    case ResponseStatus::ok:
      return "ok";
    case ResponseStatus::pending:
      return "pending";
    case ResponseStatus::refused_running:
      return "refused: the channel is running a test";
    case ResponseStatus::refused_fault:
      return "refused: the channel is in fault";
    case ResponseStatus::refused_invalid:
      return "refused: invalid channel or parameters";
    case ResponseStatus::already:
      return "nothing to do";
  }
  return "unknown";
}

void Histogram::observe(double v_s) noexcept {
  std::size_t i = 0;
  while (i < kBounds_s.size() && v_s > kBounds_s[i]) ++i;
  ++counts[i];
  sum_s += v_s;
  ++count;
}

}  // namespace eqd::core
