// End to end over loopback Modbus TCP with the real binaries: eqsim serves a simulated rig, eqd
// equalizes it. Checks: the bus converges; a killed eqd lets the controllers' heartbeat watchdog take
// the buffers to 0 W and out of equalization; a restarted eqd takes over again; SIGTERM stops the
// buffers and exits 0; an invalid configuration exits 2 naming file:line:column.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "../fakes/process.hpp"

namespace fs = std::filesystem;
using eqd::test::eventually;
using eqd::test::Process;
using namespace std::chrono_literals;

namespace {

fs::path make_temp_dir() { return eqd::test::make_temp_dir("eqd-e2e"); }

struct Report {
  double net_W = 0, free_W = 0, eq_W = 0;
  int equalizing = -1;
  int watchdog_trips = -1;
  bool ok = false;
};

Report read_report(const fs::path& p) {
  Report r;
  std::ifstream in(p);
  if (!in) return r;
  const auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("buses")) return r;
  const auto& b = j["buses"][0];
  r.net_W = b["net_W"].get<double>();
  r.free_W = b["free_W"].get<double>();
  r.eq_W = b["eq_W"].get<double>();
  r.equalizing = j["channels_equalizing"].get<int>();
  r.watchdog_trips = j["watchdog_trips"].get<int>();
  r.ok = true;
  return r;
}

bool converged(const Report& r) {
  return r.ok && r.equalizing == 2 && std::abs(r.free_W) > 1000.0 && std::abs(r.net_W) < 0.05 * std::abs(r.free_W);
}

std::vector<std::string> eqd_args(const fs::path& dir) {
  return {EQD_BIN,
          "--config",
          (dir / "eqd.yaml").string(),
          "--set",
          "state_dir=" + dir.string(),
          "--set",
          "api.socket=" + (dir / "eqd.sock").string(),
          "--set",
          "metrics.enabled=false"};
}

}  // namespace

TEST_CASE("eqsim and eqd equalize over Modbus TCP and the controller watchdog covers a killed eqd", "[e2e]") {
  const fs::path dir = make_temp_dir();
  const fs::path report = dir / "report.json";
  Process sim(
      {EQSIM_BIN, "--rig", EQD_SOURCE_DIR "/tests/integration/rigs/e2e.yaml", "--base-port", "0", "--write-eqd-config",
       (dir / "eqd.yaml").string(), "--eqd-tau", "2", "--report-file", report.string(), "-q"},
      (dir / "eqsim.log").string());
  REQUIRE(eventually(10s, [&] { return fs::exists(dir / "eqd.yaml") && read_report(report).ok; }));

  // Without eqd the grid sees the whole free power.
  const Report before = read_report(report);
  INFO("eqsim log:\n" << sim.log());
  CHECK(before.equalizing == 0);
  CHECK(std::abs(before.net_W - before.free_W) < 1.0);

  auto eqd = std::make_unique<Process>(eqd_args(dir), (dir / "eqd.log").string());
  INFO("eqd log:\n" << eqd->log());
  Report r;
  const bool ok1 = eventually(30s, [&] { return converged(r = read_report(report)); });
  INFO("net " << r.net_W << " W, free " << r.free_W << " W, equalizing " << r.equalizing);
  REQUIRE(ok1);
  // The buffers charge: they absorb what the discharging tests feed back.
  CHECK(r.eq_W > 1000.0);

  // eqd dies without a word: the heartbeat stops, the controller releases its buffers by itself.
  eqd->signal(SIGKILL);
  REQUIRE(eqd->wait(5s).has_value());
  const bool released = eventually(10s, [&] {
    r = read_report(report);
    return r.ok && r.equalizing == 0 && std::abs(r.eq_W) < 1.0;
  });
  INFO("after kill: equalizing " << r.equalizing << ", eq " << r.eq_W << " W, trips " << r.watchdog_trips);
  CHECK(released);
  CHECK(r.watchdog_trips >= 1);
  const int trips_after_kill = r.watchdog_trips;

  // A new eqd takes over again.
  eqd = std::make_unique<Process>(eqd_args(dir), (dir / "eqd2.log").string());
  const bool ok2 = eventually(30s, [&] { return converged(r = read_report(report)); });
  INFO("restart: net " << r.net_W << " W, free " << r.free_W << " W, equalizing " << r.equalizing);
  CHECK(ok2);

  // SIGTERM: eqd stops the buffers itself (no watchdog) and exits 0. Count the trips just before:
  // the plant's and the server's watchdogs may both have fired after the kill, at slightly
  // different times.
  const int trips_before_stop = read_report(report).watchdog_trips;
  CHECK(trips_before_stop >= trips_after_kill);
  eqd->signal(SIGTERM);
  const auto code = eqd->wait(10s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  const bool stopped = eventually(1500ms, [&] {
    r = read_report(report);
    return r.ok && r.equalizing == 0;
  });
  CHECK(stopped);
  CHECK(r.watchdog_trips == trips_before_stop);
  const std::string log = eqd->log();
  CHECK(log.find("2 controller(s) acknowledged, 0 timed out") != std::string::npos);

  sim.signal(SIGTERM);
  CHECK(sim.wait(5s) == std::optional<int>(0));
  CHECK(sim.log().find("eqsim: summary") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("an invalid configuration exits 2 naming file line and column", "[e2e]") {
  const fs::path dir = make_temp_dir();
  const fs::path cfg = dir / "bad.yaml";
  std::ofstream(cfg) << "buses:\n  - name: main\n    tau_s: fast\n";
  Process eqd({EQD_BIN, "--check-config", cfg.string()}, (dir / "out.log").string());
  const auto code = eqd.wait(10s);
  REQUIRE(code.has_value());
  CHECK(*code == 2);
  const std::string out = eqd.log();
  INFO(out);
  CHECK(out.find(cfg.string() + ":3:12: buses[0].tau_s") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("SIGHUP reloads by handover and refuses an invalid configuration", "[e2e]") {
  const fs::path dir = make_temp_dir();
  const fs::path report = dir / "report.json";
  Process sim(
      {EQSIM_BIN, "--rig", EQD_SOURCE_DIR "/tests/integration/rigs/e2e.yaml", "--base-port", "0", "--write-eqd-config",
       (dir / "eqd.yaml").string(), "--eqd-tau", "2", "--report-file", report.string(), "-q"},
      (dir / "eqsim.log").string());
  REQUIRE(eventually(10s, [&] { return fs::exists(dir / "eqd.yaml") && read_report(report).ok; }));
  Process eqd(eqd_args(dir), (dir / "eqd.log").string());
  INFO("eqd log:\n" << eqd.log());
  Report r;
  REQUIRE(eventually(30s, [&] { return converged(r = read_report(report)); }));

  // An invalid file is refused with its position; the running configuration stays.
  std::string original;
  {
    std::ifstream in(dir / "eqd.yaml");
    original.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(dir / "eqd.yaml") << original << "bogus_key: 1\n";
  eqd.signal(SIGHUP);
  CHECK(eventually(5s, [&] { return eqd.log().find("reload refused") != std::string::npos; }));
  CHECK(eqd.log().find("bogus_key") != std::string::npos);
  CHECK(converged(read_report(report)));

  // A valid change: drop the second buffer from the configuration. It must be released; the other
  // keeps equalizing through the handover, and no controller watchdog trips.
  const auto cut = original.find("  - channel: cab2/2");
  REQUIRE(cut != std::string::npos);
  std::ofstream(dir / "eqd.yaml") << original.substr(0, cut);
  const int trips_before = read_report(report).watchdog_trips;
  eqd.signal(SIGHUP);
  CHECK(eventually(5s, [&] { return eqd.log().find("reload: new configuration active") != std::string::npos; }));
  const bool one_left = eventually(10s, [&] {
    r = read_report(report);
    return r.ok && r.equalizing == 1;
  });
  CHECK(one_left);
  CHECK(eqd.log().find("cab2/2 is no longer an equalization channel") != std::string::npos);
  // The remaining buffer (3 kW) takes the whole free power again.
  CHECK(eventually(20s, [&] {
    r = read_report(report);
    return r.ok && r.equalizing == 1 && std::abs(r.net_W) < 0.05 * std::abs(r.free_W);
  }));
  CHECK(read_report(report).watchdog_trips == trips_before);
  CHECK(read_report(report).ok);

  eqd.signal(SIGTERM);
  CHECK(eqd.wait(10s) == std::optional<int>(0));
  sim.signal(SIGTERM);
  CHECK(sim.wait(5s) == std::optional<int>(0));
  fs::remove_all(dir);
}
