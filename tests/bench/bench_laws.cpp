// bench_laws: eqd's control law against re-implemented peer laws and an offline lower bound, on the
// benchmark scenarios (tests/bench/scenarios/*.yaml), all in the same virtual-time harness.
// Prints one Markdown table per scenario and writes results.csv and series_<scenario>.csv for the plots
// (scripts/bench_laws.sh). See docs/control-benchmark.md.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "eqd/sim/battery.hpp"
#include "eqd/sim/harness.hpp"
#include "eqd/sim/rig.hpp"
#include "eqd/sim/scenario.hpp"
#include "laws/bound_lp.hpp"
#include "laws/peer_laws.hpp"

namespace {

using namespace eqd;

/// One law's figures on one scenario.
struct Row {
  std::string law;
  std::string column;           ///< law id without spaces (CSV)
  double exchange_ratio = 0.0;  ///< grid exchange with / without equalization
  double ratio_to_bound = 0.0;  ///< exchange / the bound's exchange
  double rms_W = 0.0, peak_W = 0.0, flips_per_hour = 0.0, travel_kW = 0.0;
  double exchange_kWh = 0.0;
  double wall_s = 0.0;
};

// The last two are what-ifs, not shipped settings: eqd's core with another parameter on every bus, to
// show the lead what a change would buy (the shipped law is "eqd", with the scenario's parameters).
constexpr const char* kLaws[] = {"none", "evcc-step", "pid", "eqd", "eqd tau10 (what-if)", "eqd dwell0 (what-if)"};
/// Column names of the laws in the CSV files (no spaces, for gnuplot).
constexpr const char* kLawColumns[] = {"none", "evcc", "pid", "eqd", "eqd_tau10", "eqd_dwell0"};
static_assert(std::size(kLaws) == std::size(kLawColumns));

std::unique_ptr<sim::BusLaw> make_law(const std::string& name, core::CoreConfig cfg) {
  if (name == "evcc-step") return std::make_unique<bench::EvccStepperLaw>(cfg, bench::EvccStepperLaw::Params{});
  if (name == "pid") return std::make_unique<bench::PidLaw>(cfg, bench::PidLaw::Params{});
  if (name == "eqd") return std::make_unique<sim::ControlCoreLaw>(cfg);
  if (name.rfind("eqd tau10", 0) == 0) {
    for (core::BusParams& p : cfg.buses) p.tau_s = 10.0;  // the low end of the nominal 10..20 s
    return std::make_unique<sim::ControlCoreLaw>(cfg);
  }
  if (name.rfind("eqd dwell0", 0) == 0) {
    for (core::BusParams& p : cfg.buses) p.flip_dwell_s = 0.0;
    return std::make_unique<sim::ControlCoreLaw>(cfg);
  }
  return std::make_unique<bench::NoEqualizationLaw>();
}

// State of charge where the open-circuit voltage reaches v (the OCV is non-decreasing in soc).
double soc_at(const sim::OcvTable& ocv, double v) {
  double lo = 0.0, hi = 1.0;
  if (v <= ocv.voltage_V(0.0)) return 0.0;
  if (v >= ocv.voltage_V(1.0)) return 1.0;
  for (int k = 0; k < 60; ++k) {
    const double mid = 0.5 * (lo + hi);
    (ocv.voltage_V(mid) < v ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// Battery-side energy (J) between two states of charge: capacity × ∫ OCV dsoc.
double energy_J(const sim::OcvTable& ocv, double capacity_Ah, double soc_a, double soc_b) {
  constexpr int kSteps = 200;
  double wh = 0.0;
  const double d = (soc_b - soc_a) / kSteps;
  for (int k = 0; k < kSteps; ++k) wh += ocv.voltage_V(soc_a + (k + 0.5) * d) * d * capacity_Ah;
  return wh * 3600.0;
}

// The bound's view of the bus: ratings, eqd's auto slew and the energy left in the windows, bus side.
// Window limits are applied to the OCV (the terminal voltage reaches them earlier under current), and
// charging energy is counted bus side (÷ efficiency): both make the bound looser, i.e. still a bound.
bench::BoundInput bound_input(const sim::Rig& rig, std::size_t bus, const std::vector<double>& free_W,
                              double dt_s) {
  bench::BoundInput in;
  in.free_W = free_W;
  in.dt_s = dt_s;
  double rated = 0.0;
  for (std::size_t i = 0; i < rig.channel_count(); ++i) {
    const sim::ChannelSpec& s = rig.channel_spec(i);
    if (!s.buffer || s.bus != bus) continue;
    const double eff = s.limits.efficiency;
    in.charge_max_W += s.limits.max_charge_W / eff;
    in.discharge_max_W += s.limits.max_discharge_W * eff;
    rated += std::max(s.limits.max_charge_W / eff, s.limits.max_discharge_W * eff);
    const double soc0 = s.battery.initial_soc;
    const double soc_hi = std::max(soc0, soc_at(*s.ocv, s.limits.v_max_V));
    const double soc_lo = std::min(soc0, soc_at(*s.ocv, s.limits.v_min_V));
    in.energy_charge_J += energy_J(*s.ocv, s.battery.capacity_Ah, soc0, soc_hi) / eff;
    in.energy_discharge_J += energy_J(*s.ocv, s.battery.capacity_Ah, soc_lo, soc0) / eff;
  }
  const core::BusParams& p = rig.spec().buses[bus].params;
  in.slew_W_per_s = p.slew_W_per_s > 0.0 ? p.slew_W_per_s : rated / p.tau_s;
  in.flip_threshold_W = 0.01 * rig.rated_eq_W(bus);
  return in;
}

void print_table(const std::string& scenario, const std::vector<Row>& rows) {
  std::printf("\n### %s\n\n", scenario.c_str());
  std::printf("| law | exchange / none | exchange / bound | RMS residual W | peak residual W | flips/h | setpoint travel kW |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows)
    std::printf("| %s | %.3f | %.2f | %.0f | %.0f | %.1f | %.0f |\n", r.law.c_str(), r.exchange_ratio,
                r.ratio_to_bound, r.rms_W, r.peak_W, r.flips_per_hour, r.travel_kW);
}

int run(int argc, char** argv) {
  std::filesystem::path out_dir = "bench-laws-out";
  std::vector<std::string> files;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--out" && a + 1 < argc) {
      out_dir = argv[++a];
    } else if (arg == "-h" || arg == "--help") {
      std::printf("usage: bench_laws [--out DIR] SCENARIO.yaml...\n");
      return 0;
    } else {
      files.push_back(arg);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "bench_laws: no scenario given (usage: bench_laws [--out DIR] SCENARIO.yaml...)\n");
    return 2;
  }
  std::filesystem::create_directories(out_dir);
  std::ofstream csv(out_dir / "results.csv");
  csv << "scenario,law,exchange_ratio,ratio_to_bound,rms_W,peak_W,flips_per_hour,travel_kW,exchange_kWh\n";
  const auto t_all = std::chrono::steady_clock::now();

  for (const std::string& file : files) {
    const sim::Scenario sc = sim::load_scenario(file);
    const std::size_t bus = sc.expect.bus;
    std::vector<Row> rows;
    std::vector<std::vector<double>> nets;  // bus-side grid net per law, per record
    std::vector<double> t_s, free_W;
    std::unique_ptr<sim::Rig> bound_rig;
    for (std::size_t li = 0; li < std::size(kLaws); ++li) {
      const char* law_name = kLaws[li];
      auto rig = std::make_unique<sim::Rig>(sc.rig);
      const core::CoreConfig cfg = sim::make_core_config(*rig);
      std::unique_ptr<sim::BusLaw> law = make_law(law_name, cfg);
      sim::Harness h(*rig, *law, sc.harness, sc.events);
      const auto t0 = std::chrono::steady_clock::now();
      h.run();
      const sim::BusMetrics m = h.metrics(bus);
      Row r;
      r.law = law_name;
      r.column = kLawColumns[li];
      r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      r.exchange_ratio = m.exchange_ratio();
      r.rms_W = m.residual_rms_W;
      r.peak_W = m.residual_peak_W;
      r.flips_per_hour = m.flips_per_hour;
      r.travel_kW = m.setpoint_travel_W / 1000.0;
      r.exchange_kWh = (m.grid_import_J + m.grid_export_J) / 3.6e6;
      rows.push_back(r);
      const sim::BusTrace& tr = h.trace(bus);
      nets.push_back(tr.grid_net_W);
      if (t_s.empty()) {
        // Test channels do not depend on the law: every run has the same free power.
        t_s = tr.t_s;
        free_W = tr.grid_free_W;
      }
      if (!bound_rig) bound_rig = std::move(rig);
    }

    // The bound on the recorded free power (record period = the LP's step).
    const bench::BoundInput in = bound_input(*bound_rig, bus, free_W, sc.harness.record_period_s);
    const bench::BoundResult b = bench::solve_bound(in);
    if (!b.ok) {
      std::fprintf(stderr, "bench_laws: %s: bound LP failed: %s\n", sc.name.c_str(), b.message.c_str());
      return 1;
    }
    Row br;
    br.law = "bound (LP)";
    br.column = "bound";
    br.exchange_ratio = b.exchange_ratio();
    br.ratio_to_bound = 1.0;
    br.rms_W = b.residual_rms_W;
    br.peak_W = b.residual_peak_W;
    const double span_h = static_cast<double>(free_W.size()) * in.dt_s / 3600.0;
    br.flips_per_hour = span_h > 0.0 ? b.flips / span_h : 0.0;
    br.travel_kW = b.travel_W / 1000.0;
    br.exchange_kWh = b.exchange_J / 3.6e6;
    for (Row& r : rows) r.ratio_to_bound = br.exchange_ratio > 0.0 ? r.exchange_ratio / br.exchange_ratio : 0.0;
    rows.push_back(br);

    double law_wall = 0.0;
    for (const Row& r : rows) law_wall += r.wall_s;
    print_table(sc.name, rows);
    std::printf("\nbus %s, buffers %.1f kW rated, free exchange %.2f kWh; slew %.0f W/s; "
                "harness %.2f s for %zu laws, LP %.2f s\n",
                sc.rig.buses[bus].name.c_str(), bound_rig->rated_eq_W(bus) / 1000.0,
                b.free_exchange_J / 3.6e6, in.slew_W_per_s, law_wall, std::size(kLaws), b.solve_s);

    for (const Row& r : rows)
      csv << sc.name << ',' << r.column << ',' << r.exchange_ratio << ',' << r.ratio_to_bound << ',' << r.rms_W << ','
          << r.peak_W << ',' << r.flips_per_hour << ',' << r.travel_kW << ',' << r.exchange_kWh << '\n';
    std::ofstream series(out_dir / ("series_" + sc.name + ".csv"));
    series << "t_s,free_W";
    for (const char* col : kLawColumns) series << ",net_" << col << "_W";
    series << ",net_bound_W\n";
    for (std::size_t k = 0; k < t_s.size(); ++k) {
      series << t_s[k] << ',' << free_W[k];
      for (const auto& n : nets) series << ',' << (k < n.size() ? n[k] : 0.0);
      series << ',' << (k < b.eq_W.size() ? free_W[k] + b.eq_W[k] : 0.0) << '\n';
    }
  }
  std::printf("\ntotal %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_laws: %s\n", e.what());
    return 1;
  }
}
