#pragma once
/// @file realtime.hpp
/// Optional real-time setup of the control thread: SCHED_FIFO priority and locked memory.

#include <string>

namespace eqd::daemon {

/// What apply_realtime() achieved. Plain data.
struct RealtimeOutcome {
  int priority = 0;          ///< requested SCHED_FIFO priority (0: not requested)
  int priority_error = 0;    ///< errno of pthread_setschedparam (0: applied or not requested)
  bool lock_memory = false;  ///< mlockall requested
  int lock_error = 0;        ///< errno of mlockall (0: locked or not requested)
};

/// Names the calling thread `thread_name` (at most 15 characters; tools such as top -H and the VM
/// test find the control thread by it), then applies SCHED_FIFO `priority` (1..99; 0: leave the
/// policy alone) to it and, if `lock_memory`, mlockall(MCL_CURRENT | MCL_FUTURE) to the process.
/// Never throws; failures are returned. Call on the thread to be set up (the control thread's start hook).
RealtimeOutcome apply_realtime(const char* thread_name, int priority, bool lock_memory) noexcept;

/// Logs the outcome: info when applied, a warning naming the missing permission when refused. Any thread.
void log_realtime(const RealtimeOutcome& outcome);

}  // namespace eqd::daemon
