// The SunSpec storage transport (io/sunspec) against the SunSpec simulator (sim/sunspec_device.hpp):
// two independent readings of the SunSpec specification. Each case runs a real device on an
// ephemeral 127.0.0.1 port and a real SunSpecLink on its own thread; a small "control thread" here
// stamps the cycle clock and re-confirms the command as the control core does.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <memory>
#include <string>
#include <thread>

#include <modbus/modbus.h>

#include "eqd/config/config.hpp"
#include "eqd/core/control_core.hpp"
#include "eqd/io/sunspec/link.hpp"
#include "eqd/io/sunspec/models.hpp"
#include "eqd/io/sunspec/transport.hpp"
#include "eqd/io/transport.hpp"
#include "sunspec_device.hpp"

namespace ss = eqd::sim::sunspec;
using eqd::io::sunspec::SunSpecLink;
using namespace std::chrono_literals;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <class F>
bool eventually(F&& f, std::chrono::milliseconds within) {
  const auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

ss::DeviceConfig storage(std::uint16_t base = 40000) {
  ss::DeviceConfig c;
  c.kind = ss::DeviceKind::storage;
  c.base = base;
  return c;
}

// A device, a link to it, and the control thread's side of the slots (cycle clock, command).
struct Rig {
  explicit Rig(ss::DeviceConfig dc, int base_address = -1, int timeout_ms = 200) : dev(std::move(dc)) {
    dev.start();
    clock.store(now_ns());
    slots.samples.push_back(&sample);
    slots.commands.push_back(&command);
    slots.cycle_clock = &clock;
    slots.liveness_ns = 1'000'000'000;
    eqd::io::sunspec::SunSpecLinkConfig c;
    c.name = "st1";
    c.host = "127.0.0.1";
    c.port = dev.port();
    c.base_address = base_address;
    c.poll_hz = 20;
    c.timeout_ms = timeout_ms;
    c.backoff_initial_ms = 50;
    c.backoff_max_ms = 200;
    c.channel_slots = {0};
    c.on_error = [this](std::uint16_t, std::error_code code, const char* msg) {
      // Notices (the device's identity) come with no code; errors with theirs.
      if (code)
        errors.fetch_add(1);
      else if (std::string(msg).find("limited to the device's") != std::string::npos)
        limit_notices.fetch_add(1);
    };
    link = std::make_unique<SunSpecLink>(c, slots);
    control = std::thread([this] {
      while (!stop.load()) {
        const std::int64_t t = now_ns();
        clock.store(t);
        eqd::core::Command cmd = current;  // this thread's only
        if (cmd.sequence != 0) {
          cmd.issued_ns = t;  // re-confirmed, same sequence
          command.store(cmd);
        }
        std::unique_lock<std::mutex> lock(m);
        cv.wait_for(lock, 20ms, [this] { return stop.load() || pending.load(); });
        if (pending.exchange(false)) current = next;
      }
    });
    link->start();
  }
  ~Rig() {
    link->stop();
    stop.store(true);
    cv.notify_all();
    control.join();
    dev.stop();
  }
  void command_W(bool equalize, double setpoint_W, std::uint32_t lease_ms = 2000) {
    std::lock_guard<std::mutex> lock(m);
    next = current;
    next.equalize = equalize;
    next.setpoint_W = setpoint_W;
    next.lease_ms = lease_ms;
    ++next.sequence;
    pending.store(true);
    cv.notify_all();
  }
  eqd::core::Sample last() const { return sample.load(); }
  std::string last_error() const { return link->stats().last_error; }

  ss::SunSpecDevice dev;
  eqd::core::Seqlock<eqd::core::Sample> sample;
  eqd::core::Seqlock<eqd::core::Command> command;
  std::atomic<std::int64_t> clock{0};
  eqd::io::ChannelSlots slots;
  std::atomic<int> errors{0};
  std::atomic<int> limit_notices{0};
  std::unique_ptr<SunSpecLink> link;
  std::atomic<bool> stop{false}, pending{false};
  eqd::core::Command current{}, next{};
  std::mutex m;
  std::condition_variable cv;
  std::thread control;
};

bool valid_sample(const Rig& r) { return r.last().valid; }

// Model 124's OutWRte and InWRte as the device holds them (raw int16, % x 10^InOutWRte_SF), read with a
// plain libmodbus client at the specification's offsets (data offsets 10 and 11, after ID and L).
// `index` is model 124's place in the chain. False when the read fails.
bool read_rates(const Rig& r, std::size_t index, std::int16_t& out_w_rte, std::int16_t& in_w_rte) {
  const std::vector<std::uint16_t> ids = r.dev.model_addresses();
  if (index >= ids.size()) return false;
  modbus_t* ctx = modbus_new_tcp("127.0.0.1", r.dev.port());
  if (ctx == nullptr) return false;
  modbus_set_slave(ctx, 1);
  std::uint16_t regs[2] = {};
  const bool ok = modbus_connect(ctx) == 0 && modbus_read_registers(ctx, ids[index] + 2 + 10, 2, regs) == 2;
  modbus_close(ctx);
  modbus_free(ctx);
  out_w_rte = static_cast<std::int16_t>(regs[0]);
  in_w_rte = static_cast<std::int16_t>(regs[1]);
  return ok;
}

}  // namespace

TEST_CASE("sunspec link finds the marker at each base and reads identity, power and voltage", "[sunspec]") {
  for (const std::uint16_t base : {std::uint16_t{0}, std::uint16_t{40000}, std::uint16_t{50000}}) {
    INFO("base " << base);
    ss::DeviceConfig dc = storage(base);
    dc.serial = "SN-42";
    Rig r(dc);
    REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
    const auto s = r.last();
    CHECK(s.power_W == 0.0);
    CHECK(s.voltage_V == Approx(400.0));
    CHECK(s.state == eqd::core::ChannelState::idle);
    CHECK_FALSE(s.equalization_mode);
    CHECK(r.link->connected());
    CHECK(r.link->identity() == "eqd-sim storage SN SN-42");
  }
  SECTION("a configured base is used as is: the wrong one is a clear error") {
    Rig r(storage(50000), 40000);
    REQUIRE(
        eventually([&] { return r.last_error().find("no SunSpec marker 'SunS' at 40000") != std::string::npos; }, 2s));
    CHECK_FALSE(r.link->connected());
    CHECK_FALSE(r.last().valid);
    CHECK(r.last().state == eqd::core::ChannelState::offline);
  }
}

TEST_CASE("sunspec link follows a command with eqd's sign, refreshes the revert timeout and releases", "[sunspec]") {
  Rig r(storage());
  REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
  r.command_W(true, 2000.0, 2000);  // charge 2 kW, lease 2 s -> InOutWRte_RvrtTms 2 s
  // SunSpec W < 0: importing, the battery charging; eqd reads +2000.
  REQUIRE(eventually([&] { return std::abs(r.dev.state().power_W + 2000.0) < 1.0; }, 3s));
  REQUIRE(eventually([&] { return std::abs(r.last().power_W - 2000.0) < 1.0; }, 1s));
  CHECK(r.last().equalization_mode);
  CHECK(r.last().state == eqd::core::ChannelState::equalizing);
  CHECK(r.dev.state().storctl_mod == 3);
  // Three leases long: the engine's refreshes (before half the lease) keep the rate controls.
  std::this_thread::sleep_for(3s);
  CHECK(r.dev.state().reverts == 0);
  CHECK(r.dev.state().storctl_mod == 3);
  CHECK(std::abs(r.dev.state().power_W + 2000.0) < 1.0);

  r.command_W(true, -1500.0, 2000);  // discharge 1.5 kW: SunSpec W +1500
  REQUIRE(eventually([&] { return std::abs(r.dev.state().power_W - 1500.0) < 1.0; }, 3s));
  REQUIRE(eventually([&] { return std::abs(r.last().power_W + 1500.0) < 1.0; }, 1s));

  r.link->release_all();
  // Within half the lease: released by eqd's stop, not by the device's own revert timeout (2 s).
  CHECK(r.link->wait_released(1s));
  CHECK(r.dev.state().storctl_mod == 0);
  CHECK(eventually([&] { return std::abs(r.dev.state().power_W) < 0.5; }, 3s));
  CHECK_FALSE(r.last().equalization_mode);
  CHECK(r.dev.state().rejected_writes == 0);
}

TEST_CASE("sunspec link stops refreshing when the control thread stalls: the device reverts", "[sunspec]") {
  Rig r(storage());
  REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
  r.command_W(true, 1000.0, 1000);
  REQUIRE(eventually([&] { return std::abs(r.dev.state().power_W + 1000.0) < 1.0; }, 3s));
  r.stop.store(true);  // the control thread stops stamping the cycle clock
  r.cv.notify_all();
  CHECK(eventually([&] { return r.dev.state().reverts >= 1 && r.dev.state().storctl_mod == 0; }, 4s));
}

TEST_CASE("sunspec link applies scale factors and reads the float inverter model", "[sunspec]") {
  SECTION("W_SF 1 and InOutWRte_SF -1") {
    ss::DeviceConfig dc = storage();
    dc.scale_factors = {{"W_SF", 1}, {"124.InOutWRte_SF", -1}};
    Rig r(dc);
    REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
    r.command_W(true, -1500.0);
    REQUIRE(eventually([&] { return std::abs(r.dev.state().power_W - 1500.0) < 1.0; }, 3s));
    CHECK(eventually([&] { return std::abs(r.last().power_W + 1500.0) < 1.0; }, 1s));
  }
  SECTION("model 101 (single phase) where 103 is absent") {
    ss::DeviceConfig dc = storage();
    dc.models = {1, 101, 124};
    dc.scale_factors = {{"101.W_SF", 1}};
    Rig r(dc);
    REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
    r.command_W(true, -2500.0);
    REQUIRE(eventually([&] { return std::abs(r.dev.state().power_W - 2500.0) < 1.0; }, 3s));
    CHECK(eventually([&] { return std::abs(r.last().power_W + 2500.0) < 1.0; }, 1s));
  }
  SECTION("model 113") {
    ss::DeviceConfig dc = storage();
    dc.models = {1, 113, 124};
    Rig r(dc);
    REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
    r.command_W(true, 2500.0);
    REQUIRE(eventually([&] { return std::abs(r.dev.state().power_W + 2500.0) < 1.0; }, 3s));
    CHECK(eventually([&] { return std::abs(r.last().power_W - 2500.0) < 1.0; }, 1s));
  }
  SECTION("an impossible scale factor makes the sample invalid, counted, and no number reaches the law") {
    Rig r(storage());
    REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
    r.dev.set_scale_factor("W_SF", 40);
    REQUIRE(eventually([&] { return !r.last().valid; }, 2s));
    CHECK(r.link->stats().invalid_samples > 0);
    CHECK(r.link->stats().protocol_errors > 0);
    CHECK(r.last_error().find("scale factor") != std::string::npos);
    CHECK(r.link->connected());
  }
}

TEST_CASE("sunspec link reads the state of charge: 124 ChaState, else 802 SoC, and refuses an impossible one",
          "[sunspec][soc]") {
  SECTION("124 ChaState with its scale factor (-1: tenths of a percent)") {
    Rig r(storage());
    r.dev.set_soc_pct(63.4);
    REQUIRE(eventually([&] { return valid_sample(r) && std::abs(r.last().soc_pct - 63.4F) < 0.05F; }, 2s));
  }
  SECTION("ChaState not implemented: 802 SoC") {
    ss::DeviceConfig dc = storage();
    dc.faults.absent_points = {"124.ChaState"};
    Rig r(dc);
    r.dev.set_soc_pct(12.5);
    REQUIRE(eventually([&] { return valid_sample(r) && std::abs(r.last().soc_pct - 12.5F) < 0.05F; }, 2s));
  }
  SECTION("neither: no state of charge, the sample stays valid (the voltage window alone applies)") {
    ss::DeviceConfig dc = storage();
    dc.models = {1, 103, 124};
    dc.faults.absent_points = {"124.ChaState"};
    Rig r(dc);
    REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
    CHECK(std::isnan(r.last().soc_pct));
  }
  SECTION("an impossible scale factor of ChaState: invalid, counted, named") {
    Rig r(storage());
    r.dev.set_soc_pct(63.4);
    REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
    r.dev.set_scale_factor("124.ChaState_SF", 40);
    REQUIRE(eventually([&] { return !r.last().valid; }, 2s));
    CHECK(r.link->stats().protocol_errors > 0);
    CHECK(r.last_error().find("state of charge") != std::string::npos);
  }
}

TEST_CASE("sunspec link: not-implemented values give an invalid sample or a refused write, never a wrong command",
          "[sunspec]") {
  SECTION("W not implemented") {
    ss::DeviceConfig dc = storage();
    dc.faults.absent_points = {"103.W"};
    Rig r(dc);
    REQUIRE(eventually([&] { return r.last_error().find("AC power W not implemented") != std::string::npos; }, 2s));
    CHECK_FALSE(r.last().valid);
  }
  SECTION("InBatV absent: the voltage comes from model 802") {
    ss::DeviceConfig dc = storage();
    dc.faults.absent_points = {"124.InBatV"};
    Rig r(dc);
    REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
    CHECK(r.last().voltage_V == Approx(400.0));
  }
  SECTION("InBatV absent and no model 802: no voltage, invalid") {
    ss::DeviceConfig dc = storage();
    dc.models = {1, 103, 124};
    dc.faults.absent_points = {"124.InBatV"};
    Rig r(dc);
    REQUIRE(eventually([&] { return r.last_error().find("battery voltage") != std::string::npos; }, 2s));
    CHECK_FALSE(r.last().valid);
  }
  SECTION("optional points absent (InWRte/OutWRte): the write is refused, the device stays in its own mode") {
    ss::DeviceConfig dc = storage();
    dc.faults.optional_absent = true;
    Rig r(dc);
    std::this_thread::sleep_for(300ms);
    r.command_W(true, 1000.0);
    REQUIRE(eventually([&] { return r.link->stats().write_errors > 0; }, 2s));
    CHECK(r.dev.state().storctl_mod == 0);
    CHECK(r.dev.state().power_W == 0.0);
  }
}

// The device's own limits (124 WChaMax, 802 WChaRteMax / WDisChaRteMax): a setpoint beyond them is
// written as the limit, never beyond. The simulator bounds its power by them too, so the rates written
// are read back from the device's registers (InOutWRte_SF -2: 10000 = 100.00 % of WChaMax).
TEST_CASE("sunspec link limits a setpoint to the device's WChaMax and 802 rate limits", "[sunspec][limits]") {
  std::int16_t out = 0, in = 0;
  SECTION("beyond WChaMax: written as WChaMax (100 %), a notice once") {
    ss::DeviceConfig dc = storage();  // WChaMax 5000 W = 802 WChaRteMax; WDisChaRteMax 5000 W
    dc.models = {1, 103, 124};        // 124 alone: WChaMax bounds both directions
    Rig r(dc);
    REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
    r.command_W(true, 6000.0);
    REQUIRE(eventually([&] { return r.dev.state().storctl_mod == 3; }, 2s));
    REQUIRE(read_rates(r, 2, out, in));
    CHECK(in == 10000);
    CHECK(out == -10000);
    CHECK(eventually([&] { return std::abs(r.dev.state().power_W + 5000.0) < 1.0; }, 3s));
    CHECK(r.limit_notices.load() == 1);
    CHECK(r.link->stats().write_errors == 0);
    r.command_W(true, -7000.0);
    REQUIRE(eventually([&] { return read_rates(r, 2, out, in) && out == 10000; }, 2s));
    CHECK(in == -10000);
    CHECK(r.limit_notices.load() == 2);
    r.command_W(true, 2000.0);  // within: as asked
    REQUIRE(eventually([&] { return read_rates(r, 2, out, in) && in == 4000; }, 2s));
    CHECK(out == -4000);
    CHECK(r.dev.state().rejected_writes == 0);
  }
  SECTION("802 WDisChaRteMax and WChaRteMax below WChaMax bound each direction") {
    ss::DeviceConfig dc = storage();
    dc.storage.max_discharge_W = 1500.0;  // 802 WDisChaRteMax 1500 W; WChaMax 5000 W
    Rig r(dc);
    REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
    r.command_W(true, -3000.0);
    REQUIRE(eventually([&] { return r.dev.state().storctl_mod == 3; }, 2s));
    REQUIRE(read_rates(r, 2, out, in));
    CHECK(out == 3000);  // 1500 / 5000 = 30.00 %
    CHECK(in == -3000);
    CHECK(r.limit_notices.load() == 1);
  }
  SECTION("802 WChaRteMax below WChaMax bounds charging") {
    ss::DeviceConfig dc = storage();
    dc.storage.battery_charge_W = 2000.0;  // 802 WChaRteMax 2000 W; WChaMax 5000 W
    Rig r(dc);
    REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
    r.command_W(true, 4000.0);
    REQUIRE(eventually([&] { return r.dev.state().storctl_mod == 3; }, 2s));
    REQUIRE(read_rates(r, 2, out, in));
    CHECK(in == 4000);  // 2000 / 5000 = 40.00 %
    CHECK(out == -4000);
    CHECK(r.limit_notices.load() == 1);
    r.command_W(true, -4000.0);  // discharging: WDisChaRteMax 5000 W, within
    REQUIRE(eventually([&] { return read_rates(r, 2, out, in) && out == 8000; }, 2s));
  }
  SECTION("802 limits not implemented: WChaMax alone (the configured limits otherwise)") {
    ss::DeviceConfig dc = storage();
    dc.storage.max_discharge_W = 1500.0;
    dc.faults.absent_points = {"802.WChaRteMax", "802.WDisChaRteMax"};
    Rig r(dc);
    REQUIRE(eventually([&] { return valid_sample(r); }, 2s));
    r.command_W(true, -3000.0);
    REQUIRE(eventually([&] { return r.dev.state().storctl_mod == 3; }, 2s));
    REQUIRE(read_rates(r, 2, out, in));
    CHECK(out == 6000);  // 3000 / 5000: no 802 limit applies
    CHECK(r.limit_notices.load() == 0);
  }
}

// Issue #19: the link publishes the device's limits (ChannelSlots::device_limits) and the allocator
// honours them. Two simulated storage devices are the buffers of a real ControlCore (slots from
// io::slots_from_core, as the daemon wires them) whose control thread here runs a cycle every 50 ms; a
// test channel, written by that thread, feeds 4 kW into the bus. Device A's WChaMax (1500 W) is below
// the 5000 W configured for it: the core must ask it for no more (the link's clamp never acts, no
// notice), and device B must carry the rest while the bus still balances. Shared by headroom, A takes
// 4000 x 1500 / 6500 = 923 W and B 3077 W; with A's device limit ignored each would be asked 2000 W.
namespace {

struct CoreRig {
  static constexpr eqd::core::ChannelIndex kTest = 0, kA = 1, kB = 2;

  CoreRig(ss::DeviceConfig a, ss::DeviceConfig b) : dev_a(std::move(a)), dev_b(std::move(b)) {
    dev_a.start();
    dev_b.start();
    eqd::core::CoreConfig cfg;
    eqd::core::BusParams p;
    p.tau_s = 2.0;  // a quick test (allowed by the core; the configuration's nominal range is 10..20 s)
    p.update_interval_s = 0.2;
    p.lease_ms = 3000;
    cfg.buses = {p};
    cfg.channels.resize(3);
    eqd::core::BufferLimits l;
    l.max_charge_W = 5000.0;
    l.max_discharge_W = 5000.0;
    l.v_min_V = 360.0;
    l.v_max_V = 440.0;
    for (const auto i : {kA, kB}) {
      cfg.channels[i].assigned = true;
      cfg.channels[i].limits = l;
    }
    core = std::make_unique<eqd::core::ControlCore>(cfg);
    link_a = make_link("st-a", dev_a.port(), kA);
    link_b = make_link("st-b", dev_b.port(), kB);
    control = std::thread([this] {
      while (!stop.load()) {
        const std::int64_t t = now_ns();
        eqd::core::Sample s;
        s.voltage_V = 50.0;
        s.power_W = -4000.0;  // discharging: feeds the bus
        s.receive_time_ns = t;
        s.state = eqd::core::ChannelState::running;
        s.valid = true;
        core->sample_slot(kTest).store(s);
        core->cycle(t);
        const double a_W = core->command_slot(kA).load().setpoint_W;
        if (a_W > max_a_W.load()) max_a_W.store(a_W);
        std::this_thread::sleep_for(50ms);
      }
    });
    link_a->start();
    link_b->start();
  }
  ~CoreRig() {
    link_a->stop();
    link_b->stop();
    stop.store(true);
    control.join();
    dev_a.stop();
    dev_b.stop();
  }
  std::unique_ptr<SunSpecLink> make_link(const char* name, std::uint16_t port, eqd::core::ChannelIndex i) {
    eqd::io::sunspec::SunSpecLinkConfig c;
    c.name = name;
    c.host = "127.0.0.1";
    c.port = port;
    c.poll_hz = 10;
    c.backoff_initial_ms = 50;
    c.backoff_max_ms = 200;
    c.channel_slots = {i};
    c.on_error = [this](std::uint16_t, std::error_code code, const char* msg) {
      if (!code && std::string(msg).find("limited to the device's") != std::string::npos) limit_notices.fetch_add(1);
    };
    return std::make_unique<SunSpecLink>(c, eqd::io::slots_from_core(*core, c.channel_slots));
  }
  /// The command the core has for channel i (battery side, + = charging).
  double setpoint_W(eqd::core::ChannelIndex i) const { return core->command_slot(i).load().setpoint_W; }

  ss::SunSpecDevice dev_a, dev_b;
  std::unique_ptr<eqd::core::ControlCore> core;
  std::unique_ptr<SunSpecLink> link_a, link_b;
  std::atomic<int> limit_notices{0};
  std::atomic<double> max_a_W{0.0};  ///< the largest setpoint the core ever had for device A
  std::atomic<bool> stop{false};
  std::thread control;
};

}  // namespace

TEST_CASE("sunspec link publishes the device's limits and the allocator gives the rest to the other buffer",
          "[sunspec][limits][device_limits]") {
  ss::DeviceConfig a = storage();
  a.storage.max_charge_W = 1500.0;  // 124 WChaMax 1500 W (= 802 WChaRteMax): both directions
  CoreRig r(a, storage());          // B: WChaMax 5000 W
  // The limits reach the core as the device reports them; B's are the configured ones' equal.
  REQUIRE(eventually([&] { return r.core->device_limits_slot(CoreRig::kA).load().max_charge_W == 1500.0F; }, 3s));
  CHECK(r.core->device_limits_slot(CoreRig::kA).load().max_discharge_W == 1500.0F);
  CHECK(eventually([&] { return r.core->device_limits_slot(CoreRig::kB).load().max_charge_W == 5000.0F; }, 2s));
  // The bus converges: A at its limit, B carrying the rest, the grid near 0 W.
  const bool converged = eventually(
      [&] {
        const eqd::core::BusSnapshot b = r.core->bus(0);
        return b.buffers == 2 && std::abs(b.net_W) < 150.0 && std::abs(r.dev_b.state().power_W + 3077.0) < 150.0;
      },
      30s);
  INFO("net " << r.core->bus(0).net_W << " W, A " << r.setpoint_W(CoreRig::kA) << " W, B " << r.setpoint_W(CoreRig::kB)
              << " W");
  CHECK(converged);
  CHECK(r.max_a_W.load() <= 1500.0 + 1e-9);  // never asked beyond the device's limit
  CHECK(r.setpoint_W(CoreRig::kA) == Approx(923.0).margin(100.0));
  CHECK(r.setpoint_W(CoreRig::kB) == Approx(3077.0).margin(150.0));
  CHECK(std::abs(r.dev_a.state().power_W + r.setpoint_W(CoreRig::kA)) < 20.0);  // SunSpec sign: importing
  CHECK(r.limit_notices.load() == 0);                                           // the link's clamp never had to act
  const eqd::core::ChannelSnapshot sa = r.core->channel(CoreRig::kA);
  CHECK(sa.device.max_charge_W == 1500.0F);
  CHECK(sa.limits.max_charge_W == 5000.0);
  CHECK(sa.headroom_charge_W == Approx(1500.0));
  CHECK(r.core->bus(0).capacity_charge_W == Approx(6500.0));

  // A lowers WChaMax at run time (a site tool, a derating): the link publishes it, the core moves the
  // difference to B (A 4000 x 1000 / 6000 = 667 W, B 3333 W).
  const std::vector<std::uint16_t> ids = r.dev_a.model_addresses();  // models 1, 103, 124, 802
  REQUIRE(ids.size() >= 3);
  modbus_t* ctx = modbus_new_tcp("127.0.0.1", r.dev_a.port());
  REQUIRE(ctx != nullptr);
  modbus_set_slave(ctx, 1);
  const bool written = modbus_connect(ctx) == 0 && modbus_write_register(ctx, ids[2] + 2 + 0, 1000) == 1;  // WChaMax
  modbus_close(ctx);
  modbus_free(ctx);
  REQUIRE(written);
  REQUIRE(eventually([&] { return r.core->device_limits_slot(CoreRig::kA).load().max_charge_W == 1000.0F; }, 3s));
  CHECK(eventually([&] { return r.setpoint_W(CoreRig::kA) <= 1000.0 + 1e-9; }, 1s));
  CHECK(eventually(
      [&] { return std::abs(r.core->bus(0).net_W) < 150.0 && std::abs(r.dev_b.state().power_W + 3333.0) < 150.0; },
      30s));
  CHECK(r.setpoint_W(CoreRig::kA) == Approx(667.0).margin(100.0));
  CHECK(r.core->channel(CoreRig::kA).headroom_charge_W == Approx(1000.0));
}

TEST_CASE("sunspec link refuses malformed devices with a clear error and stays offline", "[sunspec]") {
  struct Fault {
    const char* what;
    void (*apply)(ss::DeviceConfig&);
    const char* error;
  };
  const Fault faults[] = {
      {"impossible model length", [](ss::DeviceConfig& c) { c.faults.bad_length_index = 1; },
       "announces length 65534, past the end of the register space"},
      {"looping chain", [](ss::DeviceConfig& c) { c.faults.chain_end = ss::ChainEnd::loop_back; },
       "past the end of the register space"},
      {"endless chain", [](ss::DeviceConfig& c) { c.faults.chain_end = ss::ChainEnd::endless; },
       "without an end marker"},
      {"missing end", [](ss::DeviceConfig& c) { c.faults.chain_end = ss::ChainEnd::missing; },
       "no end marker after models 1, 103, 124, 802"},
      {"missing marker", [](ss::DeviceConfig& c) { c.faults.omit_marker = true; },
       "no SunSpec marker 'SunS' at 0, 40000 or 50000"},
      {"no model 124", [](ss::DeviceConfig& c) { c.kind = ss::DeviceKind::meter; },
       "lacks model 124 (storage controls) and 101-103/111-113 (inverter); it has models 1, 203"},
  };
  for (const Fault& f : faults) {
    INFO(f.what);
    ss::DeviceConfig dc = storage();
    f.apply(dc);
    Rig r(dc);
    // The counter, the published last error and the error hook are three stores: wait for all of them
    // (a loaded machine may run the test between them), then say which one is missing.
    (void)eventually(
        [&] {
          return r.link->discovery_errors() > 0 && r.errors.load() > 0 &&
                 r.last_error().find(f.error) != std::string::npos;
        },
        3s);
    REQUIRE(r.link->discovery_errors() > 0);
    CHECK_THAT(r.last_error(), Catch::Contains(f.error));
    CHECK(r.link->stats().last_error_code == static_cast<std::uint8_t>(eqd::io::LinkErrc::device_unusable));
    CHECK_FALSE(r.link->connected());
    CHECK(r.last().state == eqd::core::ChannelState::offline);
    CHECK(r.errors.load() > 0);
    r.command_W(true, 1000.0);
    std::this_thread::sleep_for(150ms);
    CHECK(r.dev.state().writes == 0);
  }
}

TEST_CASE("sunspec link: a slow or slowloris device times out, and another link is unaffected", "[sunspec]") {
  for (const bool trickle : {false, true}) {
    INFO((trickle ? "trickle" : "delay"));
    ss::DeviceConfig slow = storage();
    if (trickle)
      slow.faults.trickle_byte_ms = 60;
    else
      slow.faults.reply_delay_ms = 400;
    Rig bad(slow, 40000, 100);
    Rig good(storage());
    REQUIRE(eventually([&] { return bad.link->stats().timeouts > 0; }, 3s));
    CHECK_FALSE(bad.last().valid);
    CHECK(eventually([&] { return valid_sample(good); }, 2s));
  }
}

TEST_CASE("sunspec configuration: keys, required host, errors with file:line:col", "[sunspec][config]") {
  const std::string head = "buses: [{name: main}]\ncontrollers:\n  - name: st1\n    transport: sunspec\n";
  auto error_of = [](const std::string& yaml) {
    try {
      (void)eqd::config::parse_config(yaml, "t.yaml");
    } catch (const eqd::config::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const auto cfg = eqd::config::parse_config(
      head + "    host: 10.0.0.9\n    port: 1502\n    unit_id: 3\n    base_address: 50000\n", "t.yaml");
  REQUIRE(cfg.controllers.size() == 1);
  const auto* s = cfg.controllers[0].settings_as<eqd::io::sunspec::SunSpecSettings>();
  REQUIRE(s != nullptr);
  CHECK(s->host == "10.0.0.9");
  CHECK(s->port == 1502);
  CHECK(s->unit_id == 3);
  CHECK(s->base_address == 50000);
  CHECK(cfg.controllers[0].channels == 1);
  const auto dflt = eqd::config::parse_config(head + "    host: st1.lab.example\n", "t.yaml");
  CHECK(dflt.controllers[0].settings_as<eqd::io::sunspec::SunSpecSettings>()->base_address == -1);
  CHECK(dflt.controllers[0].settings_as<eqd::io::sunspec::SunSpecSettings>()->port == 502);
  CHECK_THAT(error_of(head), Catch::Contains("missing required key 'host' (transport sunspec)"));
  CHECK_THAT(
      error_of(head + "    host: 10.0.0.9\n    base_address: 40001\n"),
      Catch::StartsWith("t.yaml:6:19: controllers[0].base_address: ") && Catch::Contains("auto | 0 | 40000 | 50000"));
  CHECK_THAT(error_of(head + "    host: 10.0.0.9\n    channels: 2\n"),
             Catch::Contains("a SunSpec storage is one channel"));
  CHECK_THAT(error_of(head + "    host: 10.0.0.9\n    profile: x\n"),
             Catch::Contains("'profile' applies only to transport: tcp | rtu (this controller uses sunspec)"));
  CHECK_THAT(error_of(head + "    host: 'bad host'\n"), Catch::StartsWith("t.yaml:5:11: controllers[0].host: "));
  const eqd::io::Transport* t = eqd::io::find_transport("sunspec");
  REQUIRE(t != nullptr);
  CHECK(t->endpoint(*s) == "sunspec:10.0.0.9:1502#3");
  CHECK(t->lease_problem(*s, 2000, "st1").empty());
  CHECK_THAT(t->lease_problem(*s, 2500, "st1"), Catch::Contains("multiple of 1000 ms"));
  CHECK_THAT(t->lease_problem(*s, 70'000'000, "st1"), Catch::Contains("does not fit InOutWRte_RvrtTms"));
}

TEST_CASE("sunspec command encoding: rates in % of WChaMax, revert seconds rounded up", "[sunspec]") {
  std::uint16_t m124[24] = {};
  m124[eqd::io::sunspec::m124::kWChaMax] = 5000;
  m124[eqd::io::sunspec::m124::kInOutWRte_SF] = static_cast<std::uint16_t>(-2);
  eqd::io::sunspec::StorageWrite w;
  REQUIRE(eqd::io::sunspec::encode_command(true, 2500.0, 1500, m124, w).empty());
  CHECK(w.storctl_mod == 3);
  CHECK(static_cast<std::int16_t>(w.in_w_rte) == 5000);    // +50.00 %
  CHECK(static_cast<std::int16_t>(w.out_w_rte) == -5000);  // -50.00 %
  CHECK(w.rvrt_tms == 2);                                  // 1.5 s -> 2 s
  REQUIRE(eqd::io::sunspec::encode_command(false, 0.0, 1500, m124, w).empty());
  CHECK(w.storctl_mod == 0);
  CHECK(w.in_w_rte == 0);
  // Beyond WChaMax: clamped to it (100.00 %), never beyond.
  REQUIRE(eqd::io::sunspec::encode_command(true, 5000.5, 1500, m124, w).empty());
  CHECK(w.limited);
  CHECK(w.setpoint_W == 5000.0);
  CHECK(static_cast<std::int16_t>(w.in_w_rte) == 10000);
  // 802 limits (WChaDisChaMax_SF 0): charge 1234 W, discharge 999 W, rounded towards zero.
  std::uint16_t m802[62] = {};
  m802[eqd::io::sunspec::m802::kWChaRteMax] = 1234;
  m802[eqd::io::sunspec::m802::kWDisChaRteMax] = 999;
  REQUIRE(eqd::io::sunspec::encode_command(true, 3000.0, 1500, m124, w, m802).empty());
  CHECK(static_cast<std::int16_t>(w.in_w_rte) == 2468);  // 24.68 %
  REQUIRE(eqd::io::sunspec::encode_command(true, -3000.0, 1500, m124, w, m802).empty());
  CHECK(static_cast<std::int16_t>(w.out_w_rte) == 1998);  // 19.98 %
  CHECK(w.setpoint_W == -999.0);
  // Not implemented (value 0xFFFF or its scale factor 0x8000): that limit is absent.
  m802[eqd::io::sunspec::m802::kWChaRteMax] = 0xFFFF;
  REQUIRE(eqd::io::sunspec::encode_command(true, 3000.0, 1500, m124, w, m802).empty());
  CHECK_FALSE(w.limited);
  CHECK(static_cast<std::int16_t>(w.in_w_rte) == 6000);
  m802[eqd::io::sunspec::m802::kWChaDisChaMax_SF] = 0x8000;
  REQUIRE(eqd::io::sunspec::encode_command(true, -3000.0, 1500, m124, w, m802).empty());
  CHECK(static_cast<std::int16_t>(w.out_w_rte) == 6000);
  CHECK_FALSE(eqd::io::sunspec::encode_command(true, NAN, 1500, m124, w).empty());
  m124[eqd::io::sunspec::m124::kInOutWRte_SF] = 0x8000;
  CHECK_FALSE(eqd::io::sunspec::encode_command(true, 100.0, 1500, m124, w).empty());
}

TEST_CASE("sunspec chain walk stops at its model limit and at the end of the register space", "[sunspec]") {
  using eqd::io::sunspec::discover;
  // Marker at 40000, then `models` models of ID `id` and length `len`, then the end marker.
  auto device = [](int models, std::uint16_t id, std::uint16_t len) {
    return [=](std::uint32_t address, int count, std::uint16_t* dest) {
      for (int i = 0; i < count; ++i) {
        const std::uint32_t a = address + static_cast<std::uint32_t>(i);
        if (a < 40000 || a > 65535) {
          errno = EINVAL;
          return false;
        }
        std::uint16_t v = 0;
        if (a == 40000) v = 0x5375;
        if (a == 40001) v = 0x6E53;
        const std::uint32_t rel = a - 40002;
        const std::uint32_t slot = rel / (2U + len);
        if (a >= 40002 && rel % (2U + len) == 0) v = slot < static_cast<std::uint32_t>(models) ? id : 0xFFFF;
        if (a >= 40002 && rel % (2U + len) == 1) v = slot < static_cast<std::uint32_t>(models) ? len : 0;
        dest[i] = v;
      }
      return true;
    };
  };
  // 65 empty models: more than the walk accepts, although each is well formed.
  auto d = discover(-1, device(65, 64999, 0));
  CHECK_THAT(d.error, Catch::Contains("longer than 64 models"));
  // 64 models and the end: well formed, but no storage model.
  d = discover(40000, device(64, 64999, 0));
  CHECK_THAT(d.error, Catch::Contains("device lacks model 124"));
  CHECK(d.models.size() == 64);
  // One model reaching exactly to 65535: the next header would be past the space.
  d = discover(40000, device(1, 64999, static_cast<std::uint16_t>(65536 - 40004)));
  CHECK_THAT(d.error, Catch::Contains("runs to the end of the register space"));
  // One register more is past the space.
  d = discover(40000, device(1, 64999, static_cast<std::uint16_t>(65536 - 40004 + 1)));
  CHECK_THAT(d.error, Catch::Contains("past the end of the register space"));
}
