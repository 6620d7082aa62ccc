// eqsim --sunspec-storage / --sunspec-meter end to end: the real eqsim binary serves a SunSpec storage
// device and a SunSpec grid meter beside the rig; a plain libmodbus client commands the storage through
// model 124 and sees the meter (model 203) move by the storage's power on top of the rig's net power
// (eqsim's own report). Registers decoded from the specification's offsets (sunspec_test_util.hpp).

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <regex>

#include "../fakes/process.hpp"
#include "../unit/sunspec_test_util.hpp"
#include "../fakes/e2e_net.hpp"

using eqd::test::port_of;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace eqd::test::sunspec;
using eqd::test::Process;

namespace {

// The port eqsim printed for the line containing `what` ("SunSpec storage", "SunSpec meter"), or 0.

// Bus 0's net power from eqsim's report file (+ = drawn from the grid), NaN before the first report.
double net_W(const fs::path& report) {
  std::ifstream in(report);
  const auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("buses")) return std::nan("");
  return j["buses"][0]["net_W"].get<double>();
}

}  // namespace

TEST_CASE("eqsim serves SunSpec storage and a grid meter that sees the rig plus the storage") {
  const fs::path dir = eqd::test::make_temp_dir("eqsim-sunspec");
  const fs::path report = dir / "report.json";
  Process sim({EQSIM_BIN, "--rig", EQD_SOURCE_DIR "/tests/integration/rigs/e2e.yaml", "--base-port", "0",
               "--sunspec-storage", "1", "--sunspec-meter", "--report-file", report.string(), "-q"},
              (dir / "eqsim.log").string());
  INFO("eqsim log:\n" << sim.log());
  REQUIRE(eqd::test::eventually(
      10s, [&] { return port_of(sim.log(), "SunSpec meter") != 0 && !std::isnan(net_W(report)); }));
  Client storage(port_of(sim.log(), "SunSpec storage"));
  Client meter(port_of(sim.log(), "SunSpec meter"));
  CHECK(storage.read(40000, 2) == std::vector<std::uint16_t>{0x5375, 0x6E53});
  CHECK(meter.read(40070, 2) == std::vector<std::uint16_t>{203, m203::L});

  // Idle storage: the meter shows the rig's net power (the e2e rig's tests discharge about 2.4 kW once
  // their converters have started).
  CHECK(eventually([&] { return eqsim_meter_W(meter) < -2000.0; }, 5s));
  CHECK(eventually([&] { return std::fabs(eqsim_meter_W(meter) - net_W(report)) < 60.0; }, 3s));

  // Charge the storage at 50 % of 5 kW: its 103 W reads -2500 and the meter 2500 W more import.
  const int s = 40122;
  REQUIRE(storage.write(s + m124::OutWRte, {static_cast<std::uint16_t>(-5000), 5000}) == 0);
  REQUIRE(storage.write1(s + m124::StorCtl_Mod, 3) == 0);
  CHECK(eventually([&] { return s16(storage.read(40070 + m103::W, 1)[0]) == -2500; }, 2s));
  CHECK(eventually([&] { return std::fabs(eqsim_meter_W(meter) - (net_W(report) + 2500.0)) < 60.0; }, 3s));

  sim.signal(SIGTERM);
  CHECK(sim.wait(5s) == 0);
  fs::remove_all(dir);
}
