// The SunSpec device simulator against the SunSpec specification, through a plain libmodbus client:
// raw register reads decoded here from the specification's offsets (sunspec_test_util.hpp), never
// through the simulator's tables.

#include <catch2/catch.hpp>

#include <cstring>
#include <memory>

#include "sunspec_device.hpp"
#include "sunspec_test_util.hpp"

using namespace eqd::test::sunspec;
namespace ss = eqd::sim::sunspec;
using namespace std::chrono_literals;

namespace {

ss::DeviceConfig storage_config(std::uint16_t base = 40000) {
  ss::DeviceConfig c;
  c.kind = ss::DeviceKind::storage;
  c.base = base;
  return c;
}

ss::DeviceConfig meter_config(std::uint16_t model = 203) {
  ss::DeviceConfig c;
  c.kind = ss::DeviceKind::meter;
  c.meter.model = model;
  return c;
}

/// A started device and a client connected to it.
struct Rig {
  explicit Rig(ss::DeviceConfig c, int timeout_ms = 1000) : dev(std::move(c)) {
    dev.start();
    client = std::make_unique<Client>(dev.port(), timeout_ms);
  }
  ss::SunSpecDevice dev;
  std::unique_ptr<Client> client;
};

// The registers of the model whose ID register is at `at`, ID and L included.
std::vector<std::uint16_t> model(Client& c, int at) { return c.read(at, 2 + c.read(at + 1, 1)[0]); }

// Model 103's AC power, W (SunSpec sign: + = exported = discharging).
double inverter_W(Client& c, int at103) {
  const auto r = model(c, at103);
  return scaled(s16(r[m103::W]), r[m103::W_SF]);
}

}  // namespace

TEST_CASE("sunspec: the SunS marker is at the configured base address (0, 40000, 50000) and nowhere else") {
  for (const std::uint16_t base : {std::uint16_t{0}, std::uint16_t{40000}, std::uint16_t{50000}}) {
    CAPTURE(base);
    Rig r(storage_config(base));
    CHECK(r.client->read(base, 2) == std::vector<std::uint16_t>{0x5375, 0x6E53});
    for (const int other : {0, 40000, 50000})
      if (other != base) CHECK(r.client->try_read(other, 2) == EMBXILADD);
  }
}

TEST_CASE("sunspec: storage with the float inverter model 113") {
  auto cfg = storage_config();
  cfg.models = {1, 113, 124};
  Rig r(cfg);
  Client& c = *r.client;
  const auto at = c.walk(40000);
  REQUIRE(at.size() == 3);
  CHECK(c.read(at[1], 2) == std::vector<std::uint16_t>{113, 60});  // L 60
  const int s = at[2];
  CHECK(c.read(s, 1)[0] == 124);
  const auto f32 = [&](int off) {  // IEEE 754 single, high word first
    const auto w = c.read(at[1] + off, 2);
    const std::uint32_t bits = (static_cast<std::uint32_t>(w[0]) << 16) | w[1];
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  };
  CHECK(f32(24) == 50.0f);                                                              // Hz
  CHECK(c.read(at[1] + 28, 2) == std::vector<std::uint16_t>{0x7FC0, 0x0000});           // VAr: NaN, not implemented
  REQUIRE(c.write(s + m124::OutWRte, {4000, static_cast<std::uint16_t>(-4000)}) == 0);  // discharge at 40 %
  REQUIRE(c.write1(s + m124::StorCtl_Mod, 3) == 0);
  CHECK(eventually([&] { return f32(22) == 2000.0f; }, 2s));  // W: + = discharging
}

TEST_CASE("sunspec: storage with the single-phase inverter model 101 instead of 103") {
  auto cfg = storage_config();
  cfg.models = {1, 101, 124};
  Rig r(cfg);
  Client& c = *r.client;
  const auto at = c.walk(40000);
  REQUIRE(at.size() == 3);
  CHECK(c.read(at[1], 2) == std::vector<std::uint16_t>{101, 50});  // L 50, 103's layout (json/model_101)
  const int inv = at[1], s = at[2];
  CHECK(c.read(inv + m103::PhVphA, 1)[0] == 2300);                                         // 230.0 V with V_SF -1
  CHECK(c.read(inv + m103::PhVphA + 1, 2) == std::vector<std::uint16_t>{0xFFFF, 0xFFFF});  // PhVphB/C: single phase
  REQUIRE(c.write(s + m124::OutWRte, {4000, static_cast<std::uint16_t>(-4000)}) == 0);     // discharge at 40 %
  REQUIRE(c.write1(s + m124::StorCtl_Mod, 3) == 0);
  CHECK(eventually(
      [&] {
        return std::fabs(scaled(s16(c.read(inv + m103::W, 1)[0]), c.read(inv + m103::W_SF, 1)[0]) - 2000.0) < 1.0;
      },
      2s));
  // Its one phase carries the whole current: 2000 W / 230 V with A_SF -2.
  CHECK(scaled(c.read(inv + m103::A, 1)[0], c.read(inv + m103::A_SF, 1)[0]) == Approx(2000.0 / 230.0).margin(0.01));
  CHECK(scaled(c.read(inv + m103::A + 1, 1)[0], c.read(inv + m103::A_SF, 1)[0]) ==  // AphA
        Approx(2000.0 / 230.0).margin(0.01));
}

TEST_CASE("sunspec: the model chain walks ID, L, L registers and ends with ID 0xFFFF, L 0") {
  SECTION("storage, default chain 1, 103, 124, 802") {
    Rig r(storage_config());
    const auto at = r.client->walk(40000);
    REQUIRE(at.size() == 4);
    const int ids[] = {1, 103, 124, 802}, lens[] = {m1::L, m103::L, m124::L, m802::L};
    for (std::size_t i = 0; i < at.size(); ++i) {
      const auto h = r.client->read(at[i], 2);
      CHECK(h[0] == ids[i]);
      CHECK(h[1] == lens[i]);
    }
    CHECK(at[0] == 40002);
    const int end = at[3] + 2 + m802::L;
    CHECK(r.client->read(end, 2) == std::vector<std::uint16_t>{0xFFFF, 0});
    CHECK(r.client->try_read(end + 2, 1) == EMBXILADD);  // nothing is served after the end
    CHECK(r.dev.model_addresses() == std::vector<std::uint16_t>{40002, 40070, 40122, 40148});
  }
  SECTION("storage, chain in another order, without 802") {
    auto c = storage_config(0);
    c.models = {1, 124, 103};
    Rig r(c);
    const auto at = r.client->walk(0);
    REQUIRE(at.size() == 3);
    CHECK(r.client->read(at[1], 1)[0] == 124);
    CHECK(r.client->read(at[2], 1)[0] == 103);
  }
  SECTION("meters 201, 203, 204") {
    for (const std::uint16_t m : {std::uint16_t{201}, std::uint16_t{203}, std::uint16_t{204}}) {
      Rig r(meter_config(m));
      const auto at = r.client->walk(40000);
      REQUIRE(at.size() == 2);
      CHECK(r.client->read(at[1], 2) == std::vector<std::uint16_t>{m, static_cast<std::uint16_t>(m203::L)});
    }
  }
}

TEST_CASE("sunspec: common model strings, DA and Pad") {
  auto c = storage_config();
  c.manufacturer = "eqd lab";
  c.model_name = "BufferPack 32 characters long..";  // 31 characters + the NUL
  c.serial = "0123456789abcdef0123456789ABCDEF";     // 32 characters: no room for a NUL
  c.version = "2.5";
  c.options = "";
  Rig r(c);
  const auto m = model(*r.client, 40002);
  CHECK(m[1] == m1::L);
  CHECK(text(m, m1::Mn, 16) == "eqd lab");
  CHECK(text(m, m1::Md, 16) == "BufferPack 32 characters long..");
  CHECK(text(m, m1::SN, 16) == "0123456789abcdef0123456789ABCDEF");
  CHECK(text(m, m1::Vr, 8) == "2.5");
  for (int i = m1::Opt; i < m1::Opt + 8; ++i) CHECK(m[static_cast<std::size_t>(i)] == 0);  // empty: all NUL
  CHECK(m[m1::Mn] == (('e' << 8) | 'q'));  // first character in the high byte
  CHECK(m[m1::DA] == 1);
  CHECK(m[m1::Pad] == 0x8000);
}

TEST_CASE("sunspec: scale factors are applied as value = raw x 10^sf") {
  SECTION("meter W with W_SF 1 and 0") {
    auto c = meter_config();
    c.scale_factors = {{"W_SF", 1}};
    Rig r(c);
    r.dev.set_meter_power_W(12345.0);
    const auto m = model(*r.client, 40070);
    CHECK(s16(m[m203::W_SF]) == 1);
    CHECK((m[m203::W] == 1234 || m[m203::W] == 1235));
    CHECK(scaled(s16(m[m203::W]), m[m203::W_SF]) == Approx(12345.0).margin(10.0));
    CHECK(scaled(s16(m[m203::PhV]), m[m203::V_SF]) == Approx(230.0).margin(0.1));
  }
  SECTION("storage: ChaState, 802 SoC and WHRtg, and a written InWRte with InOutWRte_SF -1") {
    auto c = storage_config();
    c.scale_factors = {{"124.InOutWRte_SF", -1}};
    c.storage.soc_pct = 42.0;
    Rig r(c);
    const auto s = model(*r.client, 40122);
    CHECK(s16(s[m124::ChaState_SF]) == -1);
    CHECK(s[m124::ChaState] == 420);
    CHECK(s16(s[m124::InOutWRte_SF]) == -1);
    CHECK(s16(s[m124::InWRte]) == 1000);  // 100.0 %
    const auto b = model(*r.client, 40148);
    CHECK(scaled(b[m802::SoC], b[m802::SoC_SF]) == Approx(42.0).margin(0.1));
    CHECK(b[m802::WHRtg] == 10000);
    // Discharge limit (bit 1) of -50.0 % of WChaMax (5000 W), raw -500 with sf -1: the device must
    // charge at least 2500 W and, its own mode being 0 W, charges exactly that (103 W = -2500).
    REQUIRE(r.client->write1(40122 + m124::OutWRte, static_cast<std::uint16_t>(-500)) == 0);
    REQUIRE(r.client->write1(40122 + m124::StorCtl_Mod, 2) == 0);
    CHECK(eventually([&] { return std::fabs(inverter_W(*r.client, 40070) + 2500.0) < 1.0; }, 2s));
  }
}

TEST_CASE("sunspec: storage follows InWRte/OutWRte within its ramp (103 W > 0 = discharging)") {
  auto cfg = storage_config();
  cfg.storage.capacity_Wh = 20.0;  // 2.5 kW for a second moves the SoC by 3.5 %
  Rig r(cfg);
  Client& c = *r.client;
  const int s = 40122, inv = 40070, bat = 40148;
  REQUIRE(c.write1(s + m124::RmpTms, 1) == 0);  // 1 s linear ramp
  const auto soc0 = c.read(s + m124::ChaState, 1)[0];
  // Charge at 50 % of WChaMax: charge limit +50 %, discharge limit -50 % (i.e. at least 50 % charge).
  REQUIRE(c.write(s + m124::OutWRte, {static_cast<std::uint16_t>(-5000), 5000}) == 0);
  REQUIRE(c.write1(s + m124::StorCtl_Mod, 3) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(300ms);
  const double mid = inverter_W(c, inv);
  const double mid_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(mid < -100.0);                                 // on its way ...
  CHECK(mid > -2500.0 * std::min(1.0, mid_s + 0.15));  // ... not faster than the ramp
  CHECK(eventually([&] { return std::fabs(inverter_W(c, inv) + 2500.0) < 1.0; }, 1500ms));
  CHECK(c.read(s + m124::ChaSt, 1)[0] == kCharging);
  CHECK(s16(c.read(bat + m802::W, 1)[0]) == -2500);
  CHECK(c.read(s + m124::ChaState, 1)[0] > soc0);
  // Discharge at 40 %: InWRte -40 % forces it, OutWRte +40 % allows it.
  REQUIRE(c.write(s + m124::OutWRte, {4000, static_cast<std::uint16_t>(-4000)}) == 0);
  CHECK(eventually([&] { return std::fabs(inverter_W(c, inv) - 2000.0) < 1.0; }, 1500ms));
  CHECK(c.read(s + m124::ChaSt, 1)[0] == kDischarging);
  CHECK(r.dev.state().power_W == Approx(2000.0).margin(1.0));
}

TEST_CASE("sunspec: storage returns to its own mode (0 W) after InOutWRte_RvrtTms without a new write") {
  Rig r(storage_config());
  Client& c = *r.client;
  const int s = 40122, inv = 40070;
  REQUIRE(c.write(s + m124::WChaGra, {1000, 1000}) == 0);  // 1000 %/s: full power in 0.1 s
  const auto command = [&] {
    REQUIRE(c.write(s + m124::OutWRte, {static_cast<std::uint16_t>(-4000), 4000}) == 0);
    REQUIRE(c.write1(s + m124::StorCtl_Mod, 3) == 0);
  };
  command();
  std::this_thread::sleep_for(1100ms);  // RvrtTms 0: no timeout at all
  CHECK(c.read(s + m124::StorCtl_Mod, 1)[0] == 3);
  REQUIRE(c.write1(s + m124::RvrtTms, 1) == 0);  // the timer starts with this write, not before
  CHECK(c.read(s + m124::StorCtl_Mod, 1)[0] == 3);
  for (int i = 0; i < 3; ++i) {  // refreshed every 0.4 s for 1.2 s (> RvrtTms): stays
    std::this_thread::sleep_for(400ms);
    CHECK(c.read(s + m124::StorCtl_Mod, 1)[0] == 3);
    CHECK(inverter_W(c, inv) == Approx(-2000.0).margin(1.0));
    command();
  }
  const auto last = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return c.read(s + m124::StorCtl_Mod, 1)[0] == 0; }, 1500ms));
  const double after_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - last).count();
  CHECK(after_s >= 0.95);
  CHECK(after_s < 1.3);
  CHECK(eventually([&] { return inverter_W(c, inv) == 0.0; }, 500ms));
  CHECK(r.dev.state().reverts == 1);
  CHECK(s16(c.read(s + m124::InWRte, 1)[0]) == 10000);  // rates back to 100 %
}

TEST_CASE("sunspec: storage stops charging at SoC 100 % and discharging at 0 %") {
  auto cfg = storage_config();
  cfg.storage.capacity_Wh = 1.0;  // 5 kW empties it in 0.72 s
  cfg.storage.soc_pct = 99.0;
  cfg.storage.ramp_pct_per_s = 1000.0;
  Rig r(cfg);
  Client& c = *r.client;
  const int s = 40122, inv = 40070;
  // With a 1 s ramp: a full battery must stop at once, not ramp down while still charging.
  REQUIRE(c.write1(s + m124::RmpTms, 1) == 0);
  REQUIRE(c.write1(s + m124::StorCtl_Mod, 3) == 0);
  REQUIRE(c.write(s + m124::OutWRte, {static_cast<std::uint16_t>(-10000), 10000}) == 0);  // charge at 100 %
  CHECK(eventually([&] { return c.read(s + m124::ChaSt, 1)[0] == kFull; }, 1s));
  CHECK(inverter_W(c, inv) == 0.0);
  CHECK(c.read(s + m124::ChaState, 1)[0] == 1000);                                        // 100.0 %
  REQUIRE(c.write(s + m124::OutWRte, {10000, static_cast<std::uint16_t>(-10000)}) == 0);  // discharge at 100 %
  CHECK(eventually([&] { return inverter_W(c, inv) > 2000.0; }, 1s));
  CHECK(eventually([&] { return c.read(s + m124::ChaSt, 1)[0] == kEmpty; }, 2s));
  CHECK(inverter_W(c, inv) == 0.0);
  CHECK(c.read(s + m124::ChaState, 1)[0] == 0);
}

TEST_CASE("sunspec: an illegal write gets the Modbus exception and changes nothing") {
  Rig r(storage_config());
  Client& c = *r.client;
  const int s = 40122;
  const auto before = model(c, s);
  CHECK(c.write1(s + m124::InWRte, 15000) == EMBXILVAL);                                       // 150 %
  CHECK(c.write1(s + m124::InWRte, 0x8000) == EMBXILVAL);                                      // "not implemented"
  CHECK(c.write1(s + m124::StorCtl_Mod, 4) == EMBXILVAL);                                      // undefined bit
  CHECK(c.write(s + m124::OutWRte, {5000, static_cast<std::uint16_t>(-10100)}) == EMBXILVAL);  // second one bad
  CHECK(c.write1(s + m124::ChaGriSet, 2) == EMBXILVAL);
  CHECK(c.write1(s + m124::WChaMax, 6000) == EMBXILVAL);               // above the rating
  CHECK(c.write1(s + m124::ChaState, 100) == EMBXILADD);               // read-only
  CHECK(c.write(s + m124::StorCtl_Mod, {3, 0xFFFF, 0}) == EMBXILADD);  // into VAChaMax (absent)
  CHECK(c.write1(40070 + m103::W, 0) == EMBXILADD);                    // read-only model
  CHECK(c.write1(40000, 0) == EMBXILADD);                              // the marker
  CHECK(c.write1(s, 124) == EMBXILADD);                                // a model header
  CHECK(c.write1(40002 + m1::DA, 0) == EMBXILVAL);                     // DA 1..247
  CHECK(c.write1(39999, 0) == EMBXILADD);                              // not served
  // FC16 whose byte count (4) is not twice its register count (1): malformed, refused, not stored.
  const auto a = static_cast<std::uint16_t>(s + m124::InWRte);
  CHECK(c.raw({1, 0x10, static_cast<std::uint8_t>(a >> 8), static_cast<std::uint8_t>(a & 0xFF), 0, 1, 4, 0x03, 0xE8, 0,
               0}) == std::vector<std::uint8_t>{0x90, 0x03});
  const auto after = model(c, s);
  for (const int i : {m124::InWRte, m124::OutWRte, m124::StorCtl_Mod, m124::ChaGriSet, m124::WChaMax})
    CHECK(after[static_cast<std::size_t>(i)] == before[static_cast<std::size_t>(i)]);
  CHECK(r.dev.state().writes == 0);
  CHECK(r.dev.state().rejected_writes == 13);
  CHECK(r.dev.state().power_W == 0.0);
  // A legal write of the same registers goes through.
  CHECK(c.write(s + m124::OutWRte, {5000, 5000}) == 0);
  CHECK(c.write1(40002 + m1::DA, 7) == 0);
  CHECK(c.read(40002 + m1::DA, 1)[0] == 7);
}

TEST_CASE("sunspec: the meter's W, per-phase W and energy accumulators follow the owner's power") {
  auto cfg = meter_config();
  cfg.scale_factors = {{"W_SF", 1}};
  Rig r(cfg);
  Client& c = *r.client;
  const int m = 40070;
  r.dev.set_meter_power_W(72000.0);  // 20 Wh per second imported
  auto a = model(c, m);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(scaled(s16(a[m203::W]), a[m203::W_SF]) == 72000.0);
  for (const int ph : {m203::WphA, m203::WphB, m203::WphC})
    CHECK(scaled(s16(a[static_cast<std::size_t>(ph)]), a[m203::W_SF]) == 24000.0);
  std::this_thread::sleep_for(300ms);
  auto b = model(c, m);
  double dt_h = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 3600.0;
  const double sf = std::pow(10.0, s16(a[m203::TotWh_SF]));
  CHECK((u32(b, m203::TotWhImp) - u32(a, m203::TotWhImp)) * sf ==
        Approx(72000.0 * dt_h).margin(2.0 + 72000.0 * 0.05 / 3600));
  CHECK(u32(b, m203::TotWhExp) == u32(a, m203::TotWhExp));
  r.dev.set_meter_power_W(-36000.0);  // 10 Wh per second exported
  a = model(c, m);
  const auto t1 = std::chrono::steady_clock::now();
  CHECK(scaled(s16(a[m203::W]), a[m203::W_SF]) == -36000.0);
  std::this_thread::sleep_for(300ms);
  b = model(c, m);
  dt_h = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() / 3600.0;
  CHECK((u32(b, m203::TotWhExp) - u32(a, m203::TotWhExp)) * sf == Approx(36000.0 * dt_h).margin(2.0));
  CHECK(u32(b, m203::TotWhImp) == u32(a, m203::TotWhImp));
}

TEST_CASE("sunspec: points a device does not implement read as the type's not-implemented value") {
  SECTION("storage with only its mandatory points") {
    auto cfg = storage_config();
    cfg.faults.optional_absent = true;
    Rig r(cfg);
    Client& c = *r.client;
    const auto s = model(c, 40122);
    CHECK(s[m124::InWRte] == 0x8000);  // int16
    CHECK(s[m124::OutWRte] == 0x8000);
    CHECK(s[m124::VAChaMax] == 0xFFFF);  // uint16
    CHECK(s[m124::ChaState] == 0xFFFF);
    CHECK(s[m124::ChaSt] == 0xFFFF);  // enum16
    CHECK(s[m124::ChaGriSet] == 0xFFFF);
    CHECK(s[m124::MinRsvPct_SF] == 0x8000);  // sunssf
    CHECK(s[m124::WChaMax] == 5000);         // mandatory: served
    const auto i = model(c, 40070);
    CHECK(i[m103::VAr] == 0x8000);
    CHECK(i[m103::VAr_SF] == 0x8000);
    CHECK(u32(i, m103::WH) != 0);  // mandatory acc32
    const auto common = model(c, 40002);
    for (int k = m1::Opt; k < m1::Vr + 8; ++k) CHECK(common[static_cast<std::size_t>(k)] == 0);  // strings
    CHECK(c.write1(40122 + m124::InWRte, 5000) == EMBXILADD);  // nothing there to write
  }
  SECTION("meter 203 with only its mandatory points, 201 without phases B and C") {
    auto cfg = meter_config();
    cfg.faults.optional_absent = true;
    Rig r(cfg);
    const auto m = model(*r.client, 40070);
    CHECK(u32(m, m203::TotWhExpPhA) == 0);  // acc32
    CHECK(m[m203::WphA] == 0x8000);
    CHECK(u32(m, m203::TotVAhExp) == 0);
    CHECK(u32(m, m203::TotWhImp) != 0);
    Rig single(meter_config(201));
    single.dev.set_meter_power_W(1000.0);
    const auto m1p = model(*single.client, 40070);
    CHECK(s16(m1p[m203::WphA]) == 1000);
    CHECK(m1p[m203::WphB] == 0x8000);
    CHECK(m1p[m203::WphC] == 0x8000);
  }
  SECTION("one named point") {
    auto cfg = storage_config();
    cfg.faults.absent_points = {"124.InWRte", "SN"};
    Rig r(cfg);
    CHECK(r.client->read(40122 + m124::InWRte, 1)[0] == 0x8000);
    CHECK(r.client->read(40122 + m124::OutWRte, 1)[0] == 10000);
    CHECK(text(model(*r.client, 40002), m1::SN, 16).empty());
  }
}
