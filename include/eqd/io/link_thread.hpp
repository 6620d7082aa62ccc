// owned by the io area
// The thread a link polls its device on, and the pace of its polls: what every link (Modbus poller,
// SunSpec, BTS, grid meter) shares, so that start, stop and the period's arithmetic are written once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <utility>

namespace eqd::io {

/// Now on the steady clock, in ns: the clock of every link's deadlines.
[[nodiscard]] std::int64_t steady_now_ns() noexcept;

/// A link's own thread. A stop wakes its wait at once, so that stopping a link never waits out a
/// poll period. Thread-safety: start() and stop() by the link's owner, one call at a time; stopping()
/// and wait_until_ns() by the thread start() began (stopping() from any thread).
class LinkThread {
 public:
  LinkThread() = default;
  LinkThread(const LinkThread&) = delete;
  LinkThread& operator=(const LinkThread&) = delete;
  ~LinkThread() { stop(); }

  /// Runs body on a new thread; nothing if one runs already.
  template <class Body>
  void start(Body&& body) {
    if (thread_.joinable()) return;
    stop_.store(false, std::memory_order_release);
    thread_ = std::thread(std::forward<Body>(body));
  }
  /// Asks the thread to stop, wakes it and joins it (then its state is the caller's). Idempotent.
  void stop();
  [[nodiscard]] bool stopping() const noexcept { return stop_.load(std::memory_order_acquire); }
  /// Waits until steady_now_ns() reaches t_ns, or a stop.
  void wait_until_ns(std::int64_t t_ns);

 private:
  std::atomic<bool> stop_{false};
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::thread thread_;
};

/// A link's polls at a fixed rate, on absolute deadlines: the period does not drift with a poll's
/// duration. A poll that ran past its next deadline counts the periods it missed, and the next poll
/// starts at once, re-based on now: a device slower than the period is polled as fast as it answers,
/// never in a burst. Thread-safety: none; the link thread's own.
class Pace {
 public:
  /// rate_hz > 0 (each link's constructor refuses anything else); the first deadline is now_ns.
  Pace(double rate_hz, std::int64_t now_ns) noexcept
      : period_ns_(static_cast<std::int64_t>(1e9 / rate_hz)), next_ns_(now_ns) {}

  /// A poll begins at start_ns: the rate achieved since the previous poll is folded into
  /// achieved_hz (a moving average; 0 = none yet).
  void begin(std::int64_t start_ns, double& achieved_hz) noexcept;
  /// A poll ended at now_ns: the next deadline moves one period on (to now if that is past), and the
  /// periods missed are returned.
  [[nodiscard]] std::uint64_t end(std::int64_t now_ns) noexcept;
  [[nodiscard]] std::int64_t next_ns() const noexcept { return next_ns_; }

 private:
  std::int64_t period_ns_;
  std::int64_t next_ns_;
  std::int64_t prev_start_ns_ = 0;
};

}  // namespace eqd::io
