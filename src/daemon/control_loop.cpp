#include "eqd/daemon/control_loop.hpp"

#include <ctime>

namespace eqd::daemon {

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

ControlLoop::ControlLoop(core::ControlCore& core, std::chrono::milliseconds period)
    : core_(core), period_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(period).count()) {}

ControlLoop::~ControlLoop() { stop(); }

void ControlLoop::start() {
  if (thread_.joinable()) return;
  stop_.store(false);
  thread_ = std::thread([this] { run(); });
}

void ControlLoop::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ControlLoop::run() noexcept {
  // Before the first deadline: what the hook does (e.g. logging a refused SCHED_FIFO) is not RT work.
  if (start_hook_) start_hook_();
  std::int64_t next = monotonic_ns();
  while (!stop_.load(std::memory_order_acquire)) {
    // Sleep to an absolute deadline so that the period does not drift with the cycle's duration.
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(next / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(next % 1'000'000'000);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) != 0) {}
    const std::int64_t start = monotonic_ns();
    core_.cycle(start);
    const std::int64_t end = monotonic_ns();
    core_.record_timing(end - start, start - next);
    last_cycle_ns_.store(start, std::memory_order_release);
    cycles_.fetch_add(1, std::memory_order_acq_rel);
    next += period_ns_;
    if (next <= end) {
      // Late by a whole period or more: skip the missed deadlines rather than running a burst.
      const std::int64_t missed = (end - next) / period_ns_ + 1;
      overruns_.fetch_add(static_cast<std::uint64_t>(missed), std::memory_order_relaxed);
      next += missed * period_ns_;
    }
  }
}

}  // namespace eqd::daemon
