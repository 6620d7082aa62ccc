// The receding-horizon planner's cost (issue #15 item 2; docs/benchmarks.md, "Planner"):
//  1. solve time per planner pass (every bus's ask served once, as the planner thread does each
//     second) for 1, 4 and 64 buses with a 30 s and a 120 s path: median and p99, and the share of one
//     core at one pass per second;
//  2. the control cycle with law `planned` (asks written, answers read) against the same core with
//     law `adaptive`, in the same process: the ratio the issue bounds at 2.
// Paths: a drive-cycle-like mix of steps and swings (the DP's cost does not depend on the values).
// Usage: bench_planner [--passes N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "eqd/core/control_core.hpp"
#include "eqd/core/plan_board.hpp"

using namespace eqd::core;

namespace {
using Clock = std::chrono::steady_clock;
double ns_since(Clock::time_point t0) { return std::chrono::duration<double, std::nano>(Clock::now() - t0).count(); }

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

PlanAsk make_ask(std::mt19937& rng, int n, std::int64_t asked_ns) {
  std::uniform_real_distribution<double> level(-5000.0, 5000.0);
  PlanAsk a;
  a.asked_ns = asked_ns;
  a.n = n;
  double v = level(rng);
  for (int t = 0; t < n; ++t) {
    if (t % 7 == 0) v = level(rng);
    a.free_W[static_cast<std::size_t>(t)] = static_cast<float>(v + 800.0 * std::sin(t * 0.9));
  }
  a.delay_s = 2;
  a.start_W = 600.0;
  a.lo_W = -6000.0;
  a.hi_W = 6000.0;
  a.slew_W_per_s = 400.0;
  a.travel_weight_s = 0.2;
  a.flip_cost_Ws = 0.02 * 15.0 * 6000.0;
  return a;
}

void solve_times(int passes) {
  std::printf(
      "## Planner pass (every bus's ask solved once; the planner thread does one per second)\n\n"
      "| buses | path | median | p99 | per plan (median) | share of one core at 1 pass/s |\n"
      "|---:|---:|---:|---:|---:|---:|\n");
  std::mt19937 rng(11);
  for (int n : {30, 120}) {
    for (std::size_t buses : {1U, 4U, 64U}) {
      PlanBoard board(buses);
      PlanService service(buses);
      std::vector<double> t_ns;
      const int reps = buses == 64 ? std::max(3, passes / 8) : passes;
      for (int r = 0; r < reps; ++r) {
        for (std::size_t b = 0; b < buses; ++b) board.ask(b, make_ask(rng, n, r + 1));
        const auto t0 = Clock::now();
        const std::size_t made = service.serve(board);
        t_ns.push_back(ns_since(t0));
        if (made != buses) std::fprintf(stderr, "bench_planner: %zu of %zu plans made\n", made, buses);
      }
      const double med = percentile(t_ns, 0.5), p99 = percentile(t_ns, 0.99);
      std::printf("| %zu | %d s | %.2f ms | %.2f ms | %.3f ms | %.2f %% |\n", buses, n, med / 1e6, p99 / 1e6,
                  med / 1e6 / static_cast<double>(buses), med / 1e9 * 100.0);
    }
  }
}

struct CycleFigures {
  double median_ns = 0.0, mean_ns = 0.0;
  std::uint64_t plans_applied = 0;
};

// One bus per 16 channels (12 test channels announcing, 4 buffers), `buses` buses. The mean includes
// the cycles that write an ask (one in ten: once per second at 10 Hz).
CycleFigures cycle_ns(LawKind law, std::size_t buses, int cycles, bool serve) {
  CoreConfig cfg;
  BusParams p;
  p.law = law;
  p.forecast_horizon_s = 30;
  cfg.buses.assign(buses, p);
  const std::size_t per = 16;
  cfg.channels.resize(buses * per);
  for (std::size_t i = 0; i < cfg.channels.size(); ++i) {
    cfg.channels[i].bus = static_cast<BusIndex>(i / per);
    if (i % per >= 12) {
      cfg.channels[i].assigned = true;
      cfg.channels[i].limits.max_charge_W = cfg.channels[i].limits.max_discharge_W = 3000.0;
      cfg.channels[i].limits.v_min_V = 40.0;
      cfg.channels[i].limits.v_max_V = 56.0;
    }
  }
  ControlCore core(cfg);
  PlanService service(buses);
  std::vector<double> samples;
  std::int64_t now = 1'000'000'000;
  for (int k = 0; k < cycles; ++k) {
    for (std::size_t i = 0; i < cfg.channels.size(); ++i) {
      Sample s;
      s.valid = true;
      s.voltage_V = 50.0;
      const bool buffer = i % per >= 12;
      s.state = buffer ? ChannelState::equalizing : ChannelState::running;
      s.equalization_mode = buffer;
      s.power_W = buffer ? core.command_slot(static_cast<ChannelIndex>(i)).load().setpoint_W
                         : 400.0 * std::sin(static_cast<double>(k) * 0.05 + static_cast<double>(i));
      s.forecast_W = buffer ? std::nanf("") : static_cast<float>(300.0 * std::sin(static_cast<double>(i)));
      s.receive_time_ns = now;
      core.sample_slot(static_cast<ChannelIndex>(i)).store(s);
    }
    const auto t0 = Clock::now();
    core.cycle(now);
    samples.push_back(ns_since(t0));
    if (serve) service.serve(core.plan_board());
    now += 100'000'000;
  }
  CycleFigures f;
  f.median_ns = percentile(samples, 0.5);
  for (double x : samples) f.mean_ns += x / static_cast<double>(samples.size());
  f.plans_applied = core.bus(0).plans_applied;
  return f;
}

void cycle_ratio(int cycles) {
  std::printf(
      "\n## Control cycle with law planned against law adaptive (same core, same channels)\n\n"
      "| buses | channels | adaptive median / mean | planned median / mean | ratio (mean) | plans applied on bus 0 |\n"
      "|---:|---:|---:|---:|---:|---:|\n");
  for (std::size_t buses : {1U, 4U, 64U}) {
    // Interleaved twice, so that neither side gets the warmer machine.
    CycleFigures a, pl;
    for (int round = 0; round < 2; ++round) {
      const CycleFigures x = cycle_ns(LawKind::adaptive, buses, cycles, false);
      const CycleFigures y = cycle_ns(LawKind::planned, buses, cycles, true);
      a.median_ns += x.median_ns / 2;
      a.mean_ns += x.mean_ns / 2;
      pl.median_ns += y.median_ns / 2;
      pl.mean_ns += y.mean_ns / 2;
      pl.plans_applied = y.plans_applied;
    }
    std::printf("| %zu | %zu | %.1f / %.1f µs | %.1f / %.1f µs | %.2f | %llu |\n", buses, buses * 16, a.median_ns / 1e3,
                a.mean_ns / 1e3, pl.median_ns / 1e3, pl.mean_ns / 1e3, pl.mean_ns / a.mean_ns,
                static_cast<unsigned long long>(pl.plans_applied));
  }
}
}  // namespace

int main(int argc, char** argv) {
  int passes = 200;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--passes") == 0 && i + 1 < argc) {
      passes = std::max(10, std::atoi(argv[++i]));
    } else {
      std::printf("usage: bench_planner [--passes N]\n");
      return 2;
    }
  }
  solve_times(passes);
  cycle_ratio(3000);
  return 0;
}
