// Tables of eqctl (see render.hpp).
#include "render.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string_view>
#include <cstdio>

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
  if (t.size() > 1 && t[0] == '-' && t.find_first_not_of("0.", 1) == std::string_view::npos) return std::string(t.substr(1));
  return buf;
}

bool looks_numeric(const std::string& s) {
  return !s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) ||
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

std::string render_status(const json& result) {
  std::string out;
  const json& buses = sub(result, "buses");
  if (buses.is_array()) {
    for (const json& b : buses) {
      const json& p = sub(b, "params");
      const json& e = sub(b, "energy");
      const json& c = sub(b, "channels");
      const json& k = sub(b, "controllers");
      // use_forecast and free_forecast_W are absent from older daemons: then nothing is said about them.
      const json& uf = sub(p, "use_forecast");
      std::string forecast;
      if (uf.is_boolean()) {
        forecast = std::string(", forecast ") + (uf.get<bool>() ? "on" : "off");
        const double horizon_s = num(p, "forecast_horizon_s");
        if (uf.get<bool>() && std::isfinite(horizon_s)) forecast += " (horizon " + fixed(horizon_s, 0) + " s)";
      }
      out += "bus " + str(b, "bus") + "  [" + str(b, "status") + "]  target " + format_power(num(p, "target_W")) +
             ", tau " + fixed(num(p, "tau_s"), 1) + " s, deadband " + format_power(num(p, "deadband_W")) + forecast +
             "\n";
      out += "  net power           " + format_power(num(b, "net_W")) + "   (residual " + format_power(num(b, "residual_W")) + ")\n";
      // The announced free power the law steers by, only where it tells something: when it reads
      // differently from the present free power (the daemon reports free_W itself when nothing is
      // announced or use_forecast is off; equal also when the announcements match the present).
      const std::string free = format_power(num(b, "free_W"));
      const std::string announced = format_power(num(b, "free_forecast_W"));
      out += "  free power          " + free;
      if (announced != "-" && announced != free) out += "   (announced " + announced + ")";
      out += "\n";
      out += "  equalization power  " + format_power(num(b, "eq_measured_W")) + " measured, " +
             format_power(num(b, "eq_commanded_W")) + " commanded\n";
      out += "  grid energy         import " + format_energy_kWh(num(e, "grid_import_J")) + ", export " +
             format_energy_kWh(num(e, "grid_export_J")) + "\n";
      out += "  without equalization import " + format_energy_kWh(num(e, "without_eq_import_J")) + ", export " +
             format_energy_kWh(num(e, "without_eq_export_J")) + "\n";
      out += "  channels            " + str(c, "total") + " (" + str(c, "test") + " test, " + str(c, "equalization") +
             " equalization, " + str(c, "pending") + " pending, " + str(c, "releasing") + " releasing); health: " +
             str(c, "ok") + " ok, " + str(c, "stale") + " stale, " + str(c, "invalid") + " invalid, " + str(c, "fault") +
             " fault, " + str(c, "offline") + " offline\n";
      out += "  controllers         " + str(k, "connected") + " connected, " + str(k, "disconnected") + " disconnected\n";
    }
  }
  const json& k = sub(result, "controllers");
  out += "controllers: " + str(k, "connected") + " of " + str(k, "total") + " connected\n";
  // Older daemons send no "stalled": then nothing is said about it.
  const json& ctl = sub(result, "control");
  if (ctl.is_object() && ctl.contains("stalled")) {
    if (ctl.value("stalled", false)) {
      out += "control: STALLED, no control cycle for " + fixed(num(ctl, "last_cycle_age_s"), 1) + " s (bound " +
             fixed(num(ctl, "liveness_timeout_s"), 1) +
             " s): heartbeat and commands held, the controllers' watchdogs take the buffers to 0 W\n";
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
      out += "metrics: not listening on " + str(m, "listen") + (err.is_string() ? " (" + err.get<std::string>() + ")" : "") +
             ", retrying\n";
    }
  }
  return out;
}

std::string render_channels(const json& result) {
  std::vector<std::vector<std::string>> rows;
  const json& chans = sub(result, "channels");
  if (chans.is_array()) {
    for (const json& c : chans) {
      const double wp = num(c, "window_pos");
      rows.push_back({str(c, "channel"), bus_of(c), str(c, "role"), str(c, "state"), str(c, "health"),
                      fixed(num(c, "voltage_V"), 2), fixed(num(c, "current_A"), 2), fixed(num(c, "power_W"), 0),
                      fixed(num(c, "forecast_W"), 0), fixed(num(c, "setpoint_W"), 0), fixed(num(c, "sample_age_s"), 2),
                      std::isfinite(wp) ? fixed(wp * 100.0, 0) + "%" : "-"});
    }
  }
  return format_table(
      {"CHANNEL", "BUS", "ROLE", "STATE", "HEALTH", "V", "A", "W", "FORECAST_W", "SETPOINT_W", "AGE_s", "WINDOW"}, rows);
}

std::string render_controllers(const json& result) {
  std::vector<std::vector<std::string>> rows;
  const json& ctls = sub(result, "controllers");
  if (ctls.is_array()) {
    for (const json& c : ctls) {
      std::string err = str(c, "last_error");
      if (err.empty()) err = "-";
      // "adopted" is absent from older daemons: show "-" rather than a wrong "no".
      const std::string adopted = !c.contains("adopted") ? "-" : c["adopted"] == true ? "yes" : "no (read-only)";
      rows.push_back({str(c, "controller"), str(c, "endpoint"), str(c, "transport"), str(c, "source"), adopted,
                      bus_of(c), str(c, "connected"), fixed(num(c, "achieved_hz"), 1) + "/" + fixed(num(c, "poll_hz"), 1),
                      str(c, "channels"), err});
    }
  }
  return format_table({"CONTROLLER", "ENDPOINT", "TRANSPORT", "SOURCE", "ADOPTED", "BUS", "CONNECTED", "POLL_HZ", "CHANNELS",
                       "LAST_ERROR"},
                      rows);
}

}  // namespace eqd::cli
