// Issue #19's acceptance rig: below, the BTS tests with eqsim's SunSpec storage as the only buffer and
// eqsim's SunSpec grid meter as the bus's meter, whose measured-vs-computed check must agree.
//
// End to end: the real eqd reads the e2e rig's test channels (cab1: four discharging tests, about
// -2.4 kW on the bus side) through eqsim's BTS-like server (`eqsim --bts`, transport neware, read only)
// and drives the buffers of cab2 over Modbus TCP. eqd must converge as with the Modbus profile: eqsim's
// grid report near 0 W while the tests run. A configuration naming a BTS channel as a buffer is
// refused, and eqsim's BTS server never receives a channel command (it would log one).

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <csignal>
#include <fstream>
#include <regex>
#include <thread>

#include "../fakes/process.hpp"
#include "../unit/sunspec_test_util.hpp"
#include "../fakes/e2e_net.hpp"

using eqd::test::port_of;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using eqd::test::Process;

namespace {

struct Report {
  double net_W = 0, free_W = 0;
  int equalizing = -1;
  bool ok = false;
};

Report read_report(const fs::path& p) {
  Report r;
  std::ifstream in(p);
  if (!in) return r;
  const auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("buses")) return r;
  r.net_W = j["buses"][0]["net_W"].get<double>();
  r.free_W = j["buses"][0]["free_W"].get<double>();
  r.equalizing = j["channels_equalizing"].get<int>();
  r.ok = true;
  return r;
}

std::string config(const fs::path& dir, int bts_port, int cab2_port, const std::string& extra_buffer = "") {
  std::string buffers;
  for (const char* ch : {"cab2/1", "cab2/2"})
    buffers += std::string("  - {channel: ") + ch +
               ", max_charge_W: 3000, max_discharge_W: 3000, v_min_V: 48, v_max_V: 56, efficiency: 0.97}\n";
  return "state_dir: " + dir.string() + "\napi: {socket: " + (dir / "eqd.sock").string() +
         "}\nmetrics: {enabled: false}\nbuses:\n  - {name: main, tau_s: 10}\ncontrollers:\n"
         "  - {name: bts, transport: neware, host: 127.0.0.1, port: " +
         std::to_string(bts_port) +
         ", device_id: 1, channels: 4, efficiency: 0.95, poll_hz: 5}\n"
         "  - {name: cab2, host: 127.0.0.1, port: " +
         std::to_string(cab2_port) + ", channels: 2}\nequalization:\n" + buffers + extra_buffer;
}

}  // namespace

TEST_CASE("eqd converges with the test channels read through a BTS-like server") {
  const fs::path dir = eqd::test::make_temp_dir("eqd-neware-e2e");
  const fs::path report = dir / "report.json";
  Process sim({EQSIM_BIN, "--rig", EQD_SOURCE_DIR "/tests/integration/rigs/e2e.yaml", "--base-port", "0", "--bts",
               "--report-file", report.string(), "-q"},
              (dir / "eqsim.log").string());
  INFO("eqsim log:\n" << sim.log());
  REQUIRE(eqd::test::eventually(10s, [&] { return port_of(sim.log(), "BTS device 2") != 0; }));
  const int bts_port = port_of(sim.log(), "BTS device 1");
  const int cab2_port = port_of(sim.log(), "controller cab2");
  REQUIRE(cab2_port != 0);

  // A BTS channel as a buffer: refused by the configuration, eqd does not start.
  {
    std::ofstream(dir / "bad.yaml") << config(dir, bts_port, cab2_port,
                                              "  - {channel: bts/1, max_charge_W: 100, max_discharge_W: 100, "
                                              "v_min_V: 40, v_max_V: 58}\n");
    Process bad({EQD_BIN, "-c", (dir / "bad.yaml").string()}, (dir / "bad.log").string());
    CHECK(bad.wait(10s) != 0);
    CHECK(bad.log().find("uses transport neware, which eqd reads but cannot command") != std::string::npos);
  }

  std::ofstream(dir / "eqd.yaml") << config(dir, bts_port, cab2_port);
  Process eqd({EQD_BIN, "-c", (dir / "eqd.yaml").string()}, (dir / "eqd.log").string());
  INFO("eqd log:\n" << eqd.log());
  Report r;
  const bool ok = eqd::test::eventually(40s, [&] {
    r = read_report(report);
    return r.ok && r.equalizing == 2 && r.free_W < -1500.0 && std::abs(r.net_W) < 0.05 * std::abs(r.free_W);
  });
  INFO("net " << r.net_W << " W, free " << r.free_W << " W, equalizing " << r.equalizing);
  CHECK(ok);
  // No link error on the BTS controller (its errors start "bts inquire", "bts connect", "bts/N").
  CHECK(eqd.log().find("bts inquire") == std::string::npos);
  CHECK(eqd.log().find("bts/") == std::string::npos);

  eqd.signal(SIGTERM);
  CHECK(eqd.wait(15s) == 0);
  sim.signal(SIGTERM);
  CHECK(sim.wait(5s) == 0);
  fs::remove_all(dir);
}

TEST_CASE(
    "issue 19 acceptance: BTS test channels, a SunSpec storage as the only buffer, a SunSpec grid meter that agrees") {
  using namespace eqd::test::sunspec;
  const fs::path dir = eqd::test::make_temp_dir("eqd-neware-sunspec-e2e");
  Process sim({EQSIM_BIN, "--rig", EQD_SOURCE_DIR "/tests/integration/rigs/e2e.yaml", "--base-port", "0", "--bts",
               "--sunspec-storage", "1", "--sunspec-meter", "-q"},
              (dir / "eqsim.log").string());
  INFO("eqsim log:\n" << sim.log());
  REQUIRE(eqd::test::eventually(10s, [&] { return port_of(sim.log(), "BTS device 2") != 0; }));
  const int bts_port = port_of(sim.log(), "BTS device 1");
  const int storage_port = port_of(sim.log(), "SunSpec storage");
  const int meter_port = port_of(sim.log(), "SunSpec meter");
  REQUIRE(storage_port != 0);
  REQUIRE(meter_port != 0);
  std::ofstream(dir / "eqd.yaml")
      << "state_dir: " << dir.string() << "\napi: {socket: " << (dir / "eqd.sock").string()
      << "}\nmetrics: {enabled: false}\nbuses:\n  - name: main\n    tau_s: 10\n"
      << "    meter: {transport: sunspec, host: 127.0.0.1, port: " << meter_port
      << ", poll_hz: 5, tolerance_W: 400, persistence_s: 3}\ncontrollers:\n"
      << "  - {name: bts, transport: neware, host: 127.0.0.1, port: " << bts_port
      << ", device_id: 1, channels: 4, efficiency: 0.95, poll_hz: 5}\n"
      << "  - {name: storage1, transport: sunspec, host: 127.0.0.1, port: " << storage_port << ", poll_hz: 5}\n"
      << "equalization:\n"
      << "  - {channel: storage1/1, max_charge_W: 5000, max_discharge_W: 5000, v_min_V: 360, v_max_V: 440}\n";
  Process eqd({EQD_BIN, "-c", (dir / "eqd.yaml").string()}, (dir / "eqd.log").string());
  INFO("eqd log:\n" << eqd.log());
  Client meter(meter_port);
  Client storage(storage_port);
  // The tests feed about 2.3 kW into the bus, read through the BTS server: the storage charges it and
  // the grid meter (rig + storage) settles near 0 W.
  double m = 0, st = 0;
  const bool ok = eqd::test::eventually(40s, [&] {
    m = eqsim_meter_W(meter);
    st = eqsim_storage_W(storage);  // + = discharging
    return st < -1800.0 && std::fabs(m) < 150.0;
  });
  INFO("meter " << m << " W, storage " << st << " W");
  CHECK(ok);
  CHECK(eqd.log().find("bts inquire") == std::string::npos);
  // eqd's own check: the meter (rig + storage, read by eqd) against its computed net (the BTS tests'
  // power + the storage's) agrees, and has for longer than its persistence time. Seen failing with
  // eqsim's meter reading 1.5 kW nobody configured (--sunspec-meter-offset-W 1500).
  std::this_thread::sleep_for(4s);
  const fs::path out = dir / "status.json";
  {
    Process ctl({EQCTL_BIN, "--socket", (dir / "eqd.sock").string(), "--json", "status"}, out.string());
    REQUIRE(ctl.wait(10s) == 0);
  }
  std::ifstream in(out);
  const auto status = nlohmann::json::parse(in, nullptr, false);
  REQUIRE_FALSE(status.is_discarded());
  const auto& bus = status["buses"][0];
  INFO("status: " << bus.dump());
  REQUIRE(bus["meter"].is_object());
  CHECK(bus["meter"]["ok"] == true);
  CHECK(bus["meter"]["disagreement"] == false);
  CHECK(std::fabs(bus["meter"]["difference_W"].get<double>()) < 400.0);
  CHECK(std::fabs(bus["meter"]["power_W"].get<double>()) < 300.0);
  CHECK(eqd.log().find("grid meter reads") == std::string::npos);

  eqd.signal(SIGTERM);
  CHECK(eqd.wait(15s) == 0);
  CHECK(storage.read(40122 + m124::StorCtl_Mod, 1)[0] == 0);
  sim.signal(SIGTERM);
  CHECK(sim.wait(5s) == 0);
  fs::remove_all(dir);
}

// The same rig from eqsim's own configuration (`--write-eqd-config --eqd-transport neware`): the rig's
// controllers as BTS devices (read only: their buffers left out), the SunSpec storage as the buffer,
// the SunSpec meter as the bus's meter. Fails when a server side writes a key eqd refuses or a device
// eqd cannot find (no test channel read: the storage never charges).
TEST_CASE("eqsim writes the acceptance rig's eqd configuration itself (--eqd-transport neware)") {
  using namespace eqd::test::sunspec;
  const fs::path dir = eqd::test::make_temp_dir("eqd-neware-written");
  const fs::path cfg = dir / "eqd.yaml";
  Process sim({EQSIM_BIN, "--rig", EQD_SOURCE_DIR "/tests/integration/rigs/e2e.yaml", "--base-port", "0", "--bts",
               "--sunspec-storage", "1", "--sunspec-meter", "--eqd-transport", "neware", "--eqd-tau", "10",
               "--write-eqd-config", cfg.string(), "-q"},
              (dir / "eqsim.log").string());
  INFO("eqsim log:\n" << sim.log());
  REQUIRE(eqd::test::eventually(10s, [&] { return sim.log().find("wrote eqd configuration") != std::string::npos; }));
  std::string text;
  {
    std::ifstream in(cfg);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  INFO("written:\n" << text);
  CHECK(text.find("transport: neware") != std::string::npos);
  CHECK(text.find("transport: tcp") == std::string::npos);
  CHECK(text.find("channel: cab2/") == std::string::npos);  // read only: the rig's buffers are left out
  CHECK(text.find("channel: sunspec-storage-1/1") != std::string::npos);
  CHECK(text.find("meter:") != std::string::npos);
  const int storage_port = port_of(sim.log(), "SunSpec storage");
  const int meter_port = port_of(sim.log(), "SunSpec meter");
  REQUIRE(storage_port != 0);
  REQUIRE(meter_port != 0);
  Process eqd({EQD_BIN, "-c", cfg.string(), "--set", "state_dir=" + dir.string(), "--set",
               "api.socket=" + (dir / "eqd.sock").string(), "--set", "metrics.enabled=false"},
              (dir / "eqd.log").string());
  INFO("eqd log:\n" << eqd.log());
  Client meter(meter_port);
  Client storage(storage_port);
  double m = 0, st = 0;
  const bool ok = eqd::test::eventually(40s, [&] {
    m = eqsim_meter_W(meter);
    st = eqsim_storage_W(storage);  // + = discharging
    return st < -1800.0 && std::fabs(m) < 150.0;
  });
  INFO("meter " << m << " W, storage " << st << " W");
  CHECK(ok);
  eqd.signal(SIGTERM);
  CHECK(eqd.wait(15s) == 0);
  sim.signal(SIGTERM);
  CHECK(sim.wait(5s) == 0);
  fs::remove_all(dir);
}
