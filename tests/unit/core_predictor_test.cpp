// Learned forecasts (predictor.hpp): pattern and step-keyed prediction on synthetic histories whose
// future is known, the skill gate, persistence of the learned state, and the path into the control core.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "eqd/core/control_core.hpp"
#include "eqd/core/predictor.hpp"

using namespace eqd::core;

namespace {
constexpr std::uint32_t kNoCycle = Sample::kNoIndex;
constexpr std::uint16_t kNoStep = Sample::kNoStep;

// A repeating load with a 300 s period and no simple shape: the sum of a few incommensurate sines
// re-started every period, so only the period itself makes it predictable.
double periodic_W(std::int64_t t) {
  const double u = static_cast<double>(t % 300);
  return 1500.0 * std::sin(u / 7.3) + 700.0 * std::sin(u / 2.1 + 1.0) + 300.0 * std::cos(u / 31.0);
}

// A cycle-life program with step numbers: 0 = CP discharge −1000 W that ends on a (simulated) voltage
// cutoff 2 s earlier every cycle (fade), 1 = rest 60 s, 2 = CC charge +800 W for 300 s.
struct Program {
  std::int64_t t0 = 0;
  struct Pos {
    std::uint32_t cycle;
    std::uint16_t step;
    double W;
  };
  std::vector<Pos> seconds;  // the whole program, second by second
  explicit Program(int cycles) {
    for (int c = 0; c < cycles; ++c) {
      const int discharge_s = 400 - 2 * c;
      for (int s = 0; s < discharge_s; ++s) seconds.push_back({static_cast<std::uint32_t>(c), 0, -1000.0});
      for (int s = 0; s < 60; ++s) seconds.push_back({static_cast<std::uint32_t>(c), 1, 0.0});
      for (int s = 0; s < 300; ++s) seconds.push_back({static_cast<std::uint32_t>(c), 2, 800.0});
    }
  }
};
}  // namespace

TEST_CASE("predictor: a repeating load is replayed from its own history", "[predictor]") {
  PredictorParams p;
  ChannelPredictor cp;
  const std::uint32_t H = 30;
  double err = 0.0, err_pers = 0.0;
  int n = 0, published = 0;
  for (std::int64_t t = 0; t < 4000; ++t) {
    const float f = cp.observe(p, t, static_cast<float>(periodic_W(t)), kNoCycle, kNoStep, H);
    if (t >= 900) {  // three periods in: the lag is found and the gate is open
      if (!std::isnan(f)) ++published;
      err += std::abs((std::isnan(f) ? periodic_W(t) : f) - periodic_W(t + H));
      err_pers += std::abs(periodic_W(t) - periodic_W(t + H));
      ++n;
    }
  }
  CHECK(published == n);
  CHECK(err / n < 1.0);  // exact up to float rounding: the period is a whole number of seconds
  CHECK(err_pers / n > 500.0);
  CHECK(cp.skill() > 0.9);
  CHECK(cp.gate_open());
  CHECK_FALSE(cp.step_keyed());
}

TEST_CASE("predictor: without repetition the gate stays closed (nothing announced)", "[predictor]") {
  PredictorParams p;
  ChannelPredictor cp;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> level(-3000.0, 3000.0);
  std::uniform_int_distribution<int> hold(5, 90);
  double W = 0.0;
  int left = 0, published = 0;
  for (std::int64_t t = 0; t < 7200; ++t) {
    if (left-- <= 0) {
      W = level(rng);
      left = hold(rng);
    }
    if (!std::isnan(cp.observe(p, t, static_cast<float>(W), kNoCycle, kNoStep, 30)) && t > 1800) ++published;
  }
  CHECK(cp.skill() < p.skill_on);
  CHECK(published < 60);  // a lucky stretch may open it briefly; never for long
}

TEST_CASE("predictor: the gate closes when a good predictor turns bad", "[predictor]") {
  PredictorParams p;
  ChannelPredictor cp;
  for (std::int64_t t = 0; t < 1500; ++t)
    (void)cp.observe(p, t, static_cast<float>(periodic_W(t)), kNoCycle, kNoStep, 30);
  REQUIRE(cp.gate_open());
  // The program changes to one-off random levels: the replayed period is now wrong.
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> level(-3000.0, 3000.0);
  double W = 0.0;
  std::int64_t closed_at = -1;
  for (std::int64_t t = 1500; t < 6000 && closed_at < 0; ++t) {
    if (t % 17 == 0) W = level(rng);
    (void)cp.observe(p, t, static_cast<float>(W), kNoCycle, kNoStep, 30);
    if (!cp.gate_open()) closed_at = t;
  }
  CHECK(closed_at > 0);
  CHECK(closed_at < 1500 + 900);  // within minutes (the fast window is skill_tau_s / 8 = 150 s)
}

TEST_CASE("predictor: step-keyed replay knows when a step ends and what follows, with drift", "[predictor]") {
  PredictorParams p;
  ChannelPredictor cp;
  const Program prog(6);
  const std::uint32_t H = 30;
  int checked = 0;
  for (std::size_t t = 0; t + H < prog.seconds.size(); ++t) {
    const auto& now = prog.seconds[t];
    const float f = cp.observe(p, static_cast<std::int64_t>(t), static_cast<float>(now.W), now.cycle, now.step, H);
    if (now.cycle >= 3) {
      // From the third cycle on (two occurrences of each step seen, so the drift is known): exact,
      // including the discharge that ends 2 s earlier than last time.
      REQUIRE_FALSE(std::isnan(f));
      CHECK(f == Approx(prog.seconds[t + H].W).margin(1e-3));
      ++checked;
    }
  }
  CHECK(checked > 1000);
  CHECK(cp.step_keyed());
  CHECK(cp.skill() > 0.9);
  CHECK(cp.memory_bytes() < 32 * 1024);
}

TEST_CASE("predictor: a step seen for the first time is forecast from its own repetition", "[predictor]") {
  // Step 0 repeats a 300 s pattern within itself for 3000 s (a pulse step, a looped profile), then a
  // 60 s rest (step 1), then step 0 again. Its first occurrence has no trace: the pattern matcher runs
  // on the step's own timeline; once step 0 has a trace, the ring's memory is given back.
  PredictorParams p;
  ChannelPredictor cp;
  const std::uint32_t H = 30;
  auto at = [](std::int64_t t) {
    const std::int64_t u = t % 3060;
    return std::pair<std::uint16_t, double>{u < 3000 ? 0 : 1, u < 3000 ? periodic_W(u) : 0.0};
  };
  double err = 0.0;
  int n = 0;
  std::size_t bytes_first = 0, bytes_second = 0;
  // The program starts while the predictor watches (else its first step counts as joined mid-way).
  for (std::int64_t t = -10; t < 0; ++t) (void)cp.observe(p, t + 10, 0.0F, kNoCycle, kNoStep, H);
  for (std::int64_t t = 0; t < 3060 + 2000; ++t) {
    const auto [step, W] = at(t);
    (void)cp.observe(p, t + 10, static_cast<float>(W), static_cast<std::uint32_t>(t / 3060), step, H);
    if (t >= 900 && t + H < 3000) {  // three periods in, and the forecast still within the step
      const float f = cp.forecast_ahead(H);
      REQUIRE_FALSE(std::isnan(f));
      err += std::abs(static_cast<double>(f) - at(t + H).second);
      ++n;
    }
    if (t == 2500) bytes_first = cp.memory_bytes();
    if (t == 3060 + 1000) bytes_second = cp.memory_bytes();
  }
  CHECK(err / n < 1.0);  // exact up to float rounding
  CHECK(cp.gate_open());
  CHECK(cp.step_keyed());
  // The ring (3072 + 2700 floats) was held in the first occurrence and is released in the second,
  // which holds step 0's trace instead (at most trace_cap floats).
  const std::size_t ring_bytes = (p.step_ring_s + p.step_max_lag_s) * sizeof(float);
  CHECK(bytes_first >= ring_bytes);
  CHECK(bytes_second + ring_bytes <= bytes_first + p.trace_cap * sizeof(float));
}

TEST_CASE("predictor: a program that starts after seconds without step numbers records its first step", "[predictor]") {
  // 100 s idle (no step reported), then the cycle-life program. Step 0 of the first cycle is seen from
  // its start, so in the second cycle the predictor knows when step 0 ends (400 s last time): forecasts
  // that reach past 400 s into the step are the rest's 0 W, which only step 0's trace can tell.
  PredictorParams p;
  ChannelPredictor cp;
  const Program prog(3);
  const std::uint32_t H = 30;
  for (std::int64_t t = 0; t < 100; ++t) (void)cp.observe(p, t, 0.0F, kNoCycle, kNoStep, H);
  int into_rest = 0, right = 0;
  std::int64_t in_step = 0;
  for (std::size_t k = 0; k < prog.seconds.size(); ++k) {
    const auto& now = prog.seconds[k];
    in_step = k > 0 && prog.seconds[k - 1].step == now.step ? in_step + 1 : 0;
    (void)cp.observe(p, 100 + static_cast<std::int64_t>(k), static_cast<float>(now.W), now.cycle, now.step, H);
    if (now.cycle == 1 && now.step == 0 && in_step + H >= 400 && in_step + H < 458) {
      ++into_rest;
      if (cp.forecast_ahead(H) == Approx(0.0).margin(1e-3)) ++right;
    }
  }
  CHECK(into_rest > 10);
  CHECK(right == into_rest);
}

TEST_CASE("predictor: a long step is kept at a coarser resolution within trace_cap", "[predictor]") {
  PredictorParams p;
  p.trace_cap = 64;
  ChannelPredictor cp;
  // Step 0: a 1000 s ramp; step 1: 100 s at 0 W; repeated.
  std::int64_t t = 0;
  for (std::uint32_t c = 0; c < 3; ++c) {
    for (int s = 0; s < 1000; ++s, ++t) (void)cp.observe(p, t, static_cast<float>(s), c, 0, 20);
    for (int s = 0; s < 100; ++s, ++t) (void)cp.observe(p, t, 0.0F, c, 1, 20);
  }
  // Mid-ramp of the fourth cycle: the replay interpolates the coarse trace.
  float f = 0.0F;
  for (int s = 0; s <= 500; ++s, ++t) f = cp.observe(p, t, static_cast<float>(s), 3, 0, 20);
  REQUIRE_FALSE(std::isnan(f));
  CHECK(f == Approx(520.0).margin(16.0));
  CHECK(cp.memory_bytes() < 4 * 1024);
}

TEST_CASE("predictor: learned state survives a save and load exactly, and corrupt data is refused", "[predictor]") {
  PredictorParams p;
  ChannelPredictor a;
  const Program prog(4);
  for (std::size_t t = 0; t < 2000; ++t) {
    const auto& s = prog.seconds[t];
    (void)a.observe(p, static_cast<std::int64_t>(t), static_cast<float>(s.W), s.cycle, s.step, 30);
  }
  std::vector<std::uint8_t> blob;
  a.save(blob);
  ChannelPredictor b;
  REQUIRE(b.load(blob));
  REQUIRE_FALSE(std::isnan(a.skill()));
  CHECK(b.skill() == Approx(a.skill()));
  for (std::size_t t = 2000; t < prog.seconds.size(); ++t) {
    const auto& s = prog.seconds[t];
    const float fa = a.observe(p, static_cast<std::int64_t>(t), static_cast<float>(s.W), s.cycle, s.step, 30);
    const float fb = b.observe(p, static_cast<std::int64_t>(t), static_cast<float>(s.W), s.cycle, s.step, 30);
    REQUIRE(std::isnan(fa) == std::isnan(fb));
    if (!std::isnan(fa)) REQUIRE(fa == fb);
  }
  // eqd restarts (another monotonic clock: here 10^6 s later): the restored learner forecasts again
  // from the next step boundary on, exactly, without relearning a cycle.
  {
    ChannelPredictor r;
    REQUIRE(r.load(blob));
    const std::int64_t shift = 1'000'000;
    std::size_t first_exact = 0;
    for (std::size_t t = 2000; t + 30 < prog.seconds.size(); ++t) {
      const auto& s = prog.seconds[t];
      const float f = r.observe(p, static_cast<std::int64_t>(t) + shift, static_cast<float>(s.W), s.cycle, s.step, 30);
      // A step change foreseen (not persistence): the replay works again.
      const bool change = prog.seconds[t + 30].W != s.W;
      if (change && !std::isnan(f) && f == Approx(prog.seconds[t + 30].W).margin(1e-3) && first_exact == 0)
        first_exact = t;
    }
    CHECK(first_exact > 2000);
    CHECK(first_exact < 2000 + 800);  // within one program cycle (760 s), not after relearning
  }
  // Pattern mode too.
  ChannelPredictor c;
  for (std::int64_t t = 0; t < 700; ++t)
    (void)c.observe(p, t, static_cast<float>(periodic_W(t)), kNoCycle, kNoStep, 30);
  std::vector<std::uint8_t> blob2;
  c.save(blob2);
  ChannelPredictor d;
  REQUIRE(d.load(blob2));
  for (std::int64_t t = 700; t < 1000; ++t) {
    const float fc = c.observe(p, t, static_cast<float>(periodic_W(t)), kNoCycle, kNoStep, 30);
    const float fd = d.observe(p, t, static_cast<float>(periodic_W(t)), kNoCycle, kNoStep, 30);
    REQUIRE(std::isnan(fc) == std::isnan(fd));
    if (!std::isnan(fc)) REQUIRE(fc == fd);
  }

  // A learner that has seen only a few seconds (eqd stopped soon after it started) has empty traces:
  // they round-trip too (an empty vector's data() may be null: memcpy must not get it, UBSan checks).
  {
    ChannelPredictor young;
    for (std::int64_t t = 0; t < 3; ++t) (void)young.observe(p, t, 100.0F, kNoCycle, kNoStep, 30);
    std::vector<std::uint8_t> blob3;
    young.save(blob3);
    ChannelPredictor restored;
    CHECK(restored.load(blob3));
  }

  SECTION("truncated") {
    for (std::size_t cut : {std::size_t{0}, std::size_t{3}, blob.size() / 2, blob.size() - 1}) {
      ChannelPredictor e;
      CHECK_FALSE(e.load(std::span<const std::uint8_t>(blob.data(), cut)));
      CHECK(e.memory_bytes() == 0);
    }
  }
  SECTION("trailing bytes, wrong magic, absurd length") {
    auto longer = blob;
    longer.push_back(0);
    ChannelPredictor e;
    CHECK_FALSE(e.load(longer));
    auto bad = blob;
    bad[0] ^= 0xFF;
    CHECK_FALSE(e.load(bad));
    auto huge = blob2;
    // The first float vector's length follows the fixed header: 4+4+8+4+4+1+1+8 bytes.
    huge[34] = 0xFF;
    huge[35] = 0xFF;
    huge[36] = 0xFF;
    CHECK_FALSE(e.load(huge));
  }
}

TEST_CASE("predictor: the control core steers by a fresh learned path, and an announcement still counts",
          "[predictor][core]") {
  CoreConfig cfg;
  BusParams bp;
  bp.use_forecast = true;
  bp.learn_forecast = true;
  bp.forecast_horizon_s = 30;
  cfg.buses.push_back(bp);
  cfg.channels.resize(2);
  ControlCore core(cfg);
  const std::int64_t s = 1'000'000'000;
  double power1_W = 1000.0;  // channel 1's power now
  auto feed = [&](std::int64_t now_ns, float announced) {
    for (ChannelIndex i = 0; i < 2; ++i) {
      Sample smp;
      smp.valid = true;
      smp.state = ChannelState::running;
      smp.power_W = i == 1 ? power1_W : 1000.0;
      smp.voltage_V = 50.0;
      smp.receive_time_ns = now_ns;
      smp.forecast_W = i == 0 ? announced : std::numeric_limits<float>::quiet_NaN();
      core.sample_slot(i).store(smp);
    }
  };
  const float none = std::numeric_limits<float>::quiet_NaN();
  // Nothing announced, nothing learned: the path is unused (free_forecast = free).
  for (int k = 1; k <= 40; ++k) {
    feed(k * s, none);
    core.cycle(k * s);
  }
  CHECK(core.bus(0).free_forecast_W == Approx(2000.0));
  // A learned path: from 10 s ahead on, channel 1 is expected 4000 W lower; refreshed every second.
  // Channel 1 is in it (marked, as the predictor does, before the path is published), drawing 1000 W
  // when it was made.
  auto learned = [&core](std::int64_t made_s) {
    LearnedAhead a;
    a.made_s = made_s;
    a.horizon_s = 30;
    a.channels = 1;
    a.present_W = 1000.0;
    for (std::size_t h = 10; h <= 30; ++h) a.delta_W[h] = -4000.0F;
    core.learned().mark_path(0, made_s, false);
    core.learned().mark_path(1, made_s, true);
    return a;
  };
  for (int k = 41; k <= 60; ++k) {
    core.learned().publish_ahead(0, learned(k));
    feed(k * s, none);
    core.cycle(k * s);
  }
  // Window [now, now + 30]: 10 seconds as now, 21 at -2000 W: the median is -2000 W, at once.
  CHECK(core.bus(0).free_forecast_W == Approx(2000.0 - 4000.0));
  // Channel 1 (a fast load) draws 3000 W now, a second after the path was made for 1000 W: its present
  // power is replaced by the path's expectation (1000 - 4000 W), not shifted by its change (which would
  // give 0 W: the whole window moving with a load's 1 s jitter).
  power1_W = 3000.0;
  core.learned().publish_ahead(0, learned(61));
  feed(61 * s, none);
  core.cycle(61 * s);
  CHECK(core.bus(0).free_forecast_W == Approx(1000.0 + 1000.0 - 4000.0));
  // A channel not marked as in the path is taken as it is now: with none marked, the path's change is
  // added to the present (the predictor's marks and path go together).
  LearnedAhead unmarked = learned(62);
  core.learned().mark_path(1, 62, false);
  core.learned().publish_ahead(0, unmarked);
  feed(62 * s, none);
  core.cycle(62 * s);
  CHECK(core.bus(0).free_forecast_W == Approx(4000.0 + 1000.0 - 4000.0));
  power1_W = 1000.0;
  for (int k = 63; k <= 70; ++k) {
    core.learned().publish_ahead(0, learned(k));
    feed(k * s, none);
    core.cycle(k * s);
  }
  // The predictor stops: 2 s later the path is stale, nothing is learned, the law uses the present.
  for (int k = 71; k <= 73; ++k) {
    feed(k * s, none);
    core.cycle(k * s);
  }
  CHECK(core.bus(0).free_forecast_W == Approx(2000.0));
  // A path made for another horizon is not used.
  LearnedAhead other = learned(74);
  other.horizon_s = 20;
  core.learned().publish_ahead(0, other);
  feed(74 * s, none);
  core.cycle(74 * s);
  CHECK(core.bus(0).free_forecast_W == Approx(2000.0));
  // An announcement and a learned path together: channel 0 announces -1000 W, channel 1 is learned.
  for (int k = 75; k <= 120; ++k) {
    core.learned().publish_ahead(0, learned(k));
    feed(k * s, -1000.0F);
    core.cycle(k * s);
  }
  CHECK(core.bus(0).free_forecast_W == Approx(-1000.0 + 1000.0 - 4000.0));
  // learn_forecast off: the learned path is ignored.
  Request r;
  r.kind = RequestKind::set_params;
  r.params = bp;
  r.params.learn_forecast = false;
  REQUIRE(core.submit(r));
  for (int k = 121; k <= 160; ++k) {
    core.learned().publish_ahead(0, learned(k));
    feed(k * s, none);
    core.cycle(k * s);
  }
  CHECK(core.bus(0).free_forecast_W == Approx(2000.0));
}

TEST_CASE("predictor: a channel's mark says which path it is in, also while the next is being marked",
          "[predictor][core]") {
  LearnedForecasts lf(2, 1);
  CHECK_FALSE(lf.in_path(0, 10));
  lf.mark_path(0, 10, true);
  lf.mark_path(1, 10, false);
  CHECK(lf.in_path(0, 10));
  CHECK_FALSE(lf.in_path(1, 10));
  // The predictor marks second 11 (channel 0 leaves, channel 1 joins) while a reader holds path 10.
  lf.mark_path(0, 11, false);
  lf.mark_path(1, 11, true);
  CHECK(lf.in_path(0, 10));
  CHECK_FALSE(lf.in_path(1, 10));
  CHECK_FALSE(lf.in_path(0, 11));
  CHECK(lf.in_path(1, 11));
  // Older paths, paths not made yet, and a skipped second know nothing.
  CHECK_FALSE(lf.in_path(1, 9));
  CHECK_FALSE(lf.in_path(1, 12));
  lf.mark_path(1, 13, true);
  CHECK_FALSE(lf.in_path(1, 12));  // path 12 was never marked: the bit kept is not its
  CHECK_FALSE(lf.in_path(1, -1));
}

TEST_CASE("predictor: Predictor::tick learns test channels only and publishes skills", "[predictor][core]") {
  CoreConfig cfg;
  BusParams bp;
  bp.forecast_horizon_s = 20;
  cfg.buses.push_back(bp);
  cfg.channels.resize(3);
  cfg.channels[2].assigned = true;  // a buffer: never learned
  cfg.channels[2].limits.max_charge_W = cfg.channels[2].limits.max_discharge_W = 1000.0;
  cfg.channels[2].limits.v_min_V = 40.0;
  cfg.channels[2].limits.v_max_V = 60.0;
  ControlCore core(cfg);
  Predictor pred(3);
  const std::int64_t s = 1'000'000'000;
  for (std::int64_t k = 1; k < 4000; ++k) {
    for (ChannelIndex i = 0; i < 3; ++i) {
      Sample smp;
      smp.valid = true;
      smp.state = i == 2 ? ChannelState::equalizing : ChannelState::running;
      smp.equalization_mode = i == 2;
      smp.voltage_V = 50.0;
      smp.power_W = i == 0 ? periodic_W(k) : (i == 1 ? 100.0 : 0.0);
      smp.receive_time_ns = k * s;
      core.sample_slot(i).store(smp);
    }
    core.cycle(k * s);
    pred.tick(k * s, core);
  }
  CHECK(core.learned().in_use(0));
  CHECK(core.learned().skill(0) > 0.9F);
  CHECK(core.learned().forecast(0).power_W == Approx(periodic_W(3999 + 20)).margin(1.0));
  // The bus's learned path: channel 0's expected change second by second (efficiency 1), channel 1
  // constant (its gate may be open: no change), the buffer nothing.
  const LearnedAhead a = core.learned().ahead(0);
  CHECK(a.made_s == 3999);
  CHECK(a.horizon_s == 20);
  for (std::uint32_t h : {1U, 7U, 20U})
    CHECK(a.delta_W[h] == Approx(periodic_W(3999 + h) - periodic_W(3999)).margin(1.0));
  CHECK_FALSE(core.learned().in_use(2));
  CHECK(std::isnan(core.learned().skill(2)));
  CHECK(pred.channel(2).memory_bytes() == 0);
  CHECK(core.learned().bus_skill(0) > 0.5F);
}
