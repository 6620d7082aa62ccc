#pragma once
/// @file stop_signal.hpp
/// A stop request that a worker thread sleeps on between rounds of work (the predictor and planner
/// threads): the owner asks it to stop, the worker's sleep ends at once.
/// Thread-safety: every member from any thread.

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace eqd::daemon {

class StopSignal {
 public:
  /// Sleeps up to `d`; true when a stop was requested (at once if it already was).
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    std::unique_lock lock(mutex_);
    return wake_.wait_for(lock, d, [this] { return stop_; });
  }
  /// Ends every wait, now and until reset().
  void request() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
  }
  /// Before a new worker starts.
  void reset() {
    std::lock_guard lock(mutex_);
    stop_ = false;
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
};

}  // namespace eqd::daemon
