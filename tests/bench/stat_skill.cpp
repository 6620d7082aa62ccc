// stat_skill: offline skill of the statistical short-term forecast (laws/stat_forecast.hpp) on a bus's
// recorded free power (bench_laws' series_<scenario>.csv: columns t_s, free_W at 1 s). Prints, per file,
// skill = 1 - MAE(forecast) / MAE(persistence) at 2, 5, 10 and 20 s over the whole run after warm-up
// (every second, gate or not), and the share of seconds the skill gate was open.
// usage: stat_skill [--method persistence|iterated|direct] [--order P] [--forget L] [--level TAU]
//                   [--gate-h H] [--skill-on S] FILE.csv...
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "laws/stat_forecast.hpp"

int main(int argc, char** argv) {
  using eqd::bench::StatForecastParams;
  StatForecastParams p;
  std::vector<std::string> files;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    const auto next = [&] { return a + 1 < argc ? std::string(argv[++a]) : std::string(); };
    if (arg == "--method") {
      const std::string m = next();
      p.method = m == "persistence" ? StatForecastParams::Method::persistence
                 : m == "mean"      ? StatForecastParams::Method::mean
                 : m == "iterated"  ? StatForecastParams::Method::iterated
                                    : StatForecastParams::Method::direct;
    } else if (arg == "--order") {
      p.order = std::atoi(next().c_str());
    } else if (arg == "--forget") {
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
    } else {
      files.push_back(arg);
    }
  }
  constexpr std::array<int, 4> kH = {2, 5, 10, 20};
  std::printf(
      "| file | skill 2 s | 5 s | 10 s | 20 s | gate open | MAE persistence 2/5/10 s W | slow mean's skill 2/5/10/20 s "
      "|\n|---|---:|---:|---:|---:|---:|---|---|\n");
  for (const std::string& f : files) {
    std::ifstream in(f);
    std::string line;
    std::getline(in, line);
    std::vector<double> x;
    while (std::getline(in, line)) {
      std::stringstream ss(line);
      std::string t, v;
      std::getline(ss, t, ',');
      std::getline(ss, v, ',');
      x.push_back(std::atof(v.c_str()));
    }
    eqd::bench::StatForecaster fc(p);
    const std::size_t n = x.size();
    std::vector<std::array<double, 21>> made(n);
    std::array<double, 4> ef{}, ep{}, em{};
    std::vector<double> mean(n);
    double m = x.empty() ? 0.0 : x[0];
    std::size_t open = 0, counted = 0;
    constexpr std::size_t kFrom = 120;  // warm-up not scored
    for (std::size_t t = 0; t < n; ++t) {
      fc.observe(static_cast<std::int64_t>(t), x[t]);
      m += (x[t] - m) / std::min(static_cast<double>(t + 1), p.level_tau_s);
      mean[t] = m;
      for (int h = 1; h <= 20; ++h) made[t][static_cast<std::size_t>(h)] = x[t] + fc.delta(h);
      if (t >= kFrom) {
        ++counted;
        open += fc.gate_open() ? 1 : 0;
      }
      for (std::size_t j = 0; j < kH.size(); ++j) {
        const std::size_t h = static_cast<std::size_t>(kH[j]);
        if (t < kFrom + h) continue;
        ef[j] += std::abs(x[t] - made[t - h][h]);
        ep[j] += std::abs(x[t] - x[t - h]);
        em[j] += std::abs(x[t] - mean[t - h]);
      }
    }
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.2f | %.0f/%.0f/%.0f | %.3f/%.3f/%.3f/%.3f |\n", f.c_str(),
                1 - ef[0] / ep[0], 1 - ef[1] / ep[1], 1 - ef[2] / ep[2], 1 - ef[3] / ep[3],
                counted ? static_cast<double>(open) / static_cast<double>(counted) : 0.0,
                ep[0] / static_cast<double>(n - kFrom), ep[1] / static_cast<double>(n - kFrom),
                ep[2] / static_cast<double>(n - kFrom), 1 - em[0] / ep[0], 1 - em[1] / ep[1], 1 - em[2] / ep[2],
                1 - em[3] / ep[3]);
  }
  return 0;
}
