// eqd's metrics end to end on loopback, with the real binaries: eqsim serves the demo rig, eqd
// equalizes it and exports metrics; `promtool check metrics` lints the live exposition, which must
// hold every catalogued family; then a real Prometheus server scrapes eqd every second, answers a
// PromQL query for the bus power and evaluates the shipped alert rules without error.
// Needs Debian's `prometheus` package (promtool, prometheus) and curl; exits 77 (skipped) without them.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../fakes/process.hpp"
#include "eqd/metrics/collector.hpp"

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
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string http_get(const std::string& url) { return run("curl -sf --max-time 5 '" + url + "'").out; }

nlohmann::json prom_query(std::uint16_t port, const std::string& promql) {
  const RunResult r = run("curl -sf --max-time 5 -G --data-urlencode 'query=" + promql + "' http://127.0.0.1:" +
                          std::to_string(port) + "/api/v1/query");
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
  Process sim({EQSIM_BIN, "--rig", EQD_SOURCE_DIR "/config/rigs/demo.yaml", "--base-port", "0",
               "--write-eqd-config", (dir / "eqd.yaml").string(), "-q", "--report-file", (dir / "r.json").string()},
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
                          << eqd_port << "']\n";
  std::unique_ptr<Process> prom;
  std::uint16_t prom_port = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    prom_port = free_port();
    prom = std::make_unique<Process>(
        std::vector<std::string>{prometheus, "--config.file=" + prom_cfg.string(),
                                 "--storage.tsdb.path=" + (dir / ("data" + std::to_string(attempt))).string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
        (dir / "prometheus.log").string());
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
    rules = nlohmann::json::parse(http_get("http://127.0.0.1:" + std::to_string(prom_port) + "/api/v1/rules"),
                                  nullptr, false);
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

  prom->signal(SIGTERM);
  CHECK(prom->wait(10s).has_value());
  eqd->signal(SIGTERM);
  CHECK(eqd->wait(10s) == std::optional<int>(0));
  sim.signal(SIGTERM);
  CHECK(sim.wait(5s).has_value());
  fs::remove_all(dir);
}
