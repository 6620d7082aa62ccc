// eqsim: the simulated rig. Runs the plant model in real time, serves every simulated controller as a
// Modbus TCP server on 127.0.0.1 (eqd default profile, heartbeat watchdog and leases) and through the
// other server sides its options ask for (server_side.hpp: one per eqd transport), and plays the grid
// meter: true net power per bus with and without equalization.
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

#include "eqd/sim/errors.hpp"
#include "eqd/sim/rig.hpp"
#include "rig_backend.hpp"
#include "server_side.hpp"

namespace {

using eqd::sim::Rig;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

std::atomic<int> g_signal{0};
extern "C" void on_signal(int sig) { g_signal.store(sig); }

using eqd::sim::EqdConfigParts;
using eqd::sim::Plant;
using eqd::sim::ServerSide;

double kWh(double J) { return J / 3.6e6; }

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

// An eqd configuration that matches the served rig, so that the demo and tests need no hand-written one:
// the rig's controllers through `side` (its transport's keys), their buffers as equalization entries
// when that transport commands, and what every other wanted side adds (SunSpec storage, a meter).
std::string eqd_config_for(const Rig& rig, const ServerSide& side,
                           const std::vector<std::unique_ptr<ServerSide>>& sides, double tau_s) {
  EqdConfigParts parts;
  for (const auto& s : sides)
    if (s->wanted()) s->add_to_config(rig, parts);
  std::string y = "# Generated by eqsim for rig '" + rig.spec().name + "'. Keys: see config/eqd.yaml.\n";
  y += "buses:\n";
  for (std::size_t b = 0; b < rig.spec().buses.size(); ++b) {
    const auto& bus = rig.spec().buses[b];
    y += "  - name: " + bus.name + "\n";
    // eqd must look as far ahead as the controllers announce (docs/sim.md "Announced schedules").
    char fh[64];
    std::snprintf(fh, sizeof fh, "    forecast_horizon_s: %g\n", bus.params.forecast_horizon_s);
    y += fh;
    if (tau_s > 0) {
      y += "    tau_s: " + std::to_string(tau_s) + "\n";
      if (tau_s < 10.0 || tau_s > 20.0) y += "    allow_any_tau: true\n";
    }
    if (b == 0) y += parts.first_bus;
  }
  y += "controllers:\n";
  for (std::size_t c = 0; c < rig.controller_count(); ++c) {
    const auto& ctl = rig.controller(c);
    y += "  - name: " + ctl.params().name + "\n" + side.controller_keys(rig, c) +
         "    channels: " + std::to_string(ctl.channel_count()) + "\n";
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
  y += parts.controllers;
  std::string eq;
  for (std::size_t i = 0; side.commands() && i < rig.channel_count(); ++i) {
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
  eq += parts.equalization;
  y += eq.empty() ? "equalization: []\n" : "equalization:\n" + eq;
  return y;
}

// The plant of the rig file, with --forecast-horizon-s applied (< 0: as the rig says). Throws with a
// message naming the file and the problem.
std::unique_ptr<Plant> load_plant(const std::string& rig_path, double forecast_horizon_s) {
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
  return std::make_unique<Plant>(Rig(spec));
}

struct Options {
  std::string rig_path = "config/rigs/demo.yaml";
  int base_port = 15020;
  double speed = 1.0;
  double duration_s = 0.0;
  double status_s = 1.0;
  std::string report_file;
  std::string write_config;
  std::string eqd_transport;
  double config_tau_s = 0.0;
  bool quiet = false;
  std::string listen_host = "127.0.0.1";
  double forecast_horizon_s = -1.0;
};

// eqsim's own options; each server side adds its own after these.
void add_options(CLI::App& app, Options& o) {
  app.add_option("-r,--rig", o.rig_path, "rig description (YAML)")->capture_default_str();
  app.add_option("--base-port", o.base_port, "controller c listens on 127.0.0.1:BASE+c (0: any free ports)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65000));
  app.add_option("--speed", o.speed, "simulated seconds per real second")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 100.0));
  app.add_option("--duration", o.duration_s, "stop after this many simulated seconds (0: run until SIGTERM/SIGINT)");
  app.add_option("--status-interval", o.status_s, "live status line period, s (0: none)")->capture_default_str();
  app.add_option("--report-file", o.report_file, "write the grid meter as JSON to FILE every second (atomically)");
  app.add_option("--write-eqd-config", o.write_config, "write an eqd configuration matching this rig to FILE");
  app.add_option("--eqd-transport", o.eqd_transport,
                 "the transport of the rig's controllers in --write-eqd-config: tcp, can (needs --can) or neware "
                 "(needs --bts; read only: the rig's buffers are left out); default can with --can, else tcp");
  app.add_option("--eqd-tau", o.config_tau_s, "tau_s to put in the written eqd configuration (0: eqd's default)");
  app.add_flag("-q,--quiet", o.quiet, "no status line");
  app.add_option("--listen", o.listen_host, "IPv4 address the Modbus servers listen on")->capture_default_str();
  app.add_option("--forecast-horizon-s", o.forecast_horizon_s,
                 "every controller announces each running channel's power this far ahead, s (overrides the "
                 "rig's controllers[].forecast_horizon_s; 0 = announce nothing; default: as the rig says)")
      ->check(CLI::Range(0.0, 3600.0));
}

void stop_all(const std::vector<std::unique_ptr<ServerSide>>& sides) {
  for (auto it = sides.rbegin(); it != sides.rend(); ++it) (*it)->stop();
}

// Steps the plant in real time until SIGTERM/SIGINT or --duration; SIGUSR1 prints the grid meter.
void run_plant(Plant& plant, const Options& o, const std::vector<std::unique_ptr<ServerSide>>& sides) {
  Rig& rig = plant.rig;
  const bool tty = isatty(fileno(stdout)) != 0;
  constexpr double kDt_s = 0.05;  // plant step (simulated time)
  const auto period = std::chrono::nanoseconds(static_cast<std::int64_t>(kDt_s / o.speed * 1e9));
  auto next = std::chrono::steady_clock::now();
  double next_status = 0.0, next_report = 0.0;
  for (;;) {
    const int sig = g_signal.exchange(0);
    if (sig == SIGUSR1) {
      std::lock_guard<std::mutex> lock(plant.mutex);
      if (tty && !o.quiet) std::printf("\n");
      print_report(rig, "eqsim: grid meter");
    } else if (sig == SIGTERM || sig == SIGINT) {
      break;
    }
    {
      std::lock_guard<std::mutex> lock(plant.mutex);
      rig.step(kDt_s);
      for (const auto& side : sides)
        if (side->wanted()) side->step(plant);
      if (!o.quiet && o.status_s > 0 && rig.now_s() >= next_status) {
        print_status(rig, tty);
        next_status = rig.now_s() + o.status_s;
      }
      if (!o.report_file.empty() && rig.now_s() >= next_report) {
        try {
          write_atomic(o.report_file, report_json(plant).dump(1) + "\n");
        } catch (const std::exception& e) {
          std::fprintf(stderr, "eqsim: report: %s\n", e.what());
        }
        next_report = rig.now_s() + 1.0;
      }
      if (o.duration_s > 0 && rig.now_s() >= o.duration_s) break;
    }
    next += period;
    std::this_thread::sleep_until(next);
  }
  if (tty && !o.quiet) std::printf("\n");
}

int run(int argc, char** argv) {
  CLI::App app{"eqsim: a simulated cycler rig served over Modbus TCP on 127.0.0.1"};
  Options o;
  add_options(app, o);
  const std::vector<std::unique_ptr<ServerSide>> sides = eqd::sim::builtin_server_sides();
  for (const auto& side : sides) side->add_options(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  std::unique_ptr<Plant> plant;
  ServerSide* config_side = nullptr;
  try {
    plant = load_plant(o.rig_path, o.forecast_horizon_s);
    std::string err;
    if (!o.write_config.empty() && (config_side = eqd::sim::config_side(sides, o.eqd_transport, err)) == nullptr)
      throw std::invalid_argument(err);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqsim: %s\n", e.what());
    return kExitUsage;
  }
  eqd::sim::ServeContext ctx{*plant, o.listen_host, o.base_port};
  try {
    for (const auto& side : sides)
      if (side->wanted()) side->build(ctx);
    if (config_side != nullptr) {
      write_atomic(o.write_config, eqd_config_for(plant->rig, *config_side, sides, o.config_tau_s));
      std::printf("eqsim: wrote eqd configuration %s\n", o.write_config.c_str());
    }
    std::fflush(stdout);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGUSR1, &sa, nullptr);
    for (const auto& side : sides)
      if (side->wanted()) side->start();
    std::fflush(stdout);  // what the sides printed: tests wait for these lines
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqsim: %s\n", e.what());
    stop_all(sides);
    return kExitFailure;
  }
  run_plant(*plant, o, sides);
  stop_all(sides);
  print_report(plant->rig, "eqsim: summary");
  if (!o.report_file.empty()) {
    try {
      write_atomic(o.report_file, report_json(*plant).dump(1) + "\n");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "eqsim: report: %s\n", e.what());
      return kExitFailure;
    }
  }
  return kExitOk;
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
