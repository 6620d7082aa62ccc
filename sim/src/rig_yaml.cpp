// Rig YAML -> RigSpec. Every value is checked here, at start-up, so that Rig::step never meets bad data.
#include <filesystem>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "eqd/core/bus_law.hpp"
#include "eqd/core/params.hpp"
#include "eqd/sim/rig.hpp"
#include "yaml_util.hpp"

namespace eqd::sim::detail {
namespace {

constexpr double kBig = 1e9;

/// A channel entry seen through its template: own keys first, then the template's.
struct Layered {
  YAML::Node own = none(), tmpl = none();
  std::string own_path, tmpl_path;
  /// The node for key and the key path it came from (null node when neither has it).
  [[nodiscard]] std::pair<YAML::Node, std::string> get(const char* key) const {
    if (own[key]) return {own[key], own_path + "." + key};
    if (tmpl && tmpl.IsMap() && tmpl[key]) return {tmpl[key], tmpl_path + "." + key};
    return {none(), own_path + "." + key};
  }
};

/// A sub-mapping (battery, converter, buffer) merged key by key from the channel and its template.
struct Merged {
  YAML::Node own = none(), tmpl = none();
  std::string own_path, tmpl_path;
  [[nodiscard]] bool present() const { return static_cast<bool>(own) || static_cast<bool>(tmpl); }
  template <class F>
  auto with(const char* key, F&& f) const {
    if (own && own[key]) return f(own, own_path);
    return f(tmpl ? tmpl : own, tmpl ? tmpl_path : own_path);
  }
};

Merged merged(const Layered& l, const char* key) {
  // Built by copy-construction only: assigning to a yaml-cpp Node rebinds shared data.
  const bool t = l.tmpl && l.tmpl.IsMap() && l.tmpl[key];
  return Merged{l.own[key], t ? l.tmpl[key] : none(), l.own_path + "." + key,
                t ? l.tmpl_path + "." + key : std::string()};
}

core::BusParams parse_bus_params(const YAML::Node& n, const YamlCtx& c, const std::string& p) {
  core::BusParams b;
  const std::string law = c.str(n, "law", p, core::to_string(b.law), false);
  if (!core::parse_law_kind(law.c_str(), b.law))
    c.fail(n["law"], p + ".law", "unknown law '" + law + "' (expected " + core::law_names() + ")");
  b.target_W = c.num(n, "target_W", p, b.target_W, -kBig, kBig);
  b.tau_s = c.num(n, "tau_s", p, b.tau_s, 0.1, 3600.0);
  b.deadband_W = c.num(n, "deadband_W", p, b.deadband_W, 0.0, kBig);
  b.slew_W_per_s = c.num(n, "slew_W_per_s", p, b.slew_W_per_s, 0.0, kBig);
  b.flip_dwell_s = c.num(n, "flip_dwell_s", p, b.flip_dwell_s, 0.0, 3600.0);
  b.update_interval_s = c.num(n, "update_interval_s", p, b.update_interval_s, 0.01, 60.0);
  b.trim_tau_s = c.num(n, "trim_tau_s", p, b.trim_tau_s, 0.0, 36000.0);
  b.trim_max_fraction = c.num(n, "trim_max_fraction", p, b.trim_max_fraction, 0.0, 1.0);
  b.hold_max_s = c.num(n, "hold_max_s", p, b.hold_max_s, 0.0, 36000.0);
  b.max_age_ms = c.integer(n, "max_age_ms", p, b.max_age_ms, 1, 3600000);
  b.lease_ms = static_cast<std::uint32_t>(c.integer(n, "lease_ms", p, b.lease_ms, 0, 3600000));
  b.use_forecast = c.boolean(n, "use_forecast", p, b.use_forecast);
  b.forecast_horizon_s = c.num(n, "forecast_horizon_s", p, b.forecast_horizon_s, 1.0, 120.0);
  const core::RuntimeParam& mode_row = *core::find_runtime_param("mode");
  const std::string mode = c.str(n, "mode", p, core::kBusModeNames[static_cast<std::size_t>(b.mode)], false);
  const int m = core::find_runtime_choice(mode_row, mode);
  if (m < 0) c.fail(n["mode"], p + ".mode", "unknown mode '" + mode + "' (expected balance or caps)");
  core::set_runtime_value(mode_row, b, m);
  b.import_limit_W = c.num(n, "import_limit_W", p, b.import_limit_W, 0.0, kBig);
  b.export_limit_W = c.num(n, "export_limit_W", p, b.export_limit_W, 0.0, kBig);
  // Average caps, valley filling, level shaving and the planner's travel weight: the rows of the run-time table, with
  // their bounds (as eqd's configuration reads them).
  for (const char* name : {"import_limit_average_s", "valley_fill", "fill_margin", "fill_lead_s", "fill_energy_Wh",
                           "level_shaving", "plan_travel_weight_s"}) {
    const core::RuntimeParam& row = *core::find_runtime_param(name);
    const double now = core::runtime_value(row, b);
    core::set_runtime_value(row, b,
                            row.flag ? (c.boolean(n, name, p, now != 0.0) ? 1.0 : 0.0)
                                     : c.num(n, name, p, now, row.min_exclusive ? row.min + 1e-9 : row.min, row.max));
  }
  return b;
}

std::shared_ptr<const OcvTable> parse_battery(const Merged& m, const YamlCtx& c, BatteryParams& b) {
  for (const auto& [node, path] : {std::pair{m.tmpl, m.tmpl_path}, std::pair{m.own, m.own_path}})
    if (node)
      c.check_keys(node, path,
                   {"chemistry", "cells_in_series", "capacity_Ah", "r0_ohm", "r1_ohm", "c1_F", "soc",
                    "coulombic_efficiency", "fade_per_cycle", "ocv"});
  auto num = [&](const char* k, double def, double lo, double hi) {
    return m.with(k, [&](const YAML::Node& n, const std::string& p) { return n ? c.num(n, k, p, def, lo, hi) : def; });
  };
  b.capacity_Ah = num("capacity_Ah", b.capacity_Ah, 1e-3, 1e6);
  b.r0_ohm = num("r0_ohm", b.r0_ohm, 1e-6, 100.0);
  b.r1_ohm = num("r1_ohm", b.r1_ohm, 0.0, 100.0);
  b.c1_F = num("c1_F", b.c1_F, 0.0, 1e9);
  b.initial_soc = num("soc", b.initial_soc, 0.0, 1.0);
  b.coulombic_efficiency = num("coulombic_efficiency", b.coulombic_efficiency, 0.5, 1.0);
  b.fade_per_cycle = num("fade_per_cycle", b.fade_per_cycle, 0.0, 1.0);
  const int cells = static_cast<int>(m.with("cells_in_series", [&](const YAML::Node& n, const std::string& p) {
    return n ? c.integer(n, "cells_in_series", p, 1, 1, 1000) : std::int64_t{1};
  }));
  const YAML::Node ocv = m.own && m.own["ocv"] ? m.own["ocv"] : (m.tmpl ? m.tmpl["ocv"] : none());
  if (ocv) {
    const std::string p = (m.own && m.own["ocv"] ? m.own_path : m.tmpl_path) + ".ocv";
    c.check_keys(ocv, p, {"soc", "voltage_V"});
    if (!ocv["soc"] || !ocv["voltage_V"]) c.fail(ocv, p, "needs both 'soc' and 'voltage_V' lists");
    c.require_seq(ocv["soc"], p + ".soc");
    c.require_seq(ocv["voltage_V"], p + ".voltage_V");
    std::vector<double> s, v;
    for (std::size_t i = 0; i < ocv["soc"].size(); ++i)
      s.push_back(c.num(ocv["soc"][i], p + ".soc[" + std::to_string(i) + "]"));
    for (std::size_t i = 0; i < ocv["voltage_V"].size(); ++i)
      v.push_back(c.num(ocv["voltage_V"][i], p + ".voltage_V[" + std::to_string(i) + "]"));
    try {
      return std::make_shared<const OcvTable>(std::move(s), std::move(v));
    } catch (const std::invalid_argument& e) {
      c.fail(ocv, p, e.what());
    }
  }
  const std::string chem = m.with("chemistry", [&](const YAML::Node& n, const std::string& p) {
    return n ? c.str(n, "chemistry", p, "nmc", false) : std::string("nmc");
  });
  if (chem == "lfp") return std::make_shared<const OcvTable>(OcvTable::lfp(cells));
  if (chem == "nmc") return std::make_shared<const OcvTable>(OcvTable::nmc(cells));
  const YAML::Node at = m.own && m.own["chemistry"] ? m.own["chemistry"] : m.tmpl["chemistry"];
  c.fail(at, (m.own && m.own["chemistry"] ? m.own_path : m.tmpl_path) + ".chemistry",
         "unknown chemistry '" + chem + "' (expected lfp, nmc, or give an ocv table)");
}

void parse_converter(const Merged& m, const YamlCtx& c, ConverterParams& v) {
  for (const auto& [node, path] : {std::pair{m.tmpl, m.tmpl_path}, std::pair{m.own, m.own_path}})
    if (node)
      c.check_keys(node, path,
                   {"max_charge_A", "max_discharge_A", "max_charge_W", "max_discharge_W", "v_max_V", "v_min_V",
                    "tau_conv_s", "dead_time_s", "efficiency"});
  auto num = [&](const char* k, double def, double lo, double hi) {
    return m.with(k, [&](const YAML::Node& n, const std::string& p) { return n ? c.num(n, k, p, def, lo, hi) : def; });
  };
  v.max_charge_A = num("max_charge_A", v.max_charge_A, 0.0, kBig);
  v.max_discharge_A = num("max_discharge_A", v.max_discharge_A, 0.0, kBig);
  v.max_charge_W = num("max_charge_W", v.max_charge_W, 0.0, kBig);
  v.max_discharge_W = num("max_discharge_W", v.max_discharge_W, 0.0, kBig);
  v.v_max_V = num("v_max_V", v.v_max_V, 0.0, 2000.0);
  v.v_min_V = num("v_min_V", v.v_min_V, 0.0, 2000.0);
  v.tau_conv_s = num("tau_conv_s", v.tau_conv_s, 0.0, 600.0);
  v.dead_time_s = num("dead_time_s", v.dead_time_s, 0.0, 60.0);
  v.efficiency = num("efficiency", v.efficiency, 0.5, 1.0);
  if (v.v_min_V >= v.v_max_V) {
    const auto& n = m.own ? m.own : m.tmpl;
    c.fail(n, m.own ? m.own_path : m.tmpl_path, "v_min_V must be below v_max_V");
  }
}

TargetKind parse_mode(const YAML::Node& n, const YamlCtx& c, const std::string& p, TargetKind def) {
  const std::string s = c.str(n, "mode", p, def == TargetKind::power ? "power" : "current", false);
  if (s == "power") return TargetKind::power;
  if (s == "current") return TargetKind::current;
  c.fail(n["mode"], p + ".mode", "unknown mode '" + s + "' (expected power, current)");
}

/// Sign of a profile's time-weighted mean (trapezoids) times scale: which way a cutoff is reached.
double profile_mean(const Profile& pr, double scale) {
  double area = 0.0;
  for (std::size_t i = 1; i < pr.time_s.size(); ++i)
    area += 0.5 * (pr.value[i] + pr.value[i - 1]) * (pr.time_s[i] - pr.time_s[i - 1]);
  const double span = pr.time_s.back() - pr.time_s.front();
  return span > 0.0 ? scale * area / span : 0.0;
}

Step parse_random(const YAML::Node& n, const YamlCtx& c, const std::string& p) {
  c.check_keys(n, p, {"type", "mode", "value", "hold_s", "duration_s", "rest_fraction", "seed"});
  Step s;
  s.type = StepType::random;
  s.pulse_kind = parse_mode(n, c, p, TargetKind::current);
  if (!n["value"] || !n["hold_s"] || !n["duration_s"]) c.fail(n, p, "random needs value, hold_s and duration_s");
  std::tie(s.value, s.value_max) = c.range(n, "value", p, {0.0, 0.0}, -kBig, kBig);
  // A level shorter than a millisecond is noise, not a program (and would make the plant step draw forever).
  std::tie(s.hold_min_s, s.hold_max_s) = c.range(n, "hold_s", p, {0.0, 0.0}, 1e-3, 1e7);
  std::tie(s.duration_s, s.duration_max_s) = c.range(n, "duration_s", p, {0.0, 0.0}, 1e-3, 1e8);
  s.rest_fraction = c.num(n, "rest_fraction", p, 0.0, 0.0, 1.0);
  s.seed = static_cast<std::uint64_t>(c.integer(n, "seed", p, 0, 0, INT64_MAX));
  return s;
}

Step parse_step(const YAML::Node& n, const YamlCtx& c, const std::string& p) {
  c.require_map(n, p);
  const std::string type = c.str(n, "type", p, "", true);
  Step s;
  if (type == "rest") {
    c.check_keys(n, p, {"type", "duration_s"});
    s.type = StepType::rest;
    if (!n["duration_s"]) c.fail(n, p, "rest needs duration_s");
  } else if (type == "cc") {
    c.check_keys(n, p, {"type", "current_A", "duration_s", "until_V"});
    s.type = StepType::cc;
    if (!n["current_A"]) c.fail(n, p, "cc needs current_A");
    s.value = c.num(n, "current_A", p, 0.0, -kBig, kBig);
    s.until_V = c.num(n, "until_V", p, 0.0, 0.0, 2000.0);
  } else if (type == "cp") {
    c.check_keys(n, p, {"type", "power_W", "duration_s", "until_V"});
    s.type = StepType::cp;
    if (!n["power_W"]) c.fail(n, p, "cp needs power_W");
    s.value = c.num(n, "power_W", p, 0.0, -kBig, kBig);
    s.until_V = c.num(n, "until_V", p, 0.0, 0.0, 2000.0);
  } else if (type == "cc_cv") {
    c.check_keys(n, p, {"type", "current_A", "cv_V", "cutoff_A", "duration_s"});
    s.type = StepType::cc_cv;
    if (!n["current_A"] || !n["cv_V"] || !n["cutoff_A"]) c.fail(n, p, "cc_cv needs current_A, cv_V and cutoff_A");
    s.value = c.num(n, "current_A", p, 0.0, 0.0, kBig);
    s.cv_V = c.num(n, "cv_V", p, 0.0, 0.001, 2000.0);
    s.cutoff_A = c.num(n, "cutoff_A", p, 0.0, 0.0, kBig);
  } else if (type == "pulse") {
    c.check_keys(n, p, {"type", "mode", "levels", "duration_s"});
    s.type = StepType::pulse;
    s.pulse_kind = parse_mode(n, c, p, TargetKind::current);
    if (!n["levels"] || !n["duration_s"]) c.fail(n, p, "pulse needs levels and duration_s");
    c.require_seq(n["levels"], p + ".levels");
    for (std::size_t i = 0; i < n["levels"].size(); ++i) {
      const YAML::Node l = n["levels"][i];
      const std::string lp = p + ".levels[" + std::to_string(i) + "]";
      c.check_keys(l, lp, {"value", "duration_s"});
      if (!l["value"] || !l["duration_s"]) c.fail(l, lp, "a level needs value and duration_s");
      s.levels.push_back({c.num(l, "value", lp, 0.0, -kBig, kBig), c.num(l, "duration_s", lp, 0.0, 1e-3, 1e7)});
    }
    if (s.levels.empty()) c.fail(n["levels"], p + ".levels", "needs at least one level");
  } else if (type == "random") {
    return parse_random(n, c, p);
  } else if (type == "profile") {
    c.check_keys(n, p, {"type", "mode", "file", "scale", "loop", "duration_s", "until_V"});
    s.type = StepType::profile;
    s.pulse_kind = parse_mode(n, c, p, TargetKind::power);
    const std::string f = c.str(n, "file", p, "", true);
    s.profile = load_profile(c.resolve(f));
    s.scale = c.num(n, "scale", p, 1.0, -kBig, kBig);
    s.loop = c.boolean(n, "loop", p, false);
    s.until_V = c.num(n, "until_V", p, 0.0, 0.0, 2000.0);
    if (s.loop && !n["duration_s"] && s.until_V <= 0.0) c.fail(n, p, "a looping profile needs duration_s or until_V");
    if (s.until_V > 0.0) {
      const double mean = profile_mean(*s.profile, s.scale);
      if (mean == 0.0)
        c.fail(n["until_V"], p + ".until_V",
               "the profile (times scale) has no net charge or discharge, so until_V has no direction");
      s.until_falling = mean < 0.0;
    }
  } else {
    c.fail(n["type"], p + ".type",
           "unknown step type '" + type + "' (expected rest, cc, cp, cc_cv, pulse, profile, random)");
  }
  s.duration_s = c.num(n, "duration_s", p, 0.0, 0.0, 1e8);
  if (s.duration_s <= 0.0 && (s.type == StepType::rest || s.type == StepType::pulse))
    c.fail(n, p, "duration_s must be > 0");
  if (s.duration_s <= 0.0 && s.until_V <= 0.0 && (s.type == StepType::cc || s.type == StepType::cp))
    c.fail(n, p, std::string(to_string(s.type)) + " needs duration_s or until_V");
  return s;
}

/// Key of the start-delay draw within a channel's seed (any constant unlike the random steps' keys).
constexpr std::uint64_t kStartDelayKey = 0x53544152545F4445ULL;

std::shared_ptr<const Schedule> parse_schedule(const YAML::Node& n, const YamlCtx& c, const std::string& p,
                                               double extra_delay_s, std::uint64_t channel_seed) {
  c.check_keys(n, p, {"repeat", "start_delay_s", "steps"});
  auto s = std::make_shared<Schedule>();
  s->seed = channel_seed;
  s->repeat = static_cast<int>(c.integer(n, "repeat", p, 1, 0, 1000000));
  // A range [low, high] is drawn once per channel: programs that start at random times, as in a lab.
  const auto [delay_lo_s, delay_hi_s] = c.range(n, "start_delay_s", p, {0.0, 0.0}, 0.0, 1e8);
  s->start_delay_s =
      delay_lo_s + unit_from_seed(mix_seed(channel_seed, kStartDelayKey)) * (delay_hi_s - delay_lo_s) + extra_delay_s;
  if (!n["steps"]) c.fail(n, p, "missing key 'steps'");
  c.require_seq(n["steps"], p + ".steps");
  for (std::size_t i = 0; i < n["steps"].size(); ++i)
    s->steps.push_back(parse_step(n["steps"][i], c, p + ".steps[" + std::to_string(i) + "]"));
  if (s->steps.empty()) c.fail(n["steps"], p + ".steps", "needs at least one step");
  return s;
}

/// A profile's cutoff outside the converter's window would never be reached (the converter stops the
/// battery at its own limit first) and the loop would run forever.
void check_cutoffs(const Schedule& s, const ConverterParams& conv, const YAML::Node& n, const YamlCtx& c,
                   const std::string& p) {
  for (std::size_t i = 0; i < s.steps.size(); ++i) {
    const Step& st = s.steps[i];
    if (st.type != StepType::profile || st.until_V <= 0.0) continue;
    if (st.until_V < conv.v_min_V || st.until_V > conv.v_max_V) {
      const YAML::Node sn = n["steps"][i];
      c.fail(sn["until_V"], p + ".steps[" + std::to_string(i) + "].until_V",
             "cutoff " + std::to_string(st.until_V) + " V is outside the converter window [" +
                 std::to_string(conv.v_min_V) + ", " + std::to_string(conv.v_max_V) + "] V: it would never be reached");
    }
  }
}

core::BufferLimits parse_buffer(const Merged& m, const YamlCtx& c, const ConverterParams& conv) {
  for (const auto& [node, path] : {std::pair{m.tmpl, m.tmpl_path}, std::pair{m.own, m.own_path}})
    if (node)
      c.check_keys(node, path,
                   {"max_charge_W", "max_discharge_W", "max_charge_A", "max_discharge_A", "v_min_V", "v_max_V",
                    "hysteresis_V", "efficiency", "capacity_Wh"});
  auto num = [&](const char* k, double def, double lo, double hi) {
    return m.with(k, [&](const YAML::Node& n, const std::string& p) { return n ? c.num(n, k, p, def, lo, hi) : def; });
  };
  // Defaults come from the converter so that a minimal `buffer: {v_min_V, v_max_V}` works.
  core::BufferLimits l;
  l.max_charge_W = num("max_charge_W", conv.max_charge_W, 0.0, kBig);
  l.max_discharge_W = num("max_discharge_W", conv.max_discharge_W, 0.0, kBig);
  l.max_charge_A = num("max_charge_A", conv.max_charge_A, 0.0, kBig);
  l.max_discharge_A = num("max_discharge_A", conv.max_discharge_A, 0.0, kBig);
  l.v_min_V = num("v_min_V", conv.v_min_V, 0.0, 2000.0);
  l.v_max_V = num("v_max_V", conv.v_max_V, 0.0, 2000.0);
  l.hysteresis_V = num("hysteresis_V", l.hysteresis_V, 0.0, 100.0);
  // What eqd is told about the buffer's converter; defaults to the simulated converter's truth.
  l.efficiency = num("efficiency", conv.efficiency, 0.5, 1.0);
  // What eqd is told of the buffer's usable energy (valley filling); 0 = not known, as in eqd's config.
  l.capacity_Wh = num("capacity_Wh", 0.0, 0.0, 1.0e9);
  const YAML::Node at = m.own ? m.own : m.tmpl;
  const std::string at_path = m.own ? m.own_path : m.tmpl_path;
  if (l.v_min_V >= l.v_max_V) c.fail(at, at_path, "v_min_V must be below v_max_V");
  if (const char* why = core::validate(l)) c.fail(at, at_path, why);
  return l;
}

}  // namespace

RigSpec parse_rig(const YAML::Node& root, const YamlCtx& c, const std::string& base) {
  auto path = [&](const std::string& k) { return base.empty() ? k : base + "." + k; };
  c.check_keys(root, base, {"name", "seed", "noise", "buses", "templates", "controllers"});
  RigSpec rig;
  rig.source = c.file;
  rig.name = c.str(root, "name", base, "rig", false);
  rig.seed = static_cast<std::uint64_t>(c.integer(root, "seed", base, 1, 0, INT64_MAX));
  double noise_V = 0.002, noise_A = 0.01;
  if (root["noise"]) {
    c.check_keys(root["noise"], path("noise"), {"voltage_V", "current_A"});
    noise_V = c.num(root["noise"], "voltage_V", path("noise"), noise_V, 0.0, 100.0);
    noise_A = c.num(root["noise"], "current_A", path("noise"), noise_A, 0.0, 100.0);
  }

  if (!root["buses"]) c.fail(root, base, "missing key 'buses'");
  c.require_seq(root["buses"], path("buses"));
  std::map<std::string, std::size_t> bus_index;
  for (std::size_t i = 0; i < root["buses"].size(); ++i) {
    const YAML::Node b = root["buses"][i];
    const std::string p = path("buses[" + std::to_string(i) + "]");
    c.check_keys(b, p,
                 {"name",
                  "law",
                  "target_W",
                  "tau_s",
                  "deadband_W",
                  "slew_W_per_s",
                  "flip_dwell_s",
                  "update_interval_s",
                  "trim_tau_s",
                  "trim_max_fraction",
                  "hold_max_s",
                  "max_age_ms",
                  "lease_ms",
                  "use_forecast",
                  "forecast_horizon_s",
                  "mode",
                  "import_limit_W",
                  "export_limit_W",
                  "import_limit_average_s",
                  "schedule",
                  "valley_fill",
                  "fill_margin",
                  "fill_lead_s",
                  "fill_energy_Wh",
                  "level_shaving",
                  "plan_travel_weight_s"});
    BusSpec bs{c.str(b, "name", p, "", true), parse_bus_params(b, c, p), {}};
    if (b["schedule"]) bs.schedule = parse_target_schedule(b["schedule"], c, p + ".schedule");
    if (!bus_index.emplace(bs.name, i).second) c.fail(b["name"], p + ".name", "duplicate bus name '" + bs.name + "'");
    // tau_s outside 10..20 s is allowed here (scenarios explore it); the daemon's config applies its own rule.
    if (const char* why = core::validate(bs.params, true)) c.fail(b, p, why);
    rig.buses.push_back(std::move(bs));
  }
  if (rig.buses.empty()) c.fail(root["buses"], path("buses"), "needs at least one bus");

  const YAML::Node templates = root["templates"];
  if (templates) c.require_map(templates, path("templates"));

  if (!root["controllers"]) c.fail(root, base, "missing key 'controllers'");
  c.require_seq(root["controllers"], path("controllers"));
  std::set<std::string> names;
  for (std::size_t ci = 0; ci < root["controllers"].size(); ++ci) {
    const YAML::Node cn = root["controllers"][ci];
    const std::string cp = path("controllers[" + std::to_string(ci) + "]");
    c.check_keys(cn, cp, {"name", "heartbeat_timeout_ms", "forecast_horizon_s", "channels"});
    ControllerSpec ctl;
    ctl.params.name = c.str(cn, "name", cp, "", true);
    if (ctl.params.name.find('/') != std::string::npos)
      c.fail(cn["name"], cp + ".name", "a controller name may not contain '/'");
    if (!names.insert(ctl.params.name).second)
      c.fail(cn["name"], cp + ".name", "duplicate controller name '" + ctl.params.name + "'");
    ctl.params.heartbeat_timeout_ms = c.num(cn, "heartbeat_timeout_ms", cp, 3000.0, 0.0, 3.6e6);
    ctl.params.forecast_horizon_s = c.num(cn, "forecast_horizon_s", cp, 0.0, 0.0, 3600.0);
    ctl.params.noise_V = noise_V;
    ctl.params.noise_A = noise_A;
    if (!cn["channels"]) c.fail(cn, cp, "missing key 'channels'");
    c.require_seq(cn["channels"], cp + ".channels");
    for (std::size_t ei = 0; ei < cn["channels"].size(); ++ei) {
      const YAML::Node en = cn["channels"][ei];
      const std::string ep = cp + ".channels[" + std::to_string(ei) + "]";
      c.check_keys(en, ep, {"count", "template", "bus", "battery", "converter", "schedule", "buffer", "stagger_s"});
      const std::string tname = en["template"] ? c.str(en, "template", ep, "", true) : std::string();
      if (!tname.empty() && (!templates || !templates[tname]))
        c.fail(en["template"], ep + ".template", "unknown template '" + tname + "'");
      const Layered l{en, tname.empty() ? none() : templates[tname], ep,
                      tname.empty() ? std::string() : path("templates." + tname)};
      if (l.tmpl) c.check_keys(l.tmpl, l.tmpl_path, {"bus", "battery", "converter", "schedule", "buffer", "stagger_s"});
      const auto count = c.integer(en, "count", ep, 1, 1, 4096);
      const auto [bus_node, bus_path] = l.get("bus");
      std::size_t bus = 0;
      if (bus_node) {
        if (!bus_node.IsScalar()) c.fail(bus_node, bus_path, "expected a bus name");
        const auto it = bus_index.find(bus_node.Scalar());
        if (it == bus_index.end()) c.fail(bus_node, bus_path, "unknown bus '" + bus_node.Scalar() + "'");
        bus = it->second;
      } else if (rig.buses.size() > 1) {
        c.fail(en, ep, "missing key 'bus' (the rig has several buses)");
      }
      const auto [stag_node, stag_path] = l.get("stagger_s");
      const double stagger = stag_node ? c.num(stag_node, stag_path) : 0.0;
      const auto [sched_node, sched_path] = l.get("schedule");
      const Merged buf = merged(l, "buffer");
      if (sched_node && buf.present())
        c.fail(en, ep, "a channel has either a schedule (test channel) or a buffer section, not both");
      ChannelSpec proto;
      proto.bus = bus;
      proto.ocv = parse_battery(merged(l, "battery"), c, proto.battery);
      parse_converter(merged(l, "converter"), c, proto.converter);
      {
        // A pack whose open-circuit voltage lies outside the converter's window could never move:
        // almost always a cell-level converter default on a multi-cell pack.
        const double v0 = proto.ocv->voltage_V(proto.battery.initial_soc);
        if (v0 > proto.converter.v_max_V || v0 < proto.converter.v_min_V) {
          const Merged conv = merged(l, "converter");
          c.fail(conv.own ? conv.own : (conv.tmpl ? conv.tmpl : en),
                 conv.own ? conv.own_path : (conv.tmpl ? conv.tmpl_path : ep),
                 "battery open-circuit voltage " + std::to_string(v0) + " V is outside the converter window [" +
                     std::to_string(proto.converter.v_min_V) + ", " + std::to_string(proto.converter.v_max_V) +
                     "] V (set converter.v_min_V / v_max_V)");
        }
      }
      if (buf.present()) {
        proto.buffer = true;
        proto.limits = parse_buffer(buf, c, proto.converter);
      }
      for (std::int64_t k = 0; k < count; ++k) {
        ChannelSpec ch = proto;
        if (sched_node) {
          c.require_map(sched_node, sched_path);
          // The channel's place (controller, channel) keys its random draws: stable when other
          // controllers are added behind it, different for every channel of a group.
          const std::uint64_t channel_seed = mix_seed(mix_seed(rig.seed, ci), ctl.channels.size());
          ch.schedule = parse_schedule(sched_node, c, sched_path, stagger * static_cast<double>(k), channel_seed);
          check_cutoffs(*ch.schedule, ch.converter, sched_node, c, sched_path);
        }
        ctl.channels.push_back(std::move(ch));
      }
    }
    rig.controllers.push_back(std::move(ctl));
  }
  return rig;
}

}  // namespace eqd::sim::detail

namespace eqd::sim {

RigSpec load_rig_spec(const std::string& path) {
  const YAML::Node root = detail::load_yaml_file(path);
  detail::YamlCtx ctx{path, std::filesystem::path(path).parent_path().string()};
  return detail::parse_rig(root, ctx, "");
}

}  // namespace eqd::sim
