// End to end: the real eqd with a SunSpec storage (eqsim --sunspec-storage 1) as the only buffer of the
// e2e rig's bus, whose test channels discharge about 2.3 kW into the bus. eqd must converge: the
// storage charges what the tests feed in, and eqsim's SunSpec grid meter (rig + storage, read here
// with a plain libmodbus client) goes to about 0 W. On SIGTERM eqd returns the storage to its own
// mode (124 StorCtl_Mod 0).

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <regex>

#include "../fakes/process.hpp"
#include "../unit/sunspec_test_util.hpp"
#include "../fakes/e2e_net.hpp"

using eqd::test::free_port;
using eqd::test::port_of;
using eqd::test::scrape;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace eqd::test::sunspec;
using eqd::test::Process;

namespace {

double meter_W(Client& c) {
  const auto r = c.read(40070, 2 + m203::L);  // model 203 right after model 1
  return scaled(s16(r[m203::W]), r[m203::W_SF]);
}

// SunSpec W of the storage's model 103 (+ = discharging).
double storage_W(Client& c) {
  const auto r = c.read(40070, 2 + m103::L);
  return scaled(s16(r[m103::W]), r[m103::W_SF]);
}

// eqd's own reading of its buffers' power on bus main (+ = charging) from /metrics; NaN if unreadable.
double measured_buffer_W(std::uint16_t port) {
  const std::string resp = scrape(port);
  std::smatch m;
  static const std::regex re("\neqd_bus_equalization_measured_power_watts\\{bus=\"main\"\\} ([-0-9.e+]+)");
  return std::regex_search(resp, m, re) ? std::stod(m[1]) : std::nan("");
}

}  // namespace

TEST_CASE("eqd converges with a SunSpec storage as its buffer and releases it on SIGTERM") {
  const fs::path dir = eqd::test::make_temp_dir("eqd-sunspec-e2e");
  Process sim({EQSIM_BIN, "--rig", EQD_SOURCE_DIR "/tests/integration/rigs/e2e.yaml", "--base-port", "0",
               "--sunspec-storage", "1", "--sunspec-meter", "-q"},
              (dir / "eqsim.log").string());
  INFO("eqsim log:\n" << sim.log());
  REQUIRE(eqd::test::eventually(10s, [&] { return port_of(sim.log(), "SunSpec meter") != 0; }));
  const int cab1 = port_of(sim.log(), "controller cab1");
  const int storage_port = port_of(sim.log(), "SunSpec storage");
  REQUIRE(cab1 != 0);
  REQUIRE(storage_port != 0);
  const std::uint16_t metrics_port = free_port();
  {
    std::ofstream cfg(dir / "eqd.yaml");
    cfg << "state_dir: " << (dir / "state").string() << "\n"
        << "api: {socket: " << (dir / "eqd.sock").string() << "}\n"
        << "metrics: {enabled: true, listen: 127.0.0.1:" << metrics_port << "}\n"
        << "buses:\n  - {name: main, tau_s: 10}\n"
        << "controllers:\n"
        << "  - {name: cab1, host: 127.0.0.1, port: " << cab1 << ", channels: 4, efficiency: 0.95}\n"
        << "  - {name: storage1, transport: sunspec, host: 127.0.0.1, port: " << storage_port << ", poll_hz: 5}\n"
        << "equalization:\n"
        << "  - {channel: storage1/1, max_charge_W: 5000, max_discharge_W: 5000, v_min_V: 360, v_max_V: 440}\n";
  }
  fs::create_directories(dir / "state");
  Process eqd({EQD_BIN, "-c", (dir / "eqd.yaml").string()}, (dir / "eqd.log").string());
  INFO("eqd log:\n" << eqd.log());
  Client storage(storage_port);
  Client meter(port_of(sim.log(), "SunSpec meter"));

  // The tests feed about 2.3 kW into the bus: the storage charges it (SunSpec W < 0) and the grid
  // meter, which sees the rig and the storage, settles near 0 W.
  CHECK(eqd::test::eventually(40s, [&] { return storage_W(storage) < -1800.0 && std::fabs(meter_W(meter)) < 150.0; }));
  CHECK(storage.read(40122 + m124::StorCtl_Mod, 1)[0] == 3);
  // eqd reads the storage with its own sign (+ = charging): what the device's W says, negated.
  CHECK(eqd::test::eventually(5s, [&] { return measured_buffer_W(metrics_port) > 1800.0; }));
  CHECK(eqd.log().find("SunSpec device eqd-sim storage") != std::string::npos);

  eqd.signal(SIGTERM);
  CHECK(eqd.wait(15s) == 0);
  CHECK(storage.read(40122 + m124::StorCtl_Mod, 1)[0] == 0);
  CHECK(eqd::test::eventually(3s, [&] { return std::fabs(storage_W(storage)) < 1.0; }));
  sim.signal(SIGTERM);
  CHECK(sim.wait(5s) == 0);
  fs::remove_all(dir);
}
