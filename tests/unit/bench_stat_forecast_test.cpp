// The benchmark's statistical short-term forecast (tests/bench/laws/stat_forecast.hpp) on synthetic
// signals whose best forecast is known: the fit recovers an AR process's coefficients, forecasts an
// AR(1) level better than persistence, and its skill gate stays shut on a random walk (nothing beats
// persistence there) and on white noise differences alike.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "laws/stat_forecast.hpp"

using eqd::bench::StatForecaster;
using eqd::bench::StatForecastParams;

TEST_CASE("stat forecast: the iterated fit recovers the coefficients of an AR(2) process of differences",
          "[bench][statfc]") {
  StatForecastParams p;
  p.method = StatForecastParams::Method::iterated;
  p.order = 2;
  p.forget = 0.9995;  // a stationary process: long memory
  p.gain = 1.0;
  p.gate_h_s = 2;  // differences of an AR(2) decorrelate within seconds: its skill is at short horizons
  StatForecaster f(p);
  std::mt19937 rng(1);
  std::normal_distribution<double> e(0.0, 100.0);
  double x = 0.0, d1 = 0.0, d2 = 0.0;
  for (int t = 0; t < 20000; ++t) {
    const double d = 1.2 * d1 - 0.5 * d2 + e(rng);
    x += d;
    d2 = d1;
    d1 = d;
    f.observe(t, x);
  }
  // The features are the differences scaled by one common factor, so the coefficients are the process's.
  CHECK(f.coefficients(1)[0] == Approx(1.2).margin(0.05));
  CHECK(f.coefficients(1)[1] == Approx(-0.5).margin(0.05));
  CHECK(f.skill() > 0.2);  // 1 - MAE / MAE(persistence) at 2 s (0.33 on this process offline)
  CHECK(f.gate_open());
}

TEST_CASE("stat forecast: the direct fit of an AR(1) level forecasts its mean reversion", "[bench][statfc]") {
  StatForecastParams p;
  p.order = 1;
  p.forget = 0.999;
  p.gain = 1.0;
  p.level_tau_s = 1e6;  // the slow mean stays at the process's mean, 0
  StatForecaster f(p);
  std::mt19937 rng(2);
  std::normal_distribution<double> e(0.0, 300.0);
  double x = 0.0;
  double err_f = 0.0, err_p = 0.0;
  double made = 0.0, made_at = 0.0;
  for (int t = 0; t < 20000; ++t) {
    x = 0.9 * x + e(rng);
    if (t >= 5000 && t % 10 == 0) {
      if (t > 5000) {
        err_f += std::abs(x - made);
        err_p += std::abs(x - made_at);
      }
    }
    f.observe(t, x);
    if (t >= 5000 && t % 10 == 0) {
      made = x + f.delta(10);
      made_at = x;
    }
  }
  // x(t+1) - x(t) = -0.1 x(t) + e: the level's coefficient at h = 1 is -0.1 (the differences' 0).
  CHECK(f.coefficients(1)[1] == Approx(-0.1).margin(0.03));
  CHECK(std::abs(f.coefficients(1)[0]) < 0.05);
  // At 10 s the best forecast is 0.9^10 x = 0.35 x, whose MAE is sqrt(0.88 / 1.30) = 0.82 of
  // persistence's; the fit (forgetting, ridge, a slow mean of its own) gets within a few % of it.
  CHECK(err_f < 0.9 * err_p);
  CHECK(f.gate_open());
}

TEST_CASE("stat forecast: the skill gate stays shut on a random walk", "[bench][statfc]") {
  StatForecaster f(StatForecastParams{});  // the benchmark's settings (forgetting 0.99, gate at 20 s)
  std::mt19937 rng(3);
  std::normal_distribution<double> e(0.0, 200.0);
  double x = 0.0;
  int open = 0;
  for (int t = 0; t < 20000; ++t) {
    x += e(rng);
    f.observe(t, x);
    if (t >= 1000 && f.gate_open()) ++open;
  }
  // Nothing beats persistence on a random walk: the fit's noise makes its skill a little negative and
  // the gate (on above 0.05) is shut most of the time. Not always: scored over 300 s at 20 s ahead the
  // skill is an average of ~15 independent errors and crosses 0.05 now and then (9 % of the seconds
  // with this seed), which is why the benchmark's law gate exists as well.
  CHECK(f.skill() < 0.02);
  CHECK(open < 19000 * 15 / 100);
}

TEST_CASE("stat forecast: a forecast never leaves the range of the last 120 s", "[bench][statfc]") {
  StatForecastParams p;
  p.gain = 10.0;  // a wildly overshooting forecast
  StatForecaster f(p);
  std::mt19937 rng(4);
  std::normal_distribution<double> e(0.0, 300.0);
  std::vector<double> hist;
  for (int t = 0; t < 3000; ++t) {
    const double x = 0.9 * (hist.empty() ? 0.0 : hist.back()) + e(rng);
    hist.push_back(x);
    f.observe(t, x);
    // The range of the last 120 s (this second included).
    const auto first = hist.end() - std::min<std::ptrdiff_t>(120, static_cast<std::ptrdiff_t>(hist.size()));
    const double lo = *std::min_element(first, hist.end()), hi = *std::max_element(first, hist.end());
    for (int h = 1; h <= p.horizon_s; ++h) {
      REQUIRE(std::isfinite(f.delta(h)));
      REQUIRE(x + f.delta(h) >= lo - 1e-9);
      REQUIRE(x + f.delta(h) <= hi + 1e-9);
    }
  }
}
