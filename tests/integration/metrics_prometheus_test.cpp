// eqd's metrics end to end on loopback, with the real binaries: eqsim serves the demo rig, eqd
// equalizes it and exports metrics; `promtool check metrics` lints the live exposition, which must
// hold every catalogued family; then a real Prometheus server scrapes eqd every second, answers a
// PromQL query for the bus power, evaluates the shipped alert rules without error, runs every query of
// the Grafana dashboard (the rig variable narrows them all) and serves the shipped console templates
// (config/prometheus/consoles) with the console libraries of Debian's prometheus package.
// Needs Debian's `prometheus` package (promtool, prometheus) and curl; exits 77 (skipped) without them.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "../fakes/process.hpp"
#include "eqd/metrics/collector.hpp"
#include "../fakes/e2e_net.hpp"

using eqd::test::free_port;

namespace fs = std::filesystem;
using eqd::test::eventually;
using eqd::test::Process;
using namespace std::chrono_literals;

namespace {

fs::path make_temp_dir() { return eqd::test::make_temp_dir("eqd-metrics"); }

struct RunResult {
  int rc = -1;
  std::string out;
};

// Run a shell command (stdout captured, stderr to the test's log). Commands here are built from
// temp paths and loopback ports only.
RunResult run(const std::string& cmd) {
  RunResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string find_tool(const char* name) {
  const RunResult r = run(std::string("command -v ") + name + " 2>/dev/null");
  std::string path = r.out.substr(0, r.out.find('\n'));
  return r.rc == 0 ? path : std::string();
}

// A port that was free a moment ago: bind port 0 on loopback and read what the kernel chose.
// The caller retries if another process takes it in between.

std::string http_get(const std::string& url) { return run("curl -sf --max-time 5 '" + url + "'").out; }

// An HTTP GET that keeps the status code and the body of an error answer too.
struct HttpAnswer {
  int code = 0;
  std::string body;
};
HttpAnswer http_fetch(const std::string& url) {
  const RunResult r = run("curl -s --max-time 5 -w '\\n%{http_code}' '" + url + "'");
  const auto nl = r.out.rfind('\n');
  if (nl == std::string::npos) return {};
  return {std::atoi(r.out.c_str() + nl + 1), r.out.substr(0, nl)};
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// A dashboard query as Grafana sends it for one rig, all instances and buses, a one-minute range.
std::string dashboard_query(const std::string& expr, const std::string& rig) {
  std::string q = replace_all(expr, "$rig", rig);
  q = replace_all(q, "$instance", ".*");
  q = replace_all(q, "$bus", ".*");
  return replace_all(q, "$__range", "1m");
}

// Where the console libraries (prom.lib, menu.lib) are: Debian ships them as examples.
std::string console_libraries() {
  for (const char* d : {"/etc/prometheus/console_libraries", "/usr/share/doc/prometheus/examples/console_libraries",
                        "/usr/share/prometheus/console_libraries"})
    if (fs::exists(fs::path(d) / "prom.lib") && fs::exists(fs::path(d) / "menu.lib")) return d;
  return "";
}

// The text of an HTML fragment without its tags, blanks collapsed.
std::string text_of(const std::string& html) {
  std::string out;
  bool in_tag = false;
  for (char c : html) {
    if (c == '<')
      in_tag = true;
    else if (c == '>') {
      in_tag = false;
      c = ' ';
    }
    if (in_tag) continue;
    if (std::isspace(static_cast<unsigned char>(c))) c = ' ';
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  return out;
}

// The rows (<tr class="CLASS">...</tr>) of a console page, as text.
std::vector<std::string> rows_of(const std::string& html, const std::string& row_class) {
  std::vector<std::string> out;
  const std::string open = "<tr class=\"" + row_class + "\">";
  for (auto at = html.find(open); at != std::string::npos; at = html.find(open, at + 1))
    out.push_back(text_of(html.substr(at, html.find("</tr>", at) - at)));
  return out;
}

nlohmann::json prom_query(std::uint16_t port, const std::string& promql) {
  const RunResult r = run("curl -sf --max-time 5 -G --data-urlencode 'query=" + promql +
                          "' http://127.0.0.1:" + std::to_string(port) + "/api/v1/query");
  return nlohmann::json::parse(r.out, nullptr, false);
}

// Value of the single series a query returns, or NaN.
double single_value(const nlohmann::json& j) {
  if (j.is_discarded() || j.value("status", "") != "success") return NAN;
  const auto& res = j["data"]["result"];
  if (!res.is_array() || res.size() != 1) return NAN;
  return std::stod(res[0]["value"][1].get<std::string>());
}

// Value of an unlabelled or single-labelled sample line "name{...} value" in a text exposition.
double exposition_value(const std::string& text, const std::string& series) {
  const auto pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return NAN;
  return std::strtod(text.c_str() + pos + series.size() + 2, nullptr);
}

}  // namespace

TEST_CASE("eqd metrics pass promtool and a real Prometheus scrapes them on loopback", "[metrics][e2e]") {
  const std::string promtool = find_tool("promtool");
  const std::string prometheus = find_tool("prometheus");
  if (promtool.empty() || prometheus.empty() || find_tool("curl").empty()) {
    std::fprintf(stderr, "skipped: needs promtool, prometheus (apt-get install -y prometheus) and curl\n");
    std::exit(77);
  }
  const fs::path dir = make_temp_dir();
  Process sim({EQSIM_BIN, "--rig", EQD_SOURCE_DIR "/config/rigs/demo.yaml", "--base-port", "0", "--write-eqd-config",
               (dir / "eqd.yaml").string(), "-q", "--report-file", (dir / "r.json").string()},
              (dir / "eqsim.log").string());
  INFO("eqsim log:\n" << sim.log());
  REQUIRE(eventually(15s, [&] { return fs::exists(dir / "eqd.yaml") && fs::exists(dir / "r.json"); }));

  // eqd on a free port; if someone took the port between our probe and eqd's bind, eqd controls
  // anyway and retries the port every 5 s: after 10 s without metrics we try another port.
  std::unique_ptr<Process> eqd;
  std::uint16_t eqd_port = 0;
  std::string metrics_url;
  for (int attempt = 0; attempt < 3 && metrics_url.empty(); ++attempt) {
    eqd_port = free_port();
    const std::string url = "http://127.0.0.1:" + std::to_string(eqd_port) + "/metrics";
    eqd = std::make_unique<Process>(
        std::vector<std::string>{EQD_BIN, "--config", (dir / "eqd.yaml").string(), "--set", "state_dir=" + dir.string(),
                                 "--set", "api.socket=" + (dir / "eqd.sock").string(), "--set",
                                 "metrics.listen=127.0.0.1:" + std::to_string(eqd_port)},
        (dir / ("eqd" + std::to_string(attempt) + ".log")).string());
    if (eventually(10s, [&] { return !http_get(url).empty() || eqd->wait(0ms).has_value(); }) &&
        !eqd->wait(0ms).has_value())
      metrics_url = url;
  }
  INFO("eqd log:\n" << eqd->log());
  REQUIRE_FALSE(metrics_url.empty());

  // Live exposition once every controller is connected and the core has cycled.
  std::string text;
  REQUIRE(eventually(20s, [&] {
    text = http_get(metrics_url);
    return exposition_value(text, "eqd_control_cycles_total") > 10 &&
           text.find("eqd_controller_up{controller=\"cab1\"} 1\n") != std::string::npos &&
           text.find("eqd_controller_up{controller=\"aux1\"} 1\n") != std::string::npos;
  }));
  {
    const fs::path f = dir / "live.prom";
    std::ofstream(f) << text;
    const RunResult lint = run("'" + promtool + "' check metrics < '" + f.string() + "' 2>&1");
    INFO("promtool check metrics:\n" << lint.out);
    CHECK(lint.rc == 0);
  }
  for (const auto& m : eqd::metrics::metric_catalogue()) {
    INFO(m.name);
    CHECK(text.find(std::string("\n# TYPE ") + m.name + " ") != std::string::npos);
  }
  CHECK(text.find("eqd_channel_power_watts{bus=\"main\",channel=\"cab1/1\"} ") != std::string::npos);

  // A real Prometheus server, scraping every second and evaluating the shipped rules.
  const fs::path prom_cfg = dir / "prometheus.yml";
  std::ofstream(prom_cfg) << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                          << "rule_files:\n  - " << EQD_SOURCE_DIR << "/config/prometheus/eqd-alerts.yml\n"
                          << "scrape_configs:\n  - job_name: eqd\n    static_configs:\n      - targets: ['127.0.0.1:"
                          << eqd_port
                          << "']\n        labels:\n          rig: lab1\n";  // as config/prometheus/prometheus.yml
  const std::string libraries = console_libraries();
  if (libraries.empty()) WARN("no console libraries (prom.lib, menu.lib) found: the console templates are not checked");
  std::unique_ptr<Process> prom;
  std::uint16_t prom_port = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    prom_port = free_port();
    std::vector<std::string> argv{prometheus, "--config.file=" + prom_cfg.string(),
                                  "--storage.tsdb.path=" + (dir / ("data" + std::to_string(attempt))).string(),
                                  "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)};
    if (!libraries.empty()) {  // as docs/metrics.md tells: the shipped templates, Debian's libraries
      argv.push_back("--web.console.templates=" EQD_SOURCE_DIR "/config/prometheus/consoles");
      argv.push_back("--web.console.libraries=" + libraries);
    }
    prom = std::make_unique<Process>(argv, (dir / "prometheus.log").string());
    const std::string ready = "http://127.0.0.1:" + std::to_string(prom_port) + "/-/ready";
    if (eventually(10s, [&] { return !http_get(ready).empty() || prom->wait(0ms).has_value(); }) &&
        !prom->wait(0ms).has_value())
      break;
  }
  INFO("prometheus log:\n" << prom->log());
  REQUIRE_FALSE(prom->wait(0ms).has_value());

  // The first sample arrives a few seconds after start.
  double net_W = NAN;
  const bool got = eventually(30s, [&] {
    net_W = single_value(prom_query(prom_port, "eqd_bus_net_power_watts{bus=\"main\"}"));
    return std::isfinite(net_W);
  });
  REQUIRE(got);
  INFO("net power of bus main per Prometheus: " << net_W << " W");
  CHECK(std::abs(net_W) < 1e6);
  CHECK(single_value(prom_query(prom_port, "up{job=\"eqd\"}")) == 1.0);
  // The same bus's free power is there too, and the two differ once buffers work (or are both 0).
  CHECK(std::isfinite(single_value(prom_query(prom_port, "eqd_bus_free_power_watts{bus=\"main\"}"))));
  CHECK(single_value(prom_query(prom_port, "count(eqd_channel_power_watts)")) == 64.0);

  // Every shipped rule evaluates against the real series without error.
  nlohmann::json rules;
  const bool evaluated = eventually(15s, [&] {
    rules = nlohmann::json::parse(http_get("http://127.0.0.1:" + std::to_string(prom_port) + "/api/v1/rules"), nullptr,
                                  false);
    if (rules.is_discarded() || rules.value("status", "") != "success") return false;
    for (const auto& g : rules["data"]["groups"])
      for (const auto& r : g["rules"])
        if (r.value("health", "") == "unknown") return false;
    return !rules["data"]["groups"].empty();
  });
  REQUIRE(evaluated);
  std::size_t n_rules = 0;
  for (const auto& g : rules["data"]["groups"])
    for (const auto& r : g["rules"]) {
      ++n_rules;
      INFO(r.value("name", "?") << ": " << r.value("lastError", ""));
      CHECK(r.value("health", "") == "ok");
    }
  CHECK(n_rules >= 5);

  // The dashboard's variables: the rig (the target's label) and, narrowed by it, instance and bus.
  const auto dash = nlohmann::json::parse(read_text(EQD_SOURCE_DIR "/config/grafana/eqd-dashboard.json"));
  const std::string api = "http://127.0.0.1:" + std::to_string(prom_port) + "/api/v1";
  for (const auto& v : dash["templating"]["list"]) {
    if (v.value("type", "") != "query") continue;
    std::smatch m;
    const std::string def = v.value("definition", "");
    REQUIRE(std::regex_match(def, m, std::regex(R"(label_values\((.*), (\w+)\))")));
    const RunResult r = run("curl -sf --max-time 5 -G --data-urlencode 'match[]=" + dashboard_query(m[1], "lab1") +
                            "' " + api + "/label/" + m[2].str() + "/values");
    const auto values = nlohmann::json::parse(r.out, nullptr, false);
    INFO("variable " << v.value("name", "") << ": " << def << " -> " << r.out);
    REQUIRE(!values.is_discarded());
    CHECK(!values["data"].empty());
    if (v.value("name", "") == "rig") CHECK(values["data"] == nlohmann::json::array({"lab1"}));
  }
  // Every panel query runs; all but those that keep only non-zero values (errors) and the grid meter's
  // (this rig's buses have none, and a bus without one has no eqd_bus_meter_* series) return series for
  // rig lab1, none for another rig (each selects by $rig).
  std::size_t queries = 0, with_data = 0, may_be_empty = 0;
  for (const auto& panel : dash["panels"]) {
    if (!panel.contains("targets")) continue;
    for (const auto& target : panel["targets"]) {
      const std::string expr = target.value("expr", "");
      ++queries;
      const bool empty_ok = expr.find("> 0") != std::string::npos || expr.find("eqd_bus_meter_") != std::string::npos;
      if (empty_ok) ++may_be_empty;
      INFO(panel.value("title", "?") << ": " << dashboard_query(expr, "lab1"));
      nlohmann::json ours;
      // Rates and increases need two samples in their window: give the scrapes a few seconds.
      const bool answered = eventually(10s, [&] {
        ours = prom_query(prom_port, dashboard_query(expr, "lab1"));
        return !ours.is_discarded() && ours.value("status", "") == "success" &&
               (!ours["data"]["result"].empty() || empty_ok);
      });
      CHECK(answered);
      if (answered && !ours["data"]["result"].empty()) ++with_data;
      const auto other = prom_query(prom_port, dashboard_query(expr, "another_rig"));
      REQUIRE(!other.is_discarded());
      CHECK(other.value("status", "") == "success");
      CHECK(other["data"]["result"].empty());
    }
  }
  CHECK(queries >= 25);
  CHECK(with_data >= queries - may_be_empty);

  // The console templates render from the live series: every bus with its status and powers, the
  // controllers, a bus's buffers; no template error.
  if (!libraries.empty()) {
    const std::string consoles = "http://127.0.0.1:" + std::to_string(prom_port) + "/consoles/";
    auto page_ok = [](const HttpAnswer& a) {
      INFO(a.body.substr(0, 2000));
      CHECK(a.code == 200);
      CHECK(a.body.find("error executing template") == std::string::npos);
      CHECK(a.body.find("<no value>") == std::string::npos);
      CHECK(a.body.find("</html>") != std::string::npos);
    };
    const HttpAnswer overview = http_fetch(consoles + "eqd-overview.html");
    page_ok(overview);
    const auto buses = rows_of(overview.body, "eqd_bus");
    REQUIRE(buses.size() == 2);
    // rig, eqd, bus, status, without equalization, with equalization, buffers, residual (W or kW)
    const std::string power = R"((-?[0-9.]+ W|-?[0-9.]+kW))";
    const std::regex row("^ ?lab1 127\\.0\\.0\\.1:" + std::to_string(eqd_port) +
                         " (aux|main) (ok|idle|holding|ramp_down|saturated) " + power + " " + power + " " + power +
                         " " + power + " .*");
    std::set<std::string> seen;
    for (const auto& b : buses) {
      INFO(b);
      std::smatch m;
      CHECK(std::regex_match(b, m, row));
      if (!m.empty()) seen.insert(m[1]);
    }
    CHECK(seen == std::set<std::string>{"aux", "main"});
    const auto controllers = rows_of(overview.body, "eqd_controller");
    CHECK(controllers.size() == 4);
    for (const auto& c : controllers) {
      INFO(c);
      CHECK(c.find(" connected ") != std::string::npos);
    }
    const HttpAnswer other = http_fetch(consoles + "eqd-overview.html?rig=another_rig");
    page_ok(other);
    CHECK(rows_of(other.body, "eqd_bus").empty());
    CHECK(other.body.find("No eqd bus found for rig another_rig") != std::string::npos);

    const HttpAnswer bus =
        http_fetch(consoles + "eqd-bus.html?job=eqd&instance=127.0.0.1:" + std::to_string(eqd_port) + "&bus=main");
    page_ok(bus);
    const auto buffers = rows_of(bus.body, "eqd_buffer");
    CHECK(buffers.size() == 3);  // the demo rig's buffers on main: cab1/15, cab1/16, cab2/16
    for (const auto& b : buffers) {
      INFO(b);
      CHECK(std::regex_match(b, std::regex(R"(^ ?cab[12]/1[56] equalization \w+ [0-9.]+ V .*%.*)")));
    }
    // The side table's powers are values (a missing one reads "-").
    CHECK(std::regex_search(text_of(bus.body),
                            std::regex("without equalization " + power + " with equalization " + power)));
  }

  prom->signal(SIGTERM);
  CHECK(prom->wait(10s).has_value());
  eqd->signal(SIGTERM);
  CHECK(eqd->wait(10s) == std::optional<int>(0));
  sim.signal(SIGTERM);
  CHECK(sim.wait(5s).has_value());
  fs::remove_all(dir);
}
