/// @file models.cpp
/// The SunSpec model chain walk and the decoding/encoding of models 103/113, 124, 802 and 201-204
/// (docs/devices.md, "eqd's SunSpec client"). Pure code: any thread.

#include "eqd/io/sunspec/models.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

namespace eqd::io::sunspec {

namespace {

constexpr std::uint32_t kSpaceEnd = 65536;  // one past the last register address
constexpr std::uint16_t kEndId = 0xFFFF;
constexpr std::uint16_t kNotImplU16 = 0xFFFF;
constexpr std::uint16_t kNotImplS16 = 0x8000;

std::string list_ids(const std::vector<ModelRef>& models) {
  std::string s;
  for (const ModelRef& m : models) s += (s.empty() ? "" : ", ") + std::to_string(m.id);
  return s.empty() ? "none" : s;
}

// The length eqd needs of a model it reads (0: one it does not read).
int needed_length(std::uint16_t id) {
  switch (id) {
    case 1:
      return m1::kMinLength;
    case 101:
    case 102:
    case 103:
      return m103::kLength;
    case 111:
    case 112:
    case 113:
      return m113::kLength;
    case 124:
      return m124::kLength;
    case 802:
      return m802::kMinLength;
    case 201:
    case 202:
    case 203:
    case 204:
      return m20x::kRead;
    default:
      return 0;
  }
}

bool find_marker(std::uint16_t base, const ReadFn& read, Discovery& d) {
  std::uint16_t regs[2] = {};
  if (!read(base, 2, regs)) {
    d.error_errno = errno;
    return false;
  }
  return regs[0] == kMarker0 && regs[1] == kMarker1;
}

// Walks from the register after the marker; fills d.models or d.error.
void walk(const ReadFn& read, Discovery& d) {
  std::uint32_t addr = d.base + 2U;
  for (int n = 0;; ++n) {
    if (n > kMaxModels) {
      d.error = "model chain longer than " + std::to_string(kMaxModels) + " models (no end marker)";
      return;
    }
    if (addr + 2 > kSpaceEnd) {
      d.error = "model chain runs to the end of the register space without an end marker (after models " +
                list_ids(d.models) + ")";
      return;
    }
    std::uint16_t hdr[2] = {};
    if (!read(addr, 2, hdr)) {
      d.error_errno = errno;
      d.error = "model header at " + std::to_string(addr) + " unreadable (no end marker after models " +
                list_ids(d.models) + "): " + std::strerror(errno);
      return;
    }
    if (hdr[0] == kEndId) return;  // the end: ID 0xFFFF (L 0)
    const std::uint32_t data = addr + 2;
    // Checked in 32 bits: a length that wraps round in 16-bit address arithmetic (back into the
    // chain) is past the register space here.
    if (data + hdr[1] > kSpaceEnd) {
      d.error = "model " + std::to_string(hdr[0]) + " at " + std::to_string(addr) + " announces length " +
                std::to_string(hdr[1]) + ", past the end of the register space";
      return;
    }
    const int need = needed_length(hdr[0]);
    if (need != 0 && hdr[1] < need) {
      d.error = "model " + std::to_string(hdr[0]) + " at " + std::to_string(addr) + " has length " +
                std::to_string(hdr[1]) + ", expected at least " + std::to_string(need);
      return;
    }
    d.models.push_back(ModelRef{hdr[0], data, hdr[1]});
    addr = data + hdr[1];
  }
}

}  // namespace

Discovery discover_chain(int base, const ReadFn& read) {
  Discovery d;
  bool found = false;
  if (base >= 0) {
    d.base = static_cast<std::uint16_t>(base);
    found = find_marker(d.base, read, d);
  } else {
    for (const std::uint16_t b : kBases) {
      d.base = b;
      // A device answers an address it does not serve with an exception: try the next base.
      if ((found = find_marker(b, read, d))) break;
    }
  }
  if (!found) {
    d.error = base >= 0 ? "no SunSpec marker 'SunS' at " + std::to_string(base)
                        : std::string("no SunSpec marker 'SunS' at 0, 40000 or 50000");
    return d;
  }
  d.error_errno = 0;
  walk(read, d);
  if (!d.error.empty()) return d;
  for (const ModelRef& m : d.models) {
    if (m.id == 1 && !d.common) d.common = m;
    if (is_inverter_model(m.id) && !d.inverter) d.inverter = m;
    if (m.id == 124 && !d.storage) d.storage = m;
    if (m.id == 802 && !d.battery) d.battery = m;
    if (is_meter_model(m.id) && !d.meter) d.meter = m;
  }
  return d;
}

Discovery discover(int base, const ReadFn& read) {
  Discovery d = discover_chain(base, read);
  if (!d.error.empty()) return d;
  std::string lacks;
  if (!d.storage) lacks = "124 (storage controls)";
  if (!d.inverter) lacks += std::string(lacks.empty() ? "" : " and ") + "101-103/111-113 (inverter)";
  if (!lacks.empty()) d.error = "device lacks model " + lacks + "; it has models " + list_ids(d.models);
  return d;
}

Discovery discover_meter(int base, const ReadFn& read) {
  Discovery d = discover_chain(base, read);
  if (!d.error.empty()) return d;
  if (!d.meter) d.error = "device lacks a meter model (201-204); it has models " + list_ids(d.models);
  return d;
}

std::optional<int> scale_factor(std::uint16_t raw) noexcept {
  if (raw == kNotImplS16) return std::nullopt;
  const int sf = static_cast<std::int16_t>(raw);
  if (sf < -10 || sf > 10) return std::nullopt;
  return sf;
}

std::string decode_string(const std::uint16_t* regs, int count) {
  std::string s;
  for (int i = 0; i < count; ++i) {
    for (const int shift : {8, 0}) {
      const char c = static_cast<char>((regs[i] >> shift) & 0xFF);
      if (c == '\0') return s;
      s.push_back(c);
    }
  }
  return s;
}

const char* to_string(SampleProblem p) noexcept {
  switch (p) {
    case SampleProblem::none:
      return "ok";
    case SampleProblem::power_absent:
      return "AC power W not implemented";
    case SampleProblem::bad_scale_factor:
      return "scale factor not implemented or outside -10..10";
    case SampleProblem::voltage_absent:
      return "battery voltage (124 InBatV, 802 V) not implemented";
    case SampleProblem::mode_absent:
      return "124 StorCtl_Mod not implemented";
    case SampleProblem::bad_state_of_charge:
      return "state of charge (124 ChaState, 802 SoC) outside 0..100 % or its scale factor not implemented";
  }
  return "?";
}

SampleProblem decode_sample(const PollRegisters& r, core::Sample& out) noexcept {
  out.valid = false;
  double w = 0.0;
  if (is_float_inverter(r.inverter_id)) {
    const std::uint32_t bits = (static_cast<std::uint32_t>(r.inverter[m113::kW]) << 16) | r.inverter[m113::kW + 1];
    float f = 0.0F;
    std::memcpy(&f, &bits, sizeof f);
    if (!std::isfinite(f)) return SampleProblem::power_absent;  // 0x7FC00000 = not implemented
    w = f;
  } else {
    const std::uint16_t raw = r.inverter[m103::kW];
    if (raw == kNotImplS16) return SampleProblem::power_absent;
    const std::optional<int> sf = scale_factor(r.inverter[m103::kW_SF]);
    if (!sf) return SampleProblem::bad_scale_factor;
    w = static_cast<std::int16_t>(raw) * std::pow(10.0, *sf);
  }
  // Battery voltage: 124 InBatV (uint16 with InBatV_SF), else 802 V (uint16 with V_SF).
  double v = NAN;
  const std::uint16_t in_bat = r.storage[m124::kInBatV];
  if (in_bat != kNotImplU16) {
    const std::optional<int> sf = scale_factor(r.storage[m124::kInBatV_SF]);
    if (!sf) return SampleProblem::bad_scale_factor;
    v = in_bat * std::pow(10.0, *sf);
  } else if (r.battery != nullptr && r.battery[m802::kV] != kNotImplU16) {
    const std::optional<int> sf = scale_factor(r.battery[m802::kV_SF]);
    if (!sf) return SampleProblem::bad_scale_factor;
    v = r.battery[m802::kV] * std::pow(10.0, *sf);
  }
  if (!std::isfinite(v)) return SampleProblem::voltage_absent;
  // State of charge, where the device has one: 124 ChaState (% of the rated charge), else 802 SoC. A
  // value outside 0..100 % after scaling is a device fault: no sample, as for a bad scale factor.
  float soc = std::numeric_limits<float>::quiet_NaN();
  auto percent = [&](std::uint16_t raw, std::uint16_t sf_raw) -> bool {
    const std::optional<int> sf = scale_factor(sf_raw);
    if (!sf) return false;
    const double pct = raw * std::pow(10.0, *sf);
    if (!(pct >= 0.0 && pct <= 100.0)) return false;
    soc = static_cast<float>(pct);
    return true;
  };
  if (r.storage[m124::kChaState] != kNotImplU16) {
    if (!percent(r.storage[m124::kChaState], r.storage[m124::kChaState_SF])) return SampleProblem::bad_state_of_charge;
  } else if (r.battery != nullptr && r.battery[m802::kSoC] != kNotImplU16) {
    if (!percent(r.battery[m802::kSoC], r.battery[m802::kSoC_SF])) return SampleProblem::bad_state_of_charge;
  }
  out.soc_pct = soc;
  const std::uint16_t mod = r.storage[m124::kStorCtl_Mod];
  if (mod == kNotImplU16) return SampleProblem::mode_absent;
  // SunSpec W > 0 = AC power exported = the battery discharging; eqd: + = charging.
  out.power_W = -w;
  out.voltage_V = v;
  // AC power over the battery voltage: an estimate of the battery current (converter losses aside).
  out.current_A = v > 0.0 ? out.power_W / v : 0.0;
  // Equalizing = a rate control (the bits eqd sets) is active; otherwise the device runs its own mode.
  out.equalization_mode = (mod & (kStorCtlCharge | kStorCtlDischarge)) != 0;
  out.state = out.equalization_mode ? core::ChannelState::equalizing : core::ChannelState::idle;
  out.valid = true;
  return SampleProblem::none;
}

const char* to_string(MeterProblem p) noexcept {
  switch (p) {
    case MeterProblem::none:
      return "ok";
    case MeterProblem::power_absent:
      return "meter W not implemented";
    case MeterProblem::bad_scale_factor:
      return "meter W_SF not implemented or outside -10..10";
  }
  return "?";
}

MeterProblem decode_meter(const std::uint16_t* regs, MeterValue& out) noexcept {
  const std::uint16_t raw = regs[m20x::kW];
  if (raw == kNotImplS16) return MeterProblem::power_absent;
  const std::optional<int> sf = scale_factor(regs[m20x::kW_SF]);
  if (!sf) return MeterProblem::bad_scale_factor;
  out.power_W = static_cast<std::int16_t>(raw) * std::pow(10.0, *sf);
  // Hz is int16 in the meter models (uint16 in 103); optional here, never a reason to refuse W.
  const std::optional<int> hz_sf = scale_factor(regs[m20x::kHz_SF]);
  out.frequency_Hz = regs[m20x::kHz] == kNotImplS16 || !hz_sf
                         ? std::numeric_limits<double>::quiet_NaN()
                         : static_cast<std::int16_t>(regs[m20x::kHz]) * std::pow(10.0, *hz_sf);
  return MeterProblem::none;
}

std::optional<std::uint16_t> revert_seconds(std::uint32_t lease_ms) noexcept {
  const std::uint32_t s = (lease_ms + 999U) / 1000U;
  if (s == 0 || s > 65534U) return std::nullopt;  // 0 = no revert; 0xFFFF = not implemented
  return static_cast<std::uint16_t>(s);
}

DeviceLimits device_limits(const std::uint16_t* storage, const std::uint16_t* battery) noexcept {
  constexpr double kNone = std::numeric_limits<double>::infinity();
  auto value = [](std::uint16_t raw, std::uint16_t sf_raw) {
    const std::optional<int> sf = scale_factor(sf_raw);
    return raw == kNotImplU16 || !sf ? kNone : raw * std::pow(10.0, *sf);
  };
  const double wmax = value(storage[m124::kWChaMax], storage[m124::kWChaMax_SF]);
  DeviceLimits l{wmax, wmax};
  if (battery != nullptr) {
    const std::uint16_t sf = battery[m802::kWChaDisChaMax_SF];
    l.charge_W = std::min(l.charge_W, value(battery[m802::kWChaRteMax], sf));
    l.discharge_W = std::min(l.discharge_W, value(battery[m802::kWDisChaRteMax], sf));
  }
  return l;
}

std::string encode_command(bool equalize, double setpoint_W, std::uint32_t lease_ms, const std::uint16_t* storage,
                           StorageWrite& out, const std::uint16_t* battery) {
  out = StorageWrite{};
  if (!equalize) return {};  // StorCtl_Mod 0: the device's own mode; rates 0
  const std::optional<std::uint16_t> rvrt = revert_seconds(lease_ms);
  if (!rvrt) return "lease " + std::to_string(lease_ms) + " ms does not fit InOutWRte_RvrtTms (1..65534 s)";
  const std::uint16_t wmax_raw = storage[m124::kWChaMax];
  const std::optional<int> wmax_sf = scale_factor(storage[m124::kWChaMax_SF]);
  const std::optional<int> rte_sf = scale_factor(storage[m124::kInOutWRte_SF]);
  if (wmax_raw == kNotImplU16 || wmax_raw == 0 || !wmax_sf) return "WChaMax not implemented or 0";
  if (!rte_sf) return "InOutWRte_SF not implemented or outside -10..10";
  if (!std::isfinite(setpoint_W)) return "setpoint not finite";
  const double wmax_W = wmax_raw * std::pow(10.0, *wmax_sf);
  const DeviceLimits lim = device_limits(storage, battery);
  const double p_W = std::clamp(setpoint_W, -lim.discharge_W, lim.charge_W);
  out.limited = p_W != setpoint_W;
  out.setpoint_W = p_W;
  const double pct = p_W / wmax_W * 100.0;
  const double steps = pct / std::pow(10.0, *rte_sf);
  // At a device limit, round towards zero (the 1e-6 step absorbs the division's error): rounding up
  // would write a rate a fraction of a step beyond the limit.
  const double raw = out.limited ? std::trunc(steps + (steps > 0.0 ? 1e-6 : -1e-6)) : std::round(steps);
  if (std::abs(raw) > 32767.0) return "rate " + std::to_string(pct) + " % does not fit InWRte with its scale factor";
  const auto in = static_cast<std::int16_t>(raw);
  out.storctl_mod = kStorCtlCharge | kStorCtlDischarge;
  out.in_w_rte = static_cast<std::uint16_t>(in);
  out.out_w_rte = static_cast<std::uint16_t>(static_cast<std::int16_t>(-in));
  out.rvrt_tms = *rvrt;
  return {};
}

}  // namespace eqd::io::sunspec
