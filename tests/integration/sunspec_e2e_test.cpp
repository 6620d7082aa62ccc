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

#include <nlohmann/json.hpp>

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
  CHECK(eqd::test::eventually(
      40s, [&] { return eqsim_storage_W(storage) < -1800.0 && std::fabs(eqsim_meter_W(meter)) < 150.0; }));
  CHECK(storage.read(40122 + m124::StorCtl_Mod, 1)[0] == 3);
  // eqd reads the storage with its own sign (+ = charging): what the device's W says, negated.
  CHECK(eqd::test::eventually(5s, [&] { return measured_buffer_W(metrics_port) > 1800.0; }));
  CHECK(eqd.log().find("SunSpec device eqd-sim storage") != std::string::npos);

  eqd.signal(SIGTERM);
  CHECK(eqd.wait(15s) == 0);
  CHECK(storage.read(40122 + m124::StorCtl_Mod, 1)[0] == 0);
  CHECK(eqd::test::eventually(3s, [&] { return std::fabs(eqsim_storage_W(storage)) < 1.0; }));
  sim.signal(SIGTERM);
  CHECK(sim.wait(5s) == 0);
  fs::remove_all(dir);
}

// Issue #19, end to end: the storage's own limit (eqsim --sunspec-storage-max-charge-W 1000: 124 WChaMax
// 1000 W) is below the 5000 W configured for it. eqd reads it, asks the storage for no more (its link
// never has to clamp: no notice in the journal), and the second buffer, cab2/1, carries the rest of the
// 2.3 kW the tests feed in: the SunSpec meter (rig + storage) still settles near 0 W. eqctl shows the
// device limit and the limits in force.
TEST_CASE("eqd allocates within a SunSpec storage's own limit and another buffer carries the rest", "[device_limits]") {
  const fs::path dir = eqd::test::make_temp_dir("eqd-sunspec-limit-e2e");
  Process sim({EQSIM_BIN, "--rig", EQD_SOURCE_DIR "/tests/integration/rigs/e2e.yaml", "--base-port", "0",
               "--sunspec-storage", "1", "--sunspec-storage-max-charge-W", "1000", "--sunspec-meter", "-q"},
              (dir / "eqsim.log").string());
  INFO("eqsim log:\n" << sim.log());
  REQUIRE(eqd::test::eventually(10s, [&] { return port_of(sim.log(), "SunSpec meter") != 0; }));
  const int cab1 = port_of(sim.log(), "controller cab1");
  const int cab2 = port_of(sim.log(), "controller cab2");
  const int storage_port = port_of(sim.log(), "SunSpec storage");
  REQUIRE(cab1 != 0);
  REQUIRE(cab2 != 0);
  REQUIRE(storage_port != 0);
  const std::string socket = (dir / "eqd.sock").string();
  {
    std::ofstream cfg(dir / "eqd.yaml");
    cfg << "state_dir: " << (dir / "state").string() << "\n"
        << "api: {socket: " << socket << "}\n"
        << "buses:\n  - {name: main, tau_s: 10}\n"
        << "controllers:\n"
        << "  - {name: cab1, host: 127.0.0.1, port: " << cab1 << ", channels: 4, efficiency: 0.95}\n"
        << "  - {name: cab2, host: 127.0.0.1, port: " << cab2 << ", channels: 2}\n"
        << "  - {name: storage1, transport: sunspec, host: 127.0.0.1, port: " << storage_port << ", poll_hz: 5}\n"
        << "equalization:\n"
        << "  - {channel: storage1/1, max_charge_W: 5000, max_discharge_W: 5000, v_min_V: 360, v_max_V: 440}\n"
        << "  - {channel: cab2/1, max_charge_W: 3000, max_discharge_W: 3000, v_min_V: 48, v_max_V: 56,"
           " efficiency: 0.97}\n";
  }
  fs::create_directories(dir / "state");
  Process eqd({EQD_BIN, "-c", (dir / "eqd.yaml").string()}, (dir / "eqd.log").string());
  INFO("eqd log:\n" << eqd.log());
  Client storage(storage_port);
  Client meter(port_of(sim.log(), "SunSpec meter"));
  auto eqctl = [&](const std::vector<std::string>& args, const char* file) {
    std::vector<std::string> argv{EQCTL_BIN, "--socket", socket};
    argv.insert(argv.end(), args.begin(), args.end());
    {
      Process ctl(argv, (dir / file).string());
      REQUIRE(ctl.wait(10s) == 0);
    }
    std::ifstream in(dir / file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };

  // The storage charging within its own 1 kW (SunSpec W < 0: charging; shared by headroom it takes
  // about 0.65 kW, asked 1.5 kW if its limit were ignored), the meter near 0 W: cab2/1 took the rest.
  double st = 0, m = 0;
  const bool converged = eqd::test::eventually(60s, [&] {
    st = eqsim_storage_W(storage);
    m = eqsim_meter_W(meter);
    return st < -300.0 && st >= -1000.5 && std::fabs(m) < 150.0;
  });
  INFO("storage " << st << " W, meter " << m << " W");
  CHECK(converged);
  const auto j = nlohmann::json::parse(eqctl({"--json", "channels", "--role", "eq"}, "channels.json"), nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  INFO("channels: " << j.dump());
  nlohmann::json st1, cab21;
  for (const auto& c : j["channels"]) {
    if (c["channel"] == "storage1/1") st1 = c;
    if (c["channel"] == "cab2/1") cab21 = c;
  }
  REQUIRE(st1.is_object());
  REQUIRE(cab21.is_object());
  CHECK(st1["device_limits"]["max_charge_W"] == 1000.0);
  CHECK(st1["device_limits"]["max_discharge_W"] == 1000.0);  // WChaMax bounds both directions
  CHECK(st1["effective_limits"]["max_charge_W"] == 1000.0);
  CHECK(st1["limits"]["max_charge_W"] == 5000.0);
  CHECK(st1["setpoint_W"].get<double>() <= 1000.0 + 1e-6);
  CHECK(st1["setpoint_W"].get<double>() > 300.0);
  CHECK(cab21["device_limits"].is_null());                                     // a Modbus channel reports none
  CHECK(cab21["setpoint_W"].get<double>() > st1["setpoint_W"].get<double>());  // the rest: about 1.6 kW
  CHECK(eqd.log().find("limited to the device's") == std::string::npos);       // the link never had to clamp
  const std::string text = eqctl({"channels", "--role", "eq"}, "channels.txt");
  INFO(text);
  CHECK(text.find("storage1/1: device limit: charge 1.00 kW (device 1.00 kW, configured 5.00 kW), discharge 1.00 kW "
                  "(device 1.00 kW, configured 5.00 kW)\n") != std::string::npos);
  CHECK(text.find("cab2/1: device limit") == std::string::npos);

  eqd.signal(SIGTERM);
  CHECK(eqd.wait(15s) == 0);
  CHECK(storage.read(40122 + m124::StorCtl_Mod, 1)[0] == 0);
  sim.signal(SIGTERM);
  CHECK(sim.wait(5s) == 0);
  fs::remove_all(dir);
}
