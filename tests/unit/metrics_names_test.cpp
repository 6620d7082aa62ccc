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
      if ((k == "expr" || k == "query" || k == "definition") && v.is_string()) out.push_back(v.get<std::string>());
      else collect_exprs(v, out);
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

TEST_CASE("alert rules and their unit tests reference only exported metrics", "[metrics]") {
  const YAML::Node rules = YAML::LoadFile(kSource + "/config/prometheus/eqd-alerts.yml");
  std::vector<std::string> exprs;
  std::set<std::string> alerts;
  for (const auto& g : rules["groups"])
    for (const auto& r : g["rules"]) {
      exprs.push_back(r["expr"].as<std::string>());
      alerts.insert(r["alert"].as<std::string>());
    }
  for (const char* must : {"EqdControllerDown", "EqdStaleChannels", "EqdResidualHigh", "EqdBufferAtWindowLimit",
                           "EqdControlCycleLate"})
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
