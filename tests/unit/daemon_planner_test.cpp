// The planner thread against a live core: a bus with law `planned` and an announced path asks from the
// control thread (here the test's), the planner thread answers, the law applies the plans; stopped,
// the law falls back to the adaptive law and the bus stays balanced. Runs under TSan in CI (the board
// is shared by two threads).
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <thread>

#include "../fakes/core_fixture.hpp"
#include "eqd/daemon/planner_thread.hpp"

using namespace eqd;
using eqd::test::CoreFixture;

TEST_CASE("planner thread: answers a live core's asks, and the law outlives it", "[daemon][planner]") {
  core::BusParams p;
  p.law = core::LawKind::planned;
  p.forecast_horizon_s = 30;
  CoreFixture f(3, p);
  REQUIRE(f.core->plans());
  // A test channel discharging 1200 W that announces it will go on doing so; two buffers.
  f.state[0] = core::ChannelState::running;
  f.power[0] = -1200.0;
  f.forecast[0] = -1200.0F;
  REQUIRE(f.assign(1) == core::ResponseStatus::ok);
  REQUIRE(f.assign(2) == core::ResponseStatus::ok);

  daemon::PlannerThread planner(*f.core, 5);
  planner.start();
  REQUIRE(planner.running());
  // 60 s of virtual time in ~3 s of real time: the thread polls every 5 ms.
  for (int k = 0; k < 600; ++k) {
    f.step();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const std::uint64_t applied = f.core->bus(0).plans_applied;
  CHECK(applied > 10);
  CHECK(planner.stats().plans.load() >= applied);
  CHECK(f.power[1] + f.power[2] == Approx(1200.0).margin(60.0));  // buffers absorb what the test exports

  // Stopped: no more plans; the law holds two asks, then the adaptive law takes the bus on.
  planner.stop();
  CHECK_FALSE(planner.running());
  f.power[0] = -600.0;
  f.forecast[0] = -600.0F;
  f.run_s(120.0);
  CHECK(f.core->bus(0).plans_applied <= applied + 1);  // at most the answer published before the stop
  CHECK(f.power[1] + f.power[2] == Approx(600.0).margin(60.0));
}

TEST_CASE("planner thread: not started where no bus plans", "[daemon][planner]") {
  core::BusParams adaptive;
  adaptive.law = core::LawKind::adaptive;  // the default is planned
  CoreFixture f(2, adaptive);
  REQUIRE_FALSE(f.core->plans());
  daemon::PlannerThread planner(*f.core);
  planner.start();
  CHECK_FALSE(planner.running());
}
