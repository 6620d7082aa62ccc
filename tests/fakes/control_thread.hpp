#pragma once
/// @file control_thread.hpp
/// A stand-in for eqd's control thread in link tests: it ticks the cycle clock that links check for
/// liveness and, like core::ControlCore, re-confirms live equalize commands (new issued_ns, same
/// sequence) so that a link keeps refreshing them. freeze() stops both, as a hung control thread would.
/// Thread-safety: every method from any thread; command writes from the test and the re-confirmations
/// of its own thread are serialised on a mutex, so each Seqlock still sees one writer at a time.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "eqd/core/sample.hpp"
#include "eqd/core/seqlock.hpp"
#include "eqd/io/link.hpp"

namespace eqd::test {

class FakeControlThread {
 public:
  /// Liveness bound the fake hands to links, and how often it cycles.
  static constexpr std::int64_t kLiveness_ns = 400'000'000;
  static constexpr std::chrono::milliseconds kPeriod{20};

  static std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  explicit FakeControlThread(std::vector<core::Seqlock<core::Command>*> commands)
      : commands_(std::move(commands)), thread_([this] { run(); }) {}
  ~FakeControlThread() {
    stop_.store(true);
    thread_.join();
  }
  FakeControlThread(const FakeControlThread&) = delete;
  FakeControlThread& operator=(const FakeControlThread&) = delete;

  /// Points `slots` at this fake's cycle clock and liveness bound.
  void attach(io::ChannelSlots& slots) const {
    slots.cycle_clock = &clock_;
    slots.liveness_ns = kLiveness_ns;
  }
  /// Publishes `c` for channel k as computed now (issued_ns = now).
  void store(std::size_t k, core::Command c) {
    const std::lock_guard<std::mutex> lock(mutex_);
    c.issued_ns = now_ns();
    commands_[k]->store(c);
  }
  /// Publishes `c` for channel k as computed at `issued_ns` (e.g. before a stall).
  void store_issued(std::size_t k, core::Command c, std::int64_t issued_ns) {
    const std::lock_guard<std::mutex> lock(mutex_);
    c.issued_ns = issued_ns;
    commands_[k]->store(c);
  }
  /// false: keep cycling but re-confirm nothing (the core after a stall, for buffers not heard since).
  void set_confirming(bool on) { confirming_.store(on); }
  /// Stops cycling (no clock tick, no re-confirmation) until thaw().
  void freeze() { frozen_.store(true); }
  void thaw() { frozen_.store(false); }

 private:
  void run() {
    while (!stop_.load()) {
      if (!frozen_.load()) {
        const std::int64_t now = now_ns();
        if (confirming_.load()) {
          const std::lock_guard<std::mutex> lock(mutex_);
          for (auto* slot : commands_) {
            core::Command c = slot->load();
            if (!c.equalize || c.sequence == 0 || now - c.issued_ns < kLiveness_ns / 4) continue;
            c.issued_ns = now;
            slot->store(c);
          }
        }
        clock_.store(now, std::memory_order_release);
      }
      std::this_thread::sleep_for(kPeriod);
    }
  }

  std::vector<core::Seqlock<core::Command>*> commands_;
  std::mutex mutex_;
  std::atomic<std::int64_t> clock_{0};
  std::atomic<bool> frozen_{false};
  std::atomic<bool> confirming_{true};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace eqd::test
