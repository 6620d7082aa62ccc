// io::LinkThread and io::Pace (io/link_thread.hpp): the thread and the period every link shares.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "eqd/io/link_thread.hpp"

namespace io = eqd::io;
using namespace std::chrono_literals;

namespace {
constexpr std::int64_t kS = 1'000'000'000;
}  // namespace

TEST_CASE("pace: absolute deadlines, missed periods counted and re-based on now", "[io][link_thread]") {
  io::Pace pace(10.0, 5 * kS);  // 10 Hz: a 100 ms period; the first deadline is the start
  CHECK(pace.next_ns() == 5 * kS);
  // A poll of 30 ms: the next deadline is one period after the last, not after the poll's end.
  CHECK(pace.end(5 * kS + 30'000'000) == 0);
  CHECK(pace.next_ns() == 5 * kS + 100'000'000);
  // A poll that ends exactly on its next deadline has missed that one.
  CHECK(pace.end(5 * kS + 200'000'000) == 1);
  CHECK(pace.next_ns() == 5 * kS + 200'000'000);
  // 350 ms late: the deadlines at +300 ms, +400 ms, +500 ms passed; the next poll starts now.
  CHECK(pace.end(5 * kS + 550'000'000) == 3);
  CHECK(pace.next_ns() == 5 * kS + 550'000'000);
}

TEST_CASE("pace: the achieved rate is a moving average of the polls' starts", "[io][link_thread]") {
  io::Pace pace(10.0, kS);
  double hz = 0.0;
  pace.begin(kS, hz);
  CHECK(hz == 0.0);  // one start: no rate yet
  pace.begin(kS + 100'000'000, hz);
  CHECK(hz == Approx(10.0));
  pace.begin(kS + 300'000'000, hz);  // 200 ms: 5 Hz, weighted 0.2
  CHECK(hz == Approx(9.0));
  pace.begin(kS + 300'000'000, hz);  // no time passed (a coarse clock): no rate from it
  CHECK(hz == Approx(9.0));
}

TEST_CASE("link thread: a stop wakes a long wait at once, start twice runs one body, and it restarts",
          "[io][link_thread]") {
  io::LinkThread t;
  t.stop();  // never started: nothing to do
  std::atomic<int> bodies{0}, waits{0};
  const auto body = [&] {
    ++bodies;
    while (!t.stopping()) {
      ++waits;
      t.wait_until_ns(io::steady_now_ns() + 600 * kS);  // ten minutes: only a stop ends it
    }
  };
  t.start(body);
  t.start(body);  // runs already: nothing
  while (waits.load() == 0) std::this_thread::yield();
  const auto t0 = std::chrono::steady_clock::now();
  t.stop();
  // Without the wake the join would wait out the ten minutes.
  CHECK(std::chrono::steady_clock::now() - t0 < 60s);
  CHECK(bodies.load() == 1);
  CHECK(waits.load() == 1);
  CHECK(t.stopping());
  t.stop();  // idempotent

  t.start(body);  // after a stop, a new thread with the flag cleared
  while (waits.load() == 1) std::this_thread::yield();
  CHECK(bodies.load() == 2);
  t.stop();
}
