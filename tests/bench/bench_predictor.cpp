// Benchmark of the learned-forecast predictor (core::Predictor, issue #14): memory per channel and the
// predictor thread's CPU on the benchmark mix, printed with a baseline run in the same process.
//  - Mix: real standard drive cycles (config/rigs/profiles: US06, UDDS, WLTC) looped until a "cutoff",
//    recharged and rested, with step numbers (40 %) and without (30 %, pattern matching); cycle-life
//    CC-CV / rest / CP loops with step numbers (20 %); one-off random levels (10 %).
//  - 32 template channels learn 2 h of lab time; every channel of the measured core is a copy of one
//    (ChannelPredictor::save/load), so that 10 000 channels start from learned state without 10 000
//    simulations.
//  - Figures: bytes per channel (mean, by kind); one tick over N channels (median of 15 seconds) against
//    a bare pass that reads the same samples and snapshots (what any predictor must read), and as a
//    share of one core (a tick runs once per second). 1M channels: extrapolated from the per-channel
//    figures (memory is per channel; the tick is linear in channels).
// Usage: bench_predictor [--channels N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "eqd/core/control_core.hpp"
#include "eqd/core/predictor.hpp"

using namespace eqd::core;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<double> load_profile(const std::string& name) {
  std::ifstream in(std::string(EQD_PROFILES_DIR) + "/" + name);
  std::vector<double> v;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    double t = 0, x = 0;
    char comma = 0;
    if (ls >> t >> comma >> x) v.push_back(x);
  }
  return v;
}

enum class Kind { drive_steps, drive_pattern, cycle_life, one_off };
const char* name(Kind k) {
  switch (k) {
    case Kind::drive_steps:
      return "drive cycle, step numbers";
    case Kind::drive_pattern:
      return "drive cycle, no step numbers";
    case Kind::cycle_life:
      return "cycle life, step numbers";
    case Kind::one_off:
      return "one-off programs";
  }
  return "";
}

// A channel's program, second by second: power (W), cycle and step.
struct Program {
  Kind kind;
  const std::vector<double>* profile = nullptr;
  double scale = 1.0;
  int loops = 3, offset = 0;
  std::uint32_t seed = 1;
  struct At {
    float W;
    std::uint32_t cycle;
    std::uint16_t step;
  };
  At at(std::int64_t t) const {
    t += offset;
    if (kind == Kind::one_off) {
      // Levels drawn per 37 s slot from a hash: never repeats.
      std::uint64_t h = static_cast<std::uint64_t>(t / 37) * 0x9E3779B97F4A7C15ULL ^ seed;
      h ^= h >> 29;
      h *= 0xBF58476D1CE4E5B9ULL;
      h ^= h >> 32;
      return {static_cast<float>(static_cast<double>(h % 4001) - 2000.0), Sample::kNoIndex, Sample::kNoStep};
    }
    if (kind == Kind::cycle_life) {
      const std::int64_t period = 1800 + 600 + 1500;
      const auto cycle = static_cast<std::uint32_t>(t / period);
      const std::int64_t u = t % period;
      if (u < 1800) return {static_cast<float>(900.0 - 0.3 * static_cast<double>(u)), cycle, 0};
      if (u < 2400) return {0.0F, cycle, 1};
      return {-1100.0F, cycle, 2};
    }
    const auto len = static_cast<std::int64_t>(profile->size());
    const std::int64_t drive = len * loops, period = drive + 1200 + 300;
    const auto cycle = static_cast<std::uint32_t>(t / period);
    const std::int64_t u = t % period;
    const bool steps = kind == Kind::drive_steps;
    At a{0.0F, steps ? cycle : Sample::kNoIndex, Sample::kNoStep};
    if (u < drive) {
      a.W = static_cast<float>(scale * (*profile)[static_cast<std::size_t>(u % len)]);
      a.step = steps ? 0 : Sample::kNoStep;
    } else if (u < drive + 1200) {
      a.W = 800.0F;
      a.step = steps ? 1 : Sample::kNoStep;
    } else {
      a.step = steps ? 2 : Sample::kNoStep;
    }
    return a;
  }
};

template <class F>
double median_ns(int reps, F&& fn) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 10000;
  for (int a = 1; a < argc; ++a)
    if (std::strcmp(argv[a], "--channels") == 0 && a + 1 < argc) n = static_cast<std::size_t>(std::atoll(argv[++a]));
  const std::vector<double> us06 = load_profile("US06.csv"), udds = load_profile("UDDS.csv"),
                            wltc = load_profile("WLTC.csv");
  if (us06.empty() || udds.empty() || wltc.empty()) {
    std::fprintf(stderr, "bench_predictor: cannot read the profiles in %s\n", EQD_PROFILES_DIR);
    return 2;
  }
  // Templates in the mix's proportions (of 10: 4 drive with steps, 3 without, 2 cycle life, 1 one-off).
  const Kind mix[10] = {Kind::drive_steps,   Kind::drive_steps,   Kind::drive_steps,   Kind::drive_steps,
                        Kind::drive_pattern, Kind::drive_pattern, Kind::drive_pattern, Kind::cycle_life,
                        Kind::cycle_life,    Kind::one_off};
  constexpr std::size_t kTemplates = 30;
  std::vector<Program> programs;
  const std::vector<double>* profiles[3] = {&us06, &udds, &wltc};
  for (std::size_t k = 0; k < kTemplates; ++k) {
    Program p;
    p.kind = mix[k % 10];
    p.profile = profiles[k % 3];
    p.scale = k % 3 == 2 ? -60.0 : -250.0;  // WLTC is a power profile, US06/UDDS current profiles (A -> W at ~50 V)
    p.loops = 2 + static_cast<int>(k % 3);
    p.offset = static_cast<int>(97 * k);
    p.seed = static_cast<std::uint32_t>(k + 1);
    programs.push_back(p);
  }
  const PredictorParams pp;
  constexpr std::uint32_t kHorizon = 30;
  constexpr std::int64_t kTrain_s = 7200;
  std::vector<ChannelPredictor> trained(kTemplates);
  const auto t_train = Clock::now();
  for (std::int64_t t = 0; t < kTrain_s; ++t)
    for (std::size_t k = 0; k < kTemplates; ++k) {
      const Program::At a = programs[k].at(t);
      (void)trained[k].observe(pp, t, a.W, a.cycle, a.step, kHorizon);
    }
  const double train_s = std::chrono::duration<double>(Clock::now() - t_train).count();

  // Memory by kind, from the templates.
  std::printf("# bench_predictor: %zu channels, horizon %u s, %zu templates trained on %lld s of lab time (%.1f s)\n\n",
              n, kHorizon, kTemplates, static_cast<long long>(kTrain_s), train_s);
  std::printf("| kind | share of the mix | bytes per channel | skill (mean) |\n|---|---:|---:|---:|\n");
  double mean_bytes = 0.0;
  for (Kind kind : {Kind::drive_steps, Kind::drive_pattern, Kind::cycle_life, Kind::one_off}) {
    double bytes = 0.0, skill = 0.0;
    int m = 0;
    for (std::size_t k = 0; k < kTemplates; ++k)
      if (programs[k].kind == kind) {
        bytes += static_cast<double>(trained[k].memory_bytes() + sizeof(ChannelPredictor));
        skill += std::isnan(trained[k].skill()) ? 0.0 : trained[k].skill();
        ++m;
      }
    const double share = static_cast<double>(std::count(std::begin(mix), std::end(mix), kind)) / 10.0;
    mean_bytes += share * bytes / m;
    std::printf("| %s | %.0f %% | %.0f | %.2f |\n", name(kind), 100.0 * share, bytes / m, skill / m);
  }
  std::printf("| **mix** | 100 %% | **%.0f** | |\n\n", mean_bytes);

  // The measured core: n test channels on one learning bus, each a copy of a template.
  CoreConfig cfg;
  BusParams bp;
  bp.forecast_horizon_s = kHorizon;
  cfg.buses.push_back(bp);
  cfg.channels.resize(n);
  ControlCore core(cfg);
  Predictor pred(n, pp);
  std::vector<std::vector<std::uint8_t>> blobs(kTemplates);
  for (std::size_t k = 0; k < kTemplates; ++k) trained[k].save(blobs[k]);
  for (std::size_t i = 0; i < n; ++i)
    if (!pred.channel(i).load(blobs[i % kTemplates])) {
      std::fprintf(stderr, "bench_predictor: load failed\n");
      return 1;
    }
  const std::int64_t s = 1'000'000'000;
  std::int64_t t = kTrain_s;
  auto publish_samples = [&](std::int64_t now_s) {
    for (std::size_t i = 0; i < n; ++i) {
      const Program::At a = programs[i % kTemplates].at(now_s);
      Sample smp;
      smp.valid = true;
      smp.state = ChannelState::running;
      smp.voltage_V = 50.0;
      smp.power_W = a.W;
      smp.cycle_index = a.cycle;
      smp.step_index = a.step;
      smp.receive_time_ns = now_s * s;
      core.sample_slot(static_cast<ChannelIndex>(i)).store(smp);
    }
  };
  publish_samples(t);
  core.cycle(t * s);  // publishes the channel snapshots the predictor reads
  // Bare pass: read every sample and snapshot, as tick() must.
  double sink = 0.0;
  auto bare = [&] {
    for (std::size_t i = 0; i < n; ++i) {
      const Sample smp = core.sample_slot(static_cast<ChannelIndex>(i)).load();
      const ChannelSnapshot cs = core.channel(static_cast<ChannelIndex>(i));
      sink += smp.power_W + static_cast<double>(cs.role);
    }
  };
  std::vector<double> tick_ns, bare_ns, refresh_cycle_ns, plain_cycle_ns;
  const auto timed_ns = [](auto&& fn) {
    const auto t0 = Clock::now();
    fn();
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
  };
  for (int r = 0; r < 15; ++r) {
    ++t;
    publish_samples(t);
    // The control core's first cycle of a second reads the learned paths and the present power of
    // their channels (ControlCore::refresh_learned); a cycle within the second does not: the baseline.
    refresh_cycle_ns.push_back(timed_ns([&] { core.cycle(t * s); }));
    plain_cycle_ns.push_back(timed_ns([&] { core.cycle(t * s + s / 2); }));
    auto t0 = Clock::now();
    pred.tick(t * s, core);
    tick_ns.push_back(
        static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
    bare_ns.push_back(median_ns(1, bare));
  }
  std::sort(tick_ns.begin(), tick_ns.end());
  std::sort(bare_ns.begin(), bare_ns.end());
  const double tick = tick_ns[tick_ns.size() / 2], base = bare_ns[bare_ns.size() / 2];
  std::size_t in_use = 0;
  for (std::size_t i = 0; i < n; ++i) in_use += core.learned().in_use(i) ? 1 : 0;
  const double heap = static_cast<double>(pred.memory_bytes());
  std::printf(
      "| channels | tick (median of 15) | bare pass | ratio | share of one core | heap | per channel | forecasts in "
      "use |\n"
      "|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::printf("| %zu | %.1f ms | %.2f ms | %.0fx | %.2f %% | %.1f MB | %.0f B | %.0f %% |\n", n, tick / 1e6, base / 1e6,
              tick / base, 100.0 * tick / 1e9, heap / 1e6, heap / static_cast<double>(n),
              100.0 * static_cast<double>(in_use) / static_cast<double>(n));
  const double per_ch_ns = tick / static_cast<double>(n);
  std::printf("| 1000000 (extrapolated) | %.0f ms | | | %.0f %% | %.1f GB | | |\n", per_ch_ns * 1e6 / 1e6,
              100.0 * per_ch_ns * 1e6 / 1e9, heap / static_cast<double>(n) * 1e6 / 1e9);
  std::sort(refresh_cycle_ns.begin(), refresh_cycle_ns.end());
  std::sort(plain_cycle_ns.begin(), plain_cycle_ns.end());
  const double rc = refresh_cycle_ns[refresh_cycle_ns.size() / 2], pc = plain_cycle_ns[plain_cycle_ns.size() / 2];
  std::printf(
      "\n| control cycle (median of 15) | time | ratio |\n|---|---:|---:|\n"
      "| within a second (baseline) | %.2f ms | 1.00 |\n"
      "| first of a second: + learned paths and their channels' present power | %.2f ms | %.2f |\n",
      pc / 1e6, rc / 1e6, rc / pc);
  std::printf("\n(sink %g)\n", sink);
  return 0;
}
