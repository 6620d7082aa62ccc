// Benchmark of the metrics collector, printed as ratios against baselines run in the same process:
//  1. scrape time for N channels (default 10k): eqd's /metrics path, Collector::Collect() +
//     metrics::write_text into a reused buffer, vs a prometheus::Registry holding the same series as
//     plain prometheus-cpp metrics (Gauge, Counter, Histogram with the same labels and values),
//     collected and serialised by prometheus::TextSerializer as the Exposer does (goal <= 0.5x).
//     The baseline's gauges are set before timing: updating them is not counted. The former eqd path
//     (Collect() + TextSerializer) is timed too, for reference.
//  2. the control cycle's cost with a concurrent scraper: ControlCore::cycle() time with and without
//     another thread running the /metrics path in a loop (goal: no measurable difference).
// Usage: bench_metrics [--channels N] [--cycles N]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "eqd/metrics/collector.hpp"
#include "eqd/metrics/text_format.hpp"

using namespace eqd;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kBuses = 4;
constexpr std::size_t kChannelsPerController = 16;

double since_ns(Clock::time_point t0) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

// A rig of n channels on 4 buses, 8 buffers per bus, controllers of 16 channels; every sample fresh.
struct Rig {
  std::unique_ptr<core::ControlCore> core;
  daemon::Directory dir;
  std::int64_t now_ns = 1'000'000'000;

  explicit Rig(std::size_t n) {
    core::CoreConfig cfg;
    core::BusParams p;
    p.max_age_ms = 3'600'000;  // samples written once stay fresh for the whole run
    cfg.buses.assign(kBuses, p);
    cfg.channels.resize(n);
    for (std::size_t i = 0; i < n; ++i) cfg.channels[i].bus = static_cast<core::BusIndex>(i % kBuses);
    for (std::size_t k = 0; k < 8 * kBuses && k < n; ++k) {
      core::ChannelConfig& c = cfg.channels[n - 1 - k];
      c.assigned = true;
      c.limits.max_charge_W = c.limits.max_discharge_W = 5000.0;
      c.limits.v_min_V = 40.0;
      c.limits.v_max_V = 56.0;
    }
    core = std::make_unique<core::ControlCore>(cfg);
    for (std::size_t b = 0; b < kBuses; ++b) dir.buses.push_back("bus" + std::to_string(b));
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t c = i / kChannelsPerController;
      if (c == dir.controllers.size()) {
        daemon::ControllerInfo info;
        info.name = "cab" + std::to_string(c + 1);
        info.first_channel = static_cast<core::ChannelIndex>(i);
        dir.controllers.push_back(info);
      }
      ++dir.controllers[c].channels;
      daemon::ChannelInfo ch;
      ch.controller = static_cast<std::uint16_t>(c);
      ch.number = static_cast<std::uint16_t>(i % kChannelsPerController + 1);
      ch.name = dir.controllers[c].name + "/" + std::to_string(ch.number);
      ch.bus = cfg.channels[i].bus;
      dir.channels.push_back(ch);
      core::Sample s;
      s.voltage_V = 48.0 + static_cast<double>(i % 7) * 0.1;
      s.power_W = (i % 2 ? 300.0 : -250.0) + static_cast<double>(i % 13);
      s.current_A = s.power_W / s.voltage_V;
      s.state = cfg.channels[i].assigned ? core::ChannelState::equalizing : core::ChannelState::running;
      s.equalization_mode = cfg.channels[i].assigned;
      s.valid = true;
      s.receive_time_ns = now_ns;
      core->sample_slot(static_cast<core::ChannelIndex>(i)).store(s);
    }
    for (int w = 0; w < 5; ++w) cycle();
  }
  void cycle() { core->cycle(now_ns += 100'000'000); }

  metrics::Sources sources() const {
    metrics::Sources s;
    s.snapshots = std::make_shared<daemon::CoreSnapshots>(*core);
    s.directory = &dir;
    s.controller_stats = [](std::size_t, io::LinkStats& out) {
      out = io::LinkStats{};
      out.connected = true;
      out.polls = 1000;
      out.achieved_hz = 10.0;
      out.latency.observe(0.002);
      return true;
    };
    s.control_overruns = [] { return std::uint64_t{0}; };
    const std::int64_t t = now_ns;
    s.now_ns = [t] { return t; };
    return s;
  }
};

// A Registry holding the same series as `fams`, as plain prometheus-cpp metrics.
void fill_registry(prometheus::Registry& reg, const std::vector<prometheus::MetricFamily>& fams) {
  for (const auto& f : fams) {
    auto labels_of = [](const prometheus::ClientMetric& m) {
      prometheus::Labels l;
      for (const auto& x : m.label) l.emplace(x.name, x.value);
      return l;
    };
    switch (f.type) {
      case prometheus::MetricType::Gauge: {
        auto& fam = prometheus::BuildGauge().Name(f.name).Help(f.help).Register(reg);
        for (const auto& m : f.metric) fam.Add(labels_of(m)).Set(m.gauge.value);
        break;
      }
      case prometheus::MetricType::Counter: {
        auto& fam = prometheus::BuildCounter().Name(f.name).Help(f.help).Register(reg);
        for (const auto& m : f.metric) fam.Add(labels_of(m)).Increment(m.counter.value);
        break;
      }
      case prometheus::MetricType::Histogram: {
        auto& fam = prometheus::BuildHistogram().Name(f.name).Help(f.help).Register(reg);
        for (const auto& m : f.metric) {
          prometheus::Histogram::BucketBoundaries bounds;
          std::vector<double> increments;
          std::uint64_t prev = 0;
          for (const auto& b : m.histogram.bucket) {
            if (!std::isinf(b.upper_bound)) bounds.push_back(b.upper_bound);
            increments.push_back(static_cast<double>(b.cumulative_count - prev));
            prev = b.cumulative_count;
          }
          fam.Add(labels_of(m), bounds).ObserveMultiple(increments, m.histogram.sample_sum);
        }
        break;
      }
      default:
        break;
    }
  }
}

std::size_t sample_lines(const std::string& text) {
  std::size_t n = 0;
  for (std::size_t p = 0; p < text.size();) {
    const std::size_t e = text.find('\n', p);
    if (text[p] != '#') ++n;
    p = e == std::string::npos ? text.size() : e + 1;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t channels = 10'000;
  int cycles = 3000;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--channels") && i + 1 < argc)
      channels = std::stoul(argv[++i]);
    else if (!std::strcmp(argv[i], "--cycles") && i + 1 < argc)
      cycles = std::stoi(argv[++i]);
  }
  Rig rig(channels);
  const metrics::Collector collector(rig.sources(), metrics::CollectorOptions{true});
  const prometheus::TextSerializer text;

  prometheus::Registry reg;
  fill_registry(reg, collector.Collect());

  // Interleaved, so that load from other processes hits both sides alike.
  std::string eqd_out, base_out, old_out;
  eqd_out.reserve(8u << 20);  // the exporter's per-worker buffer after its first scrape
  const int reps = 31;
  std::vector<double> eqd_collect, base_collect, eqd_ser, eqd_ser_old, base_ser, eqd_scrape, old_scrape, base_scrape;
  auto time_ns = [](auto&& fn) {
    const auto t0 = Clock::now();
    fn();
    return since_ns(t0);
  };
  for (int r = 0; r < reps; ++r) {
    std::vector<prometheus::MetricFamily> ef, bf;
    eqd_collect.push_back(time_ns([&] { ef = collector.Collect(); }));
    base_collect.push_back(time_ns([&] { bf = reg.Collect(); }));
    eqd_ser.push_back(time_ns([&] { metrics::write_text(ef, eqd_out); }));
    eqd_ser_old.push_back(time_ns([&] {
      std::ostringstream o;
      text.Serialize(o, ef);
      old_out = o.str();
    }));
    base_ser.push_back(time_ns([&] {
      std::ostringstream o;
      text.Serialize(o, bf);
      base_out = o.str();
    }));
    eqd_scrape.push_back(time_ns([&] { metrics::write_text(collector.Collect(), eqd_out); }));
    base_scrape.push_back(time_ns([&] {
      std::ostringstream o;
      text.Serialize(o, reg.Collect());
      base_out = o.str();
    }));
    old_scrape.push_back(time_ns([&] {
      std::ostringstream o;
      text.Serialize(o, collector.Collect());
      old_out = o.str();
    }));
  }
  std::printf("# scrape of %zu channels, %zu controllers, %zu buses: eqd collector vs plain prometheus-cpp metrics\n",
              channels, rig.dir.controllers.size(), kBuses);
  // The Registry's families hold their series in hash order, so the texts differ in order only;
  // write_text prints exact values (TextSerializer rounds to 16 digits), hence a few more bytes.
  std::printf(
      "# same series in all: %zu (write_text) vs %zu (baseline) vs %zu (eqd + TextSerializer) sample lines,"
      " %zu vs %zu vs %zu bytes\n",
      sample_lines(eqd_out), sample_lines(base_out), sample_lines(old_out), eqd_out.size(), base_out.size(),
      old_out.size());
  std::printf("%-42s %12s %12s %8s\n", "median of 31, interleaved", "eqd_ms", "baseline_ms", "ratio");
  auto line = [](const char* name, const std::vector<double>& e, const std::vector<double>& b) {
    const double em = percentile(e, 0.5), bm = percentile(b, 0.5);
    std::printf("%-42s %12.2f %12.2f %8.2f\n", name, em / 1e6, bm / 1e6, em / bm);
  };
  line("Collect()", eqd_collect, base_collect);
  line("write_text vs TextSerializer", eqd_ser, base_ser);
  line("TextSerializer of eqd's families", eqd_ser_old, base_ser);
  line("scrape: Collect() + write_text  (/metrics)", eqd_scrape, base_scrape);
  line("old scrape: Collect() + TextSerializer", old_scrape, base_scrape);
  {
    // What metrics.per_channel: false buys on a large rig (absolute; no baseline needed).
    const metrics::Collector buses_only(rig.sources(), metrics::CollectorOptions{false});
    std::vector<double> t;
    std::string out;
    for (int r = 0; r < reps; ++r) t.push_back(time_ns([&] { metrics::write_text(buses_only.Collect(), out); }));
    std::printf("%-42s %12.2f %12s %8s  (%zu bytes)\n", "scrape with per_channel: false", percentile(t, 0.5) / 1e6, "-",
                "-", out.size());
  }

  // Control cycle with and without a concurrent scraper, in alternating blocks (the scraper thread
  // keeps running but idles during "alone" blocks), so that outside load hits both alike.
  std::atomic<bool> stop{false}, scrape{false};
  std::atomic<std::uint64_t> scrapes{0};
  std::thread scraper([&] {
    std::string buffer;
    while (!stop.load(std::memory_order_relaxed)) {
      if (!scrape.load(std::memory_order_relaxed)) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      metrics::write_text(collector.Collect(), buffer);
      scrapes.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::vector<double> alone, scraped;
  const int block = 250;
  for (int done = 0; done < cycles; done += block) {
    for (int side = 0; side < 2; ++side) {
      scrape = side == 1;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      std::vector<double>& t = side == 1 ? scraped : alone;
      for (int k = 0; k < block; ++k) {
        const auto t0 = Clock::now();
        rig.cycle();
        t.push_back(since_ns(t0));
      }
    }
  }
  stop = true;
  scraper.join();
  std::printf("# control cycle, %zu channels, %zu cycles per side in alternating blocks of %d (us);\n", channels,
              alone.size(), block);
  std::printf("# the scraper completed %llu scrapes during the 'with scraper' blocks\n",
              static_cast<unsigned long long>(scrapes.load()));
  std::printf("%-34s %10s %10s %10s\n", "", "median", "p90", "p99");
  auto row = [](const char* name, const std::vector<double>& t) {
    std::printf("%-34s %10.2f %10.2f %10.2f\n", name, percentile(t, 0.5) / 1e3, percentile(t, 0.9) / 1e3,
                percentile(t, 0.99) / 1e3);
  };
  row("cycle alone", alone);
  row("cycle with scraper", scraped);
  std::printf("%-34s %10.2f %10.2f %10.2f\n", "ratio with/alone", percentile(scraped, 0.5) / percentile(alone, 0.5),
              percentile(scraped, 0.9) / percentile(alone, 0.9), percentile(scraped, 0.99) / percentile(alone, 0.99));
  return 0;
}
