// The contract of bus_law.hpp, checked for every registered law, and the core's guard around a law
// that breaks it. A new law gets these checks by being registered (src/core/bus_law.cpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../fakes/core_fixture.hpp"
#include "eqd/core/bus_law.hpp"

using namespace eqd::core;
using eqd::test::CoreFixture;

namespace {
constexpr std::int64_t kMs = 1'000'000;

std::vector<LawKind> registered() {
  std::vector<LawKind> out;
  std::istringstream names(law_names());
  std::string name;
  while (std::getline(names, name, ',')) {
    while (!name.empty() && name.front() == ' ') name.erase(name.begin());
    LawKind k{};
    REQUIRE(parse_law_kind(name.c_str(), k));
    CHECK(std::string(to_string(k)) == name);
    out.push_back(k);
  }
  return out;
}

LawInput input(std::int64_t now_ns, double free_W, double measured_W, double cap_W) {
  LawInput in;
  in.now_ns = now_ns;
  in.free_W = free_W;
  in.eq_measured_W = measured_W;
  in.capacity_charge_W = in.capacity_discharge_W = in.rated_W = cap_W;
  in.any_fresh = true;
  in.mode = cap_W > 0.0 ? BusStatus::ok : BusStatus::idle;
  return in;
}
}  // namespace

TEST_CASE("the registry knows every law by name and refuses unknown names", "[law]") {
  const std::vector<LawKind> kinds = registered();
  REQUIRE_FALSE(kinds.empty());
  for (LawKind k : kinds) {
    const auto law = make_bus_law(k);
    REQUIRE(law != nullptr);
    CHECK(std::string(law->name()) == to_string(k));
  }
  LawKind k{};
  CHECK_FALSE(parse_law_kind("pid", k));
  CHECK_FALSE(parse_law_kind("", k));
  CHECK_FALSE(parse_law_kind(nullptr, k));
  BusParams p;
  p.law = static_cast<LawKind>(200);
  CHECK(std::string(validate(p, true)) == "law: not a registered control law");
}

TEST_CASE("every registered law keeps its command within capacity on random inputs", "[law]") {
  for (LawKind kind : registered()) {
    INFO("law " << to_string(kind));
    const auto law = make_bus_law(kind);
    BusParams p;
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> free(-20000.0, 20000.0), cap(0.0, 8000.0);
    std::uniform_int_distribution<int> mode(0, 3), coin(0, 1);
    double measured = 0.0;
    for (int k = 0; k < 20000; ++k) {
      LawInput in = input(static_cast<std::int64_t>(k) * 100 * kMs, free(rng), measured, 0.0);
      in.capacity_charge_W = coin(rng) != 0 ? cap(rng) : 5000.0;
      in.capacity_discharge_W = coin(rng) != 0 ? cap(rng) : 5000.0;
      in.rated_W = 8000.0;
      in.samples_newer_than_command = coin(rng) != 0;
      const int m = mode(rng);
      in.mode = m == 0 ? BusStatus::ok : m == 1 ? BusStatus::holding : m == 2 ? BusStatus::ramp_down : BusStatus::idle;
      const LawOutput out = law->step(in, p);
      REQUIRE(std::isfinite(out.command_W));
      REQUIRE(out.command_W <= in.capacity_charge_W + 1e-9);
      REQUIRE(out.command_W >= -in.capacity_discharge_W - 1e-9);
      if (in.mode == BusStatus::idle) REQUIRE(out.command_W == 0.0);
      measured = out.command_W;
    }
  }
}

TEST_CASE("every registered law holds while holding and ramps to 0 W without swinging past it", "[law]") {
  for (LawKind kind : registered()) {
    INFO("law " << to_string(kind));
    const auto law = make_bus_law(kind);
    BusParams p;
    double cmd = 0.0;
    std::int64_t t = 0;
    for (int k = 0; k < 3000; ++k, t += 100 * kMs) cmd = law->step(input(t, -4000.0, cmd, 10000.0), p).command_W;
    REQUIRE(cmd > 3500.0);
    // Holding: the free power "changes" but is unknown; the command stays where it was.
    const double held = cmd;
    for (int k = 0; k < 300; ++k, t += 100 * kMs) {
      LawInput in = input(t, 6000.0, cmd, 10000.0);
      in.mode = BusStatus::holding;
      in.any_test_stale = true;
      cmd = law->step(in, p).command_W;
      REQUIRE(cmd == Approx(held).margin(1e-6));
    }
    // Ramp down: toward 0 W, never beyond the start magnitude nor past zero, there within 5 tau.
    for (int k = 0; k < static_cast<int>(50 * p.tau_s); ++k, t += 100 * kMs) {
      LawInput in = input(t, 6000.0, cmd, 10000.0);
      in.mode = BusStatus::ramp_down;
      in.any_fresh = false;
      cmd = law->step(in, p).command_W;
      REQUIRE(cmd <= held + 1e-6);
      REQUIRE(cmd >= -1e-6);
    }
    CHECK(std::abs(cmd) < 0.01 * 10000.0);
  }
}

namespace {
/// A law that breaks the contract, for the core's guard.
class RogueLaw final : public BusLaw {
 public:
  explicit RogueLaw(double answer_W) : answer_W_(answer_W) {}
  LawOutput step(const LawInput&, const BusParams&) noexcept override {
    LawOutput out;
    out.command_W = answer_W_;
    out.updated = true;
    ++counters_.updates;
    return out;
  }
  [[nodiscard]] LawCounters counters() const noexcept override { return counters_; }
  [[nodiscard]] const char* name() const noexcept override { return "rogue"; }

 private:
  double answer_W_;
  LawCounters counters_{};
};
}  // namespace

TEST_CASE("the core clamps a law's answer to the buffers' headroom and turns a non-finite one into 0 W",
          "[law][control_core]") {
  for (const double answer :
       {1e9, -1e9, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    INFO("the law answers " << answer);
    CoreFixture f(3, BusParams{}, 1,
                  [answer](std::uint16_t, const BusParams&) { return std::make_unique<RogueLaw>(answer); });
    f.state[0] = ChannelState::running;
    f.power[0] = -1000.0;
    REQUIRE(f.assign(1) == ResponseStatus::ok);
    REQUIRE(f.assign(2) == ResponseStatus::ok);
    f.run_s(5.0);
    for (ChannelIndex i : {1U, 2U}) {
      const Command c = f.core->command_slot(i).load();
      CHECK(std::isfinite(c.setpoint_W));
      CHECK(c.setpoint_W <= CoreFixture::limits().max_charge_W);
      CHECK(c.setpoint_W >= -CoreFixture::limits().max_discharge_W);
      if (!std::isfinite(answer)) CHECK(c.setpoint_W == 0.0);
    }
    CHECK(f.core->bus(0).updates > 0);  // the counters come from the law
  }
}

TEST_CASE("a factory that builds no law is refused when the core is built", "[law][control_core]") {
  CoreConfig cfg;
  cfg.buses.resize(1);
  cfg.channels.resize(1);
  cfg.make_law = [](std::uint16_t, const BusParams&) { return std::unique_ptr<BusLaw>{}; };
  CHECK_THROWS_WITH(ControlCore(cfg), Catch::Contains("bus 0") && Catch::Contains("no control law"));
}

TEST_CASE("set_params cannot change a bus's law on the control thread", "[law][control_core]") {
  CoreFixture f(2);
  f.step();
  Request r;
  r.id = 77;
  r.kind = RequestKind::set_params;
  r.bus = 0;
  r.params = f.core->bus(0).params;
  // Registered, but not the law this bus was built with.
  r.params.law = r.params.law == LawKind::adaptive ? LawKind::damped : LawKind::adaptive;
  REQUIRE(f.core->submit(r));
  f.step();
  Response resp;
  bool got = false;
  ResponseStatus status = ResponseStatus::ok;
  while (f.core->poll_response(resp)) {
    if (resp.id != 77) continue;
    got = true;
    status = resp.status;
  }
  REQUIRE(got);
  CHECK(status == ResponseStatus::refused_invalid);
}
