// stat_skill: offline skill of eqd's statistical short-term forecast (core::StatFitter, the fit the
// predictor thread runs; docs/control.md "Statistical forecasts") on a bus's recorded free power
// (bench_laws' series_<scenario>.csv: columns t_s, free_W at 1 s). Prints, per file,
// skill = 1 - MAE(forecast) / MAE(persistence) at 2, 5, 10 and 20 s over the whole run after warm-up
// (every second, gate or not), the share of seconds the skill gate was open, persistence's MAE and the
// skill of a flat forecast at the 120 s mean. The core's forecaster only: the harness prototype's other
// methods and orders (iterated AR, p != 2) are reproducible at commit d8ecec9.
// usage: stat_skill [--forget L] [--level TAU] [--ridge R] [--gain G] [--gate-h H] [--skill-on S] FILE.csv...
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "eqd/core/stat_forecast.hpp"

namespace {

constexpr std::array<int, 4> kH = {2, 5, 10, 20};
constexpr std::size_t kFrom = 120;  // warm-up, not scored
constexpr int kMaxH = 20;

std::vector<double> read_series(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);  // header
  std::vector<double> x;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string t, v;
    std::getline(ss, t, ',');
    std::getline(ss, v, ',');
    x.push_back(std::atof(v.c_str()));
  }
  return x;
}

void report(const std::string& file, const eqd::core::StatFitParams& p) {
  const std::vector<double> x = read_series(file);
  const std::size_t n = x.size();
  if (n <= kFrom + kMaxH) {
    std::fprintf(stderr, "stat_skill: %s: %zu seconds, fewer than %zu\n", file.c_str(), n, kFrom + kMaxH + 1);
    return;
  }
  eqd::core::StatFitter fc(p);
  std::vector<std::array<double, kMaxH + 1>> made(n);
  std::array<double, kH.size()> ef{}, ep{}, em{};
  std::vector<double> mean(n);
  double m = x[0];
  std::size_t open = 0, counted = 0;
  for (std::size_t t = 0; t < n; ++t) {
    fc.observe(static_cast<std::int64_t>(t), x[t]);
    m += (x[t] - m) / std::min(static_cast<double>(t + 1), p.level_tau_s);
    mean[t] = m;
    for (int h = 1; h <= kMaxH; ++h) made[t][static_cast<std::size_t>(h)] = x[t] + fc.delta_W(h);
    if (t >= kFrom) {
      ++counted;
      open += fc.gate_open() ? 1 : 0;
    }
    for (std::size_t j = 0; j < kH.size(); ++j) {
      const auto h = static_cast<std::size_t>(kH[j]);
      if (t < kFrom + h) continue;
      ef[j] += std::abs(x[t] - made[t - h][h]);
      ep[j] += std::abs(x[t] - x[t - h]);
      em[j] += std::abs(x[t] - mean[t - h]);
    }
  }
  const auto scored = static_cast<double>(n - kFrom);
  std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.2f | %.0f/%.0f/%.0f | %.3f/%.3f/%.3f/%.3f |\n", file.c_str(),
              1 - ef[0] / ep[0], 1 - ef[1] / ep[1], 1 - ef[2] / ep[2], 1 - ef[3] / ep[3],
              static_cast<double>(open) / static_cast<double>(counted), ep[0] / scored, ep[1] / scored, ep[2] / scored,
              1 - em[0] / ep[0], 1 - em[1] / ep[1], 1 - em[2] / ep[2], 1 - em[3] / ep[3]);
}

}  // namespace

int main(int argc, char** argv) {
  eqd::core::StatFitParams p;
  p.horizon_s = 30;  // the default forecast_horizon_s; >= the 20 s scored here
  std::vector<std::string> files;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    const auto next = [&] { return a + 1 < argc ? std::string(argv[++a]) : std::string(); };
    if (arg == "--forget") {
      p.forget = std::atof(next().c_str());
    } else if (arg == "--level") {
      p.level_tau_s = std::atof(next().c_str());
    } else if (arg == "--gate-h") {
      p.gate_h_s = std::atoi(next().c_str());
    } else if (arg == "--skill-on") {
      p.skill_on = std::atof(next().c_str());
    } else if (arg == "--ridge") {
      p.ridge = std::atof(next().c_str());
    } else if (arg == "--gain") {
      p.gain = std::atof(next().c_str());
    } else if (arg == "-h" || arg == "--help") {
      std::printf(
          "usage: stat_skill [--forget L] [--level TAU] [--ridge R] [--gain G] [--gate-h H] [--skill-on S] "
          "FILE.csv...\n");
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "stat_skill: unknown option %s (--method and --order were the prototype's)\n", arg.c_str());
      return 2;
    } else {
      files.push_back(arg);
    }
  }
  std::printf(
      "| file | skill 2 s | 5 s | 10 s | 20 s | gate open | MAE persistence 2/5/10 s W | slow mean's skill 2/5/10/20 s "
      "|\n|---|---:|---:|---:|---:|---:|---|---|\n");
  for (const std::string& f : files) report(f, p);
  return 0;
}
