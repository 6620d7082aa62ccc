// Benchmark of the control core, printed as ratios against baselines run in the same process:
//  - control cycle time for 1k..1M channels vs a bare pass that reads the same samples (goal <= 2x:
//    the same words of each sample as the cycle's pass 1; and, for reference, vs a pass reading whole
//    samples), timed in turn, one repetition each;
//  - sample publish cost (Seqlock::store) vs a plain store of the same struct;
//  - the statistical forecast (stat_forecast, law planned; docs/control.md "Statistical forecasts"):
//    the control cycle with it on vs the same core with it off, timed in turn a second of cycles at a
//    time, and the predictor thread's fit (core::StatForecasts::tick: fit, skill gate, shadow plan)
//    per bus and second, against the fit alone (StatFitter::observe).
// Usage: bench_core [--max-channels N] [--json FILE] [--stat-only | --cycle-only]
// (--cycle-only: the cycle tables alone, e.g. to profile them with callgrind)
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <cmath>
#include <random>

#include "eqd/core/control_core.hpp"
#include "eqd/core/plan_board.hpp"
#include "eqd/core/stat_forecasts.hpp"

using namespace eqd::core;
using Clock = std::chrono::steady_clock;

namespace {

// Keeps the optimiser from discarding the work.
template <class T>
void escape(T& v) {
  asm volatile("" : : "g"(&v) : "memory");
}

std::int64_t ns_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
}

// Median of `reps` timings of fn(), ns.
template <class F>
double median_ns(int reps, F&& fn) {
  std::vector<double> t;
  t.reserve(static_cast<std::size_t>(reps));
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(static_cast<double>(ns_since(t0)));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Medians of `reps` timings each of the functions fns, taken in turn (f0, f1, ..., f0, f1, ...), ns.
// Every side then runs under the same conditions: on a shared VM the speed of a core drifts by up to
// 2x within a second, and timing a whole block of one and then a block of the other charged that
// drift, and whatever state the end of one block left to the start of the other, to one side only (a
// bare pass timed after a block of cycles came out 1.6x slower than the same pass timed alone or
// interleaved).
template <class... F>
std::array<double, sizeof...(F)> interleaved_medians_ns(int reps, F&&... fns) {
  constexpr std::size_t kN = sizeof...(F);
  std::array<std::vector<double>, kN> t;
  for (auto& v : t) v.reserve(static_cast<std::size_t>(reps));
  for (int r = 0; r < reps; ++r) {
    std::size_t k = 0;
    (
        [&] {
          const auto t0 = Clock::now();
          fns();
          t[k++].push_back(static_cast<double>(ns_since(t0)));
        }(),
        ...);
  }
  std::array<double, kN> out{};
  for (std::size_t k = 0; k < kN; ++k) {
    std::sort(t[k].begin(), t[k].end());
    out[k] = t[k][t[k].size() / 2];
  }
  return out;
}

struct Row {
  std::size_t channels;
  double cycle_ns, bare_ns, bare_full_ns;
};

// `n` channels on 4 buses of parameters p, the last 32 channels buffers of 5 kW (8 per bus). Samples
// written once stay fresh for the whole run.
CoreConfig four_buses(std::size_t n, BusParams p) {
  CoreConfig cfg;
  p.max_age_ms = 3'600'000;
  cfg.buses.assign(4, p);
  cfg.channels.resize(n);
  for (std::size_t i = 0; i < n; ++i) cfg.channels[i].bus = static_cast<BusIndex>(i % 4);
  for (std::size_t k = 0; k < 32 && k < n; ++k) {
    ChannelConfig& c = cfg.channels[n - 1 - k];
    c.assigned = true;
    c.limits.max_charge_W = c.limits.max_discharge_W = 5000.0;
    c.limits.v_min_V = 40.0;
    c.limits.v_max_V = 56.0;
  }
  return cfg;
}

// announce: every other test channel announces a schedule (Sample::forecast_W), so that the cycle also
// sums announcements and runs each bus's forecast path and median (docs/control.md).
Row bench_cycle(std::size_t n, bool announce) {
  const CoreConfig cfg = four_buses(n, BusParams{});
  ControlCore core(cfg);
  const std::int64_t t_base = 1'000'000'000;
  for (std::size_t i = 0; i < n; ++i) {
    Sample s;
    s.voltage_V = 48.0;
    s.power_W = (i % 2 ? 300.0 : -250.0);
    s.current_A = s.power_W / 48.0;
    s.state = cfg.channels[i].assigned ? ChannelState::equalizing : ChannelState::running;
    s.equalization_mode = cfg.channels[i].assigned;
    s.valid = true;
    s.receive_time_ns = t_base;
    if (announce && !cfg.channels[i].assigned && i % 2 == 0) s.forecast_W = 400.0F;
    core.sample_slot(static_cast<ChannelIndex>(i)).store(s);
  }
  // Samples stay fresh for 36 000 cycles of 100 ms (max_age_ms above): far more than these.
  const int reps = n >= 1'000'000 ? 15 : (n >= 100'000 ? 51 : (n >= 10'000 ? 301 : 2001));
  std::int64_t now = t_base;
  // Baselines: bare passes reading every sample consistently (the same Seqlock with the same 4 attempts
  // as the cycle) and summing power per bus. bare_pass reads the words of each sample that the cycle's
  // pass 1 reads (5 of 8: voltage, power, receive time, announcement, state and validity), the ratio's
  // baseline; bare_full_pass the whole sample (as the cycle did before 2026-12-04), for reference.
  double sums[4] = {0, 0, 0, 0};
  const auto bare_pass = [&] {
    for (std::size_t i = 0; i < n; ++i) {
      Sample s;
      const auto& slot = core.sample_slot(static_cast<ChannelIndex>(i));
      for (int k = 0; k < 4; ++k)
        if (ControlCore::try_load_pass1_words(slot, s)) {
          sums[i & 3] += s.power_W;
          break;
        }
    }
    escape(sums);
  };
  const auto bare_full_pass = [&] {
    for (std::size_t i = 0; i < n; ++i) {
      Sample s;
      if (core.sample_slot(static_cast<ChannelIndex>(i)).try_load(s, 4)) sums[i & 3] += s.power_W;
    }
    escape(sums);
  };
  for (int w = 0; w < 3; ++w) {  // warm-up: buffers enter, caches warm
    core.cycle(now += 100'000'000);
    bare_pass();
    bare_full_pass();
  }
  const auto t = interleaved_medians_ns(
      reps, [&] { core.cycle(now += 100'000'000); }, bare_pass, bare_full_pass);
  return {n, t[0], t[1], t[2]};
}

// four_buses() of law planned, nothing announced or learned, stat_forecast as asked.
CoreConfig planned_config(std::size_t n, bool stat) {
  BusParams p;
  p.law = LawKind::planned;
  p.learn_forecast = false;
  p.stat_forecast = stat;
  return four_buses(n, p);
}

void publish_samples(ControlCore& core, const CoreConfig& cfg, std::int64_t t_ns, double test_W) {
  for (std::size_t i = 0; i < cfg.channels.size(); ++i) {
    Sample s;
    s.voltage_V = 48.0;
    s.power_W = cfg.channels[i].assigned ? 0.0 : test_W * (i % 2 ? 1.0 : -0.8);
    s.current_A = s.power_W / 48.0;
    s.state = cfg.channels[i].assigned ? ChannelState::equalizing : ChannelState::running;
    s.equalization_mode = cfg.channels[i].assigned;
    s.valid = true;
    s.receive_time_ns = t_ns;
    core.sample_slot(static_cast<ChannelIndex>(i)).store(s);
  }
}

// A usable model of horizon 30 s (what the predictor thread publishes once its gates are open).
StatModel usable_model(std::int64_t sec, double x_W) {
  StatModel m;
  m.made_s = sec;
  m.horizon_s = 30;
  m.usable = m.skill_open = m.shadow_open = true;
  m.mean_W = x_W - 2000.0;
  m.scale_W = 300.0;
  m.lo_W = x_W - 5000.0;
  m.hi_W = x_W + 5000.0;
  m.gain = 1.25;
  for (std::size_t h = 1; h <= 30; ++h) m.coef[h] = {0.05F, 0.02F, -0.02F * static_cast<float>(h)};
  return m;
}

struct StatCycleRow {
  std::size_t channels;
  double off_ns, on_ns;              ///< median time of a second of cycles (10 x 100 ms)
  double off_first_ns, on_first_ns;  ///< median time of the first cycle of a second (the model is read there)
  double stat_share;                 ///< share of the on core's seconds whose path was statistical
  std::uint64_t plans_on, plans_off;
};

// The control cycle with stat_forecast on vs off: two cores on the same samples, each cycle timed in
// turn (off and on, the order alternating), summed over each second. Between seconds, untimed, the "predictor thread"
// publishes a usable model into every bus's slot of the on core and the "planner thread" serves both cores' plan
// boards, so the on core plans over the statistical path as in eqd, the off core has no path (law planned runs as the
// adaptive law there).
StatCycleRow bench_stat_cycle(std::size_t n, int seconds) {
  const CoreConfig off_cfg = planned_config(n, false), on_cfg = planned_config(n, true);
  ControlCore off(off_cfg), on(on_cfg);
  PlanService plans_off(4), plans_on(4);
  std::int64_t now = 1'000'000'000;
  std::vector<double> t_off, t_on, f_off, f_on;
  std::size_t stat_seconds = 0;
  for (int sec = 0; sec < seconds + 5; ++sec) {
    const double test_W = 300.0 + 200.0 * std::sin(0.07 * sec) + 120.0 * std::sin(0.9 * sec);
    // The samples written last are the warmer ones at the next cycle: the order alternates too.
    if (sec % 2 == 0) {
      publish_samples(off, off_cfg, now, test_W);
      publish_samples(on, on_cfg, now, test_W);
    } else {
      publish_samples(on, on_cfg, now, test_W);
      publish_samples(off, off_cfg, now, test_W);
    }
    for (BusIndex b = 0; b < 4; ++b) on.stat_model_slot(b).store(usable_model(now / 1'000'000'000, on.bus(b).free_W));
    double so = 0.0, sn = 0.0, fo = 0.0, fn = 0.0;
    for (int k = 0; k < 10; ++k, now += 100'000'000) {
      // Which core goes first alternates: the second one finds its samples less warm in the caches
      // (at 10k channels the first-timed side came out 5-10 % slower whichever it was).
      const auto timed = [](ControlCore& c, std::int64_t t) {
        const auto t0 = Clock::now();
        c.cycle(t);
        return static_cast<double>(ns_since(t0));
      };
      double a = 0.0, b = 0.0;
      if ((sec + k) % 2 == 1) {
        a = timed(off, now);
        b = timed(on, now);
      } else {
        b = timed(on, now);
        a = timed(off, now);
      }
      so += a;
      sn += b;
      if (k == 0) fo = a, fn = b;
      plans_off.serve(off.plan_board());
      plans_on.serve(on.plan_board());
    }
    if (sec < 5) continue;  // warm-up: the stat path needs its own last 2 s, buffers enter
    t_off.push_back(so);
    t_on.push_back(sn);
    f_off.push_back(fo);
    f_on.push_back(fn);
    stat_seconds += on.bus(0).stat_path ? 1 : 0;
  }
  const auto median = [](std::vector<double>& v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {n,
          median(t_off),
          median(t_on),
          median(f_off),
          median(f_on),
          static_cast<double>(stat_seconds) / seconds,
          plans_on.plans(),
          plans_off.plans()};
}

struct StatFitRow {
  std::size_t buses;
  double tick_ns_per_bus;  ///< StatForecasts::tick (fit, skill gate, shadow plan, publish) per bus
  double fit_ns_per_bus;   ///< StatFitter::observe alone per bus
};

// The predictor thread's side: StatForecasts::tick over `buses` buses with stat_forecast (each with 8
// buffers and a mean-reverting free power), once per second of the core's clock, after the second's
// cycles (untimed). Baseline: the fit alone on the same series (StatFitter::observe per bus).
StatFitRow bench_stat_fit(std::size_t buses, int seconds) {
  CoreConfig cfg;
  BusParams p;
  p.max_age_ms = 3'600'000;
  p.law = LawKind::planned;
  p.learn_forecast = false;
  p.stat_forecast = true;
  cfg.buses.assign(buses, p);
  const std::size_t per_bus = 16;  // 8 test channels, 8 buffers
  cfg.channels.resize(buses * per_bus);
  for (std::size_t i = 0; i < cfg.channels.size(); ++i) {
    cfg.channels[i].bus = static_cast<BusIndex>(i / per_bus);
    if (i % per_bus >= 8) {
      ChannelConfig& c = cfg.channels[i];
      c.assigned = true;
      c.limits.max_charge_W = c.limits.max_discharge_W = 5000.0;
      c.limits.v_min_V = 40.0;
      c.limits.v_max_V = 56.0;
    }
  }
  ControlCore core(cfg);
  StatForecasts sf(buses);
  std::vector<StatFitter> fitters(buses);
  std::mt19937 rng(1);
  std::normal_distribution<double> e(0.0, 150.0);
  std::vector<double> x(buses, 0.0);
  std::int64_t now = 1'000'000'000;
  std::vector<double> t_tick, t_fit;
  for (int sec = 0; sec < seconds + 300; ++sec) {
    for (std::size_t b = 0; b < buses; ++b) x[b] = 0.9 * x[b] + e(rng);
    for (std::size_t i = 0; i < cfg.channels.size(); ++i) {
      Sample s;
      s.voltage_V = 48.0;
      const bool buffer = cfg.channels[i].assigned;
      s.power_W = buffer ? 0.0 : 400.0 + x[i / per_bus];
      s.current_A = s.power_W / 48.0;
      s.state = buffer ? ChannelState::equalizing : ChannelState::running;
      s.equalization_mode = buffer;
      s.valid = true;
      s.receive_time_ns = now;
      core.sample_slot(static_cast<ChannelIndex>(i)).store(s);
    }
    core.cycle(now);
    auto t0 = Clock::now();
    sf.tick(now + 1'000'000, core);  // the predictor thread wakes 1 ms after the whole second
    const auto tick = static_cast<double>(ns_since(t0));
    t0 = Clock::now();
    for (std::size_t b = 0; b < buses; ++b) fitters[b].observe(sec, core.bus(static_cast<BusIndex>(b)).free_W);
    const auto fit = static_cast<double>(ns_since(t0));
    escape(fitters);
    now += 1'000'000'000;
    if (sec < 300) continue;  // past warm-up and the shadow gate's first 120 s: the steady state
    t_tick.push_back(tick);
    t_fit.push_back(fit);
  }
  const auto median = [](std::vector<double>& v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {buses, median(t_tick) / static_cast<double>(buses), median(t_fit) / static_cast<double>(buses)};
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t max_channels = 1'000'000;
  const char* json_path = nullptr;
  bool stat_only = false, cycle_only = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--max-channels") && i + 1 < argc)
      max_channels = std::stoul(argv[++i]);
    else if (!std::strcmp(argv[i], "--json") && i + 1 < argc)
      json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--stat-only"))
      stat_only = true;
    else if (!std::strcmp(argv[i], "--cycle-only"))
      cycle_only = true;
  }
  std::vector<Row> rows;
  for (const bool announce : {false, true}) {
    if (stat_only) break;
    std::printf("# control cycle vs bare sample pass (median, 4 buses, 32 buffers%s)\n",
                announce ? ", every other test channel announcing a schedule" : "");
    std::printf("%10s %14s %14s %8s %14s %8s\n", "channels", "cycle_us", "bare_pass_us", "ratio", "bare_full_us",
                "ratio");
    for (std::size_t n : {1'000ul, 10'000ul, 100'000ul, 1'000'000ul}) {
      if (n > max_channels) break;
      const Row r = bench_cycle(n, announce);
      if (!announce) rows.push_back(r);
      std::printf("%10zu %14.1f %14.1f %8.2f %14.1f %8.2f\n", n, r.cycle_ns / 1e3, r.bare_ns / 1e3,
                  r.cycle_ns / r.bare_ns, r.bare_full_ns / 1e3, r.cycle_ns / r.bare_full_ns);
    }
  }

  if (cycle_only) return 0;

  // The statistical forecast: the control thread's cost (on vs off) and the predictor thread's.
  std::printf(
      "# stat_forecast: control cycle, law planned, 4 buses, 32 buffers (median of a second = 10 cycles; "
      "first = the cycle that reads the model)\n");
  std::printf("%10s %12s %12s %8s %14s %14s %8s %10s %14s\n", "channels", "off_us/s", "on_us/s", "ratio",
              "off_first_us", "on_first_us", "ratio", "stat_path", "plans on/off");
  for (std::size_t n : {1'000ul, 10'000ul}) {
    if (n > max_channels) break;
    const StatCycleRow r = bench_stat_cycle(n, n >= 10'000 ? 201 : 601);
    std::printf("%10zu %12.1f %12.1f %8.3f %14.1f %14.1f %8.3f %9.0f%% %7llu/%llu\n", n, r.off_ns / 1e3, r.on_ns / 1e3,
                r.on_ns / r.off_ns, r.off_first_ns / 1e3, r.on_first_ns / 1e3, r.on_first_ns / r.off_first_ns,
                100.0 * r.stat_share, static_cast<unsigned long long>(r.plans_on),
                static_cast<unsigned long long>(r.plans_off));
  }
  std::printf(
      "# stat_forecast: predictor thread per bus and second (median; fit + skill gate + shadow plan vs the fit "
      "alone)\n");
  std::printf("%6s %12s %12s %8s %14s\n", "buses", "tick_us", "fit_us", "ratio", "core_share_64");
  for (std::size_t b : {4ul, 16ul}) {
    const StatFitRow r = bench_stat_fit(b, 600);
    // core_share_64: the share of one core that 64 buses would take, once a second.
    std::printf("%6zu %12.2f %12.2f %8.2f %13.3f%%\n", b, r.tick_ns_per_bus / 1e3, r.fit_ns_per_bus / 1e3,
                r.tick_ns_per_bus / r.fit_ns_per_bus, 64.0 * r.tick_ns_per_bus / 1e9 * 100.0);
  }
  if (stat_only) return 0;

  // Publish cost: Seqlock store vs plain store into an array of the same size (1024 slots, cycled).
  constexpr std::size_t kSlots = 1024;
  constexpr int kStores = 2'000'000;
  std::vector<Seqlock<Sample>> slots(kSlots);
  std::vector<Sample> plain(kSlots);
  Sample s;
  s.valid = true;
  const double seq_ns = median_ns(7,
                                  [&] {
                                    for (int k = 0; k < kStores; ++k) {
                                      s.sequence = static_cast<std::uint32_t>(k);
                                      slots[static_cast<std::size_t>(k) & (kSlots - 1)].store(s);
                                    }
                                  }) /
                        kStores;
  const double plain_ns = median_ns(7,
                                    [&] {
                                      for (int k = 0; k < kStores; ++k) {
                                        s.sequence = static_cast<std::uint32_t>(k);
                                        plain[static_cast<std::size_t>(k) & (kSlots - 1)] = s;
                                        escape(plain);
                                      }
                                    }) /
                          kStores;
  std::printf("# sample publish: seqlock store %.2f ns, plain store %.2f ns, ratio %.2f\n", seq_ns, plain_ns,
              seq_ns / plain_ns);

  if (json_path) {
    if (FILE* f = std::fopen(json_path, "w")) {
      std::fprintf(f, "{\"cycle\": [");
      for (std::size_t i = 0; i < rows.size(); ++i)
        std::fprintf(f, "%s{\"channels\": %zu, \"cycle_ns\": %.0f, \"bare_ns\": %.0f, \"bare_full_ns\": %.0f}",
                     i ? ", " : "", rows[i].channels, rows[i].cycle_ns, rows[i].bare_ns, rows[i].bare_full_ns);
      std::fprintf(f, "], \"publish_ns\": %.3f, \"plain_store_ns\": %.3f}\n", seq_ns, plain_ns);
      std::fclose(f);
    }
  }
  return 0;
}
