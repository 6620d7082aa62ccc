#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <limits>

#include "eqd/core/allocator.hpp"

using namespace eqd::core;

namespace {
BufferLimits limits() {
  BufferLimits l;
  l.max_charge_W = 2000.0;
  l.max_discharge_W = 3000.0;
  l.v_min_V = 40.0;
  l.v_max_V = 56.0;
  l.hysteresis_V = 1.0;
  return l;
}
}  // namespace

TEST_CASE("headroom follows power and current limits", "[allocator]") {
  BufferLimits l = limits();
  l.max_charge_A = 30.0;  // 30 A * 50 V = 1500 W < 2000 W
  WindowState w;
  const Headroom h = compute_headroom(l, 50.0, w);
  CHECK(h.charge_W == Approx(1500.0));
  CHECK(h.discharge_W == Approx(3000.0));
  CHECK(h.window_pos == Approx(10.0 / 16.0));
}

TEST_CASE("the voltage window blocks at once and re-enters with hysteresis", "[allocator]") {
  const BufferLimits l = limits();  // window 40..56 V, hysteresis 1 V (also the taper band here)
  WindowState w;
  CHECK(compute_headroom(l, 54.0, w).charge_W == Approx(2000.0));
  CHECK(compute_headroom(l, 56.0, w).charge_W == 0.0);  // at the limit: no charging, immediately
  CHECK(w.charge_blocked);
  CHECK(compute_headroom(l, 55.5, w).charge_W == 0.0);                // inside the hysteresis band: still blocked
  CHECK(compute_headroom(l, 55.5, w).discharge_W == Approx(3000.0));  // discharging is fine
  CHECK(compute_headroom(l, 54.9, w).charge_W == Approx(2000.0));     // back below v_max - hysteresis
  CHECK(compute_headroom(l, 40.0, w).discharge_W == 0.0);
  CHECK(compute_headroom(l, 40.5, w).discharge_W == 0.0);
  CHECK(compute_headroom(l, 41.1, w).discharge_W == Approx(3000.0));
}

TEST_CASE("headroom tapers to zero over the last part of the window", "[allocator]") {
  const BufferLimits l = limits();  // taper band = max(hysteresis 1 V, 3 % of 16 V) = 1 V
  WindowState w;
  CHECK(compute_headroom(l, 55.5, w).charge_W == Approx(1000.0));  // half-way into the band
  CHECK(compute_headroom(l, 55.75, w).charge_W == Approx(500.0));
  CHECK(compute_headroom(l, 40.25, w).discharge_W == Approx(750.0));
  CHECK(compute_headroom(l, 48.0, w).discharge_W == Approx(3000.0));  // mid-window: untouched
}

TEST_CASE("allocation never exceeds headroom and hands out the total when it fits", "[allocator]") {
  std::array<Headroom, 3> h{};
  h[0] = {1000.0, 1000.0, 0.5};
  h[1] = {500.0, 2000.0, 0.5};
  h[2] = {3000.0, 100.0, 0.5};
  std::array<double, 3> out{};
  std::array<double, 3> scratch{};
  for (double total : {-3100.0, -1500.0, -50.0, 0.0, 10.0, 2000.0, 4400.0, 4500.0}) {
    const double given = allocate(total, h.data(), h.size(), out.data(), scratch.data());
    INFO("total " << total);
    CHECK(given == Approx(total).margin(1e-6));
    for (std::size_t i = 0; i < h.size(); ++i) {
      CHECK(out[i] <= h[i].charge_W + 1e-9);
      CHECK(-out[i] <= h[i].discharge_W + 1e-9);
      CHECK(out[i] * total >= 0.0);  // every buffer moves in the requested direction
    }
  }
  // Beyond capacity: everyone saturated, the shortfall is reported.
  const double given = allocate(10000.0, h.data(), h.size(), out.data(), scratch.data());
  CHECK(given == Approx(4500.0));
}

TEST_CASE("charging prefers the emptiest buffer and discharging the fullest", "[allocator]") {
  std::array<Headroom, 2> h{};
  h[0] = {1000.0, 1000.0, 0.2};  // nearly empty
  h[1] = {1000.0, 1000.0, 0.8};  // nearly full
  std::array<double, 2> out{};
  std::array<double, 2> scratch{};
  allocate(1000.0, h.data(), 2, out.data(), scratch.data());
  CHECK(out[0] > 2.0 * out[1]);
  allocate(-1000.0, h.data(), 2, out.data(), scratch.data());
  CHECK(-out[1] > 2.0 * -out[0]);
}

TEST_CASE("a non-finite total allocates nothing", "[allocator]") {
  std::array<Headroom, 1> h{};
  h[0] = {1000.0, 1000.0, 0.5};
  std::array<double, 1> out{};
  std::array<double, 1> scratch{};
  CHECK(allocate(std::nan(""), h.data(), 1, out.data(), scratch.data()) == 0.0);
  CHECK(out[0] == 0.0);
}

TEST_CASE("headroom: a reported state of charge adds its window, with hysteresis and taper", "[allocator][soc]") {
  BufferLimits l;
  l.max_charge_W = 2000.0;
  l.max_discharge_W = 3000.0;
  l.v_min_V = 40.0;
  l.v_max_V = 56.0;
  l.hysteresis_V = 0.5;
  l.soc_min_pct = 10.0;
  l.soc_max_pct = 90.0;
  WindowState w;
  // Voltage mid-window; the state of charge decides.
  Headroom h = compute_headroom(l, 48.0, 50.0, w);
  CHECK(h.charge_W == Approx(2000.0));
  CHECK(h.discharge_W == Approx(3000.0));
  CHECK(h.window_pos == Approx(0.5));                         // (50 - 10) / 80: the SoC's place, not the voltage's
  CHECK(compute_headroom(l, 48.0, 90.0, w).charge_W == 0.0);  // at soc_max: no charging, at once
  CHECK(compute_headroom(l, 48.0, 89.5, w).charge_W == 0.0);  // within the 1 % hysteresis: still blocked
  CHECK(compute_headroom(l, 48.0, 89.5, w).discharge_W == Approx(3000.0));
  CHECK(compute_headroom(l, 48.0, 88.0, w).charge_W > 0.0);  // back below soc_max - 1 %
  CHECK(compute_headroom(l, 48.0, 10.0, w).discharge_W == 0.0);
  CHECK(compute_headroom(l, 48.0, 10.8, w).discharge_W == 0.0);
  CHECK(compute_headroom(l, 48.0, 11.5, w).discharge_W > 0.0);
  // Taper over the last 3 % of the SoC window (2.4 points of 80): half-way in, half the headroom.
  w = WindowState{};
  CHECK(compute_headroom(l, 48.0, 88.8, w).charge_W == Approx(1000.0));
  // Both windows apply: a voltage at v_max blocks charging whatever the SoC says.
  CHECK(compute_headroom(l, 56.0, 50.0, w).charge_W == 0.0);
  // No SoC reported: the voltage window alone, as before, and the SoC blocks are dropped.
  w = WindowState{};
  (void)compute_headroom(l, 48.0, 95.0, w);
  CHECK(w.soc_charge_blocked);
  CHECK(compute_headroom(l, 48.0, std::numeric_limits<double>::quiet_NaN(), w).charge_W == Approx(2000.0));
  CHECK_FALSE(w.soc_charge_blocked);
}

TEST_CASE("buffer limits: the state-of-charge window is validated", "[allocator][soc]") {
  BufferLimits l;
  l.max_charge_W = 1000.0;
  l.v_min_V = 40.0;
  l.v_max_V = 56.0;
  CHECK(validate(l) == nullptr);  // 0..100: the device's own
  l.soc_min_pct = 95.0;
  l.soc_max_pct = 96.0;
  CHECK(validate(l) != nullptr);
  l.soc_min_pct = -1.0;
  l.soc_max_pct = 90.0;
  CHECK(validate(l) != nullptr);
  l.soc_min_pct = 20.0;
  l.soc_max_pct = 101.0;
  CHECK(validate(l) != nullptr);
}

// Issue #19: a buffer whose device reports lower power limits than configured (SunSpec storage: 124
// WChaMax, 802 WChaRteMax / WDisChaRteMax). The allocator must ask it for no more than its device takes
// and hand the rest to the other buffer; asked more, its link would clamp and the shortfall be lost.
TEST_CASE("headroom honours the device's own limits and allocation gives the rest to the other buffer",
          "[allocator][device_limits]") {
  const BufferLimits l = limits();  // configured: charge 2000 W, discharge 3000 W
  DeviceLimits dev;
  dev.max_charge_W = 500.0F;  // the device takes 500 W of charge; its discharge limit is not reported
  WindowState w0, w1;
  std::array<Headroom, 2> h{};
  h[0] = compute_headroom(l, dev, 48.0, std::numeric_limits<double>::quiet_NaN(), w0);
  h[1] = compute_headroom(l, DeviceLimits{}, 48.0, std::numeric_limits<double>::quiet_NaN(), w1);
  CHECK(h[0].charge_W == Approx(500.0));
  CHECK(h[0].discharge_W == Approx(3000.0));  // NaN: the configured limit alone
  CHECK(h[1].charge_W == Approx(2000.0));
  std::array<double, 2> out{};
  std::array<double, 2> scratch{};
  // Both buffers at the same window position: without the device limit each would get 1250 W.
  CHECK(allocate(2500.0, h.data(), h.size(), out.data(), scratch.data()) == Approx(2500.0));
  CHECK(out[0] <= 500.0 + 1e-9);
  CHECK(out[0] == Approx(500.0));
  CHECK(out[1] == Approx(2000.0));
  // Discharging is not limited by the device: shared as before.
  CHECK(allocate(-2000.0, h.data(), h.size(), out.data(), scratch.data()) == Approx(-2000.0));
  CHECK(out[0] == Approx(-1000.0));
  CHECK(out[1] == Approx(-1000.0));
}

TEST_CASE("effective limits: the lower of configured and device, NaN the configured, negative 0 W",
          "[allocator][device_limits]") {
  const BufferLimits l = limits();
  CHECK(effective_limits(l, DeviceLimits{}).max_charge_W == 2000.0);
  CHECK(effective_limits(l, DeviceLimits{}).max_discharge_W == 3000.0);
  CHECK(effective_limits(l, DeviceLimits{5000.0F, 2500.0F}).max_charge_W == 2000.0);  // above: configured
  CHECK(effective_limits(l, DeviceLimits{5000.0F, 2500.0F}).max_discharge_W == 2500.0);
  CHECK(effective_limits(l, DeviceLimits{-1.0F, 0.0F}).max_charge_W == 0.0);
  CHECK(effective_limits(l, DeviceLimits{-1.0F, 0.0F}).max_discharge_W == 0.0);
  // The rest of the limits are the configured ones.
  CHECK(effective_limits(l, DeviceLimits{100.0F, 100.0F}).v_max_V == l.v_max_V);
  // A device's limit as a float is never above it; none (+infinity, NaN) is NaN.
  for (const double v : {0.1, 1234.5, 3333.3, 4999.99, 1e7 - 0.3}) {
    INFO(v);
    CHECK(static_cast<double>(device_limit_float(v)) <= v);
    CHECK(static_cast<double>(device_limit_float(v)) > v * (1.0 - 1e-6));
  }
  CHECK(std::isnan(device_limit_float(std::numeric_limits<double>::infinity())));
  CHECK(std::isnan(device_limit_float(std::nan(""))));
  CHECK(device_limit_float(-5.0) == 0.0F);
  DeviceLimitsSlot slot;
  CHECK(std::isnan(slot.load().max_charge_W));
  slot.store(DeviceLimits{1500.0F, 2500.0F});
  CHECK(slot.load().max_charge_W == 1500.0F);
  CHECK(slot.load().max_discharge_W == 2500.0F);
}
