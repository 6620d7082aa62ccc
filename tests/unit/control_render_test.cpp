// eqctl's tables.
#include <catch2/catch.hpp>

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

#include "render.hpp"

using namespace eqd::cli;
using nlohmann::json;

TEST_CASE("eqctl render: table columns align and numbers are right-aligned", "[control][cli]") {
  const std::string t = format_table({"NAME", "W"}, {{"cab1/1", "5"}, {"cab1/10", "-1200"}});
  CHECK(t == "NAME     W\ncab1/1       5\ncab1/10  -1200\n");
}

TEST_CASE("eqctl render: units", "[control][cli]") {
  CHECK(format_power(-450.2) == "-450 W");
  CHECK(format_power(1234.0) == "1.23 kW");
  CHECK(format_energy_kWh(3.6e6) == "1.000 kWh");
  // Values that round to zero never print with a minus sign (issue #18, item 5).
  CHECK(format_power(-0.3) == "0 W");
  CHECK(format_power(-0.0) == "0 W");
  CHECK(format_power(-0.6) == "-1 W");
  CHECK(format_energy_kWh(-1.0) == "0.000 kWh");
  const std::string c = render_channels(json{
      {"channels",
       json::array({json{{"channel", "cab1/2"}, {"voltage_V", 50.47}, {"current_A", -0.004}, {"power_W", -0.2}}})}});
  CHECK(c.find("-0") == std::string::npos);
  CHECK(c.find("0.00") != std::string::npos);
}

TEST_CASE("eqctl render: missing or mistyped fields print as a dash", "[control][cli]") {
  CHECK_NOTHROW(render_status(json::object()));
  CHECK_NOTHROW(render_status(json{{"buses", json::array({json{{"bus", 3}, {"net_W", "x"}}})}}));
  const std::string s = render_status(json{{"buses", json::array({json{{"bus", "main"}, {"net_W", 1500.0}}})}});
  CHECK(s.find("bus main") != std::string::npos);
  CHECK(s.find("1.50 kW") != std::string::npos);
  const std::string c =
      render_channels(json{{"channels", json::array({json{{"channel", "cab1/2"}, {"window_pos", 0.5}}})}});
  CHECK(c.find("cab1/2") != std::string::npos);
  CHECK(c.find("50%") != std::string::npos);
  CHECK_NOTHROW(render_controllers(json{{"controllers", 5}}));
}

TEST_CASE("eqctl render: announced free power and use_forecast", "[control][cli]") {
  auto bus = [](double free_W, double announced_W, bool use_forecast) {
    return json{{"buses", json::array({json{{"bus", "main"},
                                            {"free_W", free_W},
                                            {"free_forecast_W", announced_W},
                                            {"params", json{{"target_W", 0.0},
                                                            {"tau_s", 15.0},
                                                            {"deadband_W", 50.0},
                                                            {"use_forecast", use_forecast},
                                                            {"forecast_horizon_s", 30.0}}}}})}};
  };
  // Announced differs: shown next to the free power; the header says whether the law uses it.
  std::string s = render_status(bus(-1842.2, -1200.0, true));
  CHECK(s.find("deadband 50 W\n  forecast              on (horizon 30 s)\n") != std::string::npos);
  CHECK(s.find("free power            -1.84 kW   (forecast -1.20 kW)\n") != std::string::npos);
  s = render_status(bus(-1842.2, -1842.2, false));
  CHECK(s.find("deadband 50 W\n  forecast              off\n") != std::string::npos);
  // Nothing announced (or the same as now, as displayed): no "(forecast".
  s = render_status(bus(-1842.2, -1842.2, true));
  CHECK(s.find("free power            -1.84 kW\n") != std::string::npos);
  CHECK(s.find("(forecast") == std::string::npos);
  CHECK(render_status(bus(450.2, 449.9, true)).find("(forecast") == std::string::npos);
  // Learning on: said in the header, with the bus's skill once scored.
  json l = bus(-1842.2, -1200.0, true);
  l["buses"][0]["params"]["learn_forecast"] = true;
  CHECK(render_status(l).find("forecast              on (horizon 30 s, learning)\n") != std::string::npos);
  l["buses"][0]["forecast_skill"] = 0.634;
  CHECK(render_status(l).find("forecast              on (horizon 30 s, learning, skill 0.63)\n") != std::string::npos);
  // stat_forecast on: whether the statistical path is in use or gated.
  l["buses"][0]["params"]["stat_forecast"] = true;
  CHECK(render_status(l).find("on (horizon 30 s, learning, skill 0.63, statistical path gated)\n") !=
        std::string::npos);
  l["buses"][0]["stat_path"] = true;
  CHECK(render_status(l).find("on (horizon 30 s, learning, skill 0.63, statistical path in use)\n") !=
        std::string::npos);
  // An older daemon without the fields: neither the flag nor the announced power.
  s = render_status(
      json{{"buses", json::array({json{{"bus", "main"}, {"free_W", 100.0}, {"params", json::object()}}})}});
  CHECK(s.find("forecast") == std::string::npos);
}

TEST_CASE("eqctl render: a channel's announced forecast has its own column", "[control][cli]") {
  const std::string c = render_channels(json{
      {"channels",
       json::array(
           {json{{"channel", "cab1/1"}, {"power_W", 900.0}, {"forecast_W", 1500.4}, {"setpoint_W", nullptr}},
            json{{"channel", "cab1/2"}, {"power_W", -300.0}, {"forecast_W", nullptr}, {"setpoint_W", nullptr}}})}});
  const auto header_end = c.find('\n');
  const std::string header = c.substr(0, header_end);
  CHECK(header.find(" W ") < header.find("FORECAST_W"));
  CHECK(header.find("FORECAST_W  SKILL  SETPOINT_W") != std::string::npos);
  // Right-aligned under FORECAST_W (ends where the header's column ends).
  const std::string row1 = c.substr(header_end + 1, c.find('\n', header_end + 1) - header_end - 1);
  const std::size_t col_end = header.find("FORECAST_W") + std::string("FORECAST_W").size();
  CHECK(row1.substr(col_end - 4, 4) == "1500");
  CHECK(c.find("cab1/2") != std::string::npos);
}

TEST_CASE("eqctl render: a learned forecast in use is marked, with the channel's skill", "[control][cli]") {
  const std::string c = render_channels(json{{"channels", json::array({json{{"channel", "cab1/1"},
                                                                            {"forecast_W", nullptr},
                                                                            {"learned_forecast_W", -812.3},
                                                                            {"forecast_skill", 0.91}},
                                                                       json{{"channel", "cab1/2"},
                                                                            {"forecast_W", 40.0},
                                                                            {"learned_forecast_W", nullptr},
                                                                            {"forecast_skill", nullptr}},
                                                                       json{{"channel", "cab1/3"},
                                                                            {"forecast_W", nullptr},
                                                                            {"learned_forecast_W", nullptr},
                                                                            {"forecast_skill", -0.2}}})}});
  CHECK(c.find("~-812") != std::string::npos);
  CHECK(c.find("0.91") != std::string::npos);
  CHECK(c.find("-0.20") != std::string::npos);
  CHECK(c.find("~40") == std::string::npos);  // an announcement is not marked
}

TEST_CASE("eqctl render: the metrics endpoint's state", "[control][cli]") {
  json st{{"buses", json::array()}, {"controllers", json{{"total", 1}, {"connected", 1}}}};
  st["metrics"] = json{{"enabled", true},
                       {"listening", false},
                       {"listen", "127.0.0.1:9860"},
                       {"error", "address in use"},
                       {"retry_ms", 5000}};
  CHECK(render_status(st).find("metrics: not listening on 127.0.0.1:9860 (address in use), retrying\n") !=
        std::string::npos);
  st["metrics"]["listening"] = true;
  st["metrics"]["error"] = nullptr;
  CHECK(render_status(st).find("metrics: listening on 127.0.0.1:9860\n") != std::string::npos);
  st["metrics"]["enabled"] = false;
  CHECK(render_status(st).find("metrics") == std::string::npos);
  st.erase("metrics");  // an older daemon
  CHECK(render_status(st).find("metrics") == std::string::npos);
}

TEST_CASE("eqctl render: assign says whether anything changed, naming the options", "[control][cli]") {
  CHECK(limit_flag("max_charge_W") == "--max-charge-W");
  CHECK(limit_flag("efficiency") == "--efficiency");
  const json limits{{"max_charge_W", 3000.0}, {"max_discharge_W", 3000.0}, {"v_min_V", 46.0}, {"efficiency", 1.0}};
  json r{{"channel", "cab2/16"},
         {"status", "already"},
         {"message", "cab2/16 was already assigned; limits updated"},
         {"limits", limits},
         {"previous_limits", limits}};
  // Nothing changed (issue #18 item 4): said so, not "limits updated".
  CHECK(describe_assign(r) == "cab2/16 was already assigned with these limits; nothing changed");
  r["limits"]["max_charge_W"] = 2000.0;
  r["limits"]["efficiency"] = 0.92;
  CHECK(describe_assign(r) ==
        "cab2/16 was already assigned; limits updated: --max-charge-W 3000 -> 2000, --efficiency 1 -> 0.92");
  // An older daemon sends no previous limits: its own message stands; a first assignment likewise.
  r.erase("previous_limits");
  CHECK(describe_assign(r) == "cab2/16 was already assigned; limits updated");
  CHECK(describe_assign(json{{"status", "assigned"}, {"message", "cab2/3 assigned: it enters equalization mode"}}) ==
        "cab2/3 assigned: it enters equalization mode");
}

TEST_CASE("eqctl render: set prints a sentence", "[control][cli]") {
  const json r{{"bus", "main"},
               {"params", json{{"tau_s", 12.0}, {"deadband_W", 30.0}, {"target_W", 0.0}, {"use_forecast", false}}},
               {"persisted", true}};
  CHECK(describe_set(r, {"tau_s", "use_forecast", "tau_s"}) ==
        "bus main: set tau_s to 12, use_forecast to off; its parameters now: deadband_W 30, target_W 0, tau_s 12, "
        "use_forecast off");
  CHECK(describe_set(json::object(), {}) == "bus -: nothing set");
}

TEST_CASE("eqctl render: limits the daemon asks for are named by their options", "[control][cli]") {
  const json e{{"code", "invalid"},
               {"message",
                "no limits known for cab1/3 (not in the configuration's equalization: list and never "
                "assigned before): give max_charge_W, v_max_V"},
               {"missing", json{"max_charge_W", "v_max_V"}}};
  CHECK(describe_error(e) ==
        "no limits known for cab1/3 (not in the configuration's equalization: list and never assigned before): give "
        "--max-charge-W, --v-max-V");
  CHECK(describe_error(json{{"message", "unknown bus \"x\""}}) == "unknown bus \"x\"");
  CHECK(describe_error(json{{"message", "no limits"}, {"missing", json{"v_min_V"}}}) == "no limits (give --v-min-V)");
}

TEST_CASE("eqctl render: a watch frame fits the terminal, header first", "[control][cli]") {
  const std::string h = watch_header("/run/eqd/eqd.sock", "2026-01-02 03:04:05", 1.0);
  CHECK(h == "eqctl watch  2026-01-02 03:04:05  every 1.0 s, Ctrl-C exits  eqd on /run/eqd/eqd.sock");
  std::string text = h + "\n";
  for (int i = 1; i <= 30; ++i) text += "line " + std::to_string(i) + " " + std::string(100, 'x') + "\n";
  const std::string f = fit_screen(text, 24, 80);
  // 24 rows at most, none wider than the terminal, no final newline: nothing scrolls the header away.
  CHECK(std::count(f.begin(), f.end(), '\n') == 23);
  CHECK(f.back() != '\n');
  CHECK(f.rfind(h.substr(0, 80), 0) == 0);
  std::size_t at = 0;
  while (at < f.size()) {
    const auto nl = f.find('\n', at);
    const std::size_t len = (nl == std::string::npos ? f.size() : nl) - at;
    CHECK(len <= 80);
    at = nl == std::string::npos ? f.size() : nl + 1;
  }
  CHECK(f.find("(8 more lines") != std::string::npos);  // 31 lines: 23 shown + the note
  // What fits is shown whole.
  CHECK(fit_screen("a\nb\n", 24, 80) == "a\nb");
  CHECK(fit_screen("a\nb\nc\n", 1, 80) == "a");
}

namespace {
// A status result as eqd sends it (shape of a live demo rig's), with learning scored, a stalled control
// thread and a metrics error: every optional line present. Bus main mixes kW-sized and W-sized powers.
json full_status() {
  auto bus = [](const char* name, double net_W, double free_W, double announced_W, double eq_W, double cmd_W, int total,
                int eq) {
    return json{{"bus", name},
                {"status", "ok"},
                {"net_W", net_W},
                {"residual_W", net_W},
                {"free_W", free_W},
                {"free_forecast_W", announced_W},
                {"eq_measured_W", eq_W},
                {"eq_commanded_W", cmd_W},
                {"forecast_skill", 0.634},
                {"params", json{{"law", "adaptive"},
                                {"target_W", 0.0},
                                {"tau_s", 15.0},
                                {"deadband_W", 50.0},
                                {"use_forecast", true},
                                {"learn_forecast", true},
                                {"forecast_horizon_s", 30.0}}},
                {"energy", json{{"grid_import_J", 12345678.0},
                                {"grid_export_J", 9526.9},
                                {"without_eq_import_J", 123456789.0},
                                {"without_eq_export_J", 10335.6}}},
                {"channels", json{{"total", total},
                                  {"test", total - eq},
                                  {"equalization", eq},
                                  {"pending", 0},
                                  {"releasing", 0},
                                  {"ok", total},
                                  {"stale", 0},
                                  {"invalid", 0},
                                  {"fault", 0},
                                  {"offline", 0}}},
                {"controllers", json{{"connected", 3}, {"disconnected", 0}}}};
  };
  return json{
      {"buses", json::array({bus("main", -1396.4, -1846.2, -1200.0, 449.8, 642.9, 48, 3),
                             bus("aux", 317.8, 419.9, 422.8, -102.1, -146.6, 16, 1)})},
      {"controllers", json{{"total", 4}, {"connected", 4}}},
      {"control", json{{"stalled", true}, {"stalls", 1}, {"last_cycle_age_s", 12.3}, {"liveness_timeout_s", 1.0}}},
      {"metrics", json{{"enabled", true},
                       {"listening", false},
                       {"listen", "127.0.0.1:9860"},
                       {"error", "address in use"},
                       {"retry_ms", 5000}}}};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto nl = text.find('\n', at);
    out.push_back(text.substr(at, nl == std::string::npos ? std::string::npos : nl - at));
    at = nl == std::string::npos ? text.size() : nl + 1;
  }
  return out;
}
}  // namespace

TEST_CASE("eqctl render: status lines fit 80 columns", "[control][cli]") {
  // Issue #18 item 5: the channel-count line was 121 characters, the header with learning over 90.
  for (const std::string& line : lines_of(render_status(full_status()))) {
    INFO(line);
    CHECK(line.size() <= 80);
  }
}

TEST_CASE("eqctl render: status shows one power unit per bus, labels within their column", "[control][cli]") {
  const std::string s = render_status(full_status());
  INFO(s);
  const std::regex power(R"((-?[0-9]+(\.[0-9]+)?) (kW|W)\b)");
  const std::regex labelled(R"(^  ([a-z]+( [a-z]+)*)  +(\S.*)$)");
  std::string bus;
  std::set<std::string> units;
  std::set<std::size_t> unit_ends, text_starts;
  std::size_t label_col = 0;
  auto end_bus = [&] {
    if (bus.empty()) return;
    INFO("bus " << bus);
    CHECK(units.size() == 1);        // W and kW never mixed in one bus's power column
    CHECK(unit_ends.size() == 1);    // the powers right-aligned: their units end in one column
    CHECK(text_starts.size() == 1);  // the other values start in one column
    CHECK(*unit_ends.begin() > label_col);
    units.clear();
    unit_ends.clear();
    text_starts.clear();
  };
  for (const std::string& line : lines_of(s)) {
    if (line.rfind("bus ", 0) == 0) {
      end_bus();
      bus = line.substr(4, line.find(' ', 4) - 4);
      continue;
    }
    if (line.rfind("  ", 0) != 0) {
      end_bus();
      bus.clear();
      continue;
    }
    if (bus.empty()) continue;  // an indented continuation after the buses (control: STALLED)
    std::smatch m;
    INFO(line);
    // Every line of a bus: a label, at least two spaces, the value (no label runs into its value).
    const bool is_labelled = std::regex_match(line, m, labelled);
    CHECK(is_labelled);
    if (!is_labelled) continue;
    const std::string label = m[1];
    const std::size_t value_at = static_cast<std::size_t>(m.position(3));
    label_col = std::max(label_col, 2 + label.size());
    if (label == "net power" || label == "free power" || label == "equalization power") {
      std::smatch p;
      const std::string value = m[3];
      REQUIRE(std::regex_search(value, p, power));
      unit_ends.insert(value_at + static_cast<std::size_t>(p.position(0) + p.length(0)));
      for (auto it = std::sregex_iterator(value.begin(), value.end(), power); it != std::sregex_iterator(); ++it)
        units.insert((*it)[3]);
    } else {
      text_starts.insert(value_at);
    }
  }
  end_bus();
  // Bus main's powers are kW-sized except the buffers' 450 W: all in kW; aux's are all W-sized.
  CHECK(s.find("0.45 kW measured, 0.64 kW commanded") != std::string::npos);
  CHECK(s.find("-102 W measured, -147 W commanded") != std::string::npos);
}

TEST_CASE("eqctl render: the audit table fits 80 columns and says who did what", "[control][cli][audit]") {
  const json records = json::array({{{"time_ms", 1796320812345},
                                     {"user", "alice"},
                                     {"uid", 1000},
                                     {"role", "operator"},
                                     {"command", "assign"},
                                     {"channel", "cab2/16"},
                                     {"bus", nullptr},
                                     {"controller", nullptr},
                                     {"result", "ok"}},
                                    {{"time_ms", 1796320813000},
                                     {"user", "a-very-long-user-name"},
                                     {"uid", 1001},
                                     {"role", "viewer"},
                                     {"command", "adopt"},
                                     {"channel", nullptr},
                                     {"controller", "hall-b-cabinet-17"},
                                     {"result", "unknown_controller"}},
                                    {{"time_ms", 1796320814000},
                                     {"user", ""},
                                     {"uid", 4321},
                                     {"role", "admin"},
                                     {"command", "set"},
                                     {"channel", nullptr},
                                     {"bus", "main"},
                                     {"result", "forbidden"}},
                                    {{"time_ms", 1796320815000},
                                     {"user", "root"},
                                     {"uid", 0},
                                     {"role", ""},
                                     {"command", "reload"},
                                     {"result", "ok"}}});
  const std::string t = render_audit(records);
  INFO(t);
  std::istringstream lines(t);
  std::vector<std::string> rows;
  for (std::string l; std::getline(lines, l);) {
    CHECK(l.size() <= 80);
    rows.push_back(l);
  }
  REQUIRE(rows.size() == 5);
  CHECK(std::regex_search(rows[0], std::regex("^TIME \\(UTC\\) +USER +ROLE +COMMAND +TARGET +RESULT$")));
  CHECK(std::regex_search(rows[1],
                          std::regex("^2026-12-03 \\d\\d:\\d\\d:\\d\\d +alice +operator +assign +cab2/16 +ok$")));
  CHECK(rows[2].find("a-very-~") != std::string::npos);  // cut, marked
  CHECK(rows[2].find("hall-b-cabi~") != std::string::npos);
  CHECK(rows[3].find("uid 4321") != std::string::npos);
  CHECK(rows[3].find("bus main") != std::string::npos);
  CHECK(std::regex_search(rows[4], std::regex("root +- +reload +- +ok$")));
  CHECK(render_audit(json::array()) == "no audit records\n");
  CHECK(format_utc_ms(0) == "1970-01-01 00:00:00");
}

TEST_CASE("eqctl render: --since takes a duration or a UTC date or time", "[control][cli][audit]") {
  const std::int64_t now = 1'796'320'812'000;
  CHECK(parse_since("24h", now) == now - 86'400'000);
  CHECK(parse_since("30m", now) == now - 1'800'000);
  CHECK(parse_since("7d", now) == now - 7 * 86'400'000LL);
  CHECK(parse_since("90s", now) == now - 90'000);
  CHECK(parse_since("1970-01-02", now) == 86'400'000);
  CHECK(parse_since("1970-01-01T01:00", now) == 3'600'000);
  CHECK(parse_since("1970-01-01T00:00:10Z", now) == 10'000);
  CHECK(parse_since("1970-01-01 00:01:00", now) == 60'000);
  for (const char* bad : {"", "h", "24", "24x", "yesterday", "1970-13-01", "1970-01-01T25:00", "1970-01-01T01",
                          "1970-01-01X", "1970-01-01T00:00:00+02:00"}) {
    INFO(bad);
    CHECK_FALSE(parse_since(bad, now).has_value());
  }
}

TEST_CASE("eqctl render: status says when the history database is in trouble, and only then", "[control][cli][audit]") {
  const json base = {{"buses", json::array()}, {"controllers", {{"connected", 1}, {"total", 1}}}};
  json ok = base;
  ok["history"] = {{"path", "/var/lib/eqd/history.db"}, {"error", nullptr}, {"records_lost", 0}};
  CHECK(render_status(ok).find("history") == std::string::npos);
  json lost = ok;
  lost["history"]["records_lost"] = 3;
  CHECK(render_status(lost).find("history: 3 record(s) lost") != std::string::npos);
  json broken = ok;
  broken["history"]["error"] = "schema version 4, newer than this eqd's 3";
  CHECK(render_status(broken).find("history: NO DATABASE (schema version 4, newer") != std::string::npos);
  json off = ok;
  off["history"]["path"] = nullptr;  // history.enabled: false is no trouble
  off["history"]["error"] = "the history database is off (history.enabled: false)";
  CHECK(render_status(off).find("history") == std::string::npos);
}

TEST_CASE("eqctl render: the grid meter line", "[control][cli]") {
  auto bus = [](const json& meter) {
    return json{{"buses", json::array({json{{"bus", "main"}, {"net_W", -1400.0}, {"meter", meter}}})}};
  };
  // No meter (null) or an older daemon (absent): no line.
  CHECK(render_status(bus(nullptr)).find("grid meter") == std::string::npos);
  CHECK(render_status(json{{"buses", json::array({json{{"bus", "main"}}})}}).find("grid meter") == std::string::npos);
  // In the bus's power unit, beside the net power.
  std::string s = render_status(bus(json{{"ok", true},
                                         {"connected", true},
                                         {"power_W", -1420.0},
                                         {"difference_W", -20.0},
                                         {"disagreement", false},
                                         {"tolerance_W", 500.0}}));
  INFO(s);
  CHECK(s.find("grid meter            -1.42 kW measured, difference -0.02 kW\n") != std::string::npos);
  s = render_status(bus(json{{"ok", true},
                             {"connected", true},
                             {"power_W", 100.0},
                             {"difference_W", 1500.0},
                             {"disagreement", true},
                             {"tolerance_W", 500.0}}));
  CHECK(s.find("DISAGREES beyond 0.50 kW") != std::string::npos);
  s = render_status(bus(json{
      {"ok", false}, {"connected", false}, {"age_s", 12.34}, {"last_error", "meter of bus main connect: refused"}}));
  CHECK(s.find("grid meter            offline, last reading 12.3 s ago (meter of bus main connect: refused)\n") !=
        std::string::npos);
  s = render_status(bus(json{{"ok", false}, {"connected", true}, {"age_s", nullptr}, {"last_error", ""}}));
  CHECK(s.find("grid meter            no valid reading\n") != std::string::npos);
  // The meter trim (meter.trim): its bias, and its state unless it is tracking.
  s = render_status(bus(json{{"ok", true},
                             {"connected", true},
                             {"power_W", 20.0},
                             {"difference_W", 1500.0},
                             {"disagreement", false},
                             {"trim", true},
                             {"trim_W", 1480.0},
                             {"trim_state", "tracking"}}));
  INFO(s);
  CHECK(s.find("grid meter            0.02 kW measured, difference 1.50 kW, trim 1.48 kW\n") != std::string::npos);
  s = render_status(bus(json{{"ok", false},
                             {"connected", false},
                             {"age_s", 7.0},
                             {"last_error", ""},
                             {"trim", true},
                             {"trim_W", 1480.0},
                             {"trim_state", "holding"}}));
  CHECK(s.find("grid meter            offline, last reading 7.0 s ago, trim 1.48 kW (holding)\n") != std::string::npos);
  s = render_status(bus(json{{"ok", true},
                             {"connected", true},
                             {"power_W", 20.0},
                             {"difference_W", 0.0},
                             {"trim", false},
                             {"trim_W", 0.0},
                             {"trim_state", "off"}}));
  CHECK(s.find("trim") == std::string::npos);
}

TEST_CASE("eqctl render: a controller whose transport cannot command shows test channels only", "[control][cli]") {
  const json ctls = json::parse(
      R"({"controllers":[{"controller":"bts1","endpoint":"neware:h:502#21","transport":"neware","source":"config",)"
      R"("adopted":true,"commands":false,"bus":"main","channels":16},)"
      R"({"controller":"cab1","endpoint":"h:502#1","transport":"tcp","source":"config","adopted":true,)"
      R"("commands":true,"bus":"main","channels":16}]})");
  const std::string out = render_controllers(ctls);
  CHECK(out.find("test channels only") != std::string::npos);
  CHECK(out.find("yes") != std::string::npos);  // cab1 stays "yes"
}

TEST_CASE("eqctl render: a buffer's device limits are listed under the channel table", "[control][cli]") {
  const json lim{{"max_charge_W", 5000.0}, {"max_discharge_W", 5000.0}};
  const std::string c = render_channels(json{
      {"channels", json::array({json{{"channel", "storage1/1"},
                                     {"role", "equalization"},
                                     {"limits", lim},
                                     {"device_limits", json{{"max_charge_W", 1500.0}, {"max_discharge_W", nullptr}}},
                                     {"effective_limits", json{{"max_charge_W", 1500.0}, {"max_discharge_W", 5000.0}}}},
                                json{{"channel", "cab2/1"},
                                     {"role", "equalization"},
                                     {"limits", lim},
                                     {"device_limits", nullptr},
                                     {"effective_limits", lim}}})}});
  CHECK(c.find("\nstorage1/1: device limit: charge 1.50 kW (device 1.50 kW, configured 5.00 kW), discharge 5.00 kW "
               "(configured)\n") != std::string::npos);
  CHECK(c.find("cab2/1: device limit") == std::string::npos);  // its device reports none
}
