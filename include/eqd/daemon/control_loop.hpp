#pragma once
/// @file control_loop.hpp
/// The control thread: runs ControlCore::cycle() on an absolute-deadline period.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

#include "eqd/core/control_core.hpp"
#include "eqd/daemon/clock.hpp"

namespace eqd::daemon {

/// Owns the control thread. Thread-safety: start()/stop() from the owner (main) thread; cycles(),
/// last_cycle_ns() and overruns() from any thread (atomics).
class ControlLoop {
 public:
  ControlLoop(core::ControlCore& core, std::chrono::milliseconds period);
  ~ControlLoop();
  ControlLoop(const ControlLoop&) = delete;
  ControlLoop& operator=(const ControlLoop&) = delete;

  /// Runs `hook` on the control thread when it starts, before its first cycle (thread name,
  /// scheduling policy, memory locking). Set it before start(); owner thread.
  void set_thread_start_hook(std::function<void()> hook) { start_hook_ = std::move(hook); }

  void start();
  /// Stop and join. Idempotent.
  void stop();

  /// Completed cycles. The watchdog and readiness are derived from it: it only grows while the
  /// control thread really cycles.
  [[nodiscard]] std::uint64_t cycles() const noexcept { return cycles_.load(std::memory_order_acquire); }
  [[nodiscard]] std::int64_t last_cycle_ns() const noexcept { return last_cycle_ns_.load(std::memory_order_acquire); }
  /// Periods skipped because a cycle (or the scheduler) ran later than a whole period.
  [[nodiscard]] std::uint64_t overruns() const noexcept { return overruns_.load(std::memory_order_relaxed); }

 private:
  void run() noexcept;

  core::ControlCore& core_;
  std::int64_t period_ns_;
  std::function<void()> start_hook_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> cycles_{0};
  std::atomic<std::int64_t> last_cycle_ns_{0};
  std::atomic<std::uint64_t> overruns_{0};
};

}  // namespace eqd::daemon
