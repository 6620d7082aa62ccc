/// @file sunspec_behaviour.cpp
/// What a simulated SunSpec device does over time and on writes: the storage device following model
/// 124's rate controls (ramp, revert timeout, state-of-charge limits), the meter's accumulators, and
/// the validation of writes (sunspec_image.hpp; docs/devices.md, "SunSpec simulator").

#include <algorithm>
#include <cmath>
#include <limits>

#include "sunspec_image.hpp"

namespace eqd::sim::sunspec::detail {

namespace {

// Model 124 / 802 ChaSt values (enum16 of the definitions).
constexpr std::uint16_t kEmpty = 2, kDischarging = 3, kCharging = 4, kFull = 5, kHolding = 6;
constexpr double kIdle_W = 0.5;  // below this the battery counts as holding

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::uint16_t charge_status(double charge_W, double soc_pct) {
  if (charge_W > kIdle_W) return kCharging;
  if (charge_W < -kIdle_W) return kDischarging;
  if (soc_pct >= 100.0 - 1e-9) return kFull;
  if (soc_pct <= 1e-9) return kEmpty;
  return kHolding;
}

}  // namespace

void DeviceImage::count_request() {
  const std::lock_guard<std::mutex> lock(mutex_);
  ++st_.requests;
}

void DeviceImage::tick(Clock::time_point now) {
  const std::lock_guard<std::mutex> lock(mutex_);
  advance(now);
}

void DeviceImage::read(Clock::time_point now, std::uint32_t address, std::uint32_t count, std::uint16_t* out) {
  const std::lock_guard<std::mutex> lock(mutex_);
  advance(now);
  encode_dynamic();
  std::copy_n(regs_.begin() + (address - cfg_.base), count, out);
}

void DeviceImage::advance(Clock::time_point now) {
  const double dt_s = std::max(0.0, seconds(now - last_));
  last_ = now;
  if (cfg_.faults.scale_factor_toggle_ms > 0) {
    const auto phase = (std::chrono::duration_cast<std::chrono::milliseconds>(now - start_).count() /
                        cfg_.faults.scale_factor_toggle_ms) %
                           2 ==
                       1;
    if (phase != toggled_) {
      toggled_ = phase;
      for (const ScaleFactor& sf : scale_factors_)
        *reg(sf.address) = static_cast<std::uint16_t>(static_cast<std::int16_t>(sf.value + (phase ? 1 : 0)));
    }
  }
  if (cfg_.kind == DeviceKind::storage) {
    advance_storage(dt_s, now);
  } else {
    if (meter_W_ > 0)
      st_.import_Wh += meter_W_ * dt_s / 3600.0;
    else
      st_.export_Wh += -meter_W_ * dt_s / 3600.0;
  }
}

void DeviceImage::advance_storage(double dt_s, Clock::time_point now) {
  const StorageSpec& s = cfg_.storage;
  // Energy of the step that just ended, at the power held during it.
  st_.soc_pct = std::clamp(st_.soc_pct + charge_W_ * dt_s / 3600.0 / s.capacity_Wh * 100.0, 0.0, 100.0);
  if (charge_W_ > 0)
    st_.import_Wh += charge_W_ * dt_s / 3600.0;
  else
    st_.export_Wh += -charge_W_ * dt_s / 3600.0;

  // Revert timeout: rate controls not rewritten within InOutWRte_RvrtTms fall back to the device's
  // own mode (StorCtl_Mod 0, rates 100 %): 0 W here.
  const auto mod = static_cast<std::uint16_t>(get(124, "StorCtl_Mod", 0.0));
  const double revert_s = get(124, "InOutWRte_RvrtTms", 0.0);
  if (mod != 0 && revert_s > 0 && seconds(now - last_rate_write_) >= revert_s) {
    put_raw(124, "StorCtl_Mod", 0);
    put(124, "InWRte", 100.0);
    put(124, "OutWRte", 100.0);
    ++st_.reverts;
  }
  const auto bits = static_cast<std::uint16_t>(get(124, "StorCtl_Mod", 0.0));

  // Target: the device's own mode is 0 W; an active charge limit (bit 0) bounds it from above by
  // InWRte % of WChaMax, an active discharge limit (bit 1) from below by -OutWRte % of WChaMax (model
  // 124 has no WDisChaMax point; WChaMax is the reference of both). A negative InWRte therefore forces
  // a discharge, a negative OutWRte a charge; an empty window resolves to its charge-side bound.
  const double w_max = std::clamp(get(124, "WChaMax", s.max_charge_W), 0.0, s.max_charge_W);
  const double inf = std::numeric_limits<double>::infinity();
  const double upper = (bits & 1U) ? get(124, "InWRte", 100.0) / 100.0 * w_max : inf;
  const double lower = (bits & 2U) ? -get(124, "OutWRte", 100.0) / 100.0 * w_max : -inf;
  double target = std::min(upper, std::max(lower, 0.0));
  const double battery_max = s.battery_charge_W > 0.0 ? std::min(w_max, s.battery_charge_W) : w_max;
  target = std::clamp(target, -s.max_discharge_W, battery_max);
  const double reserve_pct = get(124, "MinRsvPct", 0.0);
  if (st_.soc_pct >= 100.0) target = std::min(target, 0.0);
  if (st_.soc_pct <= reserve_pct) target = std::max(target, 0.0);

  // Ramp: linear over InOutWRte_RmpTms from where a new target was set; without a ramp time, at most
  // WChaGra (towards charging) or WDisChaGra (towards discharging) % of WChaMax per second.
  if (std::fabs(target - ramp_to_W_) > 1e-9) {
    ramp_from_W_ = charge_W_;
    ramp_to_W_ = target;
    ramp_start_ = now;
  }
  const double ramp_s = get(124, "InOutWRte_RmpTms", 0.0);
  if (ramp_s > 0) {
    const double f = std::min(1.0, seconds(now - ramp_start_) / ramp_s);
    charge_W_ = ramp_from_W_ + (ramp_to_W_ - ramp_from_W_) * f;
  } else {
    const double grad = get(124, target > charge_W_ ? "WChaGra" : "WDisChaGra", s.ramp_pct_per_s);
    const double step = std::max(grad, 0.0) / 100.0 * std::max(w_max, 1.0) * dt_s;
    charge_W_ += std::clamp(target - charge_W_, -step, step);
  }
  // A full battery takes nothing more, an empty one (at its reserve) gives nothing more, whatever the ramp.
  if (st_.soc_pct >= 100.0 && charge_W_ > 0) charge_W_ = 0.0;
  if (st_.soc_pct <= reserve_pct && charge_W_ < 0) charge_W_ = 0.0;
}

void DeviceImage::encode_dynamic() {
  if (cfg_.kind == DeviceKind::storage)
    encode_storage();
  else
    encode_meter();
}

void DeviceImage::encode_storage() {
  const StorageSpec& s = cfg_.storage;
  const double p = charge_W_;  // + = charging; SunSpec AC and battery power: + = discharging
  for (const std::uint16_t inv : {std::uint16_t{101}, std::uint16_t{103}, std::uint16_t{113}}) {
    // 101: single phase (scaled integers); 103: three phases (scaled integers); 113: three phases (float32)
    const double phases = inv == 101 ? 1.0 : 3.0;
    const double phase_A = std::fabs(p) / phases / 230.0;
    put(inv, "A", phases * phase_A);
    for (const char* n : {"AphA", "AphB", "AphC"}) put(inv, n, phase_A);
    for (const char* n : {"PhVphA", "PhVphB", "PhVphC"}) put(inv, n, 230.0);
    put(inv, "W", -p);
    put(inv, "Hz", 50.0);
    put(inv, "VA", std::fabs(p));
    put(inv, "WH", st_.export_Wh);
    put(inv, "DCV", s.battery_voltage_V);
    put(inv, "DCW", -p);
    put(inv, "TmpCab", 25.0);
    put_raw(inv, "St", std::fabs(p) > kIdle_W ? 4 : 8);  // MPPT (operating) / STANDBY
  }
  const std::uint16_t cha_st = charge_status(p, st_.soc_pct);
  const double ah = s.capacity_Wh / s.battery_voltage_V;
  put(124, "ChaState", st_.soc_pct);
  put(124, "StorAval", std::max(0.0, st_.soc_pct - get(124, "MinRsvPct", 0.0)) / 100.0 * ah);
  put(124, "InBatV", s.battery_voltage_V);
  put_raw(124, "ChaSt", cha_st);
  put(802, "SoC", st_.soc_pct);
  put_raw(802, "ChaSt", cha_st);
  put_raw(802, "Hb", static_cast<std::uint32_t>(seconds(last_ - start_)) % 0xFFFFU);
  put(802, "V", s.battery_voltage_V);
  put(802, "A", -p / s.battery_voltage_V);
  put(802, "W", -p);
}

void DeviceImage::encode_meter() {
  const MeterSpec& m = cfg_.meter;
  for (const std::uint16_t id : {std::uint16_t{201}, std::uint16_t{203}, std::uint16_t{204}}) {
    if (instance(id) == nullptr) continue;
    const double phases = id == 201 ? 1.0 : 3.0;
    const double w = meter_W_ / phases;
    const double ll_V = m.voltage_V * std::sqrt(3.0);
    put(id, "A", meter_W_ / m.voltage_V);
    put(id, "PhV", m.voltage_V);
    put(id, "PPV", ll_V);
    put(id, "Hz", m.frequency_Hz);
    put(id, "W", meter_W_);
    put(id, "VA", std::fabs(meter_W_));
    put(id, "TotWhImp", st_.import_Wh);
    put(id, "TotWhExp", st_.export_Wh);
    for (const char* ph : {"A", "B", "C"}) {
      const std::string s(ph);
      put(id, "Aph" + s, w / m.voltage_V);
      put(id, "PhVph" + s, m.voltage_V);
      put(id, "Wph" + s, w);
      put(id, "VAph" + s, std::fabs(w));
      put(id, "TotWhImpPh" + s, st_.import_Wh / phases);
      put(id, "TotWhExpPh" + s, st_.export_Wh / phases);
    }
    for (const char* ll : {"PhVphAB", "PhVphBC", "PhVphCA"}) put(id, ll, ll_V);
  }
}

WriteResult DeviceImage::check_value(const Instance& in, const Point& p, const std::vector<std::uint16_t>& cand,
                                     std::uint32_t cand_base) const {
  const std::uint16_t r = cand[in.start + p.offset - cand_base];
  const auto v = [&] {
    return (p.type == PointType::int16 ? static_cast<std::int16_t>(r) : r) * std::pow(10.0, scale_of(in, p));
  };
  const auto bad = WriteResult::illegal_value;
  if (p.size == 1 && r == not_implemented_word(p.type, 0)) return bad;  // nobody writes "not implemented"
  const std::string_view n = p.name;
  switch (in.def->id) {
    case 1:
      if (n == "DA") return r >= 1 && r <= 247 ? WriteResult::ok : bad;
      break;
    case 124:
      if (n == "WChaMax") return v() >= 0 && v() <= cfg_.storage.max_charge_W ? WriteResult::ok : bad;
      if (n == "WChaGra" || n == "WDisChaGra") return v() > 0 ? WriteResult::ok : bad;
      if (n == "StorCtl_Mod") return (r & ~0x3U) == 0 ? WriteResult::ok : bad;
      if (n == "MinRsvPct") return v() >= 0 && v() <= 100 ? WriteResult::ok : bad;
      if (n == "InWRte" || n == "OutWRte") return std::fabs(v()) <= 100.0 + 1e-9 ? WriteResult::ok : bad;
      if (n == "ChaGriSet") return r <= 1 ? WriteResult::ok : bad;
      break;
    case 802:
      if (n == "AlmRst") return r <= 1 ? WriteResult::ok : bad;
      if (n == "SetOp") return r == 1 || r == 2 ? WriteResult::ok : bad;
      if (n == "SetInvState") return r >= 1 && r <= 3 ? WriteResult::ok : bad;
      break;
    default:
      break;
  }
  return WriteResult::ok;  // timeouts, heartbeats: any value but "not implemented"
}

WriteResult DeviceImage::write(Clock::time_point now, std::uint32_t address, const std::vector<std::uint16_t>& values) {
  const std::lock_guard<std::mutex> lock(mutex_);
  const auto end = address + static_cast<std::uint32_t>(values.size());
  const auto refuse = [&](WriteResult w) {
    ++st_.rejected_writes;
    return w;
  };
  if (values.empty() || address < cfg_.base || end > end_) return refuse(WriteResult::illegal_address);
  advance(now);
  struct Touched {
    const Instance* in;
    const Point* p;
  };
  std::vector<Touched> touched;
  for (std::uint32_t a = address; a < end;) {
    const Point* hit = nullptr;
    const Instance* owner = nullptr;
    for (const Instance& in : models_) {
      if (a < in.start + 2 || a >= in.start + 2u + in.def->length) continue;
      for (std::size_t i = 0; i < in.def->points.size(); ++i) {
        const Point& p = in.def->points[i];
        if (a >= in.start + p.offset && a < in.start + p.offset + p.size) {
          if (in.present[i]) hit = &p, owner = &in;
          break;
        }
      }
    }
    // Marker, headers, read-only or absent points, half of a multi-register point: not writable here.
    if (hit == nullptr || !hit->writable || a != owner->start + hit->offset || a + hit->size > end)
      return refuse(WriteResult::illegal_address);
    touched.push_back({owner, hit});
    a += hit->size;
  }
  std::vector<std::uint16_t> cand(regs_.begin() + (address - cfg_.base), regs_.begin() + (end - cfg_.base));
  std::copy(values.begin(), values.end(), cand.begin());
  for (const Touched& t : touched)
    if (const WriteResult w = check_value(*t.in, *t.p, cand, address); w != WriteResult::ok) return refuse(w);
  std::copy(values.begin(), values.end(), regs_.begin() + (address - cfg_.base));
  for (const Touched& t : touched) {
    const std::string_view n = t.p->name;
    // The revert timer restarts on every write of the rate controls or of the timeout itself.
    if (t.in->def->id == 124 && (n == "StorCtl_Mod" || n == "InWRte" || n == "OutWRte" || n == "InOutWRte_RvrtTms"))
      last_rate_write_ = now;
    if (t.in->def->id == 802 && n == "AlmRst") put_raw(802, "AlmRst", 0);  // reset done at once
  }
  ++st_.writes;
  if (cfg_.kind == DeviceKind::storage) advance_storage(0.0, now);  // the new target takes effect now
  return WriteResult::ok;
}

void DeviceImage::set_meter_power_W(double power_W) {
  const std::lock_guard<std::mutex> lock(mutex_);
  advance(Clock::now());  // energy so far at the old power
  meter_W_ = std::isfinite(power_W) ? power_W : 0.0;
}

void DeviceImage::set_soc_pct(double soc_pct) {
  const std::lock_guard<std::mutex> lock(mutex_);
  advance(Clock::now());
  st_.soc_pct = std::clamp(soc_pct, 0.0, 100.0);
}

void DeviceImage::set_scale_factor(const std::string& point, int value) {
  const std::lock_guard<std::mutex> lock(mutex_);
  for (const Instance& in : models_) {
    for (std::size_t i = 0; i < in.def->points.size(); ++i) {
      const Point& p = in.def->points[i];
      if (p.type != PointType::sunssf || !in.present[i]) continue;
      if (point != p.name && point != std::to_string(in.def->id) + "." + std::string(p.name)) continue;
      for (ScaleFactor& sf : scale_factors_)
        if (sf.address == in.start + p.offset) sf.value = value;
      *reg(in.start + p.offset) = static_cast<std::uint16_t>(static_cast<std::int16_t>(value + (toggled_ ? 1 : 0)));
    }
  }
}

DeviceState DeviceImage::state() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  DeviceState s = st_;
  s.power_W = cfg_.kind == DeviceKind::storage ? -charge_W_ : meter_W_;
  s.storctl_mod = static_cast<std::uint16_t>(get(124, "StorCtl_Mod", 0.0));
  return s;
}

std::vector<std::uint16_t> DeviceImage::model_addresses() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::uint16_t> out;
  for (const Instance& in : models_) out.push_back(static_cast<std::uint16_t>(in.start));
  return out;
}

}  // namespace eqd::sim::sunspec::detail
