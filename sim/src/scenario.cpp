#include "eqd/sim/scenario.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>

#include "eqd/core/schedule_text.hpp"
#include "yaml_util.hpp"

namespace eqd::sim {
namespace {

constexpr double kBig = 1e300;

std::string where(const detail::YamlCtx& c, const YAML::Node& n) {
  return c.file + ":" + std::to_string(n.Mark().line + 1);
}

/// "2026-12-07T17:30" -> seconds since 1970-01-01T00:00 of the same (local) calendar; -1: not that form.
std::int64_t parse_local_time(const std::string& t) {
  int y = 0, mo = 0, d = 0;
  char sep = 0;
  int used = 0;
  if (t.size() != 16 || std::sscanf(t.c_str(), "%4d-%2d-%2d%c%n", &y, &mo, &d, &sep, &used) != 4 || used != 11 ||
      sep != 'T' || t[4] != '-' || t[7] != '-')
    return -1;
  const int minute = core::parse_hhmm(std::string_view(t).substr(11), false);
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(mo)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  if (minute < 0 || y < 1970 || y > 2200 || !ymd.ok()) return -1;
  const std::int64_t days = std::chrono::sys_days{ymd}.time_since_epoch().count();
  return days * 86400 + minute * 60;
}

HarnessConfig parse_harness(const YAML::Node& n, const detail::YamlCtx& c) {
  HarnessConfig h;
  if (!n) return h;
  const std::string p = "harness";
  c.check_keys(n, p,
               {"duration_s", "plant_dt_s", "sample_period_s", "link_delay_s", "command_delay_s", "heartbeat_period_s",
                "record_period_s", "metrics_from_s", "flip_threshold_W", "start_local", "utc_offset_min"});
  if (n["start_local"]) {
    const std::string t = c.str(n, "start_local", p, "", true);
    h.start_local_s = parse_local_time(t);
    if (h.start_local_s < 0)
      c.fail(n["start_local"], p + ".start_local", "got '" + t + "' (expected local time YYYY-MM-DDTHH:MM)");
    h.calendar = true;
  }
  h.utc_offset_min = c.integer(n, "utc_offset_min", p, 0, -14 * 60, 14 * 60);
  h.duration_s = c.num(n, "duration_s", p, h.duration_s, 0.1, 1e7);
  h.plant_dt_s = c.num(n, "plant_dt_s", p, h.plant_dt_s, 1e-3, 10.0);
  h.sample_period_s = c.num(n, "sample_period_s", p, h.sample_period_s, h.plant_dt_s, 60.0);
  h.link_delay_s = c.num(n, "link_delay_s", p, h.link_delay_s, 0.0, 60.0);
  h.command_delay_s = c.num(n, "command_delay_s", p, h.command_delay_s, 0.0, 60.0);
  h.heartbeat_period_s = c.num(n, "heartbeat_period_s", p, h.heartbeat_period_s, h.plant_dt_s, 3600.0);
  h.record_period_s = c.num(n, "record_period_s", p, h.record_period_s, h.plant_dt_s, 3600.0);
  h.metrics_from_s = c.num(n, "metrics_from_s", p, h.metrics_from_s, 0.0, 1e7);
  h.flip_threshold_W = c.num(n, "flip_threshold_W", p, h.flip_threshold_W, 0.0, 1e9);
  return h;
}

Tariff parse_tariff(const YAML::Node& n, const detail::YamlCtx& c) {
  Tariff t;
  if (!n) return t;
  const std::string p = "tariff";
  c.check_keys(n, p, {"peak", "offpeak_price_per_kWh", "demand_price_per_kW"});
  if (!n["peak"]) c.fail(n, p, "missing key 'peak'");
  const YAML::Node pk = n["peak"];
  c.check_keys(pk, p + ".peak", {"days", "start", "end", "price_per_kWh"});
  detail::parse_window_times(pk, c, p + ".peak", t.peak);
  if (!pk["price_per_kWh"]) c.fail(pk, p + ".peak", "missing key 'price_per_kWh'");
  t.peak_price_per_kWh = c.num(pk, "price_per_kWh", p + ".peak", 0.0, 0.0, 1e6);
  if (!n["offpeak_price_per_kWh"]) c.fail(n, p, "missing key 'offpeak_price_per_kWh'");
  t.offpeak_price_per_kWh = c.num(n, "offpeak_price_per_kWh", p, 0.0, 0.0, 1e6);
  t.demand_price_per_kW = c.num(n, "demand_price_per_kW", p, 0.0, 0.0, 1e6);
  t.defined = true;
  return t;
}

std::vector<Event> parse_events(const YAML::Node& n, const detail::YamlCtx& c, const Rig& rig) {
  std::vector<Event> out;
  if (!n) return out;
  c.require_seq(n, "events");
  for (std::size_t i = 0; i < n.size(); ++i) {
    const YAML::Node e = n[i];
    const std::string p = "events[" + std::to_string(i) + "]";
    c.check_keys(e, p, {"at_s", "action", "channel", "controller", "code"});
    Event ev;
    if (!e["at_s"]) c.fail(e, p, "missing key 'at_s'");
    ev.at_s = c.num(e, "at_s", p, 0.0, 0.0, 1e8);
    const std::string a = c.str(e, "action", p, "", true);
    static const std::pair<const char*, Event::Kind> kinds[] = {
        {"fault", Event::Kind::inject_fault}, {"clear_fault", Event::Kind::clear_fault},
        {"stall", Event::Kind::stall},        {"unstall", Event::Kind::unstall},
        {"offline", Event::Kind::offline},    {"online", Event::Kind::online},
        {"kill_eqd", Event::Kind::kill_eqd},  {"restart_eqd", Event::Kind::restart_eqd}};
    bool found = false;
    for (const auto& [name, kind] : kinds)
      if (a == name) {
        ev.kind = kind;
        found = true;
      }
    if (!found)
      c.fail(e["action"], p + ".action",
             "unknown action '" + a +
                 "' (expected fault, clear_fault, stall, unstall, offline, online, kill_eqd, restart_eqd)");
    const bool per_channel = ev.kind == Event::Kind::inject_fault || ev.kind == Event::Kind::clear_fault ||
                             ev.kind == Event::Kind::stall || ev.kind == Event::Kind::unstall;
    const bool per_controller = ev.kind == Event::Kind::offline || ev.kind == Event::Kind::online;
    if (per_channel) {
      const std::string ch = c.str(e, "channel", p, "", true);
      const auto idx = rig.find_channel(ch);
      if (!idx) c.fail(e["channel"], p + ".channel", "unknown channel '" + ch + "' (expected CONTROLLER/INDEX)");
      ev.channel = *idx;
    }
    if (per_controller) {
      const std::string ctl = c.str(e, "controller", p, "", true);
      const auto idx = rig.find_controller(ctl);
      if (!idx) c.fail(e["controller"], p + ".controller", "unknown controller '" + ctl + "'");
      ev.controller = *idx;
    }
    ev.code = static_cast<std::uint16_t>(c.integer(e, "code", p, 1, 1, 65535));
    out.push_back(ev);
  }
  return out;
}

Expectations parse_expect(const YAML::Node& n, const detail::YamlCtx& c, const Rig& rig) {
  Expectations x;
  if (!n) c.fail(YAML::Node(), "expect", "a scenario needs expectations");
  const std::string p = "expect";
  c.check_keys(
      n, p,
      {"bus", "step_at_s", "settle_within_s", "settle_band_fraction", "overshoot_max_fraction", "flips_per_hour_max",
       "exchange_ratio_max", "window_margin_min_V", "residual_rms_max_W", "peak_import_15min_max_W", "checks"});
  if (n["bus"]) {
    const std::string b = c.str(n, "bus", p, "", true);
    const auto idx = rig.find_bus(b);
    if (!idx) c.fail(n["bus"], p + ".bus", "unknown bus '" + b + "'");
    x.bus = *idx;
  }
  x.step_at_s = c.num(n, "step_at_s", p, -1.0, 0.0, 1e8);
  x.settle_within_s = c.num(n, "settle_within_s", p, -1.0, 0.0, 1e8);
  x.settle_band_fraction = c.num(n, "settle_band_fraction", p, 0.02, 0.0, 1.0);
  x.overshoot_max_fraction = c.num(n, "overshoot_max_fraction", p, -1.0, 0.0, 10.0);
  x.flips_per_hour_max = c.num(n, "flips_per_hour_max", p, -1.0, 0.0, 1e6);
  x.exchange_ratio_max = c.num(n, "exchange_ratio_max", p, -1.0, 0.0, 10.0);
  x.window_margin_min_V = c.num(n, "window_margin_min_V", p, -kBig, -1e6, 1e6);
  x.residual_rms_max_W = c.num(n, "residual_rms_max_W", p, -1.0, 0.0, 1e9);
  x.peak_import_15min_max_W = c.num(n, "peak_import_15min_max_W", p, -1.0, 0.0, 1e9);
  if ((x.settle_within_s >= 0.0 || x.overshoot_max_fraction >= 0.0) && x.step_at_s < 0.0)
    c.fail(n, p, "settle_within_s and overshoot_max_fraction need step_at_s");
  if (const YAML::Node cs = n["checks"]) {
    c.require_seq(cs, p + ".checks");
    std::vector<std::size_t> buffers;
    for (std::size_t i = 0; i < rig.channel_count(); ++i)
      if (rig.channel_spec(i).buffer && rig.channel_spec(i).bus == x.bus) buffers.push_back(i);
    const double rated = rig.rated_eq_W(x.bus);
    for (std::size_t i = 0; i < cs.size(); ++i) {
      const YAML::Node e = cs[i];
      const std::string cp = p + ".checks[" + std::to_string(i) + "]";
      c.check_keys(e, cp,
                   {"signal", "channel", "from_s", "to_s", "at_s", "min", "max", "abs_max", "span_max",
                    "abs_max_fraction", "span_max_fraction"});
      SignalCheck k;
      k.where = where(c, e);
      k.signal = c.str(e, "signal", cp, "", true);
      static const char* bus_signals[] = {"free_W", "eq_commanded_W", "eq_measured_W", "residual_W", "grid_net_W"};
      static const char* buf_signals[] = {"setpoint_W", "buffer_power_W", "buffer_voltage_V", "buffer_equalizing"};
      const bool is_bus =
          std::any_of(std::begin(bus_signals), std::end(bus_signals), [&](const char* s) { return k.signal == s; });
      const bool is_buf =
          std::any_of(std::begin(buf_signals), std::end(buf_signals), [&](const char* s) { return k.signal == s; });
      if (!is_bus && !is_buf)
        c.fail(e["signal"], cp + ".signal",
               "unknown signal '" + k.signal +
                   "' (expected free_W, eq_commanded_W, eq_measured_W, residual_W, grid_net_W, "
                   "setpoint_W, buffer_power_W, buffer_voltage_V, buffer_equalizing)");
      if (is_buf) {
        k.channel = c.str(e, "channel", cp, "", true);
        const auto idx = rig.find_channel(k.channel);
        const auto it = idx ? std::find(buffers.begin(), buffers.end(), *idx) : buffers.end();
        if (it == buffers.end())
          c.fail(e["channel"], cp + ".channel", "'" + k.channel + "' is not a buffer of this bus");
        k.buffer_slot = static_cast<std::size_t>(it - buffers.begin());
      }
      if (e["at_s"]) {
        k.from_s = k.to_s = c.num(e, "at_s", cp, 0.0, 0.0, 1e8);
      } else {
        if (!e["from_s"] || !e["to_s"]) c.fail(e, cp, "needs at_s, or from_s and to_s");
        k.from_s = c.num(e, "from_s", cp, 0.0, 0.0, 1e8);
        k.to_s = c.num(e, "to_s", cp, 0.0, k.from_s, 1e8);
      }
      k.min = c.num(e, "min", cp, -kBig, -kBig, kBig);
      k.max = c.num(e, "max", cp, kBig, -kBig, kBig);
      k.abs_max = c.num(e, "abs_max", cp, kBig, 0.0, kBig);
      k.span_max = c.num(e, "span_max", cp, kBig, 0.0, kBig);
      if (e["abs_max_fraction"])
        k.abs_max = std::min(k.abs_max, rated * c.num(e, "abs_max_fraction", cp, 0.0, 0.0, 10.0));
      if (e["span_max_fraction"])
        k.span_max = std::min(k.span_max, rated * c.num(e, "span_max_fraction", cp, 0.0, 0.0, 10.0));
      x.checks.push_back(k);
    }
  }
  return x;
}

std::string fmt(double v) {
  std::ostringstream o;
  o.precision(4);
  o << v;
  return o.str();
}

}  // namespace

Scenario load_scenario(const std::string& path) {
  const YAML::Node root = detail::load_yaml_file(path);
  const detail::YamlCtx ctx{path, std::filesystem::path(path).parent_path().string()};
  ctx.check_keys(root, "", {"name", "description", "rig", "harness", "tariff", "events", "expect"});
  Scenario s;
  s.source = path;
  s.name = ctx.str(root, "name", "", std::filesystem::path(path).stem().string(), false);
  const YAML::Node r = root["rig"];
  if (!r) ctx.fail(root, "", "missing key 'rig'");
  if (r.IsScalar()) {
    s.rig = load_rig_spec(ctx.resolve(r.Scalar()));
  } else {
    s.rig = detail::parse_rig(r, ctx, "rig");
  }
  s.harness = parse_harness(root["harness"], ctx);
  s.harness.tariff = parse_tariff(root["tariff"], ctx);
  if (!s.harness.calendar) {
    // Target schedules and tariff periods are wall-clock times: the scenario must say when it starts.
    if (root["tariff"]) ctx.fail(root["tariff"], "tariff", "needs harness.start_local (the wall clock at 0 s)");
    for (std::size_t b = 0; b < s.rig.buses.size(); ++b)
      if (!s.rig.buses[b].schedule.empty())
        ctx.fail(root["harness"] ? root["harness"] : root, "harness.start_local",
                 "bus '" + s.rig.buses[b].name + "' has a schedule: give start_local (the wall clock at 0 s)");
  }
  // Names in events and checks are resolved against the built rig (channel names need the layout).
  const Rig rig(s.rig);
  s.events = parse_events(root["events"], ctx, rig);
  s.expect = parse_expect(root["expect"], ctx, rig);
  if (s.expect.step_at_s >= 0.0 && s.harness.record_period_s > 0.5)
    ctx.fail(root["harness"] ? root["harness"] : root, "harness.record_period_s",
             "step-response checks need record_period_s <= 0.5");
  return s;
}

ScenarioResult run_scenario(const Scenario& s, RigLaw* law) {
  ScenarioResult res;
  Rig rig(s.rig);
  std::unique_ptr<ControlCoreLaw> core;
  if (law == nullptr) {
    core = std::make_unique<ControlCoreLaw>(make_core_config(rig));
    law = core.get();
  }
  Harness h(rig, *law, s.harness, s.events);
  const auto t0 = std::chrono::steady_clock::now();
  h.run();
  res.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const Expectations& x = s.expect;
  const BusMetrics m = h.metrics(x.bus);
  res.metrics = m;
  const BusTrace& tr = h.trace(x.bus);
  auto fail = [&](const std::string& what) { res.failures.push_back(s.name + ": " + what); };
  std::ostringstream sum;
  sum << s.name << ": rated_eq_W=" << fmt(m.rated_eq_W) << " residual_rms_W=" << fmt(m.residual_rms_W)
      << " residual_peak_W=" << fmt(m.residual_peak_W) << " flips_per_hour=" << fmt(m.flips_per_hour)
      << " travel_W=" << fmt(m.setpoint_travel_W) << " exchange_ratio=" << fmt(m.exchange_ratio())
      << " grid_import_J=" << fmt(m.grid_import_J) << " grid_export_J=" << fmt(m.grid_export_J)
      << " free_import_J=" << fmt(m.free_import_J) << " free_export_J=" << fmt(m.free_export_J) << " buffer_V=["
      << fmt(m.buffer_v_min_V) << ", " << fmt(m.buffer_v_max_V) << "]"
      << " window_margin_min_V=" << fmt(m.window_margin_min_V);

  if (x.step_at_s >= 0.0) {
    res.step = step_response(tr, x.step_at_s, x.settle_band_fraction * m.rated_eq_W);
    sum << " step_W=" << fmt(res.step.step_W) << " settle_s=" << fmt(res.step.settle_s)
        << " overshoot=" << fmt(res.step.overshoot_fraction);
    if (x.settle_within_s >= 0.0 && (res.step.settle_s < 0.0 || res.step.settle_s > x.settle_within_s))
      fail("settle time " + fmt(res.step.settle_s) + " s (band " + fmt(x.settle_band_fraction * m.rated_eq_W) +
           " W) exceeds " + fmt(x.settle_within_s) + " s");
    if (x.overshoot_max_fraction >= 0.0 && res.step.overshoot_fraction > x.overshoot_max_fraction)
      fail("overshoot " + fmt(res.step.overshoot_fraction) + " exceeds " + fmt(x.overshoot_max_fraction));
  }
  if (x.flips_per_hour_max >= 0.0 && m.flips_per_hour > x.flips_per_hour_max)
    fail("direction flips per hour " + fmt(m.flips_per_hour) + " exceed " + fmt(x.flips_per_hour_max));
  if (x.exchange_ratio_max >= 0.0 && m.exchange_ratio() > x.exchange_ratio_max)
    fail("grid exchange ratio " + fmt(m.exchange_ratio()) + " exceeds " + fmt(x.exchange_ratio_max));
  if (m.window_margin_min_V < x.window_margin_min_V)
    fail("buffer window margin " + fmt(m.window_margin_min_V) + " V below " + fmt(x.window_margin_min_V) + " V");
  if (x.residual_rms_max_W >= 0.0 && m.residual_rms_W > x.residual_rms_max_W)
    fail("residual RMS " + fmt(m.residual_rms_W) + " W exceeds " + fmt(x.residual_rms_max_W) + " W");
  if (x.peak_import_15min_max_W >= 0.0 && m.peak_import_15min_W > x.peak_import_15min_max_W)
    fail("highest quarter-hour import " + fmt(m.peak_import_15min_W) + " W exceeds " + fmt(x.peak_import_15min_max_W) +
         " W");

  const std::size_t nbuf = tr.buffers.size();
  for (const SignalCheck& k : x.checks) {
    const std::vector<double>* bus_sig = nullptr;
    if (k.signal == "free_W")
      bus_sig = &tr.free_W;
    else if (k.signal == "eq_commanded_W")
      bus_sig = &tr.eq_commanded_W;
    else if (k.signal == "eq_measured_W")
      bus_sig = &tr.eq_measured_W;
    else if (k.signal == "residual_W")
      bus_sig = &tr.residual_W;
    else if (k.signal == "grid_net_W")
      bus_sig = &tr.grid_net_W;
    double lo = kBig, hi = -kBig, abs_hi = 0.0;
    std::size_t count = 0;
    const double tol = 0.5 * s.harness.record_period_s;
    for (std::size_t r = 0; r < tr.t_s.size(); ++r) {
      if (tr.t_s[r] < k.from_s - tol || tr.t_s[r] > k.to_s + tol) continue;
      double v = 0.0;
      if (bus_sig != nullptr)
        v = (*bus_sig)[r];
      else if (k.signal == "setpoint_W")
        v = tr.setpoint_W[r * nbuf + k.buffer_slot];
      else if (k.signal == "buffer_power_W")
        v = tr.buffer_power_W[r * nbuf + k.buffer_slot];
      else if (k.signal == "buffer_voltage_V")
        v = tr.buffer_voltage_V[r * nbuf + k.buffer_slot];
      else
        v = tr.buffer_equalizing[r * nbuf + k.buffer_slot];
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      abs_hi = std::max(abs_hi, std::abs(v));
      ++count;
    }
    const std::string id = k.where + " " + k.signal + (k.channel.empty() ? "" : "(" + k.channel + ")") + " over [" +
                           fmt(k.from_s) + ", " + fmt(k.to_s) + "] s";
    if (count == 0) {
      fail(id + ": no recorded data in the window");
      continue;
    }
    if (lo < k.min) fail(id + ": min " + fmt(lo) + " below " + fmt(k.min));
    if (hi > k.max) fail(id + ": max " + fmt(hi) + " above " + fmt(k.max));
    if (abs_hi > k.abs_max) fail(id + ": |value| " + fmt(abs_hi) + " above " + fmt(k.abs_max));
    if (hi - lo > k.span_max) fail(id + ": span " + fmt(hi - lo) + " above " + fmt(k.span_max));
  }
  if (s.harness.calendar)
    sum << " peak_import_15min_W=" << fmt(m.peak_import_15min_W)
        << " free_peak_import_15min_W=" << fmt(m.free_peak_import_15min_W)
        << " buffer_throughput_kWh=" << fmt(m.buffer_throughput_J / 3.6e6);
  if (s.harness.tariff.defined)
    sum << " energy_cost=" << fmt(m.energy_cost) << " free_energy_cost=" << fmt(m.free_energy_cost)
        << " demand_charge=" << fmt(m.demand_charge) << " free_demand_charge=" << fmt(m.free_demand_charge);
  sum << " wall_s=" << fmt(res.wall_s);
  res.summary = sum.str();
  return res;
}

}  // namespace eqd::sim
