#include "realtime.hpp"

#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace eqd::daemon {

RealtimeOutcome apply_realtime(const char* thread_name, int priority, bool lock_memory) noexcept {
  RealtimeOutcome out;
  (void)pthread_setname_np(pthread_self(), thread_name);
  out.priority = priority;
  if (priority > 0) {
    sched_param sp{};
    sp.sched_priority = priority;
    out.priority_error = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
  }
  out.lock_memory = lock_memory;
  if (lock_memory && mlockall(MCL_CURRENT | MCL_FUTURE) != 0) out.lock_error = errno;
  return out;
}

void log_realtime(const RealtimeOutcome& o) {
  if (o.priority > 0) {
    if (o.priority_error == 0) {
      spdlog::info("control thread: SCHED_FIFO priority {}", o.priority);
    } else if (o.priority_error == EPERM) {
      spdlog::warn(
          "control thread: SCHED_FIFO priority {} not permitted (EPERM): running at normal priority; allow "
          "it with LimitRTPRIO={} and RestrictRealtime=no in the unit (docs/operations.md, Real-time)",
          o.priority, o.priority);
    } else {
      spdlog::warn("control thread: SCHED_FIFO priority {} refused: {}; running at normal priority", o.priority,
                   std::strerror(o.priority_error));
    }
  }
  if (o.lock_memory) {
    if (o.lock_error == 0) {
      spdlog::info("memory locked (mlockall)");
    } else if (o.lock_error == EPERM || o.lock_error == ENOMEM || o.lock_error == EAGAIN) {
      spdlog::warn(
          "lock_memory: mlockall not permitted ({}): memory stays pageable; allow it with "
          "LimitMEMLOCK=infinity in the unit (docs/operations.md, Real-time)",
          std::strerror(o.lock_error));
    } else {
      spdlog::warn("lock_memory: mlockall failed: {}", std::strerror(o.lock_error));
    }
  }
}

}  // namespace eqd::daemon
