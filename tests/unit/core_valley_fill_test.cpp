// Issue #17, valley filling: ahead of a caps window the buffers are charged to the energy that window
// needed on earlier days (plus a margin), within the caps outside the window and the buffers' windows.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>

#include "../fakes/core_fixture.hpp"
#include "eqd/core/valley_fill.hpp"

using namespace eqd::core;
using eqd::test::CoreFixture;

namespace {

constexpr std::int64_t kS = 1'000'000'000;

// One caps window (import <= cap_W) with occurrences at the given starts (core clock), each len_s long.
BusSchedule caps_schedule(std::initializer_list<std::int64_t> starts_ns, double len_s, double cap_W) {
  BusSchedule s;
  s.window_count = 1;
  s.windows[0].mode = BusMode::caps;
  s.windows[0].import_limit_W = cap_W;
  for (std::int64_t start : starts_ns) {
    WindowOccurrence& o = s.occurrences[s.occurrence_count++];
    o.start_ns = start;
    o.end_ns = start + static_cast<std::int64_t>(len_s * 1e9);
    o.window = 0;
  }
  s.valid_from_ns = 0;
  s.valid_until_ns = std::numeric_limits<std::int64_t>::max();
  return s;
}

BusParams fill_params() {
  BusParams p;
  p.mode = BusMode::caps;
  p.import_limit_W = 3000.0;
  p.export_limit_W = 0.0;
  p.fill_lead_s = 3600.0;
  p.fill_margin = 0.25;
  return p;
}

}  // namespace

TEST_CASE("valley filling: the fill is added to the aim and kept within the caps band", "[valley_fill]") {
  BusParams p;
  p.target_W = 100.0;
  p.fill_W = 400.0;
  CHECK(desired_eq_W(p, 300.0) == 200.0);  // balance: net -> target + fill
  CHECK(residual_of(p, 500.0) == 0.0);
  p.mode = BusMode::caps;
  p.import_limit_W = 1000.0;
  p.export_limit_W = 200.0;
  CHECK(desired_eq_W(p, 0.0) == 400.0);      // inside the band: the buffers take the fill
  CHECK(desired_eq_W(p, 800.0) == 200.0);    // ... only as far as the import cap allows
  CHECK(desired_eq_W(p, 1500.0) == -500.0);  // over the cap: the cap wins, the buffers discharge
  CHECK(desired_eq_W(p, -500.0) == 300.0);   // over the export cap: absorb the excess
  p.fill_W = 0.0;
  CHECK(desired_eq_W(p, 0.0) == 0.0);
}

TEST_CASE("valley filling: a caps window's need is kept only from occurrences seen whole", "[valley_fill]") {
  WindowNeeds n;
  WindowOccurrence o{100 * kS, 200 * kS, 0};
  CHECK(std::isnan(n.largest_J(0)));
  // Seen from its start: 1500 W for 100 s.
  for (std::int64_t t = 100; t < 200; ++t) n.observe(&o, true, t * kS, 1.0, 1500.0);
  n.observe(nullptr, false, 200 * kS, 1.0, 0.0);
  CHECK(n.seen(0) == 1);
  CHECK(n.largest_J(0) == Approx(1500.0 * 99.0));  // the first second starts the measurement
  // Joined 50 s late (eqd started in the middle of it): not kept.
  WindowOccurrence late{1000 * kS, 1100 * kS, 0};
  for (std::int64_t t = 1050; t < 1100; ++t) n.observe(&late, true, t * kS, 1.0, 9000.0);
  n.observe(nullptr, false, 1100 * kS, 1.0, 0.0);
  CHECK(n.seen(0) == 1);
  // Cut short (the schedule changed before its end): not kept.
  WindowOccurrence cut{2000 * kS, 2100 * kS, 0};
  for (std::int64_t t = 2000; t < 2050; ++t) n.observe(&cut, true, t * kS, 1.0, 9000.0);
  n.observe(nullptr, false, 2050 * kS, 1.0, 0.0);
  CHECK(n.seen(0) == 1);
  // A balance window is not measured.
  WindowOccurrence bal{3000 * kS, 3100 * kS, 1};
  for (std::int64_t t = 3000; t <= 3100; ++t) n.observe(t < 3100 ? &bal : nullptr, false, t * kS, 1.0, 9000.0);
  CHECK(n.seen(1) == 0);
  // A week is kept: the eighth need pushes out the first.
  for (int d = 0; d < 7; ++d) n.record(0, 100.0);
  CHECK(n.seen(0) == 7);
  CHECK(n.largest_J(0) == 100.0);
}

TEST_CASE("valley filling: the energy gauge counts power and is set at the window's edges", "[valley_fill]") {
  EnergyGauge g;
  WindowState w;
  g.update(3600.0, w, 0.25, 0.0, 0.0);
  CHECK(g.stored_J == Approx(900.0));  // first seen: from the window position
  g.update(3600.0, w, 0.25, 100.0, 2.0);
  CHECK(g.stored_J == Approx(1100.0));
  g.update(3600.0, w, 0.25, -5000.0, 1.0);
  CHECK(g.stored_J == 0.0);  // never below empty
  w.charge_blocked = true;
  g.update(3600.0, w, 1.0, 0.0, 1.0);
  CHECK(g.stored_J == 3600.0);  // at v_max: full, whatever was counted
  w = WindowState{};
  w.discharge_blocked = true;
  g.update(3600.0, w, 0.0, 0.0, 1.0);
  CHECK(g.stored_J == 0.0);
  g.update(0.0, w, 0.5, 0.0, 1.0);  // capacity unknown
  CHECK_FALSE(g.known);
  // A reported state of charge is taken as it is (its place in the SoC window), power not counted.
  w = WindowState{};
  g.update(3600.0, w, 0.3, 5000.0, 10.0, true);
  CHECK(g.stored_J == Approx(1080.0));
}

TEST_CASE("valley filling: the plan charges the deficit evenly within the lead, and no more", "[valley_fill]") {
  const BusSchedule s = caps_schedule({10'000 * kS}, 1800.0, 1000.0);
  WindowNeeds needs;
  BusParams p = fill_params();
  FillBuffers b{/*stored*/ 1.0e6, /*capacity*/ 10.0e6, /*rate*/ 3000.0, /*eff*/ 1.0};
  SECTION("a window not seen and nothing assumed: no plan") {
    const FillPlan f = plan_fill(s, -1, 9000 * kS, needs, p, b);
    CHECK(f.window == 0);
    CHECK(f.starts_in_s == Approx(1000.0));
    CHECK(std::isnan(f.need_J));
    CHECK(f.fill_W == 0.0);
  }
  SECTION("a window seen: its need plus the margin, spread over the time left") {
    needs.record(0, 4.0e6);
    FillPlan f = plan_fill(s, -1, 5000 * kS, needs, p, b);  // 5000 s ahead, lead 3600 s: not yet
    CHECK(f.need_J == Approx(5.0e6));
    CHECK(f.fill_W == 0.0);
    CHECK(f.shortfall_J == 0.0);
    f = plan_fill(s, -1, 7000 * kS, needs, p, b);  // 3000 s ahead: 4 MJ over 3000 - 2 tau
    CHECK(f.fill_W == Approx(4.0e6 / (3000.0 - 30.0)));
    b.efficiency = 0.8;  // converter losses: more stored for the same need, more from the bus to store it
    CHECK(plan_fill(s, -1, 7000 * kS, needs, p, b).need_J == Approx(5.0e6 / 0.8));
    CHECK(plan_fill(s, -1, 7000 * kS, needs, p, b).fill_W == Approx((5.0e6 / 0.8 - 1.0e6) / 2970.0 / 0.8));
    b.efficiency = 1.0;
    b.stored_J = 5.0e6;  // enough stored: nothing
    CHECK(plan_fill(s, -1, 7000 * kS, needs, p, b).fill_W == 0.0);
    b.stored_J = 1.0e6;
    p.valley_fill = false;
    CHECK(plan_fill(s, -1, 7000 * kS, needs, p, b).window == -1);
  }
  SECTION("the need beyond the capacity: charge to full and say the shortfall") {
    needs.record(0, 40.0e6);
    const FillPlan f = plan_fill(s, -1, 9000 * kS, needs, p, b);
    CHECK(f.need_J == Approx(50.0e6));
    CHECK(f.fill_W == Approx(3000.0));  // 9 MJ in 970 s is beyond the rating: the rating
    CHECK(f.shortfall_J == Approx(50.0e6 - (1.0e6 + 3000.0 * 1000.0)));
  }
  SECTION("the assumed need for a window not seen yet, and no charge while a caps window is in force") {
    p.fill_energy_Wh = 1000.0;
    CHECK(plan_fill(s, -1, 7000 * kS, needs, p, b).need_J == Approx(3.6e6 * 1.25));
    CHECK(plan_fill(s, 0, 7000 * kS, needs, p, b).fill_W == 0.0);
    b.capacity_J = 0.0;  // no buffer with a capacity: the whole need is short
    const FillPlan f = plan_fill(s, -1, 7000 * kS, needs, p, b);
    CHECK(f.fill_W == 0.0);
    CHECK(f.shortfall_J == Approx(4.5e6));
  }
}

TEST_CASE("valley filling in the core: charge ahead within the caps, hold the window's cap, learn its need",
          "[valley_fill]") {
  // Test channel 0, buffer 1 (2 kW, 1 kWh between 40 and 56 V). The bus: caps, import <= 3 kW; a window
  // with import <= 1 kW from t0 + 2 h for 20 min; 600 Wh assumed; lead 1 h.
  BusParams p = fill_params();
  p.fill_energy_Wh = 600.0;
  CoreFixture f(2, p);
  f.state[0] = ChannelState::running;
  f.power[0] = 2800.0;  // inside the band (3 kW): in caps mode the buffer rests, but leaves 200 W for a fill
  f.voltage[1] = 42.0;  // 1/8 of the window: about 125 Wh stored
  BufferLimits l = CoreFixture::limits(2000.0);
  l.capacity_Wh = 1000.0;
  REQUIRE(f.assign(1, l) == ResponseStatus::ok);
  const std::int64_t t0 = f.now_ns;
  const std::int64_t start = t0 + 7200 * kS;
  f.core->set_schedule(0, caps_schedule({start, start + 86400 * kS}, 1200.0, 1000.0));

  // Before the lead: at rest.
  f.run_s(3000.0);
  BusSnapshot s = f.core->bus(0);
  CHECK(s.fill.window == 0);
  CHECK(s.fill.need_J == Approx(600.0 * 3600.0 * 1.25));  // efficiency 1: bus side = battery side
  CHECK(s.fill.stored_J == Approx(125.0 * 3600.0));
  CHECK(s.fill.fill_W == 0.0);
  CHECK(std::abs(f.power[1]) < 1.0);

  // Within the lead, but the load (2.8 kW) is above the window's own cap (1 kW): charging now would
  // make a demand peak before the window, so nothing is charged.
  f.run_s(900.0);
  s = f.core->bus(0);
  CHECK(s.fill.fill_W == 0.0);
  CHECK(std::abs(f.power[1]) < 1.0);
  // A valley (500 W): the buffer fills it up to the window's cap, not beyond (the plan asks more).
  f.power[0] = 500.0;
  f.run_s(300.0);
  s = f.core->bus(0);
  CHECK(s.fill.fill_W == Approx(500.0));
  CHECK(f.power[1] == Approx(500.0).margin(30.0));
  CHECK(s.net_W <= 1000.0 + 30.0);
  // A deeper valley: the fill is what the plan asks (deficit / time left), no more.
  f.power[0] = 0.0;
  f.run_s(300.0);
  s = f.core->bus(0);
  CHECK(s.fill.fill_W > 0.0);
  CHECK(s.fill.fill_W < 1000.0);
  CHECK(f.power[1] == Approx(s.fill.fill_W).margin(60.0));
  // The buffer reaches the top of its window: charging stops at once, and the gauge says full.
  f.voltage[1] = 56.0;
  f.run_s(1.0);
  CHECK(f.power[1] <= 0.0);
  s = f.core->bus(0);
  CHECK(s.fill.stored_J == Approx(1000.0 * 3600.0));
  CHECK(s.fill.fill_W == 0.0);
  f.voltage[1] = 50.0;
  f.run_s(7200.0 - 3000.0 - 900.0 - 600.0 - 1.0 + 60.0);  // into the window
  // In the window: 2.5 kW against a 1 kW cap: the buffer gives the excess.
  f.power[0] = 2500.0;
  f.run_s(600.0);
  s = f.core->bus(0);
  CHECK(s.active_window == 0);
  CHECK(s.net_W == Approx(1000.0).margin(60.0));
  CHECK(s.fill.fill_W == 0.0);
  f.run_s(600.0);  // past the end: 1.5 kW over the cap for 1140 s of the 1200 s is the next one's need
  s = f.core->bus(0);
  CHECK(s.active_window == -1);
  CHECK(s.fill.starts_in_s > 80000.0);
  CHECK(s.fill.need_J == Approx(1500.0 * 1140.0 * 1.25).margin(1500.0 * 1.25));
}

TEST_CASE("valley filling in the core: a window seen whole sets the next day's need", "[valley_fill]") {
  BusParams p = fill_params();
  CoreFixture f(2, p);
  f.state[0] = ChannelState::running;
  f.power[0] = 2000.0;
  BufferLimits l = CoreFixture::limits(2000.0);
  l.capacity_Wh = 2000.0;
  REQUIRE(f.assign(1, l) == ResponseStatus::ok);
  const std::int64_t start = f.now_ns + 60 * kS;
  f.core->set_schedule(0, caps_schedule({start, start + 7200 * kS}, 600.0, 1000.0));
  f.run_s(30.0);
  CHECK(std::isnan(f.core->bus(0).fill.need_J));  // nothing seen, nothing assumed: no plan
  f.run_s(700.0);                                 // the whole first occurrence
  const BusSnapshot s = f.core->bus(0);
  // It needed 1 kW (2 kW over a 1 kW cap) for 10 min: what the cap asked of the buffers, whatever they gave.
  CHECK(s.fill.window == 0);
  CHECK(s.fill.need_J == Approx(1000.0 * 600.0 * 1.25).margin(1000.0 * 1.25));
}

TEST_CASE("a buffer that reports its state of charge: its SoC window holds in the core, and the gauge reads it",
          "[valley_fill][soc]") {
  CoreFixture f(2);
  f.state[0] = ChannelState::running;
  f.power[0] = -1500.0;  // test channel feeding back 1.5 kW: the buffer should absorb it
  f.voltage[1] = 48.0;   // mid-window by voltage
  f.soc[1] = 95.0F;      // but above its SoC window
  BufferLimits l = CoreFixture::limits(2000.0);
  l.capacity_Wh = 1000.0;
  l.soc_min_pct = 10.0;
  l.soc_max_pct = 90.0;
  REQUIRE(f.assign(1, l) == ResponseStatus::ok);
  f.run_s(60.0);
  CHECK(f.power[1] <= 0.0);  // not charged: the SoC window, not the voltage, says full
  CHECK(f.core->channel(1).headroom_charge_W == 0.0);
  f.soc[1] = 50.0F;
  f.run_s(120.0);
  CHECK(f.power[1] == Approx(1500.0).margin(50.0));  // room again: it absorbs the export
  CHECK(f.core->channel(1).window_pos == Approx(0.5));
  // Discharging stops at soc_min_pct.
  f.power[0] = 1500.0;
  f.soc[1] = 10.0F;
  f.run_s(120.0);
  CHECK(f.power[1] >= 0.0);
  CHECK(f.core->channel(1).headroom_discharge_W == 0.0);
}
