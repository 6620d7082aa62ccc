// eqd's planner thread. See planner_thread.hpp.
#include "eqd/daemon/planner_thread.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

namespace eqd::daemon {

namespace {
std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

PlannerThread::PlannerThread(core::ControlCore& core, int poll_ms)
    : core_(core), poll_ms_(poll_ms), service_(core.plan_board().buses()) {}

PlannerThread::~PlannerThread() { stop(); }

void PlannerThread::start() {
  if (thread_.joinable() || !core_.plans()) return;
  stop_ = false;
  thread_ = std::thread([this] { run(); });
  spdlog::info("planner thread started: receding-horizon plans for the buses with law 'planned'");
}

void PlannerThread::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void PlannerThread::run() noexcept {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stop_; })) return;
    }
    const std::int64_t t0 = steady_ns();
    const std::size_t made = service_.serve(core_.plan_board());  // noexcept, allocation-free
    if (made == 0) continue;
    const std::int64_t dt = steady_ns() - t0;
    stats_.plans.fetch_add(made, std::memory_order_relaxed);
    stats_.last_plan_ns.store(dt, std::memory_order_relaxed);
    if (dt > stats_.max_plan_ns.load(std::memory_order_relaxed)) stats_.max_plan_ns.store(dt, std::memory_order_relaxed);
  }
}

}  // namespace eqd::daemon
