// eqd's planner thread. See planner_thread.hpp.
#include "eqd/daemon/planner_thread.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include "eqd/daemon/clock.hpp"

namespace eqd::daemon {

PlannerThread::PlannerThread(core::ControlCore& core, int poll_ms)
    : core_(core), poll_ms_(poll_ms), service_(core.plan_board().buses()) {}

PlannerThread::~PlannerThread() { stop(); }

void PlannerThread::start() {
  if (thread_.joinable() || !core_.plans()) return;
  stop_.reset();
  thread_ = std::thread([this] { run(); });
  spdlog::info("planner thread started: receding-horizon plans for the buses with law 'planned'");
}

void PlannerThread::stop() {
  if (!thread_.joinable()) return;
  stop_.request();
  thread_.join();
}

void PlannerThread::run() noexcept {
  while (!stop_.wait_for(std::chrono::milliseconds(poll_ms_))) {
    const std::int64_t t0 = monotonic_ns();
    const std::size_t made = service_.serve(core_.plan_board());  // noexcept, allocation-free
    if (made == 0) continue;
    const std::int64_t dt = monotonic_ns() - t0;
    stats_.plans.fetch_add(made, std::memory_order_relaxed);
    stats_.last_plan_ns.store(dt, std::memory_order_relaxed);
    if (dt > stats_.max_plan_ns.load(std::memory_order_relaxed))
      stats_.max_plan_ns.store(dt, std::memory_order_relaxed);
  }
}

}  // namespace eqd::daemon
