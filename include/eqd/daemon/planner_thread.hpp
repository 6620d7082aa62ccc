#pragma once
/// @file planner_thread.hpp
/// eqd's planner thread: solves the plans that buses with law `planned` ask for (core::PlanBoard), off
/// the control thread, and publishes the answers lock-free (docs/control.md, "The receding-horizon
/// planner"). Started only when some bus plans. The control thread never waits for it: an ask left
/// unanswered twice makes that bus's law fall back to the adaptive law until answers come again.

#include <atomic>
#include <cstdint>
#include <thread>

#include "eqd/core/control_core.hpp"
#include "eqd/core/plan_board.hpp"
#include "eqd/daemon/stop_signal.hpp"

namespace eqd::daemon {

/// Statistics of the planner thread (atomics). Any thread.
struct PlannerStats {
  std::atomic<std::uint64_t> plans{0};
  std::atomic<std::int64_t> last_plan_ns{0};  ///< duration of the last pass that made a plan
  std::atomic<std::int64_t> max_plan_ns{0};
};

/// Owns the planner thread. Thread-safety: start()/stop() from the owner (main) thread; stats() from
/// any thread.
class PlannerThread {
 public:
  /// poll_ms: how often the board is looked at (an ask waits at most this long before it is solved).
  explicit PlannerThread(core::ControlCore& core, int poll_ms = 20);
  ~PlannerThread();
  PlannerThread(const PlannerThread&) = delete;
  PlannerThread& operator=(const PlannerThread&) = delete;

  /// Start the thread if some bus plans (else nothing to do). Idempotent.
  void start();
  /// Stop and join. Idempotent.
  void stop();
  [[nodiscard]] bool running() const noexcept { return thread_.joinable(); }
  [[nodiscard]] const PlannerStats& stats() const noexcept { return stats_; }

 private:
  void run() noexcept;

  core::ControlCore& core_;
  int poll_ms_;
  core::PlanService service_;
  PlannerStats stats_;
  std::thread thread_;
  StopSignal stop_;
};

}  // namespace eqd::daemon
