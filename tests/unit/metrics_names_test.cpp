// The shipped Grafana dashboard, alert rules and rule tests use only metric names that eqd exports,
// and docs/metrics.md documents every exported family. Names are checked against the collector's
// catalogue (whose match with the live exposition is checked by metrics_prometheus_test).
#include <catch2/catch.hpp>

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqd/metrics/collector.hpp"

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  INFO(path);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Metric names a PromQL expression refers to, restricted to eqd's namespace (other identifiers are
// functions, label names, keywords or Prometheus' own series such as `up`).
std::set<std::string> eqd_names_in(const std::string& expr) {
  static const std::regex ident("[a-zA-Z_:][a-zA-Z0-9_:]*");
  std::set<std::string> out;
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), ident); it != std::sregex_iterator(); ++it) {
    const std::string s = it->str();
    // Only at a token start: "xeqd_" inside another word is not a reference.
    // A trailing "_" is a prefix in prose (eqd_channel_*), not a name.
    if (s.rfind("eqd_", 0) == 0 && s.back() != '_') out.insert(s);
  }
  return out;
}

// Names that a scrape of eqd yields: each family, plus _bucket/_sum/_count for histograms.
std::set<std::string> exported_series_names() {
  std::set<std::string> out;
  for (const auto& m : eqd::metrics::metric_catalogue()) {
    out.insert(m.name);
    if (m.kind == eqd::metrics::MetricKind::histogram)
      for (const char* suffix : {"_bucket", "_sum", "_count"}) out.insert(std::string(m.name) + suffix);
  }
  return out;
}

// Every "expr" (panel targets) and templating "query" of a Grafana dashboard.
void collect_exprs(const nlohmann::json& j, std::vector<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if ((k == "expr" || k == "query" || k == "definition") && v.is_string())
        out.push_back(v.get<std::string>());
      else
        collect_exprs(v, out);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) collect_exprs(v, out);
  }
}

std::vector<std::string> unknown_names(const std::vector<std::string>& exprs) {
  const std::set<std::string> known = exported_series_names();
  std::vector<std::string> bad;
  for (const auto& e : exprs)
    for (const auto& n : eqd_names_in(e))
      if (!known.count(n)) bad.push_back(n + " in: " + e);
  return bad;
}

const std::string kSource = EQD_SOURCE_DIR;

}  // namespace

TEST_CASE("the name check rejects a metric that eqd does not export", "[metrics]") {
  CHECK(unknown_names({"rate(eqd_control_cycles_total[5m])", "eqd_control_cycle_duration_seconds_bucket"}).empty());
  CHECK(unknown_names({"sum(eqd_bus_power_watts)"}).size() == 1);
  CHECK(unknown_names({"eqd_bus_net_power_watts_bucket"}).size() == 1);  // not a histogram
  CHECK(eqd_names_in("up{job=\"eqd\"} == 0 and xeqd_bus").empty());
}

TEST_CASE("the Grafana dashboard parses and references only exported metrics", "[metrics]") {
  const auto dash = nlohmann::json::parse(read_file(kSource + "/config/grafana/eqd-dashboard.json"));
  REQUIRE(dash.contains("panels"));
  CHECK(dash.at("uid") == "eqd-overview");
  std::vector<std::string> exprs;
  collect_exprs(dash, exprs);
  CHECK(exprs.size() >= 25);
  std::set<std::string> used;
  for (const auto& e : exprs)
    for (const auto& n : eqd_names_in(e)) used.insert(n);
  // The dashboard covers what the issue asks for: power with/without, energy saved, windows, health.
  for (const char* must : {"eqd_bus_net_power_watts", "eqd_bus_free_power_watts",
                           "eqd_bus_without_equalization_import_joules_total", "eqd_bus_grid_import_joules_total",
                           "eqd_channel_window_position_ratio", "eqd_controller_up", "eqd_controller_errors_total"})
    CHECK(used.count(must) == 1);
  const auto bad = unknown_names(exprs);
  for (const auto& b : bad) UNSCOPED_INFO(b);
  CHECK(bad.empty());
}

namespace {

// Selectors of eqd series in a PromQL expression that do not filter on the dashboard's rig variable
// (config/prometheus/prometheus.yml labels every target with `rig`): with two rigs in one Prometheus,
// such a query would mix them.
std::vector<std::string> selectors_without_rig(const std::string& expr) {
  static const std::regex name("(^|[^a-zA-Z0-9_:])(eqd_[a-zA-Z0-9_:]*[a-zA-Z0-9:])");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name); it != std::sregex_iterator(); ++it) {
    std::size_t at = static_cast<std::size_t>(it->position(2) + it->length(2));
    while (at < expr.size() && expr[at] == ' ') ++at;
    const std::size_t close = at < expr.size() && expr[at] == '{' ? expr.find('}', at) : std::string::npos;
    const std::string selector = close == std::string::npos ? std::string() : expr.substr(at, close - at + 1);
    if (selector.find("rig=~\"$rig\"") == std::string::npos) out.push_back((*it)[2].str() + selector);
  }
  return out;
}

// What a dashboard query's values are, from the series it starts from: "W", "V", "s", "Hz", "ratio",
// "kWh" (joule counters' increase / 3.6e6), "per_second" (rate of a counter) or "count".
std::string dimension_of(const std::string& expr) {
  static const std::regex name("(^|[^a-zA-Z0-9_:])(eqd_[a-zA-Z0-9_:]*[a-zA-Z0-9:])");
  std::smatch m;
  if (!std::regex_search(expr, m, name)) return "count";
  std::string n = m[2];
  auto ends = [&](const std::string& s) {
    return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
  };
  if (ends("_bucket")) n.resize(n.size() - 7);
  if (ends("_total")) {
    if (expr.find("rate(") != std::string::npos) return "per_second";
    if (ends("_joules_total") && expr.find("increase(") != std::string::npos &&
        expr.find("/ 3.6e6") != std::string::npos)
      return "kWh";
    return "count";
  }
  if (ends("_watts")) return "W";
  if (ends("_volts")) return "V";
  if (ends("_seconds")) return "s";
  if (ends("_hertz")) return "Hz";
  if (ends("_ratio")) return "ratio";
  return "count";
}

// Grafana unit ids that show a dimension correctly.
bool unit_fits(const std::string& dimension, const std::string& unit) {
  static const std::map<std::string, std::set<std::string>> fits{{"W", {"watt", "kwatt"}},
                                                                 {"V", {"volt"}},
                                                                 {"s", {"s", "ms"}},
                                                                 {"Hz", {"hertz"}},
                                                                 {"ratio", {"percentunit"}},
                                                                 {"kWh", {"kwatth"}},
                                                                 {"per_second", {"cps", "ops", "hertz"}},
                                                                 {"count", {"", "short", "none"}}};
  const auto it = fits.find(dimension);
  return it != fits.end() && it->second.count(unit) == 1;
}

// The field override properties of a panel that apply to a target (by its refId, or by a regexp on
// its legend with each {{label}} standing for a value).
std::vector<nlohmann::json> overrides_for(const nlohmann::json& panel, const nlohmann::json& target) {
  std::vector<nlohmann::json> out;
  if (!panel.contains("fieldConfig") || !panel["fieldConfig"].contains("overrides")) return out;
  const std::string legend =
      std::regex_replace(target.value("legendFormat", std::string()), std::regex(R"(\{\{[^}]*\}\})"), "x");
  for (const auto& o : panel["fieldConfig"]["overrides"]) {
    const std::string id = o["matcher"].value("id", "");
    const std::string opt = o["matcher"].value("options", "");
    if ((id == "byFrameRefID" && opt == target.value("refId", "")) ||
        (id == "byRegexp" && std::regex_search(legend, std::regex(opt))))
      for (const auto& p : o["properties"]) out.push_back(p);
  }
  return out;
}

struct UnitProblem {
  std::string panel, what;
};

// Every series of every panel gets a unit that fits what it is; a panel with series of different
// units gives each unit but the default its own axis (custom.axisPlacement).
std::vector<UnitProblem> unit_problems(const nlohmann::json& dash) {
  std::vector<UnitProblem> out;
  for (const auto& panel : dash["panels"]) {
    if (!panel.contains("targets")) continue;
    const std::string title = panel.value("title", "?");
    const nlohmann::json defaults = panel.contains("fieldConfig")
                                        ? panel["fieldConfig"].value("defaults", nlohmann::json::object())
                                        : nlohmann::json::object();
    const std::string default_unit = defaults.value("unit", "");
    std::set<std::string> units;
    for (const auto& t : panel["targets"]) {
      std::string unit = default_unit;
      bool own_axis = false;
      for (const auto& p : overrides_for(panel, t)) {
        if (p.value("id", "") == "unit") unit = p.value("value", "");
        if (p.value("id", "") == "custom.axisPlacement") own_axis = true;
      }
      units.insert(unit);
      const std::string expr = t.value("expr", "");
      const std::string dim = dimension_of(expr);
      if (!unit_fits(dim, unit))
        out.push_back(
            {title, "'" + t.value("legendFormat", "") + "' is " + dim + " shown as unit '" + unit + "': " + expr});
      if (unit != default_unit && !own_axis)
        out.push_back({title, "'" + t.value("legendFormat", "") + "' (" + unit +
                                  ") shares the axis of the default unit '" + default_unit + "'"});
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the dashboard checks catch a query without the rig and a unit that does not fit", "[metrics]") {
  CHECK(selectors_without_rig("eqd_bus_net_power_watts{rig=~\"$rig\", bus=~\"$bus\"}").empty());
  CHECK(selectors_without_rig("rate(eqd_control_cycles_total[1m])").size() == 1);
  CHECK(selectors_without_rig("a{rig=~\"$rig\"} and on(channel) (eqd_channel_role{bus=\"x\"} == 1)").size() == 1);
  CHECK(dimension_of("eqd_channel_voltage_volts{x=\"1\"} and on(channel) eqd_channel_role") == "V");
  CHECK(dimension_of("sum by (k) (rate(eqd_controller_errors_total{a=\"b\"}[5m])) > 0") == "per_second");
  CHECK(dimension_of("histogram_quantile(0.99, rate(eqd_control_cycle_duration_seconds_bucket[5m]))") == "s");
  CHECK(dimension_of("increase(eqd_bus_grid_import_joules_total[1h]) / 3.6e6") == "kWh");
  const auto mixed = nlohmann::json::parse(R"({"panels": [{"title": "p", "fieldConfig": {"defaults": {"unit": "watt"}},
      "targets": [{"refId": "A", "expr": "eqd_channel_voltage_volts", "legendFormat": "{{channel}} V"},
                  {"refId": "B", "expr": "eqd_channel_setpoint_watts", "legendFormat": "{{channel}} W"}]}]})");
  CHECK(unit_problems(mixed).size() == 1);  // volts shown as watts
  auto fixed = mixed;
  fixed["panels"][0]["fieldConfig"]["overrides"] = nlohmann::json::parse(
      R"([{"matcher": {"id": "byFrameRefID", "options": "A"}, "properties": [{"id": "unit", "value": "volt"}]}])");
  CHECK(unit_problems(fixed).size() == 1);  // the right unit, but on the watts' axis
  fixed["panels"][0]["fieldConfig"]["overrides"][0]["properties"].push_back(
      {{"id", "custom.axisPlacement"}, {"value", "right"}});
  CHECK(unit_problems(fixed).empty());
}

TEST_CASE("every dashboard query selects by rig, and every series has a unit that fits it", "[metrics]") {
  const auto dash = nlohmann::json::parse(read_file(kSource + "/config/grafana/eqd-dashboard.json"));
  // The rig variable (the label config/prometheus/prometheus.yml sets), and the variables after it
  // narrowed by it.
  bool has_rig = false;
  for (const auto& v : dash["templating"]["list"]) {
    const std::string name = v.value("name", "");
    if (name == "rig") {
      has_rig = true;
      CHECK(v.value("definition", "").find(", rig)") != std::string::npos);
      // "All" as .*: also a target without a rig label (a Grafana-made alternation of the values would not).
      CHECK(v.value("allValue", "") == ".*");
    } else if (v.value("type", "") == "query") {
      INFO("variable " << name);
      CHECK(selectors_without_rig(v.value("definition", "")).empty());
      CHECK(selectors_without_rig(v["query"].value("query", "")).empty());
    }
  }
  CHECK(has_rig);
  std::size_t queries = 0;
  for (const auto& panel : dash["panels"]) {
    if (!panel.contains("targets")) continue;
    for (const auto& t : panel["targets"]) {
      ++queries;
      INFO(panel.value("title", "?") << ": " << t.value("expr", ""));
      for (const auto& s : selectors_without_rig(t.value("expr", ""))) {
        INFO("selector without rig=~\"$rig\": " << s);
        CHECK(false);
      }
      // With "All" rigs, two rigs' buses (channels, controllers) of the same name must not look alike.
      const std::string legend = t.value("legendFormat", "");
      if (legend.find("{{bus}}") != std::string::npos || legend.find("{{channel}}") != std::string::npos ||
          legend.find("{{controller}}") != std::string::npos) {
        INFO("legend " << legend);
        CHECK(legend.find("{{rig}}") != std::string::npos);
      }
    }
  }
  CHECK(queries >= 25);
  for (const auto& p : unit_problems(dash)) {
    INFO(p.panel << ": " << p.what);
    CHECK(false);
  }
}

TEST_CASE("alert rules and their unit tests reference only exported metrics", "[metrics]") {
  const YAML::Node rules = YAML::LoadFile(kSource + "/config/prometheus/eqd-alerts.yml");
  std::vector<std::string> exprs;
  std::set<std::string> alerts;
  for (const auto& g : rules["groups"])
    for (const auto& r : g["rules"]) {
      exprs.push_back(r["expr"].as<std::string>());
      alerts.insert(r["alert"].as<std::string>());
    }
  for (const char* must :
       {"EqdControllerDown", "EqdStaleChannels", "EqdResidualHigh", "EqdBufferAtWindowLimit", "EqdControlCycleLate"})
    CHECK(alerts.count(must) == 1);

  // The rule tests' input series must be real series too, or they would test nothing.
  const YAML::Node tests = YAML::LoadFile(kSource + "/config/prometheus/eqd-alerts.test.yml");
  std::set<std::string> tested;
  for (const auto& t : tests["tests"]) {
    for (const auto& s : t["input_series"]) exprs.push_back(s["series"].as<std::string>());
    for (const auto& a : t["alert_rule_test"]) tested.insert(a["alertname"].as<std::string>());
  }
  CHECK(tested == alerts);
  const auto bad = unknown_names(exprs);
  for (const auto& b : bad) UNSCOPED_INFO(b);
  CHECK(bad.empty());
}

TEST_CASE("docs/metrics.md documents every exported metric family", "[metrics]") {
  const std::string doc = read_file(kSource + "/docs/metrics.md");
  for (const auto& m : eqd::metrics::metric_catalogue()) {
    INFO(m.name);
    CHECK(doc.find(std::string("`") + m.name + "`") != std::string::npos);
  }
  // And nothing it mentions is unknown.
  const auto bad = unknown_names({doc});
  for (const auto& b : bad) UNSCOPED_INFO(b.substr(0, b.find(" in: ")));
  CHECK(bad.empty());
}
