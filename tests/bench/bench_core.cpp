// Benchmark of the control core, printed as ratios against baselines run in the same process:
//  - control cycle time for 1k..1M channels vs a bare pass that reads the same samples (goal <= 2x:
//    the same words of each sample as the cycle's pass 1; and, for reference, vs a pass reading whole
//    samples), timed in turn, one repetition each;
//  - sample publish cost (Seqlock::store) vs a plain store of the same struct.
// Usage: bench_core [--max-channels N] [--json FILE]
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "eqd/core/control_core.hpp"

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

// announce: every other test channel announces a schedule (Sample::forecast_W), so that the cycle also
// sums announcements and runs each bus's forecast path and median (docs/control.md).
Row bench_cycle(std::size_t n, bool announce) {
  CoreConfig cfg;
  BusParams p;
  p.max_age_ms = 3'600'000;  // samples written once stay fresh for the whole run
  cfg.buses.assign(4, p);
  cfg.channels.resize(n);
  for (std::size_t i = 0; i < n; ++i) cfg.channels[i].bus = static_cast<BusIndex>(i % 4);
  // 8 buffers per bus.
  for (std::size_t k = 0; k < 32 && k < n; ++k) {
    ChannelConfig& c = cfg.channels[n - 1 - k];
    c.assigned = true;
    c.limits.max_charge_W = c.limits.max_discharge_W = 5000.0;
    c.limits.v_min_V = 40.0;
    c.limits.v_max_V = 56.0;
  }
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

}  // namespace

int main(int argc, char** argv) {
  std::size_t max_channels = 1'000'000;
  const char* json_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--max-channels") && i + 1 < argc)
      max_channels = std::stoul(argv[++i]);
    else if (!std::strcmp(argv[i], "--json") && i + 1 < argc)
      json_path = argv[++i];
  }
  std::vector<Row> rows;
  for (const bool announce : {false, true}) {
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
