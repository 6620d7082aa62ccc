// Issue #17, caps mode: the net power is kept within [-export_limit_W, import_limit_W] and the buffers
// rest inside that band, with every law and every safety rule of the core.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../fakes/core_fixture.hpp"
#include "eqd/core/bus_law.hpp"

using namespace eqd::core;
using eqd::test::CoreFixture;

namespace {

std::vector<LawKind> registered() {
  std::vector<LawKind> out;
  std::istringstream names(law_names());
  std::string name;
  while (std::getline(names, name, ',')) {
    while (!name.empty() && name.front() == ' ') name.erase(name.begin());
    LawKind k{};
    REQUIRE(parse_law_kind(name.c_str(), k));
    out.push_back(k);
  }
  return out;
}

BusParams caps_params(LawKind law) {
  BusParams p;
  p.law = law;
  p.mode = BusMode::caps;
  p.import_limit_W = 1500.0;
  p.export_limit_W = 500.0;
  return p;
}

// One test channel (0) and one 2 kW buffer (1) on one bus, driven by the named law.
struct CapsRig {
  explicit CapsRig(const BusParams& p)
      : f(2, p, 1, [](std::uint16_t, const BusParams& q) { return make_bus_law(q.law); }) {
    f.state[0] = ChannelState::running;
    REQUIRE(f.assign(1) == ResponseStatus::ok);
  }
  // Runs `seconds` with the test channel at free_W; returns the buffers' throughput |P|·dt (J).
  double run(double free_W, double seconds) {
    f.power[0] = free_W;
    double moved_J = 0.0;
    for (int k = 0; k < static_cast<int>(seconds * 10.0 + 0.5); ++k) {
      f.step();
      moved_J += std::abs(f.power[1]) * 0.1;
    }
    return moved_J;
  }
  CoreFixture f;
};

}  // namespace

TEST_CASE("caps mode: the desired equalization is only the part of the free power outside the band", "[caps]") {
  BusParams p;
  p.mode = BusMode::caps;
  p.import_limit_W = 5000.0;
  p.export_limit_W = 1000.0;
  p.target_W = 700.0;  // not used in caps mode
  // Net power > 0 is import (free power drawn by charging test channels).
  CHECK(desired_eq_W(p, 0.0) == 0.0);
  CHECK(desired_eq_W(p, 4999.0) == 0.0);
  CHECK(desired_eq_W(p, 5000.0) == 0.0);
  CHECK(desired_eq_W(p, 7000.0) == -2000.0);  // discharge the buffers by the excess import
  CHECK(desired_eq_W(p, -1000.0) == 0.0);
  CHECK(desired_eq_W(p, -3500.0) == 2500.0);  // charge them by the excess export
  CHECK(residual_of(p, 4000.0) == 0.0);
  CHECK(residual_of(p, 6000.0) == 1000.0);
  CHECK(residual_of(p, -1500.0) == -500.0);
  // Balance mode: target_W - free, exactly as before the mode existed.
  p.mode = BusMode::balance;
  CHECK(desired_eq_W(p, 4000.0) == 700.0 - 4000.0);
  CHECK(residual_of(p, 4000.0) == 4000.0 - 700.0);
  // Both limits 0: caps is balance at 0 W.
  p.mode = BusMode::caps;
  p.import_limit_W = p.export_limit_W = 0.0;
  CHECK(desired_eq_W(p, 1234.0) == -1234.0);
  CHECK(desired_eq_W(p, -99.0) == 99.0);
}

TEST_CASE("caps mode: bad modes and limits are refused by validate()", "[caps]") {
  BusParams p;
  p.mode = static_cast<BusMode>(7);
  CHECK(std::string(validate(p, false)) == "mode: must be balance or caps");
  p.mode = BusMode::caps;
  CHECK(validate(p, false) == nullptr);
  p.import_limit_W = -1.0;
  CHECK(std::string(validate(p, false)).rfind("import_limit_W: must be within 0..1e7 W", 0) == 0);
  p.import_limit_W = std::nan("");
  CHECK(validate(p, false) != nullptr);
  p.import_limit_W = 1e7;
  CHECK(validate(p, false) == nullptr);
  p.export_limit_W = 2e7;
  CHECK(std::string(validate(p, false)).rfind("export_limit_W: must be within 0..1e7 W", 0) == 0);
  // The run-time row: a choice by name, refused out of range.
  const RuntimeParam& row = *find_runtime_param("mode");
  CHECK(find_runtime_choice(row, "caps") == 1);
  CHECK(find_runtime_choice(row, "balance") == 0);
  CHECK(find_runtime_choice(row, "Caps") == -1);
  CHECK(runtime_choice_name(row, 1.0) == std::string("caps"));
  CHECK(runtime_choice_name(row, 2.0) == nullptr);
  BusParams q;
  set_runtime_value(row, q, 5.0);
  CHECK(validate(q, false) != nullptr);
}

TEST_CASE("caps mode: every law rests inside the band and acts only on the excess", "[caps]") {
  for (LawKind law : registered()) {
    INFO("law " << to_string(law));
    CapsRig r(caps_params(law));
    // Inside the band from the start: the buffer never moves.
    CHECK(r.run(1000.0, 120.0) == 0.0);
    CHECK(r.f.core->bus(0).residual_W == 0.0);
    // 1 kW above the import limit: the buffer discharges by the excess, the net sits at the limit.
    r.run(2500.0, 120.0);
    CHECK(r.f.power[1] == Approx(-1000.0).margin(60.0));
    CHECK(r.f.core->bus(0).net_W <= 1500.0 + 60.0);
    CHECK(r.f.core->bus(0).net_W >= 1500.0 - 60.0);  // no more than the excess: the cap, not 0 W
    // Back inside the band: the buffer returns to rest (after the damped ramp).
    r.run(200.0, 150.0);
    CHECK(std::abs(r.f.power[1]) < 5.0);
    CHECK(r.f.core->bus(0).residual_W == 0.0);
    // 1 kW beyond the export limit: the buffer charges by the excess.
    r.run(-1500.0, 120.0);
    CHECK(r.f.power[1] == Approx(1000.0).margin(60.0));
    CHECK(r.f.core->bus(0).net_W == Approx(-500.0).margin(60.0));
    // More excess than the buffer can take: it gives all it has (2 kW), the rest stays in the grid.
    r.run(5000.0, 150.0);
    CHECK(r.f.power[1] == Approx(-2000.0).margin(1.0));
    CHECK(r.f.core->bus(0).residual_W == Approx(1500.0).margin(1.0));
  }
}

TEST_CASE("caps mode: inside the band the buffers move < 5 % of what balance mode moves", "[caps]") {
  // A load that wanders inside the band: balance mode chases it to 0 W, caps mode leaves it alone.
  const std::vector<double> load{1200.0, -300.0, 800.0, 100.0, 1400.0, -450.0, 600.0, 0.0};
  for (LawKind law : registered()) {
    INFO("law " << to_string(law));
    BusParams balance = caps_params(law);
    balance.mode = BusMode::balance;
    CapsRig caps_rig(caps_params(law)), balance_rig(balance);
    double caps_J = 0.0, balance_J = 0.0;
    for (double w : load) {
      caps_J += caps_rig.run(w, 90.0);
      balance_J += balance_rig.run(w, 90.0);
    }
    INFO("caps " << caps_J << " J, balance " << balance_J << " J");
    CHECK(balance_J > 100e3);
    CHECK(caps_J <= 0.05 * balance_J);
  }
}

TEST_CASE("caps mode: switching from balance at run time takes the buffers to rest through the ramp", "[caps]") {
  BusParams p = caps_params(LawKind::adaptive);
  p.mode = BusMode::balance;
  CapsRig r(p);
  r.run(1000.0, 120.0);
  REQUIRE(r.f.power[1] == Approx(-1000.0).margin(60.0));
  Request q;
  q.kind = RequestKind::set_params;
  q.params = caps_params(LawKind::adaptive);
  REQUIRE(r.f.request(q) == ResponseStatus::ok);
  // The damping applies to the way back too: no jump to 0 W in one step.
  r.run(1000.0, 1.0);
  CHECK(r.f.power[1] < -500.0);
  r.run(1000.0, 150.0);
  CHECK(std::abs(r.f.power[1]) < 5.0);
  // An invalid limit is refused and changes nothing.
  q.params.import_limit_W = -5.0;
  CHECK(r.f.request(q) == ResponseStatus::refused_invalid);
  CHECK(r.f.core->bus(0).params.import_limit_W == 1500.0);
}

TEST_CASE("caps mode: a stale test channel holds the buffers as in balance mode", "[caps]") {
  CapsRig r(caps_params(LawKind::adaptive));
  r.run(2500.0, 120.0);
  const double held = r.f.power[1];
  REQUIRE(held == Approx(-1000.0).margin(60.0));
  r.f.fresh[0] = false;  // the test channel's data stops: its last power is no longer trusted
  r.f.power[0] = 0.0;
  r.run(0.0, 10.0);
  CHECK(r.f.core->bus(0).status == BusStatus::holding);
  CHECK(r.f.power[1] == Approx(held).margin(1.0));
}
