// Tables of eqctl (see render.hpp).
#include "render.hpp"

#include "eqd/control/protocol.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <string_view>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <utility>

namespace eqd::cli {

using nlohmann::json;

namespace {

double num(const json& j, const char* key) {
  if (!j.is_object()) return std::nan("");
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : std::nan("");
}

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return "-";
  auto it = j.find(key);
  if (it == j.end()) return "-";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
  if (it->is_number_integer() || it->is_number_unsigned()) return it->dump();
  return "-";
}

// A bus field: null means the channel's controller was discovered and its bus is not known; absent
// (an older daemon) is "-".
std::string bus_of(const json& j) {
  if (j.is_object() && j.contains("bus") && j["bus"].is_null()) return "unknown";
  return str(j, "bus");
}

const json& sub(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  // A value that rounds to zero prints as zero, never as "-0" or "-0.00" (a sample of -0.004 A).
  const std::string_view t(buf);
  if (t.size() > 1 && t[0] == '-' && t.find_first_not_of("0.", 1) == std::string_view::npos)
    return std::string(t.substr(1));
  return buf;
}

bool looks_numeric(const std::string& s) {
  return !s.empty() &&
         (std::isdigit(static_cast<unsigned char>(s[0])) ||
          ((s[0] == '-' || s[0] == '+') && s.size() > 1 && std::isdigit(static_cast<unsigned char>(s[1]))));
}

}  // namespace

std::string format_power(double w) {
  if (!std::isfinite(w)) return "-";
  if (std::fabs(w) >= 1000.0) return fixed(w / 1000.0, 2) + " kW";
  return fixed(w, 0) + " W";
}

std::string format_energy_kWh(double j) { return std::isfinite(j) ? fixed(j / 3.6e6, 3) + " kWh" : "-"; }

std::string format_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size() && c < width.size(); ++c) width[c] = std::max(width[c], r[c].size());
  auto line = [&](const std::vector<std::string>& cells, bool is_header) {
    std::string out;
    for (std::size_t c = 0; c < width.size(); ++c) {
      const std::string cell = c < cells.size() ? cells[c] : "";
      const std::string pad(width[c] - cell.size(), ' ');
      const bool right = !is_header && looks_numeric(cell);
      out += right ? pad + cell : cell + (c + 1 < width.size() ? pad : "");
      if (c + 1 < width.size()) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(header, true);
  for (const auto& r : rows) out += line(r, false);
  return out;
}

namespace {
// One unit for all the powers of a bus, so that its power column reads in one unit (issue #18 item 5):
// kW with two decimals once any of them reaches 1 kW, else whole W.
struct PowerUnit {
  double scale;
  int decimals;
  const char* name;
};

PowerUnit unit_for(std::initializer_list<double> powers_W) {
  for (double w : powers_W)
    if (std::isfinite(w) && std::fabs(w) >= 999.5) return {1000.0, 2, "kW"};  // 999.5 W would print as "1000 W"
  return {1.0, 0, "W"};
}

std::string number_in(double w, const PowerUnit& u) { return fixed(w / u.scale, u.decimals); }
std::string power_in(double w, const PowerUnit& u) {
  const std::string n = number_in(w, u);
  return n == "-" ? n : n + " " + u.name;
}

std::string pad_left(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

// A bus's lines: a label column as wide as the widest label plus two spaces, then the value.
class LabelledLines {
 public:
  void add(std::string label, std::string value) { lines_.emplace_back(std::move(label), std::move(value)); }
  [[nodiscard]] std::string str() const {
    std::size_t width = 0;
    for (const auto& [label, value] : lines_) width = std::max(width, label.size());
    std::string out;
    for (const auto& [label, value] : lines_)
      out += "  " + label + std::string(width + 2 - label.size(), ' ') + value + "\n";
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> lines_;
};

// The valley-fill line (docs/eqctl.md): the next caps window and how the buffers are prepared for it.
// Absent from older daemons and while no caps window lies ahead.
std::optional<std::string> valley_fill_text(const json& v) {
  if (!sub(v, "window").is_number()) return std::nullopt;
  const double in_s = num(v, "starts_in_s");
  std::string t = "window " + str(v, "window") + " in " +
                  (in_s >= 3600.0 ? fixed(in_s / 3600.0, 1) + " h" : fixed(in_s / 60.0, 0) + " min");
  if (!sub(v, "need_J").is_number()) return t + ": need not known yet (not seen whole; fill_energy_Wh 0)";
  t += ": needs " + format_energy_kWh(num(v, "need_J")) + ", buffers hold " + format_energy_kWh(num(v, "stored_J")) +
       " of " + format_energy_kWh(num(v, "capacity_J"));
  if (num(v, "fill_W") > 0.0) t += ", charging " + format_power(num(v, "fill_W"));
  if (num(v, "shortfall_J") > 0.0) t += ", expected shortfall " + format_energy_kWh(num(v, "shortfall_J"));
  return t;
}

// The forecast line: use_forecast and free_forecast_W are absent from older daemons, and then nothing
// is said about them.
std::optional<std::string> forecast_text(const json& p, const json& b) {
  const json& uf = sub(p, "use_forecast");
  if (!uf.is_boolean()) return std::nullopt;
  std::string forecast = uf.get<bool>() ? "on" : "off";
  const double horizon_s = num(p, "forecast_horizon_s");
  if (uf.get<bool>() && std::isfinite(horizon_s)) {
    forecast += " (horizon " + fixed(horizon_s, 0) + " s";
    // learn_forecast and forecast_skill are absent from older daemons.
    const json& lf = sub(p, "learn_forecast");
    if (lf.is_boolean() && lf.get<bool>()) {
      const double skill = num(b, "forecast_skill");
      forecast += std::isfinite(skill) ? ", learning, skill " + fixed(skill, 2) : ", learning";
    }
    // stat_forecast and stat_path are absent from older daemons.
    const json& sf = sub(p, "stat_forecast");
    if (sf.is_boolean() && sf.get<bool>()) {
      const json& sp = sub(b, "stat_path");
      forecast += sp.is_boolean() && sp.get<bool>() ? ", statistical path in use" : ", statistical path gated";
    }
    forecast += ")";
  }
  return forecast;
}

// The grid-meter line (docs/eqctl.md): the measured grid power beside the computed net, in the bus's
// power unit, and the meter trim when it is on; absent from older daemons and for a bus without a meter.
std::optional<std::string> meter_text(const json& m, const PowerUnit& u) {
  if (!m.is_object()) return std::nullopt;
  // ", trim 1.50 kW" (its state unless tracking: clamped, holding, decaying, waiting); nothing when off.
  std::string trim;
  if (sub(m, "trim").is_boolean() && sub(m, "trim").get<bool>()) {
    trim = ", trim " + power_in(num(m, "trim_W"), u);
    const std::string state = str(m, "trim_state");
    if (!state.empty() && state != "-" && state != "tracking") trim += " (" + state + ")";
  }
  if (!sub(m, "ok").is_boolean() || !sub(m, "ok").get<bool>()) {
    const std::string err = str(m, "last_error");
    const double age_s = num(m, "age_s");
    std::string t =
        sub(m, "connected").is_boolean() && sub(m, "connected").get<bool>() ? "no valid reading" : "offline";
    if (std::isfinite(age_s)) t += ", last reading " + fixed(age_s, 1) + " s ago";
    if (!err.empty() && err != "-") t += " (" + err + ")";
    return t + trim;
  }
  std::string t = power_in(num(m, "power_W"), u) + " measured, difference " + power_in(num(m, "difference_W"), u);
  t += trim;
  if (sub(m, "disagreement").is_boolean() && sub(m, "disagreement").get<bool>())
    t +=
        "  DISAGREES beyond " + power_in(num(m, "tolerance_W"), u) + " (a channel not sampled, a load not configured?)";
  return t;
}

// One bus's block of `eqctl status`.
std::string render_bus_status(const json& b) {
  std::string out;
  const json& p = sub(b, "params");
  const json& e = sub(b, "energy");
  const json& c = sub(b, "channels");
  const json& k = sub(b, "controllers");
  // Caps mode aims at a band, not a target (docs/control.md, "Caps mode").
  const std::string aim = str(p, "mode") == "caps" ? "caps: import limit " + format_power(num(p, "import_limit_W")) +
                                                         ", export limit " + format_power(num(p, "export_limit_W"))
                                                   : "target " + format_power(num(p, "target_W"));
  out += "bus " + str(b, "bus") + "  [" + str(b, "status") + "]  " + aim + ", tau " + fixed(num(p, "tau_s"), 1) +
         " s, deadband " + format_power(num(p, "deadband_W")) + "\n";
  LabelledLines lines;
  // A window of the bus's target schedule in force: what it aims for instead (docs/eqctl.md).
  if (const json& aim = sub(b, "aim"); sub(aim, "window").is_number())
    lines.add("schedule",
              "window " + str(aim, "window") + ": " +
                  (str(aim, "mode") == "caps" ? "caps, import limit " + format_power(num(aim, "import_limit_W")) +
                                                    ", export limit " + format_power(num(aim, "export_limit_W"))
                                              : "target " + format_power(num(aim, "target_W"))));
  if (std::optional<std::string> f = forecast_text(p, b)) lines.add("forecast", *f);
  // Demand figures once a quarter hour completed (docs/eqctl.md).
  if (const json& d = sub(b, "demand"); sub(d, "quarter_hour_W").is_number())
    lines.add("demand", "last quarter hour " + format_power(num(d, "quarter_hour_W")) + ", max today " +
                            format_power(num(d, "max_day_W")) + ", this month " + format_power(num(d, "max_month_W")));
  if (std::optional<std::string> f = valley_fill_text(sub(b, "valley_fill"))) lines.add("valley fill", *f);
  // Level shaving (absent from older daemons, null while no caps window is active).
  if (const json& level = sub(sub(b, "valley_fill"), "level_W"); level.is_number())
    lines.add("shave level", "import held at " + format_power(level.get<double>()) + " (level shaving)");
  const double net_W = num(b, "net_W"), residual_W = num(b, "residual_W"), free_W = num(b, "free_W"),
               announced_W = num(b, "free_forecast_W"), measured_W = num(b, "eq_measured_W"),
               commanded_W = num(b, "eq_commanded_W");
  const PowerUnit u = unit_for({net_W, residual_W, free_W, announced_W, measured_W, commanded_W});
  // The first power of each line right-aligned, so that the three line up.
  const std::size_t w =
      std::max({number_in(net_W, u).size(), number_in(free_W, u).size(), number_in(measured_W, u).size()});
  auto first = [&](double v) {
    const std::string n = number_in(v, u);
    return pad_left(n, w) + (n == "-" ? std::string(std::strlen(u.name) + 1, ' ') : std::string(" ") + u.name);
  };
  lines.add("net power", first(net_W) + "   (residual " + power_in(residual_W, u) + ")");
  if (std::optional<std::string> m = meter_text(sub(b, "meter"), u)) lines.add("grid meter", *m);
  // The announced free power the law steers by, only where it tells something: when it reads
  // differently from the present free power (the daemon reports free_W itself when nothing is
  // announced or use_forecast is off; equal also when the announcements match the present).
  const std::string announced = power_in(announced_W, u);
  lines.add(
      "free power",
      first(free_W) + (announced != "-" && announced != power_in(free_W, u) ? "   (forecast " + announced + ")" : ""));
  lines.add("equalization power", first(measured_W) + " measured, " + power_in(commanded_W, u) + " commanded");
  lines.add("grid energy", "import " + format_energy_kWh(num(e, "grid_import_J")) + ", export " +
                               format_energy_kWh(num(e, "grid_export_J")));
  lines.add("without equalization", "import " + format_energy_kWh(num(e, "without_eq_import_J")) + ", export " +
                                        format_energy_kWh(num(e, "without_eq_export_J")));
  lines.add("channels", str(c, "total") + ": " + str(c, "test") + " test, " + str(c, "equalization") +
                            " equalization, " + str(c, "pending") + " pending, " + str(c, "releasing") + " releasing");
  lines.add("channel health", str(c, "ok") + " ok, " + str(c, "stale") + " stale, " + str(c, "invalid") + " invalid, " +
                                  str(c, "fault") + " fault, " + str(c, "offline") + " offline");
  lines.add("controllers", str(k, "connected") + " connected, " + str(k, "disconnected") + " disconnected");
  out += lines.str();
  return out;
}

// What `eqctl status` says about the daemon itself: a stalled control thread, the metrics endpoint, a
// history database in trouble.
std::string render_daemon_state(const json& result) {
  std::string out;
  // Older daemons send no "stalled": then nothing is said about it.
  const json& ctl = sub(result, "control");
  if (ctl.is_object() && ctl.contains("stalled")) {
    if (ctl.value("stalled", false)) {
      out += "control: STALLED, no control cycle for " + fixed(num(ctl, "last_cycle_age_s"), 1) + " s (bound " +
             fixed(num(ctl, "liveness_timeout_s"), 1) +
             " s)\n  heartbeat and commands held: the controllers' watchdogs take buffers to 0 W\n";
    } else if (ctl.value("stalls", 0) > 0) {
      out += "control: cycling; " + str(ctl, "stalls") + " stall(s) since start (see the log)\n";
    }
  }
  // Older daemons send no "metrics": then nothing is said about it.
  const json& m = sub(result, "metrics");
  if (m.is_object() && m.value("enabled", false)) {
    if (m.value("listening", false)) {
      out += "metrics: listening on " + str(m, "listen") + "\n";
    } else {
      const json& err = sub(m, "error");
      out += "metrics: not listening on " + str(m, "listen") +
             (err.is_string() ? " (" + err.get<std::string>() + ")" : "") + ", retrying\n";
    }
  }
  // The history database, only when something is wrong (older daemons send no "history").
  const json& h = sub(result, "history");
  if (h.is_object() && !sub(h, "path").is_null()) {
    const json& err = sub(h, "error");
    if (err.is_string())
      out += "history: NO DATABASE (" + err.get<std::string>() + "); audit records go to the log only\n";
    else if (num(h, "records_lost") > 0)
      out += "history: " + str(h, "records_lost") + " record(s) lost (queue full or failed writes; see the log)\n";
  }
  return out;
}

}  // namespace

std::string render_status(const json& result) {
  std::string out;
  const json& buses = sub(result, "buses");
  if (buses.is_array())
    for (const json& b : buses) out += render_bus_status(b);
  const json& k = sub(result, "controllers");
  out += "controllers: " + str(k, "connected") + " of " + str(k, "total") + " connected\n";
  return out + render_daemon_state(result);
}

namespace {
// FORECAST_W: the announced power, or a learned forecast in use marked "~" (learned, not announced).
std::string forecast_cell(const json& c) {
  const double announced = num(c, "forecast_W");
  if (std::isfinite(announced)) return fixed(announced, 0);
  const double learned = num(c, "learned_forecast_W");
  return std::isfinite(learned) ? "~" + fixed(learned, 0) : "-";
}
}  // namespace

std::string render_channels(const json& result) {
  std::vector<std::vector<std::string>> rows;
  // Buffers whose device reports its own power limits (older daemons send no "device_limits"): one line
  // each under the table, with the limits eqd allocates within.
  std::string device_lines;
  const json& chans = sub(result, "channels");
  if (chans.is_array()) {
    for (const json& c : chans) {
      if (const json& d = sub(c, "device_limits"); d.is_object()) {
        const json& eff = sub(c, "effective_limits");
        const json& cfg = sub(c, "limits");
        auto side = [&](const char* what, const char* key) {
          return std::string(what) + " " + format_power(num(eff, key)) +
                 (sub(d, key).is_number()
                      ? " (device " + format_power(num(d, key)) + ", configured " + format_power(num(cfg, key)) + ")"
                      : " (configured)");
        };
        device_lines += str(c, "channel") + ": device limit: " + side("charge", "max_charge_W") + ", " +
                        side("discharge", "max_discharge_W") + "\n";
      }
      const double wp = num(c, "window_pos");
      rows.push_back({str(c, "channel"), bus_of(c), str(c, "role"), str(c, "state"), str(c, "health"),
                      fixed(num(c, "voltage_V"), 2), fixed(num(c, "current_A"), 2), fixed(num(c, "power_W"), 0),
                      forecast_cell(c), fixed(num(c, "forecast_skill"), 2), fixed(num(c, "setpoint_W"), 0),
                      fixed(num(c, "sample_age_s"), 2), std::isfinite(wp) ? fixed(wp * 100.0, 0) + "%" : "-"});
    }
  }
  return format_table({"CHANNEL", "BUS", "ROLE", "STATE", "HEALTH", "V", "A", "W", "FORECAST_W", "SKILL", "SETPOINT_W",
                       "AGE_s", "WINDOW"},
                      rows) +
         device_lines;
}

std::string render_controllers(const json& result) {
  std::vector<std::vector<std::string>> rows;
  const json& ctls = sub(result, "controllers");
  if (ctls.is_array()) {
    for (const json& c : ctls) {
      std::string err = str(c, "last_error");
      if (err.empty()) err = "-";
      // "adopted" is absent from older daemons: show "-" rather than a wrong "no".
      std::string adopted = !c.contains("adopted") ? "-" : c["adopted"] == true ? "yes" : "no (read-only)";
      // A transport that cannot command (neware): its channels are test channels, adopted or not.
      if (c.contains("commands") && c["commands"] == false) adopted = "test channels only";
      rows.push_back({str(c, "controller"), str(c, "endpoint"), str(c, "transport"), str(c, "source"), adopted,
                      bus_of(c), str(c, "connected"),
                      fixed(num(c, "achieved_hz"), 1) + "/" + fixed(num(c, "poll_hz"), 1), str(c, "channels"), err});
    }
  }
  return format_table({"CONTROLLER", "ENDPOINT", "TRANSPORT", "SOURCE", "ADOPTED", "BUS", "CONNECTED", "POLL_HZ",
                       "CHANNELS", "LAST_ERROR"},
                      rows);
}

std::string limit_flag(const std::string& wire_name) {
  std::string f = "--" + wire_name;
  std::replace(f.begin(), f.end(), '_', '-');
  return f;
}

namespace {

// A limit or parameter as the user would type it: "3000", "0.92", "12.5".
std::string plain_number(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? "on" : "off";
  if (v.is_string()) return v.get<std::string>();  // a choice: mode caps
  if (!v.is_number()) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v.get<double>());
  return std::string_view(buf) == "-0" ? "0" : buf;
}

// Wire names of `limits` in eqctl's order (the protocol's), then any a newer daemon added.
std::vector<std::string> limit_keys(const json& limits) {
  std::vector<std::string> keys;
  for (const control::LimitField& f : control::kLimitFields)
    if (limits.contains(f.name)) keys.emplace_back(f.name);
  for (const auto& [k, v] : limits.items())
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  return keys;
}

}  // namespace

std::string describe_assign(const json& result) {
  const json& msg = sub(result, "message");
  std::string message = msg.is_string() ? msg.get<std::string>() : result.dump();
  const json& before = sub(result, "previous_limits");
  const json& after = sub(result, "limits");
  // Older daemons send no previous_limits: their message is all there is to say.
  if (str(result, "status") != "already" || !before.is_object() || !after.is_object()) return message;
  std::string changes;
  for (const std::string& k : limit_keys(after)) {
    const json& was = sub(before, k.c_str());
    const json& now = after[k];
    if (was == now) continue;
    changes += (changes.empty() ? "" : ", ") + limit_flag(k) + " " + plain_number(was) + " -> " + plain_number(now);
  }
  const std::string channel = str(result, "channel");
  if (changes.empty()) return channel + " was already assigned with these limits; nothing changed";
  return channel + " was already assigned; limits updated: " + changes;
}

std::string describe_set(const json& result, const std::vector<std::string>& names) {
  const json& p = sub(result, "params");
  std::string set;
  std::vector<std::string> seen;
  for (const std::string& n : names) {
    if (std::find(seen.begin(), seen.end(), n) != seen.end()) continue;  // given twice: the daemon kept one value
    seen.push_back(n);
    set += (set.empty() ? "" : ", ") + n + " to " + plain_number(sub(p, n.c_str()));
  }
  std::string now;
  if (p.is_object())
    for (const auto& [k, v] : p.items()) now += (now.empty() ? "" : ", ") + k + " " + plain_number(v);
  std::string out = "bus " + str(result, "bus") + ": ";
  out += set.empty() ? "nothing set" : "set " + set;
  if (!now.empty()) out += "; its parameters now: " + now;
  return out;
}

std::string describe_error(const json& error) {
  const json& m = sub(error, "message");
  std::string message = m.is_string() ? m.get<std::string>() : error.dump();
  const json& missing = sub(error, "missing");
  if (!missing.is_array() || missing.empty()) return message;
  std::string flags;
  for (const json& n : missing)
    if (n.is_string()) flags += (flags.empty() ? "" : ", ") + limit_flag(n.get<std::string>());
  if (flags.empty()) return message;
  // The daemon names the fields as the protocol does ("give max_charge_W, ..."); eqctl users type options.
  const auto give = message.rfind("give ");
  return give == std::string::npos ? message + " (give " + flags + ")" : message.substr(0, give) + "give " + flags;
}

std::string watch_header(const std::string& socket, const std::string& time_text, double interval_s) {
  // The socket last: a long path is what a narrow terminal cuts.
  return "eqctl watch  " + time_text + "  every " + fixed(interval_s, 1) + " s, Ctrl-C exits  eqd on " + socket;
}

std::string fit_screen(const std::string& text, int rows, int cols) {
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < text.size();) {
    const auto nl = text.find('\n', at);
    lines.push_back(text.substr(at, nl == std::string::npos ? std::string::npos : nl - at));
    at = nl == std::string::npos ? text.size() : nl + 1;
  }
  const std::size_t max_rows = static_cast<std::size_t>(std::max(rows, 1));
  const std::size_t max_cols = static_cast<std::size_t>(std::max(cols, 1));
  if (lines.size() > max_rows && max_rows == 1) {
    lines.resize(1);
  } else if (lines.size() > max_rows) {
    const std::size_t left_out = lines.size() - (max_rows - 1);
    lines.resize(max_rows - 1);
    lines.push_back("(" + std::to_string(left_out) + " more lines; a taller terminal or --bus shows them)");
  }
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    // A line wider than the terminal would wrap onto a second row and push the first one off.
    out += lines[i].substr(0, max_cols);
    if (i + 1 < lines.size()) out += '\n';
  }
  return out;
}

}  // namespace eqd::cli
