// End to end (issue #19): the real eqd with a SunSpec grid meter on its bus (eqsim --sunspec-meter, whose
// reading is the rig's true grid power) beside the computed net. With nothing unaccounted for, the
// check agrees; with a load nobody configured (--sunspec-meter-offset-W) it raises one disagreement
// (journal warning, metrics), while the computed net stays the control input (the rig converges all
// the same). The second case also reads a model 201 meter of the export-positive sign. With the meter
// trim on (meter.trim) the same unconfigured load is covered by the buffers: the measured grid power
// goes to the target (0 W), the computed net to minus the load, and the disagreement is still reported.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <regex>

#include "../fakes/process.hpp"
#include "../fakes/e2e_net.hpp"

using eqd::test::free_port;
using eqd::test::port_of;
using eqd::test::scrape;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using eqd::test::Process;

namespace {

// One series of bus main from a scrape; NaN when absent.
double series(const std::string& text, const std::string& name) {
  std::smatch m;
  const std::regex re("\n" + name + "\\{bus=\"main\"\\} ([-0-9.e+]+)");
  return std::regex_search(text, m, re) ? std::stod(m[1]) : std::nan("");
}

struct Run {
  fs::path dir;
  std::unique_ptr<Process> sim, eqd;
  std::uint16_t metrics_port = 0;
  std::string metrics() const { return scrape(metrics_port); }
};

// eqsim's e2e rig (4 tests discharging about 2.4 kW into the bus, 2 buffers on cab2) with a SunSpec
// meter, and eqd with that meter on bus main.
std::unique_ptr<Run> start(const std::vector<std::string>& sim_extra, const std::string& meter_extra,
                           int meter_port = 0) {
  auto r = std::make_unique<Run>();
  r->dir = eqd::test::make_temp_dir("eqd-meter-e2e");
  std::vector<std::string> sim_args{EQSIM_BIN,     "--rig", EQD_SOURCE_DIR "/tests/integration/rigs/e2e.yaml",
                                    "--base-port", "0",     "--sunspec-meter",
                                    "-q"};
  sim_args.insert(sim_args.end(), sim_extra.begin(), sim_extra.end());
  r->sim = std::make_unique<Process>(sim_args, (r->dir / "eqsim.log").string());
  if (!eqd::test::eventually(10s, [&] { return port_of(r->sim->log(), "SunSpec meter") != 0; })) return r;
  const std::string log = r->sim->log();
  r->metrics_port = free_port();
  {
    std::ofstream cfg(r->dir / "eqd.yaml");
    cfg << "state_dir: " << r->dir.string() << "\n"
        << "api: {socket: " << (r->dir / "eqd.sock").string() << "}\n"
        << "metrics: {enabled: true, listen: 127.0.0.1:" << r->metrics_port << "}\n"
        << "buses:\n  - name: main\n    tau_s: 10\n"
        << "    meter: {transport: sunspec, host: 127.0.0.1, port: "
        << (meter_port != 0 ? meter_port : port_of(log, "SunSpec meter"))
        << ", poll_hz: 5, tolerance_W: 400, persistence_s: 3" << meter_extra << "}\n"
        << "controllers:\n"
        << "  - {name: cab1, host: 127.0.0.1, port: " << port_of(log, "controller cab1")
        << ", channels: 4, efficiency: 0.95}\n"
        << "  - {name: cab2, host: 127.0.0.1, port: " << port_of(log, "controller cab2")
        << ", channels: 2, efficiency: 0.97}\n"
        << "equalization:\n"
        << "  - {channel: cab2/1, max_charge_W: 3000, max_discharge_W: 3000, v_min_V: 48, v_max_V: 56}\n"
        << "  - {channel: cab2/2, max_charge_W: 3000, max_discharge_W: 3000, v_min_V: 48, v_max_V: 56}\n";
  }
  r->eqd = std::make_unique<Process>(std::vector<std::string>{EQD_BIN, "-c", (r->dir / "eqd.yaml").string()},
                                     (r->dir / "eqd.log").string());
  return r;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

void stop(Run& r) {
  r.eqd->signal(SIGTERM);
  CHECK(r.eqd->wait(15s) == 0);
  r.sim->signal(SIGTERM);
  CHECK(r.sim->wait(5s) == 0);
  fs::remove_all(r.dir);
}

}  // namespace

TEST_CASE("eqd's grid meter agrees with the computed net when nothing is unaccounted for", "[e2e][meter]") {
  auto r = start({}, "");
  INFO("eqsim log:\n" << r->sim->log());
  REQUIRE(r->eqd);
  INFO("eqd log:\n" << r->eqd->log());
  std::string m;
  // Converged: the tests feed about 2.4 kW into the bus, the buffers take it, the computed net and the
  // meter near 0 W.
  const bool converged = eqd::test::eventually(40s, [&] {
    m = r->metrics();
    return series(m, "eqd_bus_free_power_watts") < -1500.0 &&
           series(m, "eqd_bus_equalization_measured_power_watts") > 1500.0 &&
           std::fabs(series(m, "eqd_bus_net_power_watts")) < 150.0 && series(m, "eqd_bus_meter_up") == 1.0 &&
           std::fabs(series(m, "eqd_bus_meter_power_watts")) < 150.0;
  });
  INFO("metrics:\n" << m);
  REQUIRE(converged);
  // Then the check keeps agreeing for longer than its persistence time.
  std::this_thread::sleep_for(4s);
  m = r->metrics();
  CHECK(std::fabs(series(m, "eqd_bus_meter_difference_watts")) < 400.0);
  CHECK(series(m, "eqd_bus_meter_disagreement") == 0.0);
  CHECK(series(m, "eqd_bus_meter_disagreements_total") == 0.0);
  CHECK(series(m, "eqd_bus_meter_age_seconds") < 2.0);
  CHECK(r->eqd->log().find("SunSpec meter model 203") != std::string::npos);
  CHECK(r->eqd->log().find("grid meter reads") == std::string::npos);
  stop(*r);
}

TEST_CASE("eqd's grid meter disagrees once with a load nobody configured, control goes on", "[e2e][meter]") {
  // 1.5 kW of import the channels do not see; a single-phase meter that counts export as positive.
  auto r =
      start({"--sunspec-meter-offset-W", "1500", "--sunspec-meter-model", "201", "--sunspec-meter-export-positive"},
            ", sign: export_positive");
  INFO("eqsim log:\n" << r->sim->log());
  REQUIRE(r->eqd);
  INFO("eqd log:\n" << r->eqd->log());
  std::string m;
  const bool raised = eqd::test::eventually(40s, [&] {
    m = r->metrics();
    return series(m, "eqd_bus_free_power_watts") < -1500.0 &&
           series(m, "eqd_bus_equalization_measured_power_watts") > 1500.0 &&
           std::fabs(series(m, "eqd_bus_net_power_watts")) < 150.0 && series(m, "eqd_bus_meter_disagreement") == 1.0;
  });
  INFO("metrics:\n" << m);
  REQUIRE(raised);
  // The computed net stays the control input: eqd still balances its channels to 0 W, and the meter
  // shows the unconfigured 1.5 kW of import (in eqd's sign despite the device's).
  CHECK(series(m, "eqd_bus_meter_power_watts") == Approx(1500.0).margin(250.0));
  CHECK(series(m, "eqd_bus_meter_difference_watts") == Approx(1500.0).margin(250.0));
  CHECK(std::isnan(series(m, "eqd_bus_meter_trim_watts")));  // trim off: no series, no bias
  std::this_thread::sleep_for(3s);
  m = r->metrics();
  CHECK(series(m, "eqd_bus_meter_disagreements_total") == 1.0);
  CHECK(count(r->eqd->log(), "bus main: grid meter reads") == 1);  // one warning per episode
  CHECK(r->eqd->log().find("SunSpec meter model 201") != std::string::npos);
  stop(*r);
}

TEST_CASE("eqd's meter trim makes the buffers cover a load nobody configured", "[e2e][meter]") {
  // The same 1.5 kW of import the channels do not see, an export-positive meter; trim with its shortest
  // time constant (10 s, the bus's tau_s too) so that the test settles within a minute.
  auto r =
      start({"--sunspec-meter-offset-W", "1500", "--sunspec-meter-model", "201", "--sunspec-meter-export-positive"},
            ", sign: export_positive, trim: true, trim_tau_s: 10");
  INFO("eqsim log:\n" << r->sim->log());
  REQUIRE(r->eqd);
  INFO("eqd log:\n" << r->eqd->log());
  std::string m;
  // Without trim the meter stays at ~+1.5 kW (the case above); with it the buffers charge 1.5 kW less,
  // so that the *measured* grid power settles near the target and the trim near the load.
  const bool settled = eqd::test::eventually(90s, [&] {
    m = r->metrics();
    return series(m, "eqd_bus_meter_up") == 1.0 && std::fabs(series(m, "eqd_bus_meter_power_watts")) < 150.0 &&
           series(m, "eqd_bus_meter_trim_watts") > 1300.0;
  });
  INFO("metrics:\n" << m);
  REQUIRE(settled);
  // Stays there (the trim is stable: the buffers move measured and computed alike).
  std::this_thread::sleep_for(5s);
  m = r->metrics();
  UNSCOPED_INFO("settled: meter " << series(m, "eqd_bus_meter_power_watts") << " W, trim "
                                  << series(m, "eqd_bus_meter_trim_watts") << " W, net "
                                  << series(m, "eqd_bus_net_power_watts") << " W, buffers "
                                  << series(m, "eqd_bus_equalization_measured_power_watts") << " W");
  CHECK(std::fabs(series(m, "eqd_bus_meter_power_watts")) < 200.0);
  CHECK(series(m, "eqd_bus_meter_trim_watts") == Approx(1500.0).margin(200.0));
  // The channels' own view: free ~-2.4 kW, buffers ~+0.9 kW, computed net ~-1.5 kW; the check still
  // reports the load nobody configured.
  CHECK(series(m, "eqd_bus_free_power_watts") < -1500.0);
  CHECK(series(m, "eqd_bus_equalization_measured_power_watts") == Approx(900.0).margin(300.0));
  CHECK(series(m, "eqd_bus_net_power_watts") == Approx(-1500.0).margin(250.0));
  CHECK(series(m, "eqd_bus_meter_difference_watts") == Approx(1500.0).margin(250.0));
  CHECK(series(m, "eqd_bus_meter_disagreement") == 1.0);
  CHECK(count(r->eqd->log(), "bus main: grid meter reads") == 1);
  std::fprintf(stderr, "meter trim e2e: meter %.0f W, trim %.0f W, net %.0f W, buffers %.0f W\n",
               series(m, "eqd_bus_meter_power_watts"), series(m, "eqd_bus_meter_trim_watts"),
               series(m, "eqd_bus_net_power_watts"), series(m, "eqd_bus_equalization_measured_power_watts"));
  stop(*r);
}

TEST_CASE("eqd with its grid meter offline says so and balances the bus all the same", "[e2e][meter]") {
  auto r = start({}, "", free_port());  // nothing listens there
  INFO("eqsim log:\n" << r->sim->log());
  REQUIRE(r->eqd);
  INFO("eqd log:\n" << r->eqd->log());
  std::string m;
  const bool converged = eqd::test::eventually(40s, [&] {
    m = r->metrics();
    return series(m, "eqd_bus_free_power_watts") < -1500.0 &&
           series(m, "eqd_bus_equalization_measured_power_watts") > 1500.0 &&
           std::fabs(series(m, "eqd_bus_net_power_watts")) < 150.0;
  });
  INFO("metrics:\n" << m);
  REQUIRE(converged);
  CHECK(series(m, "eqd_bus_meter_up") == 0.0);
  CHECK(std::isnan(series(m, "eqd_bus_meter_power_watts")));
  CHECK(series(m, "eqd_bus_meter_errors_total") >= 1.0);
  CHECK(series(m, "eqd_bus_meter_disagreement") == 0.0);
  // The journal has the error once, not at every reconnect.
  CHECK(count(r->eqd->log(), "meter of bus main connect 127.0.0.1:") == 1);
  stop(*r);
}
