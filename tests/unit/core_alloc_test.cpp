// Proves that the control cycle does not allocate: the global operator new is replaced by one that
// counts, and the count must not move across cycles (including assign/release/set_params handling).
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

#include "../fakes/core_fixture.hpp"
#include "eqd/core/stat_forecasts.hpp"

namespace {
std::atomic<long> g_allocations{0};
}

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using namespace eqd::core;
using eqd::test::CoreFixture;

TEST_CASE("the control cycle never allocates", "[control_core][alloc]") {
  CoreFixture f(64);
  for (int i = 0; i < 48; ++i) {
    f.state[i] = ChannelState::running;
    f.power[i] = (i % 3 == 0 ? -900.0 : 250.0);
    if (i % 2 == 0) f.forecast[i] = (i % 4 == 0 ? 800.0F : -300.0F);  // announced schedules: path + median
  }
  // Warm-up outside the measured window (Catch2 itself allocates in REQUIRE).
  f.step();
  Request reqs[4];
  reqs[0].kind = RequestKind::assign;
  reqs[0].channel = 60;
  reqs[0].limits = CoreFixture::limits();
  reqs[1].kind = RequestKind::assign;
  reqs[1].channel = 61;
  reqs[1].limits = CoreFixture::limits();
  reqs[2].kind = RequestKind::set_params;
  reqs[2].params.tau_s = 11.0;
  reqs[3].kind = RequestKind::release;
  reqs[3].channel = 61;
  for (const Request& r : reqs) REQUIRE(f.core->submit(r));

  const long before = g_allocations.load();
  for (int k = 0; k < 3000; ++k) {
    f.step();                           // the fixture itself does not allocate either: vectors are sized up front
    if (k == 1500) f.fresh[5] = false;  // a test channel goes stale: hold path
    if (k == 2000) f.state[60] = ChannelState::fault;  // a buffer faults: exclusion path
    if (k == 1000) f.core->device_limits_slot(60).store(DeviceLimits{300.0F, 400.0F});  // its device's limits
  }
  const long after = g_allocations.load();
  CHECK(after - before == 0);
  // And the cycles did real work.
  CHECK(f.core->stats().cycles >= 3000);
  CHECK(f.core->bus(0).updates > 100);
  CHECK(f.core->channel(61).role == Role::test);
  // The announced path was in use (the law steered by its median, not by the measured free power).
  CHECK(f.core->bus(0).free_forecast_W != Approx(f.core->bus(0).free_W));
}

TEST_CASE("the control cycle never allocates with law planned, nor does the planner serving it",
          "[control_core][alloc][planner]") {
  BusParams p;
  p.law = LawKind::planned;
  CoreFixture f(64, p);
  for (int i = 0; i < 48; ++i) {
    f.state[i] = ChannelState::running;
    f.power[i] = (i % 3 == 0 ? -900.0 : 250.0);
    if (i % 2 == 0) f.forecast[i] = (i % 4 == 0 ? 800.0F : -300.0F);
  }
  REQUIRE(f.assign(60) == ResponseStatus::ok);
  REQUIRE(f.assign(61) == ResponseStatus::ok);
  PlanService service(1);  // allocates here, once
  f.step();
  const long before = g_allocations.load();
  for (int k = 0; k < 3000; ++k) {
    f.step();
    service.serve(f.core->plan_board());  // the planner thread's work between two cycles
    if (k == 2000) f.fresh[5] = false;    // a test channel goes stale: hold, then the adaptive fallback
  }
  const long after = g_allocations.load();
  CHECK(after - before == 0);
  CHECK(f.core->bus(0).plans_applied > 100);
}

TEST_CASE("the control cycle never allocates while it counts learned forecasts", "[control_core][alloc][predictor]") {
  CoreFixture f(32);
  for (int i = 0; i < 24; ++i) {
    f.state[i] = ChannelState::running;
    f.power[i] = (i % 3 == 0 ? -900.0 : 250.0);
  }
  f.step();
  const long before = g_allocations.load();
  for (int k = 0; k < 2000; ++k) {
    // What the predictor thread publishes (its own allocations are off the control thread).
    LearnedAhead a;
    a.made_s = f.now_ns / 1'000'000'000;
    a.horizon_s = 30;
    a.channels = 12;
    for (std::size_t h = 5; h <= 30; ++h) a.delta_W[h] = 1500.0F;
    // Its channels marked, so that the core reads their present power (refresh_learned) too.
    for (std::size_t i = 0; i < 12; ++i) f.core->learned().mark_path(i, a.made_s, true);
    f.core->learned().publish_ahead(0, a);
    f.step();
  }
  const long after = g_allocations.load();
  CHECK(after - before == 0);
  // The learned path was in use.
  CHECK(f.core->bus(0).free_forecast_W != Approx(f.core->bus(0).free_W));
}

TEST_CASE("the control cycle never allocates while it evaluates a statistical path, nor does the fit",
          "[control_core][alloc][stat_forecast]") {
  BusParams p;
  p.law = LawKind::planned;
  p.stat_forecast = true;
  CoreFixture f(32, p);
  for (int i = 0; i < 24; ++i) {
    f.state[i] = ChannelState::running;
    f.power[i] = (i % 3 == 0 ? -900.0 : 250.0);
  }
  REQUIRE(f.assign(30) == ResponseStatus::ok);
  PlanService service(1);  // allocates here, once
  StatForecasts fits(1);
  f.step();
  fits.tick(f.now_ns, *f.core);  // allocates the bus's fitter, once (the predictor thread's side)
  const long before = g_allocations.load();
  for (int k = 0; k < 2000; ++k) {
    f.power[0] = k % 200 < 100 ? -900.0 : 600.0;
    f.step();
    service.serve(f.core->plan_board());
    fits.tick(f.now_ns, *f.core);  // fits once a second, publishes its (gated) model
    // A usable model as the fit would publish once its gate opens (this load's gate would not open
    // within 200 s): the control thread evaluates it every second.
    StatModel m = fits.fitter(0)->model();
    m.usable = true;
    m.scale_W = 100.0;
    m.mean_W = f.core->bus(0).free_W - 2000.0;
    m.lo_W = -1e5;
    m.hi_W = 1e5;
    for (std::size_t h = 1; h <= 30; ++h) m.coef[h] = {0.0F, 0.0F, -0.02F * static_cast<float>(h)};
    f.core->stat_model_slot(0).store(m);
  }
  const long after = g_allocations.load();
  CHECK(after - before == 0);
  // The statistical path was in use.
  CHECK(f.core->bus(0).stat_path);
  CHECK(f.core->bus(0).plans_applied > 100);
}
