/// @file sunspec_image.cpp
/// Register image and behaviour of a simulated SunSpec device (see sunspec_image.hpp and
/// docs/devices.md, "SunSpec simulator").

#include "sunspec_image.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace eqd::sim::sunspec::detail {

namespace {

constexpr std::uint16_t kFillerModelId = 64999;  // vendor range: what the "endless" chain is made of
constexpr std::uint32_t kSpaceEnd = 0x10000;     // one past the last Modbus register address

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// Points each kind implements (everything else of its models reads "not implemented").
bool provided(DeviceKind kind, std::uint16_t id, std::string_view n) {
  switch (id) {
    case 1:
      return n != "Pad";  // Pad reads 0x8000 anyway
    case 103:
      return n == "A" || n == "AphA" || n == "AphB" || n == "AphC" || n == "A_SF" || n == "PhVphA" || n == "PhVphB" ||
             n == "PhVphC" || n == "V_SF" || n == "W" || n == "W_SF" || n == "Hz" || n == "Hz_SF" || n == "VA" ||
             n == "VA_SF" || n == "WH" || n == "WH_SF" || n == "DCV" || n == "DCV_SF" || n == "DCW" || n == "DCW_SF" ||
             n == "TmpCab" || n == "Tmp_SF" || n == "St" || n == "Evt1" || n == "Evt2";
    case 101:  // single phase: phase A only
      return n == "A" || n == "AphA" || n == "A_SF" || n == "PhVphA" || n == "V_SF" || n == "W" || n == "W_SF" ||
             n == "Hz" || n == "Hz_SF" || n == "VA" || n == "VA_SF" || n == "WH" || n == "WH_SF" || n == "DCV" ||
             n == "DCV_SF" || n == "DCW" || n == "DCW_SF" || n == "TmpCab" || n == "Tmp_SF" || n == "St" ||
             n == "Evt1" || n == "Evt2";
    case 113:
      return n == "A" || n == "AphA" || n == "AphB" || n == "AphC" || n == "PhVphA" || n == "PhVphB" || n == "PhVphC" ||
             n == "W" || n == "Hz" || n == "VA" || n == "WH" || n == "DCV" || n == "DCW" || n == "TmpCab" ||
             n == "St" || n == "Evt1" || n == "Evt2";
    case 124:
      return n != "VAChaMax" && n != "VAChaMax_SF";
    case 802:
      return n == "AHRtg" || n == "WHRtg" || n == "WChaRteMax" || n == "WDisChaRteMax" || n == "SoCMax" ||
             n == "SoCMin" || n == "SoC" || n == "SoH" || n == "ChaSt" || n == "LocRemCtl" || n == "Hb" ||
             n == "CtrlHb" || n == "AlmRst" || n == "Typ" || n == "State" || n == "Evt1" || n == "Evt2" ||
             n == "EvtVnd1" || n == "EvtVnd2" || n == "V" || n == "A" || n == "W" || n == "SetOp" ||
             n == "SetInvState" || n == "AHRtg_SF" || n == "WHRtg_SF" || n == "WChaDisChaMax_SF" || n == "SoC_SF" ||
             n == "SoH_SF" || n == "V_SF" || n == "CellV_SF" || n == "A_SF" || n == "AMax_SF" || n == "W_SF";
    case 201:
    case 203:
    case 204: {
      if (kind != DeviceKind::meter) return false;
      const bool basic = n == "A" || n.starts_with("Aph") || n == "A_SF" || n == "PhV" || n.starts_with("PhVph") ||
                         n == "PPV" || n == "V_SF" || n == "Hz" || n == "Hz_SF" || n == "W" || n.starts_with("Wph") ||
                         n == "W_SF" || n == "VA" || n.starts_with("VAph") || n == "VA_SF" ||
                         n.starts_with("TotWhExp") || n.starts_with("TotWhImp") || n == "TotWh_SF" || n == "Evt";
      if (!basic) return false;
      if (id == 201)  // single phase: phase A only, no line-to-line voltages
        return !(ends_with(n, "phB") || ends_with(n, "phC") || ends_with(n, "PhB") || ends_with(n, "PhC") ||
                 n == "PPV" || n == "PhVphAB" || n == "PhVphBC" || n == "PhVphCA");
      if (id == 204)  // delta: no line-to-neutral voltages
        return !(n == "PhV" || n == "PhVphA" || n == "PhVphB" || n == "PhVphC");
      return true;
    }
    default:
      return false;
  }
}

// Scale factors served unless configured otherwise (chosen so that the defaults fit the registers).
int default_scale(std::uint16_t id, std::string_view n) {
  if (n == "A_SF") return id == 103 || id == 101 ? -2 : -1;
  if (n == "V_SF" || n == "DCV_SF" || n == "Tmp_SF" || n == "InBatV_SF" || n == "ChaState_SF" || n == "StorAval_SF" ||
      n == "AHRtg_SF" || n == "SoC_SF")
    return -1;
  if (n == "Hz_SF" || n == "InOutWRte_SF") return -2;
  if (n == "CellV_SF") return -3;
  return 0;
}

double pow10(int e) { return std::pow(10.0, e); }

std::int16_t as_i16(std::uint16_t r) { return static_cast<std::int16_t>(r); }

}  // namespace

DeviceImage::DeviceImage(DeviceConfig config) : cfg_(std::move(config)) {
  if (cfg_.base != 0 && cfg_.base != 40000 && cfg_.base != 50000)
    throw std::invalid_argument("sunspec device '" + cfg_.name + "': base must be 0, 40000 or 50000");
  if (cfg_.models.empty()) {
    if (cfg_.kind == DeviceKind::storage) {
      cfg_.models = {1, 103, 124};
      if (cfg_.storage.battery_model) cfg_.models.push_back(802);
    } else {
      cfg_.models = {1, cfg_.meter.model};
    }
  }
  if (cfg_.model_name.empty()) cfg_.model_name = cfg_.kind == DeviceKind::storage ? "storage" : "meter";
  const auto has = [&](std::uint16_t id) {
    return std::find(cfg_.models.begin(), cfg_.models.end(), id) != cfg_.models.end();
  };
  if (cfg_.models.front() != 1)
    throw std::invalid_argument("sunspec device '" + cfg_.name + "': model 1 must come first");
  for (std::uint16_t id : cfg_.models) {
    if (find_model(id) == nullptr)
      throw std::invalid_argument("sunspec device '" + cfg_.name + "': model " + std::to_string(id) +
                                  " is not simulated");
    if (std::count(cfg_.models.begin(), cfg_.models.end(), id) != 1)
      throw std::invalid_argument("sunspec device '" + cfg_.name + "': model " + std::to_string(id) + " twice");
  }
  if (cfg_.kind == DeviceKind::storage && ((!has(101) && !has(103) && !has(113)) || !has(124)))
    throw std::invalid_argument("sunspec device '" + cfg_.name +
                                "': a storage device needs model 101, 103 or 113, and 124");
  if (cfg_.kind == DeviceKind::meter && !has(201) && !has(203) && !has(204))
    throw std::invalid_argument("sunspec device '" + cfg_.name + "': a meter needs model 201, 203 or 204");
  if (!(cfg_.storage.capacity_Wh > 0) || !(cfg_.storage.max_charge_W > 0) || !(cfg_.storage.max_discharge_W > 0) ||
      !(cfg_.storage.battery_voltage_V > 0))
    throw std::invalid_argument("sunspec device '" + cfg_.name + "': capacity, limits and voltage must be > 0");
  layout();
  mark_absent();
  fill_static();
  st_.soc_pct = std::clamp(cfg_.storage.soc_pct, 0.0, 100.0);
  st_.import_Wh = cfg_.kind == DeviceKind::meter ? cfg_.meter.import_Wh : 1000.0;
  st_.export_Wh = cfg_.kind == DeviceKind::meter ? cfg_.meter.export_Wh : 1000.0;
  start_ = last_ = last_rate_write_ = ramp_start_ = Clock::now();
  encode_dynamic();
}

void DeviceImage::layout() {
  std::uint32_t a = cfg_.base + 2u;
  for (std::uint16_t id : cfg_.models) {
    const ModelDef* d = find_model(id);
    models_.push_back(Instance{d, a, std::vector<bool>(d->points.size(), true)});
    a += 2u + d->length;
  }
  switch (cfg_.faults.chain_end) {
    case ChainEnd::marker:
    case ChainEnd::loop_back:
      end_ = a + 2;
      break;
    case ChainEnd::missing:
      end_ = a;
      break;
    case ChainEnd::endless:
      end_ = kSpaceEnd;
      break;
  }
  regs_.assign(end_ - cfg_.base, 0);
  if (!cfg_.faults.omit_marker) {
    *reg(cfg_.base) = kMarker0;
    *reg(cfg_.base + 1) = kMarker1;
  }
  for (const Instance& in : models_) {
    *reg(in.start) = in.def->id;
    *reg(in.start + 1) = in.def->length;
  }
  switch (cfg_.faults.chain_end) {
    case ChainEnd::marker:
      *reg(a) = kEndModelId;
      *reg(a + 1) = 0;
      break;
    case ChainEnd::missing:
      break;
    case ChainEnd::loop_back:
      // a + 2 + L == first model + 65536: a walker adding in 16 bits comes back to the first model.
      *reg(a) = kFillerModelId;
      *reg(a + 1) = static_cast<std::uint16_t>(kSpaceEnd + models_.front().start - (a + 2));
      break;
    case ChainEnd::endless:
      while (a + 2 <= kSpaceEnd) {
        const std::uint32_t rest = kSpaceEnd - a - 2;
        const std::uint32_t len = rest < 1002 ? rest : 998;
        *reg(a) = kFillerModelId;
        *reg(a + 1) = static_cast<std::uint16_t>(len);
        a += 2 + len;
      }
      break;
  }
  const int bad = cfg_.faults.bad_length_index;
  if (bad >= 0) {
    if (static_cast<std::size_t>(bad) >= models_.size())
      throw std::invalid_argument("sunspec device '" + cfg_.name + "': bad_length_index past the chain");
    *reg(models_[static_cast<std::size_t>(bad)].start + 1) = cfg_.faults.bad_length;
  }
}

void DeviceImage::mark_absent() {
  for (Instance& in : models_) {
    for (std::size_t i = 0; i < in.def->points.size(); ++i) {
      const Point& p = in.def->points[i];
      bool present = provided(cfg_.kind, in.def->id, p.name) && !(cfg_.faults.optional_absent && !p.mandatory);
      for (const std::string& s : cfg_.faults.absent_points)
        if (s == p.name || s == std::to_string(in.def->id) + "." + std::string(p.name)) present = false;
      in.present[i] = present;
      for (std::uint16_t w = 0; w < p.size; ++w) *reg(in.start + p.offset + w) = not_implemented_word(p.type, w);
    }
  }
}

Instance* DeviceImage::instance(std::uint16_t id) noexcept {
  for (Instance& in : models_)
    if (in.def->id == id) return &in;
  return nullptr;
}

void DeviceImage::set_default_scale_factors() {
  for (Instance& in : models_) {
    for (std::size_t i = 0; i < in.def->points.size(); ++i) {
      const Point& p = in.def->points[i];
      if (p.type != PointType::sunssf || !in.present[i]) continue;
      int v = default_scale(in.def->id, p.name);
      for (const auto& [name, value] : cfg_.scale_factors)
        if (name == p.name || name == std::to_string(in.def->id) + "." + std::string(p.name)) v = value;
      const std::uint32_t addr = in.start + p.offset;
      scale_factors_.push_back({addr, v});
      *reg(addr) = static_cast<std::uint16_t>(static_cast<std::int16_t>(v));
    }
  }
}

void DeviceImage::fill_static() {
  set_default_scale_factors();
  put_string(1, "Mn", cfg_.manufacturer);
  put_string(1, "Md", cfg_.model_name);
  put_string(1, "Opt", cfg_.options);
  put_string(1, "Vr", cfg_.version);
  put_string(1, "SN", cfg_.serial);
  put_raw(1, "DA", cfg_.unit_id);
  const StorageSpec& s = cfg_.storage;
  if (cfg_.kind == DeviceKind::storage) {
    // Writable controls start at the device's own mode: no limit active, 100 % rates, no timeouts.
    put(124, "WChaMax", s.max_charge_W);
    put(124, "WChaGra", s.ramp_pct_per_s);
    put(124, "WDisChaGra", s.ramp_pct_per_s);
    put_raw(124, "StorCtl_Mod", 0);
    put(124, "MinRsvPct", 0.0);
    put(124, "OutWRte", 100.0);
    put(124, "InWRte", 100.0);
    put_raw(124, "InOutWRte_WinTms", 0);
    put_raw(124, "InOutWRte_RvrtTms", 0);
    put_raw(124, "InOutWRte_RmpTms", 0);
    put_raw(124, "ChaGriSet", 1);  // GRID: charging from the grid allowed
    put(802, "AHRtg", s.capacity_Wh / s.battery_voltage_V);
    put(802, "WHRtg", s.capacity_Wh);
    put(802, "WChaRteMax", s.battery_charge_W > 0.0 ? std::min(s.battery_charge_W, s.max_charge_W) : s.max_charge_W);
    put(802, "WDisChaRteMax", s.max_discharge_W);
    put(802, "SoCMax", 100.0);
    put(802, "SoCMin", 0.0);
    put(802, "SoH", 100.0);
    put_raw(802, "LocRemCtl", 0);  // REMOTE
    put_raw(802, "CtrlHb", 0);
    put_raw(802, "AlmRst", 0);
    put_raw(802, "Typ", 4);          // LITHIUM_ION
    put_raw(802, "State", 3);        // CONNECTED
    put_raw(802, "SetOp", 1);        // CONNECT
    put_raw(802, "SetInvState", 3);  // INVERTER_STARTED
    for (std::string_view evt : {"Evt1", "Evt2", "EvtVnd1", "EvtVnd2"}) put_raw(802, evt, 0);
    for (std::uint16_t inv : {std::uint16_t{101}, std::uint16_t{103}, std::uint16_t{113}}) {
      put_raw(inv, "Evt1", 0);
      put_raw(inv, "Evt2", 0);
    }
  } else {
    for (std::uint16_t id : {std::uint16_t{201}, std::uint16_t{203}, std::uint16_t{204}}) put_raw(id, "Evt", 0);
  }
}

int DeviceImage::scale_of(const Instance& in, const Point& p) const {
  if (p.sf.empty()) return 0;
  const Point* sf = in.def->find(p.sf);
  return as_i16(regs_[in.start + sf->offset - cfg_.base]);
}

void DeviceImage::put_raw(std::uint16_t id, std::string_view name, std::uint32_t raw) {
  Instance* in = instance(id);
  if (in == nullptr) return;
  const Point* p = in->def->find(name);
  if (p == nullptr || !in->present[static_cast<std::size_t>(p - in->def->points.data())]) return;
  std::uint16_t* r = reg(in->start + p->offset);
  if (p->size == 2) {
    r[0] = static_cast<std::uint16_t>(raw >> 16);
    r[1] = static_cast<std::uint16_t>(raw & 0xFFFFU);
  } else {
    r[0] = static_cast<std::uint16_t>(raw);
  }
}

void DeviceImage::put(std::uint16_t id, std::string_view name, double value) {
  Instance* in = instance(id);
  if (in == nullptr) return;
  const Point* p = in->def->find(name);
  if (p == nullptr || !in->present[static_cast<std::size_t>(p - in->def->points.data())]) return;
  const Point* sfp = p->sf.empty() ? nullptr : in->def->find(p->sf);
  if (sfp != nullptr && regs_[in->start + sfp->offset - cfg_.base] == 0x8000) return;  // no scale: cannot encode
  if (p->type == PointType::float32) {  // no scale factor: IEEE 754 single, high word first
    const auto f = static_cast<float>(value);
    std::uint32_t bits = 0;
    std::memcpy(&bits, &f, sizeof bits);
    put_raw(id, name, bits);
    return;
  }
  const double raw = std::round(value / pow10(scale_of(*in, *p)));
  // A device saturates what its register cannot hold (never onto the "not implemented" value).
  switch (p->type) {
    case PointType::int16:
      put_raw(id, name, static_cast<std::uint16_t>(static_cast<std::int16_t>(std::clamp(raw, -32767.0, 32767.0))));
      break;
    case PointType::acc32:
      put_raw(id, name, static_cast<std::uint32_t>(std::fmod(std::max(raw, 0.0), 4294967296.0)));
      break;
    case PointType::uint32:
      put_raw(id, name, static_cast<std::uint32_t>(std::clamp(raw, 0.0, 4294967294.0)));
      break;
    default:
      put_raw(id, name, static_cast<std::uint32_t>(std::clamp(raw, 0.0, 65534.0)));
      break;
  }
}

void DeviceImage::put_string(std::uint16_t id, std::string_view name, const std::string& text) {
  Instance* in = instance(id);
  if (in == nullptr) return;
  const Point* p = in->def->find(name);
  if (p == nullptr || !in->present[static_cast<std::size_t>(p - in->def->points.data())]) return;
  // Two characters per register, first in the high byte; NUL-padded (truncated to the point's size).
  for (std::uint16_t w = 0; w < p->size; ++w) {
    const std::size_t i = 2u * w;
    const auto hi = static_cast<unsigned char>(i < text.size() ? text[i] : '\0');
    const auto lo = static_cast<unsigned char>(i + 1 < text.size() ? text[i + 1] : '\0');
    *reg(in->start + p->offset + w) = static_cast<std::uint16_t>((hi << 8) | lo);
  }
}

double DeviceImage::get(std::uint16_t id, std::string_view name, double fallback) const {
  for (const Instance& in : models_) {
    if (in.def->id != id) continue;
    const Point* p = in.def->find(name);
    if (p == nullptr || !in.present[static_cast<std::size_t>(p - in.def->points.data())]) return fallback;
    const std::uint16_t r = regs_[in.start + p->offset - cfg_.base];
    if (r == not_implemented_word(p->type, 0)) return fallback;
    const Point* sfp = p->sf.empty() ? nullptr : in.def->find(p->sf);
    if (sfp != nullptr && regs_[in.start + sfp->offset - cfg_.base] == 0x8000) return fallback;
    const double v = p->type == PointType::int16 ? as_i16(r) : r;
    return v * pow10(scale_of(in, *p));
  }
  return fallback;
}

}  // namespace eqd::sim::sunspec::detail
