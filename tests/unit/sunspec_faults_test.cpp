// Fault options of the SunSpec device simulator: each produces what it says, seen through a plain
// libmodbus client (sunspec_test_util.hpp).

#include <catch2/catch.hpp>

#include <set>

#include "sunspec_device.hpp"
#include "sunspec_test_util.hpp"

using namespace eqd::test::sunspec;
namespace ss = eqd::sim::sunspec;
using namespace std::chrono_literals;

namespace {

struct Rig {
  explicit Rig(ss::DeviceConfig c, int timeout_ms = 1000) : dev(std::move(c)) {
    dev.start();
    client = std::make_unique<Client>(dev.port(), timeout_ms);
  }
  ss::SunSpecDevice dev;
  std::unique_ptr<Client> client;
};

ss::DeviceConfig with(ss::FaultOptions f, ss::DeviceKind kind = ss::DeviceKind::storage, std::uint16_t base = 40000) {
  ss::DeviceConfig c;
  c.kind = kind;
  c.base = base;
  c.faults = std::move(f);
  return c;
}

}  // namespace

TEST_CASE("sunspec fault: a missing SunS marker") {
  ss::FaultOptions f;
  f.omit_marker = true;
  Rig r(with(f));
  CHECK(r.client->read(40000, 2) == std::vector<std::uint16_t>{0, 0});
  CHECK(r.client->read(40002, 2) == std::vector<std::uint16_t>{1, m1::L});  // the chain is still there
}

TEST_CASE("sunspec fault: a chain that loops back in 16-bit address arithmetic") {
  for (const std::uint16_t base : {std::uint16_t{0}, std::uint16_t{40000}}) {
    CAPTURE(base);
    ss::FaultOptions f;
    f.chain_end = ss::ChainEnd::loop_back;
    Rig r(with(f, ss::DeviceKind::storage, base));
    int a = base + 2;
    std::vector<int> seen;
    for (int i = 0; i < 5; ++i) {
      const auto h = r.client->read(a, 2);
      REQUIRE(h[0] != 0xFFFF);
      seen.push_back(a);
      const int next = a + 2 + h[1];
      if (i == 4) {
        CHECK(next > 0xFFFF);                // past the register space in wide arithmetic ...
        CHECK((next & 0xFFFF) == base + 2);  // ... and back to the first model in 16 bits
      }
      a = next & 0xFFFF;
    }
    CHECK(seen.front() == base + 2);
  }
}

TEST_CASE("sunspec fault: a chain that never ends fills the space to 65535 without 0xFFFF") {
  ss::FaultOptions f;
  f.chain_end = ss::ChainEnd::endless;
  Rig r(with(f, ss::DeviceKind::meter));
  int a = 40002, models = 0;
  while (a <= 0xFFFF - 1) {
    const auto h = r.client->read(a, 2);
    CHECK(h[0] != 0xFFFF);
    ++models;
    a += 2 + h[1];
  }
  CHECK(a == 0x10000);  // the last model ends exactly at the end of the space
  CHECK(models > 20);
  CHECK(r.client->read(0xFFFE, 2)[0] == 0);  // readable to the very last register
}

TEST_CASE("sunspec fault: a chain without an end marker") {
  ss::FaultOptions f;
  f.chain_end = ss::ChainEnd::missing;
  Rig r(with(f));
  const int end = 40148 + 2 + m802::L;
  CHECK(r.client->read(40148, 1)[0] == 802);
  CHECK(r.client->try_read(end, 2) == EMBXILADD);
}

TEST_CASE("sunspec fault: an impossible model length") {
  ss::FaultOptions f;
  f.bad_length_index = 2;  // model 124
  f.bad_length = 0xFFFE;
  Rig r(with(f));
  const auto h = r.client->read(40122, 2);
  CHECK(h[0] == 124);
  CHECK(h[1] == 0xFFFE);
  CHECK(40122 + 2 + h[1] > 0xFFFF);  // runs past the register space
  CHECK(r.client->try_read(0xFFFF, 1) == EMBXILADD);
  // The model itself is served as the specification lays it out.
  CHECK(r.client->read(40122 + m124::WChaMax, 1)[0] == 5000);
}

TEST_CASE("sunspec fault: scale factors that change") {
  SECTION("changed by the owner, also to an impossible value") {
    ss::DeviceConfig c = with({}, ss::DeviceKind::meter);
    Rig r(c);
    r.dev.set_meter_power_W(5000.0);
    auto m = r.client->read(40070, 2 + m203::L);
    CHECK(m[m203::W_SF] == 0);
    CHECK(m[m203::W] == 5000);
    r.dev.set_scale_factor("W_SF", 1);
    m = r.client->read(40070, 2 + m203::L);
    CHECK(s16(m[m203::W_SF]) == 1);
    CHECK(m[m203::W] == 500);
    CHECK(scaled(s16(m[m203::W]), m[m203::W_SF]) == 5000.0);
    r.dev.set_scale_factor("203.W_SF", 40);
    m = r.client->read(40070, 2 + m203::L);
    CHECK(s16(m[m203::W_SF]) == 40);
    CHECK(m[m203::W] == 0);
  }
  SECTION("toggling by itself") {
    ss::FaultOptions f;
    f.scale_factor_toggle_ms = 50;
    Rig r(with(f));
    std::set<int> seen;
    const auto end = std::chrono::steady_clock::now() + 400ms;
    while (std::chrono::steady_clock::now() < end) {
      seen.insert(s16(r.client->read(40070 + m103::W_SF, 1)[0]));
      std::this_thread::sleep_for(10ms);
    }
    CHECK(seen == std::set<int>{0, 1});
  }
}

TEST_CASE("sunspec fault: a slow device answers every request late") {
  ss::FaultOptions f;
  f.reply_delay_ms = 200;
  Rig r(with(f), 100);
  CHECK(r.client->try_read(40000, 2) == ETIMEDOUT);
  Client patient(r.dev.port(), 2000);
  std::this_thread::sleep_for(200ms);  // let the late answer to the first client go out
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(patient.read(40000, 2)[0] == 0x5375);
  CHECK(std::chrono::steady_clock::now() - t0 >= 190ms);
}

TEST_CASE("sunspec fault: a slowloris device trickles its replies out byte by byte") {
  ss::FaultOptions f;
  f.trickle_byte_ms = 20;
  Rig r(with(f), 1000);
  // Two registers: 13 bytes, about 260 ms, each byte well within libmodbus' default 500 ms byte timeout.
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(r.client->read(40000, 2) == std::vector<std::uint16_t>{0x5375, 0x6E53});
  CHECK(std::chrono::steady_clock::now() - t0 >= 240ms);
  // A client whose byte timeout is shorter than the trickle gives up.
  Client strict(r.dev.port(), 1000);
  strict.byte_timeout(5);
  CHECK(strict.try_read(40000, 2) == ETIMEDOUT);
}

TEST_CASE("sunspec: requests for another unit id get no reply") {
  ss::DeviceConfig c;
  c.unit_id = 3;
  ss::SunSpecDevice dev(c);
  dev.start();
  Client other(dev.port(), 100, 1);
  CHECK(other.try_read(40000, 2) == ETIMEDOUT);
  Client right(dev.port(), 1000, 3);
  CHECK(right.read(40000, 2)[0] == 0x5375);
  CHECK(right.read(40002 + m1::DA, 1)[0] == 3);  // DA = the unit id
}

TEST_CASE("sunspec: a bad configuration is refused") {
  ss::DeviceConfig c;
  c.base = 30000;
  CHECK_THROWS_AS(ss::SunSpecDevice(c), std::invalid_argument);
  c = ss::DeviceConfig{};
  c.models = {103, 1, 124};
  CHECK_THROWS_AS(ss::SunSpecDevice(c), std::invalid_argument);
  c.models = {1, 124};
  CHECK_THROWS_AS(ss::SunSpecDevice(c), std::invalid_argument);
  c.models = {1, 103, 124, 999};
  CHECK_THROWS_AS(ss::SunSpecDevice(c), std::invalid_argument);
}
