// owned by the io area
#include "eqd/io/link_thread.hpp"

#include <chrono>

namespace eqd::io {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

void LinkThread::stop() {
  {
    // Under the mutex: a waiter between its check of the flag and its sleep cannot miss the wake.
    const std::lock_guard<std::mutex> lock(wake_mutex_);
    stop_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LinkThread::wait_until_ns(std::int64_t t_ns) {
  if (t_ns <= steady_now_ns()) return;  // behind schedule: no wait (and no futex call) at all
  std::unique_lock<std::mutex> lock(wake_mutex_);
  wake_.wait_until(lock, Clock::time_point(std::chrono::nanoseconds(t_ns)), [this] { return stopping(); });
}

void Pace::begin(std::int64_t start_ns, double& achieved_hz) noexcept {
  if (prev_start_ns_ != 0 && start_ns > prev_start_ns_) {
    const double hz = 1e9 / static_cast<double>(start_ns - prev_start_ns_);
    achieved_hz = achieved_hz == 0.0 ? hz : 0.8 * achieved_hz + 0.2 * hz;
  }
  prev_start_ns_ = start_ns;
}

std::uint64_t Pace::end(std::int64_t now_ns) noexcept {
  next_ns_ += period_ns_;
  if (next_ns_ > now_ns) return 0;
  const auto missed = static_cast<std::uint64_t>((now_ns - next_ns_) / period_ns_ + 1);
  next_ns_ = now_ns;
  return missed;
}

}  // namespace eqd::io
