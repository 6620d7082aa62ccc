// Allocation of a bus's total equalization command to its buffers.
#include "eqd/core/allocator.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace eqd::core {

namespace {
// Share of the window over which headroom tapers to zero at either limit.
constexpr double kTaperFraction = 0.03;
}  // namespace

BufferLimits effective_limits(const BufferLimits& lim, const DeviceLimits& dev) noexcept {
  BufferLimits out = lim;
  // NaN (not reported) keeps the configured limit; a negative report is taken as 0 W, never as more.
  if (!std::isnan(dev.max_charge_W))
    out.max_charge_W = std::min(out.max_charge_W, std::max(static_cast<double>(dev.max_charge_W), 0.0));
  if (!std::isnan(dev.max_discharge_W))
    out.max_discharge_W = std::min(out.max_discharge_W, std::max(static_cast<double>(dev.max_discharge_W), 0.0));
  return out;
}

Headroom compute_headroom(const BufferLimits& lim, double voltage_V, double soc_pct, WindowState& w) noexcept {
  // Hysteresis: once a limit is reached the direction stays blocked until the voltage has come back
  // hysteresis_V inside the window, so a battery resting at its limit does not toggle on and off.
  if (voltage_V >= lim.v_max_V) {
    w.charge_blocked = true;
  } else if (voltage_V <= lim.v_max_V - lim.hysteresis_V) {
    w.charge_blocked = false;
  }
  if (voltage_V <= lim.v_min_V) {
    w.discharge_blocked = true;
  } else if (voltage_V >= lim.v_min_V + lim.hysteresis_V) {
    w.discharge_blocked = false;
  }
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const double v = std::max(voltage_V, 0.0);
  Headroom h;
  if (!w.charge_blocked) {
    const double by_current = lim.max_charge_A > 0.0 ? lim.max_charge_A * v : kInf;
    h.charge_W = std::min(lim.max_charge_W, by_current);
  }
  if (!w.discharge_blocked) {
    const double by_current = lim.max_discharge_A > 0.0 ? lim.max_discharge_A * v : kInf;
    h.discharge_W = std::min(lim.max_discharge_W, by_current);
  }
  const double span = lim.v_max_V - lim.v_min_V;
  // Taper: within the last few percent of the window the headroom shrinks linearly to zero at the
  // limit, so a battery approaches its limit gently instead of being cut off after crossing it (the
  // converter's dead time and the sample age would otherwise carry it past the limit).
  const double taper_V = std::max(lim.hysteresis_V, kTaperFraction * span);
  if (taper_V > 0.0) {
    h.charge_W *= std::clamp((lim.v_max_V - voltage_V) / taper_V, 0.0, 1.0);
    h.discharge_W *= std::clamp((voltage_V - lim.v_min_V) / taper_V, 0.0, 1.0);
  }
  h.window_pos = span > 0.0 ? std::clamp((voltage_V - lim.v_min_V) / span, 0.0, 1.0) : 0.5;
  if (!std::isfinite(soc_pct)) {
    w.soc_charge_blocked = w.soc_discharge_blocked = false;
    return h;
  }
  // The state-of-charge window, where the controller reports one: the same rules in percent.
  if (soc_pct >= lim.soc_max_pct) {
    w.soc_charge_blocked = true;
  } else if (soc_pct <= lim.soc_max_pct - kSocHysteresis_pct) {
    w.soc_charge_blocked = false;
  }
  if (soc_pct <= lim.soc_min_pct) {
    w.soc_discharge_blocked = true;
  } else if (soc_pct >= lim.soc_min_pct + kSocHysteresis_pct) {
    w.soc_discharge_blocked = false;
  }
  if (w.soc_charge_blocked) h.charge_W = 0.0;
  if (w.soc_discharge_blocked) h.discharge_W = 0.0;
  const double soc_span = lim.soc_max_pct - lim.soc_min_pct;
  const double taper_pct = std::max(kSocHysteresis_pct, kTaperFraction * soc_span);
  h.charge_W *= std::clamp((lim.soc_max_pct - soc_pct) / taper_pct, 0.0, 1.0);
  h.discharge_W *= std::clamp((soc_pct - lim.soc_min_pct) / taper_pct, 0.0, 1.0);
  h.window_pos = soc_span > 0.0 ? std::clamp((soc_pct - lim.soc_min_pct) / soc_span, 0.0, 1.0) : 0.5;
  return h;
}

double allocate(double total_W, const Headroom* headroom, std::size_t n, double* out_W, double* scratch) noexcept {
  for (std::size_t i = 0; i < n; ++i) out_W[i] = 0.0;
  if (n == 0 || total_W == 0.0 || !std::isfinite(total_W)) return 0.0;
  const bool charge = total_W > 0.0;
  const double want = std::abs(total_W);

  // Weight: headroom times a preference for the buffer whose window has most room in this direction,
  // so the emptiest charge first and the fullest discharge first and windows drift to their middle.
  // The small floor keeps a buffer near its edge in play when the others are saturated.
  double* cap = scratch;
  for (std::size_t i = 0; i < n; ++i) {
    cap[i] = charge ? headroom[i].charge_W : headroom[i].discharge_W;
  }
  double remaining = want;
  // Water-filling: distribute by weight, saturate those that hit their headroom, repeat with the rest.
  // Each round saturates at least one buffer or finishes, so at most n rounds.
  for (std::size_t round = 0; round < n && remaining > 1e-9; ++round) {
    double weight_sum = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      if (cap[i] - std::abs(out_W[i]) <= 1e-12) continue;
      const double room = charge ? 1.0 - headroom[i].window_pos : headroom[i].window_pos;
      weight_sum += cap[i] * (room + 0.05);
    }
    if (weight_sum <= 0.0) break;
    bool saturated_any = false;
    double given = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double left = cap[i] - std::abs(out_W[i]);
      if (left <= 1e-12) continue;
      const double room = charge ? 1.0 - headroom[i].window_pos : headroom[i].window_pos;
      const double share = remaining * cap[i] * (room + 0.05) / weight_sum;
      const double take = std::min(share, left);
      if (take >= left) saturated_any = true;
      out_W[i] += charge ? take : -take;
      given += take;
    }
    remaining -= given;
    if (!saturated_any) break;
  }
  double total = 0.0;
  for (std::size_t i = 0; i < n; ++i) total += out_W[i];
  return total;
}

}  // namespace eqd::core
