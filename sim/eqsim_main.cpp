// eqsim: the simulated rig. Runs the plant model in real time, serves every simulated controller as a
// Modbus TCP server on 127.0.0.1 (eqd default profile, heartbeat watchdog and leases), and plays the
// grid meter: true net power per bus with and without equalization.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <pthread.h>
#include <sys/ioctl.h>
#include <thread>

#include "eqd/discovery/mdns.hpp"
#include "eqd/discovery/txt.hpp"
#include "eqd/sim/errors.hpp"
#include "eqd/sim/rig.hpp"
#include "bts_server.hpp"
#include "can_server.hpp"
#include "modbus_server.hpp"
#include "rig_backend.hpp"
#include "sunspec_device.hpp"

namespace {

using eqd::sim::Rig;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

std::atomic<int> g_signal{0};
extern "C" void on_signal(int sig) { g_signal.store(sig); }

using eqd::sim::Plant;
using eqd::sim::RigBackend;

double kWh(double J) { return J / 3.6e6; }

// The rig's controllers as devices of the BTS-like server (--bts): controller c is device c+1, its
// channels in units of 8; eqd's states as a BTS names them (running: working, equalizing: working in
// the vendor's own step; idle and offline: stop; fault: protect), the program position served as is.
class RigBtsSource final : public eqd::sim::bts::ChannelSource {
 public:
  RigBtsSource(Plant& plant, std::size_t controllers) {
    for (std::size_t c = 0; c < controllers; ++c) backends_.push_back(std::make_unique<RigBackend>(plant, c, false));
  }
  eqd::sim::bts::ChannelStatus status(std::size_t device, std::size_t channel) override {
    eqd::sim::bts::ChannelStatus st;
    if (device >= backends_.size() || channel >= backends_[device]->channel_count()) {
      st.workstatus = "false";
      return st;
    }
    const eqd::sim::ServedReading r = backends_[device]->read(channel);
    st.voltage_V = r.voltage_V;
    st.current_A = r.current_A;
    st.with_power = true;
    st.power_W = r.power_W;  // the plant's own battery-side power
    switch (static_cast<eqd::core::ChannelState>(r.state_code)) {
      case eqd::core::ChannelState::running:
      case eqd::core::ChannelState::equalizing:
        st.workstatus = "working";
        break;
      case eqd::core::ChannelState::paused:
        st.workstatus = "pause";
        break;
      case eqd::core::ChannelState::fault:
        st.workstatus = "protect";
        break;
      default:
        st.workstatus = "stop";
    }
    if (r.step_index != 0xFFFF) st.step_id = r.step_index;
    if (r.cycle_index != 0xFFFF'FFFFu) st.cycle_id = static_cast<long>(r.cycle_index);
    st.step_type = r.current_A > 0.0 ? "cc" : r.current_A < 0.0 ? "dc" : "rest";
    return st;
  }

 private:
  std::vector<std::unique_ptr<RigBackend>> backends_;
};

nlohmann::json report_json(const Plant& plant) {
  const Rig& rig = plant.rig;
  nlohmann::json j;
  j["time_s"] = rig.now_s();
  j["buses"] = nlohmann::json::array();
  for (std::size_t b = 0; b < rig.bus_count(); ++b) {
    const auto& m = rig.bus_meter(b);
    const double with = m.grid_import_J + m.grid_export_J;
    const double without = m.free_import_J + m.free_export_J;
    j["buses"].push_back({{"name", rig.spec().buses[b].name},
                          {"net_W", m.net_W},
                          {"free_W", m.free_W},
                          {"eq_W", m.eq_W},
                          {"grid_import_J", m.grid_import_J},
                          {"grid_export_J", m.grid_export_J},
                          {"free_import_J", m.free_import_J},
                          {"free_export_J", m.free_export_J},
                          {"exchanged_ratio", without > 0 ? with / without : 0.0}});
  }
  std::size_t equalizing = 0, trips = 0;
  for (std::size_t i = 0; i < rig.channel_count(); ++i) equalizing += rig.truth(i).equalizing ? 1 : 0;
  for (std::size_t c = 0; c < rig.controller_count(); ++c) trips += rig.controller(c).watchdog_trips();
  j["channels_equalizing"] = equalizing;
  // Heartbeat-watchdog trips of the plant's controllers plus channels the Modbus servers released for a
  // lost heartbeat; lease expiries separately.
  j["watchdog_trips"] = trips + plant.heartbeat_releases.load();
  j["lease_releases"] = plant.lease_releases.load();
  return j;
}

// ": grid exchange 24 % of what it would have been (76 % saved)", or nothing without a free exchange.
std::string ratio_text(double with, double without) {
  if (!(without > 0.0)) return "";
  const int pct = static_cast<int>(100.0 * with / without + 0.5);
  return ": grid exchange " + std::to_string(pct) + " % of what it would have been (" + std::to_string(100 - pct) +
         " % saved)";
}

void print_report(const Rig& rig, const char* title) {
  std::printf("%s (t = %.0f s)\n", title, rig.now_s());
  for (std::size_t b = 0; b < rig.bus_count(); ++b) {
    const auto& m = rig.bus_meter(b);
    const double with = m.grid_import_J + m.grid_export_J;
    const double without = m.free_import_J + m.free_export_J;
    std::printf(
        "  bus %-8s grid exchange with equalization %.3f kWh (import %.3f, export %.3f); without %.3f kWh "
        "(import %.3f, export %.3f)%s\n",
        rig.spec().buses[b].name.c_str(), kWh(with), kWh(m.grid_import_J), kWh(m.grid_export_J), kWh(without),
        kWh(m.free_import_J), kWh(m.free_export_J), ratio_text(with, without).c_str());
  }
  std::fflush(stdout);
}

// The live view line: per bus, what the grid would see without equalization and what it sees.
void print_status(const Rig& rig, bool tty) {
  std::string line;
  char buf[200];
  std::snprintf(buf, sizeof buf, "t=%6.0fs", rig.now_s());
  line += buf;
  for (std::size_t b = 0; b < rig.bus_count(); ++b) {
    const auto& m = rig.bus_meter(b);
    std::snprintf(buf, sizeof buf, " | %s: without eq %+8.2f kW  with eq %+8.2f kW  (buffers %+7.2f kW)",
                  rig.spec().buses[b].name.c_str(), m.free_W / 1000.0, m.net_W / 1000.0, m.eq_W / 1000.0);
    line += buf;
  }
  if (tty) {
    // Redrawn in place with CR: a line wider than the terminal would wrap, and each redraw would then
    // start a new row (the status scrolls instead of staying on one line). Cut it to the width.
    winsize ws{};
    if (ioctl(fileno(stdout), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && line.size() >= ws.ws_col) {
      std::size_t keep = ws.ws_col - 1u;
      while (keep > 0 && (static_cast<unsigned char>(line[keep]) & 0xC0u) == 0x80u) --keep;  // whole UTF-8 characters
      line.resize(keep);
    }
    std::printf("\r%s\033[K", line.c_str());
  } else {
    std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
}

void write_atomic(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

// Where eqsim serves its controllers on CAN (--can): controller c is node c + 1 on `interface`.
struct CanServing {
  std::string interface;
  std::string profile;
  double status_hz = 10.0;
};

// An eqd configuration that matches the served rig, so that the demo and tests need no hand-written one.
std::string eqd_config_for(const Rig& rig, const std::vector<std::uint16_t>& ports, double tau_s,
                           const CanServing* can = nullptr) {
  std::string y = "# Generated by eqsim for rig '" + rig.spec().name + "'. Keys: see config/eqd.yaml.\n";
  y += "buses:\n";
  for (const auto& b : rig.spec().buses) {
    y += "  - name: " + b.name + "\n";
    // eqd must look as far ahead as the controllers announce (docs/sim.md "Announced schedules").
    char fh[64];
    std::snprintf(fh, sizeof fh, "    forecast_horizon_s: %g\n", b.params.forecast_horizon_s);
    y += fh;
    if (tau_s > 0) {
      y += "    tau_s: " + std::to_string(tau_s) + "\n";
      if (tau_s < 10.0 || tau_s > 20.0) y += "    allow_any_tau: true\n";
    }
  }
  y += "controllers:\n";
  for (std::size_t c = 0; c < rig.controller_count(); ++c) {
    const auto& ctl = rig.controller(c);
    if (can != nullptr) {
      char hz[32];
      std::snprintf(hz, sizeof hz, "%g", can->status_hz);
      y += "  - name: " + ctl.params().name + "\n    transport: can\n    interface: " + can->interface +
           "\n    node_id: " + std::to_string(c + 1) + "\n    can_profile: " + can->profile + "\n    poll_hz: " + hz +
           "\n    channels: " + std::to_string(ctl.channel_count()) + "\n";
    } else {
      y += "  - name: " + ctl.params().name +
           "\n    transport: tcp\n    host: 127.0.0.1\n    port: " + std::to_string(ports[c]) +
           "\n    unit_id: 1\n    channels: " + std::to_string(ctl.channel_count()) + "\n";
    }
    // Test channels' converter efficiency (their mean: eqd takes one figure per controller).
    double eff_sum = 0.0;
    std::size_t eff_n = 0;
    for (std::size_t k = 0; k < ctl.channel_count(); ++k)
      if (!ctl.spec(k).buffer) {
        eff_sum += ctl.spec(k).converter.efficiency;
        ++eff_n;
      }
    if (eff_n > 0) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "    efficiency: %.4g\n", eff_sum / static_cast<double>(eff_n));
      y += buf;
    }
    // Channels live on the bus of their spec; default the controller to its first channel's bus.
    const std::size_t bus0 = ctl.channel_count() ? ctl.spec(0).bus : 0;
    y += "    bus: " + rig.spec().buses[bus0].name + "\n";
    std::string overrides;
    for (std::size_t k = 0; k < ctl.channel_count(); ++k)
      if (ctl.spec(k).bus != bus0)
        overrides += "      " + std::to_string(k + 1) + ": " + rig.spec().buses[ctl.spec(k).bus].name + "\n";
    if (!overrides.empty()) y += "    channel_bus:\n" + overrides;
  }
  std::string eq;
  for (std::size_t i = 0; i < rig.channel_count(); ++i) {
    const auto& spec = rig.channel_spec(i);
    if (!spec.buffer) continue;
    const auto& l = spec.limits;
    char buf[400];
    std::snprintf(buf, sizeof buf,
                  "  - channel: %s\n    max_charge_W: %g\n    max_discharge_W: %g\n    max_charge_A: %g\n"
                  "    max_discharge_A: %g\n    v_min_V: %g\n    v_max_V: %g\n    hysteresis_V: %g\n"
                  "    efficiency: %g\n",
                  rig.channel_ref(i).name.c_str(), l.max_charge_W, l.max_discharge_W, l.max_charge_A, l.max_discharge_A,
                  l.v_min_V, l.v_max_V, l.hysteresis_V, l.efficiency);
    eq += buf;
  }
  y += eq.empty() ? "equalization: []\n" : "equalization:\n" + eq;
  return y;
}

int run(int argc, char** argv) {
  CLI::App app{"eqsim: a simulated cycler rig served over Modbus TCP on 127.0.0.1"};
  std::string rig_path = "config/rigs/demo.yaml";
  int base_port = 15020;
  double speed = 1.0;
  double duration_s = 0.0;
  double status_s = 1.0;
  std::string report_file;
  std::string write_config;
  double config_tau_s = 0.0;
  bool quiet = false;
  bool publish = false;
  std::string listen_host = "127.0.0.1";
  app.add_option("-r,--rig", rig_path, "rig description (YAML)")->capture_default_str();
  app.add_option("--base-port", base_port, "controller c listens on 127.0.0.1:BASE+c (0: any free ports)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65000));
  app.add_option("--speed", speed, "simulated seconds per real second")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 100.0));
  app.add_option("--duration", duration_s, "stop after this many simulated seconds (0: run until SIGTERM/SIGINT)");
  app.add_option("--status-interval", status_s, "live status line period, s (0: none)")->capture_default_str();
  app.add_option("--report-file", report_file, "write the grid meter as JSON to FILE every second (atomically)");
  app.add_option("--write-eqd-config", write_config, "write an eqd configuration matching this rig to FILE");
  app.add_option("--eqd-tau", config_tau_s, "tau_s to put in the written eqd configuration (0: eqd's default)");
  app.add_flag("-q,--quiet", quiet, "no status line");
  CanServing can_serving;
  bool can_fd = false;
  app.add_option("--can", can_serving.interface,
                 "also serve every controller on this CAN interface (controller c = node id c+1, eqd CAN profile); "
                 "--write-eqd-config then writes transport: can controllers");
  app.add_flag("--can-fd", can_fd, "with --can: use the CAN FD profile (eqd-default-fd; the interface needs MTU 72)");
  app.add_option("--can-hz", can_serving.status_hz, "with --can: status frames per channel per second")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 100.0));
  app.add_option("--listen", listen_host, "IPv4 address the Modbus servers listen on")->capture_default_str();
  double forecast_horizon_s = -1.0;
  app.add_option("--forecast-horizon-s", forecast_horizon_s,
                 "every controller announces each running channel's power this far ahead, s (overrides the "
                 "rig's controllers[].forecast_horizon_s; 0 = announce nothing; default: as the rig says)")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_flag("--publish", publish,
               "announce every controller through avahi-daemon as _eqd-ctrl._tcp (docs/discovery.md), so that eqd "
               "finds them without a controller list");
  int sunspec_storage = 0;
  bool sunspec_meter = false;
  app.add_option("--sunspec-storage", sunspec_storage,
                 "also serve N SunSpec storage devices (models 1, 103, 124, 802; 10 kWh, 5 kW) on the ports after the "
                 "controllers' (docs/devices.md); not part of the plant: only --sunspec-meter sees their power")
      ->check(CLI::Range(0, 16));
  double sunspec_storage_max_charge_W = 5000.0;
  app.add_option("--sunspec-storage-max-charge-W", sunspec_storage_max_charge_W,
                 "124 WChaMax (and 802 WChaRteMax) of every --sunspec-storage device, W: its own power limit, which "
                 "bounds charging and discharging (default 5000)")
      ->check(CLI::Range(1.0, 30000.0));
  app.add_flag("--sunspec-meter", sunspec_meter,
               "also serve a SunSpec grid meter (models 1, 203) showing the first bus's net power plus the SunSpec "
               "storage devices' power (W > 0 = import)");
  int sunspec_meter_model = 203;
  double sunspec_meter_offset_W = 0.0;
  bool sunspec_meter_export_positive = false;
  app.add_option("--sunspec-meter-model", sunspec_meter_model,
                 "the meter model of --sunspec-meter: 201 (single phase), 203 (wye) or 204 (delta); default 203")
      ->check(CLI::IsMember({201, 203, 204}));
  app.add_option("--sunspec-meter-offset-W", sunspec_meter_offset_W,
                 "a load nobody configured: the SunSpec meter reads this much more import than the rig's net power "
                 "(to make eqd's meter check disagree)")
      ->check(CLI::Range(-100000.0, 100000.0));
  app.add_flag("--sunspec-meter-export-positive", sunspec_meter_export_positive,
               "the SunSpec meter reports export as positive W (a device of the other sign convention)");
  bool bts = false;
  app.add_flag("--bts", bts,
               "also serve every controller as a device of one Neware-BTS-like server (TCP/XML API, read only: device "
               "c+1, type 27, 8 channels per unit) on the port after the others (docs/devices.md)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  std::unique_ptr<Plant> plant;
  try {
    eqd::sim::RigSpec spec = eqd::sim::load_rig_spec(rig_path);
    if (forecast_horizon_s >= 0.0) {
      for (eqd::sim::ControllerSpec& c : spec.controllers) c.params.forecast_horizon_s = forecast_horizon_s;
      // The buses' (eqd's) horizon follows, so that --write-eqd-config matches what is announced.
      if (forecast_horizon_s >= 1.0 && forecast_horizon_s <= 120.0)
        for (eqd::sim::BusSpec& b : spec.buses) b.params.forecast_horizon_s = forecast_horizon_s;
      else if (forecast_horizon_s > 0.0)
        std::fprintf(stderr,
                     "eqsim: --forecast-horizon-s %g: eqd's forecast_horizon_s takes 1..120 s; the buses keep "
                     "theirs\n",
                     forecast_horizon_s);
    }
    plant = std::make_unique<Plant>(Rig(spec));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqsim: %s\n", e.what());
    return kExitUsage;
  }
  Rig& rig = plant->rig;

  std::vector<eqd::sim::ServedController> served;
  for (std::size_t c = 0; c < rig.controller_count(); ++c) {
    eqd::sim::ServedController sc;
    sc.name = rig.controller(c).params().name;
    sc.port = base_port == 0 ? 0 : static_cast<std::uint16_t>(base_port + static_cast<int>(c));
    sc.host = listen_host;
    sc.backend = std::make_shared<RigBackend>(*plant, c);
    sc.map = eqd::io::modbus::default_profile(static_cast<std::uint16_t>(rig.controller(c).channel_count()));
    // A controller that announces forecasts says so (capability bit 5) and serves the forecast_power block.
    sc.capabilities = eqd::sim::served_capabilities(rig.controller(c).params());
    const double hb = rig.controller(c).params().heartbeat_timeout_ms;
    sc.heartbeat_timeout_ms = static_cast<std::uint16_t>(std::min(hb, 65535.0));
    served.push_back(std::move(sc));
  }
  std::unique_ptr<eqd::sim::ModbusServer> server;
  try {
    server = std::make_unique<eqd::sim::ModbusServer>(std::move(served));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqsim: %s\n", e.what());
    return kExitFailure;
  }
  std::vector<std::uint16_t> ports;
  for (std::size_t c = 0; c < rig.controller_count(); ++c) {
    ports.push_back(server->port(c));
    std::printf("eqsim: controller %s (%zu channels) on %s:%u unit 1\n", rig.controller(c).params().name.c_str(),
                rig.controller(c).channel_count(), listen_host.c_str(), ports.back());
  }
  // SunSpec devices beside the rig, on the ports after the controllers' (docs/devices.md, "In eqsim").
  std::vector<std::unique_ptr<eqd::sim::sunspec::SunSpecDevice>> sunspec_storages;
  std::unique_ptr<eqd::sim::sunspec::SunSpecDevice> sunspec_grid_meter;
  try {
    const auto next_port = [&] {
      const std::size_t n = rig.controller_count() + sunspec_storages.size() + (sunspec_grid_meter ? 1 : 0);
      return base_port == 0 ? std::uint16_t{0} : static_cast<std::uint16_t>(base_port + static_cast<int>(n));
    };
    for (int i = 0; i < sunspec_storage; ++i) {
      eqd::sim::sunspec::DeviceConfig dc;
      dc.name = "sunspec-storage-" + std::to_string(i + 1);
      dc.kind = eqd::sim::sunspec::DeviceKind::storage;
      dc.host = listen_host;
      dc.port = next_port();
      dc.serial = "EQSIM-SS-" + std::to_string(i + 1);
      dc.storage.max_charge_W = sunspec_storage_max_charge_W;
      sunspec_storages.push_back(std::make_unique<eqd::sim::sunspec::SunSpecDevice>(dc));
      std::printf("eqsim: SunSpec storage %s on %s:%u unit 1 (base 40000)\n", dc.name.c_str(), listen_host.c_str(),
                  sunspec_storages.back()->port());
    }
    if (sunspec_meter) {
      eqd::sim::sunspec::DeviceConfig dc;
      dc.name = "sunspec-meter";
      dc.kind = eqd::sim::sunspec::DeviceKind::meter;
      dc.host = listen_host;
      dc.port = next_port();
      dc.serial = "EQSIM-SM-1";
      dc.scale_factors = {{"W_SF", 1}};  // up to 327 kW
      dc.meter.model = static_cast<std::uint16_t>(sunspec_meter_model);
      sunspec_grid_meter = std::make_unique<eqd::sim::sunspec::SunSpecDevice>(dc);
      std::printf("eqsim: SunSpec meter (model %d%s) of bus %s on %s:%u unit 1 (base 40000)\n", sunspec_meter_model,
                  sunspec_meter_export_positive ? ", export positive" : "", rig.spec().buses[0].name.c_str(),
                  listen_host.c_str(), sunspec_grid_meter->port());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqsim: %s\n", e.what());
    return kExitFailure;
  }
  std::unique_ptr<RigBtsSource> bts_source;
  std::unique_ptr<eqd::sim::bts::BtsServer> bts_server;
  if (bts) {
    bts_source = std::make_unique<RigBtsSource>(*plant, rig.controller_count());
    eqd::sim::bts::ServerConfig bc;
    bc.host = listen_host;
    const std::size_t n = rig.controller_count() + sunspec_storages.size() + (sunspec_grid_meter ? 1 : 0);
    bc.port = base_port == 0 ? std::uint16_t{0} : static_cast<std::uint16_t>(base_port + static_cast<int>(n));
    for (std::size_t c = 0; c < rig.controller_count(); ++c) {
      const auto channels = static_cast<int>(rig.controller(c).channel_count());
      bc.devices.push_back({27, static_cast<int>(c + 1), (channels + 7) / 8, 8});
    }
    try {
      bts_server = std::make_unique<eqd::sim::bts::BtsServer>(bc, *bts_source);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "eqsim: %s\n", e.what());
      return kExitFailure;
    }
    for (std::size_t c = 0; c < rig.controller_count(); ++c)
      std::printf("eqsim: BTS device %zu (controller %s) on %s:%u\n", c + 1, rig.controller(c).params().name.c_str(),
                  listen_host.c_str(), bts_server->port());
  }
  std::unique_ptr<eqd::sim::CanServer> can_server;
  if (!can_serving.interface.empty()) {
    can_serving.profile = can_fd ? eqd::io::can::kDefaultCanFdProfile : eqd::io::can::kDefaultCanProfile;
    std::vector<eqd::sim::CanServedController> on_can;
    for (std::size_t c = 0; c < rig.controller_count(); ++c) {
      eqd::sim::CanServedController cc;
      cc.name = rig.controller(c).params().name;
      cc.node_id = static_cast<std::uint32_t>(c + 1);
      cc.backend = std::make_shared<RigBackend>(*plant, c);
      cc.send_forecast = rig.controller(c).params().forecast_horizon_s > 0.0;
      cc.send_program = true;  // every simulated controller knows its channels' programs
      const auto n = static_cast<std::uint16_t>(rig.controller(c).channel_count());
      cc.map = can_fd ? eqd::io::can::default_can_fd_profile(n) : eqd::io::can::default_can_profile(n);
      cc.heartbeat_timeout_ms =
          static_cast<std::uint16_t>(std::min(rig.controller(c).params().heartbeat_timeout_ms, 65535.0));
      on_can.push_back(std::move(cc));
      std::printf("eqsim: controller %s on CAN %s node %zu (%s)\n", rig.controller(c).params().name.c_str(),
                  can_serving.interface.c_str(), c + 1, can_serving.profile.c_str());
    }
    try {
      can_server = eqd::sim::CanServer::on_interface(can_serving.interface, std::move(on_can), can_serving.status_hz);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "eqsim: --can: %s\n", e.what());
      return kExitFailure;
    }
  }
  if (!write_config.empty()) {
    try {
      write_atomic(write_config,
                   eqd_config_for(rig, ports, config_tau_s, can_serving.interface.empty() ? nullptr : &can_serving));
      std::printf("eqsim: wrote eqd configuration %s\n", write_config.c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "eqsim: %s\n", e.what());
      return kExitFailure;
    }
  }
  // Announced after the servers listen, so that whoever resolves a controller can connect at once.
  eqd::discovery::MdnsSession mdns;
  if (publish) {
    // The session re-announces by itself after avahi-daemon restarts; say so, once per change.
    std::string err = mdns.start({}, [](const eqd::discovery::MdnsStatus& st) {
      using Kind = eqd::discovery::MdnsStatus::Kind;
      std::fprintf(stderr, "eqsim: --publish: %s%s\n", st.text.c_str(),
                   st.kind == Kind::lost        ? "; announcing again once it is back"
                   : st.kind == Kind::connected ? ": announcing again"
                                                : "");
    });
    if (err.empty() && !mdns.connected()) err = mdns.not_connected_reason();
    if (!err.empty()) {
      std::fprintf(stderr, "eqsim: --publish: cannot reach avahi-daemon: %s\n", err.c_str());
      return kExitFailure;
    }
    std::vector<eqd::discovery::PublishedService> services;
    for (std::size_t c = 0; c < rig.controller_count(); ++c) {
      const auto& ctl = rig.controller(c);
      const std::string& name = ctl.params().name;
      // The bus of its channels; none when they are on several (one TXT key cannot say which channel is
      // where: eqd then needs an adoption with a bus, or a configuration entry).
      std::string bus;
      if (ctl.channel_count() > 0) {
        bus = rig.spec().buses[ctl.spec(0).bus].name;
        for (std::size_t k = 1; k < ctl.channel_count(); ++k)
          if (ctl.spec(k).bus != ctl.spec(0).bus) bus.clear();
      }
      if (bus.empty() && ctl.channel_count() > 0)
        std::fprintf(stderr, "eqsim: --publish: controller %s has channels on several buses: announced without a bus\n",
                     name.c_str());
      // The serial stays the same across restarts and ports, so that eqd follows a controller that moved.
      services.push_back(
          {name, eqd::discovery::kControllerServiceType, ports[c],
           eqd::discovery::controller_txt(name, "eqsim-" + rig.spec().name + "-" + name, 1, "eqd-default",
                                          static_cast<std::uint16_t>(ctl.channel_count()), bus)});
    }
    err = mdns.publish(std::move(services));
    if (!err.empty()) {
      std::fprintf(stderr, "eqsim: --publish: %s\n", err.c_str());
      return kExitFailure;
    }
    std::printf("eqsim: publishing %zu controller(s) as %s\n", rig.controller_count(),
                eqd::discovery::kControllerServiceType);
  }
  std::fflush(stdout);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);

  server->start();
  if (can_server) can_server->start();
  for (auto& d : sunspec_storages) d->start();
  if (sunspec_grid_meter) sunspec_grid_meter->start();
  if (bts_server) bts_server->start();
  const bool tty = isatty(fileno(stdout)) != 0;
  constexpr double kDt_s = 0.05;  // plant step (simulated time)
  const auto period = std::chrono::nanoseconds(static_cast<std::int64_t>(kDt_s / speed * 1e9));
  auto next = std::chrono::steady_clock::now();
  double next_status = 0.0, next_report = 0.0;
  int exit_code = kExitOk;
  for (;;) {
    const int sig = g_signal.exchange(0);
    if (sig == SIGUSR1) {
      std::lock_guard<std::mutex> lock(plant->mutex);
      if (tty && !quiet) std::printf("\n");
      print_report(rig, "eqsim: grid meter");
    } else if (sig == SIGTERM || sig == SIGINT) {
      break;
    }
    {
      std::lock_guard<std::mutex> lock(plant->mutex);
      rig.step(kDt_s);
      if (sunspec_grid_meter) {
        double storage_W = 0.0;  // SunSpec storage, + = charging (their 103 W is + = discharging)
        for (const auto& d : sunspec_storages) storage_W -= d->state().power_W;
        const double import_W = rig.bus_meter(0).net_W + storage_W + sunspec_meter_offset_W;
        sunspec_grid_meter->set_meter_power_W(sunspec_meter_export_positive ? -import_W : import_W);
      }
      if (!quiet && status_s > 0 && rig.now_s() >= next_status) {
        print_status(rig, tty);
        next_status = rig.now_s() + status_s;
      }
      if (!report_file.empty() && rig.now_s() >= next_report) {
        try {
          write_atomic(report_file, report_json(*plant).dump(1) + "\n");
        } catch (const std::exception& e) {
          std::fprintf(stderr, "eqsim: report: %s\n", e.what());
        }
        next_report = rig.now_s() + 1.0;
      }
      if (duration_s > 0 && rig.now_s() >= duration_s) break;
    }
    next += period;
    std::this_thread::sleep_until(next);
  }
  mdns.stop();
  if (bts_server) bts_server->stop();
  if (sunspec_grid_meter) sunspec_grid_meter->stop();
  for (auto& d : sunspec_storages) d->stop();
  if (can_server) can_server->stop();
  server->stop();
  if (tty && !quiet) std::printf("\n");
  print_report(rig, "eqsim: summary");
  if (!report_file.empty()) {
    try {
      write_atomic(report_file, report_json(*plant).dump(1) + "\n");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "eqsim: report: %s\n", e.what());
      exit_code = kExitFailure;
    }
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqsim: fatal: %s\n", e.what());
    return kExitFailure;
  }
}
