#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "eqd/core/sample.hpp"
#include "eqd/core/seqlock.hpp"
#include "eqd/core/spsc_queue.hpp"

using namespace eqd::core;

TEST_CASE("seqlock round-trips a sample and bumps its version", "[seqlock]") {
  Seqlock<Sample> slot;
  const auto v0 = slot.version();
  Sample s;
  s.voltage_V = 3.7;
  s.current_A = -12.5;
  s.power_W = -46.25;
  s.sequence = 42;
  s.state = ChannelState::equalizing;
  s.equalization_mode = true;
  s.valid = true;
  slot.store(s);
  CHECK(slot.version() == v0 + 2);
  const Sample r = slot.load();
  CHECK(r.voltage_V == 3.7);
  CHECK(r.current_A == -12.5);
  CHECK(r.power_W == -46.25);
  CHECK(r.sequence == 42);
  CHECK(r.state == ChannelState::equalizing);
  CHECK(r.equalization_mode);
  CHECK(r.valid);
}

TEST_CASE("seqlock reader gives up (never blocks) while a write is stalled mid-way", "[seqlock]") {
  Seqlock<Sample> slot;
  Sample a;
  a.power_W = 1.0;
  slot.store(a);
  Sample b;
  b.power_W = 2.0;
  bool tried = false;
  slot.store_with_pause_for_test(b, [&] {
    Sample out;
    CHECK_FALSE(slot.try_load(out, 100));
    tried = true;
  });
  REQUIRE(tried);
  CHECK(slot.load().power_W == 2.0);
}

TEST_CASE("seqlock copies only the words asked for, and gives up while a write is stalled mid-way", "[seqlock]") {
  Seqlock<Sample> slot;
  Sample a;
  a.voltage_V = 48.5;   // word 0
  a.current_A = 6.25;   // word 1
  a.power_W = 303.125;  // word 2
  a.sequence = 7;       // word 5
  a.valid = true;       // word 7
  slot.store(a);
  Sample out;
  out.current_A = -1.0;
  out.sequence = 99;
  REQUIRE(slot.try_load_words<0, 2, 7>(out));
  CHECK(out.voltage_V == 48.5);
  CHECK(out.power_W == 303.125);
  CHECK(out.valid);
  CHECK(out.current_A == -1.0);  // words not asked for are left as they were
  CHECK(out.sequence == 99);

  Sample b = a;
  b.power_W = -10.0;
  bool tried = false;
  slot.store_with_pause_for_test(b, [&] {
    Sample mid;
    mid.power_W = 1.5;
    CHECK_FALSE(slot.try_load_words<2>(mid));
    CHECK(mid.power_W == 1.5);  // a failed attempt writes nothing
    tried = true;
  });
  REQUIRE(tried);
  REQUIRE(slot.try_load_words<2>(out));
  CHECK(out.power_W == -10.0);
}

TEST_CASE("spsc queue keeps FIFO order and reports full and empty", "[spsc]") {
  SpscQueue<int> q(3);  // rounded up to 4
  REQUIRE(q.capacity() == 4);
  int out = 0;
  CHECK_FALSE(q.try_pop(out));
  for (int i = 0; i < 4; ++i) CHECK(q.try_push(i));
  CHECK_FALSE(q.try_push(99));
  for (int i = 0; i < 4; ++i) {
    REQUIRE(q.try_pop(out));
    CHECK(out == i);
  }
  CHECK_FALSE(q.try_pop(out));
  // Wrap around several times.
  for (int round = 0; round < 10; ++round) {
    CHECK(q.try_push(round));
    REQUIRE(q.try_pop(out));
    CHECK(out == round);
  }
}

TEST_CASE("spsc queue passes a sequence between two threads without loss or reordering", "[spsc][stress]") {
  SpscQueue<std::uint64_t> q(64);
  constexpr std::uint64_t kCount = 200000;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kCount;) {
      if (q.try_push(i)) ++i;
    }
  });
  std::uint64_t expected = 0;
  std::uint64_t v = 0;
  bool ordered = true;
  while (expected < kCount) {
    if (q.try_pop(v)) {
      ordered = ordered && (v == expected);
      ++expected;
    }
  }
  producer.join();
  CHECK(ordered);
  CHECK_FALSE(q.try_pop(v));
}
