#pragma once
/// @file event_watch.hpp
/// Says what happened, once per event: watches the published snapshots of a running Daemon from the
/// main thread and logs (journal fields CONTROLLER / CHANNEL) a control thread that stalls and resumes,
/// a buffer that leaves equalization mode without eqd asking (the controller's watchdog, lease or a
/// local stop), links that go down and come back, and a controller whose heartbeat watchdog is too
/// short for the liveness bound. Reads only lock-free snapshots: never blocks the control thread.
/// Thread-safety: one thread (the main thread) calls tick(); not thread-safe otherwise.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "eqd/daemon/views.hpp"

namespace eqd::daemon {

class Daemon;

class EventWatch {
 public:
  /// Events of one kind about one thing are logged at most once per `min_interval` (then the count of
  /// those not logged is added to the next line).
  explicit EventWatch(std::chrono::seconds min_interval = std::chrono::seconds(10)) : min_interval_(min_interval) {}

  /// Look at `d` now. Call it regularly (every tick of the main loop); after a reload `d` is another
  /// daemon and the watch starts over without logging what it inherited.
  void tick(const Daemon& d, std::int64_t now_ns);

  /// Channels looked at per tick (round robin over the rig): bounds the cost on huge rigs.
  static constexpr std::size_t kChannelsPerTick = 8192;

 private:
  struct Limited {
    std::int64_t last_ns = 0;
    std::uint64_t suppressed = 0;
  };
  /// True when an event of `l` may be logged now; `suppressed` then holds how many were not.
  bool allow(Limited& l, std::int64_t now_ns, std::uint64_t& suppressed);
  // The stages of tick(), in order.
  void take_over(const Daemon& d);
  void watch_stall(const StallView& sv, std::int64_t now_ns);
  void watch_links(const Daemon& d, const StallView& sv, std::int64_t now_ns);
  void watch_buffers(const Daemon& d, std::int64_t now_ns);

  struct ChannelWatch {
    bool buffer = false;      ///< role equalization at the last look
    bool equalizing = false;  ///< the controller reported equalization mode at the last look
    Limited log;
  };
  struct LinkWatch {
    bool connected = false;
    bool ever_connected = false;
    std::uint64_t reconnects = 0;
    std::uint64_t control_stalls = 0;
    bool warned_heartbeat = false;
    Limited log;
  };

  std::chrono::seconds min_interval_;
  const Daemon* daemon_ = nullptr;
  std::vector<ChannelWatch> channels_;
  std::vector<LinkWatch> links_;
  std::size_t next_channel_ = 0;
  bool stalled_ = false;
  bool stall_logged_ = false;  ///< the start of the present stall was logged (then its end is too)
  std::int64_t stall_since_ns_ = 0;
  Limited stall_log_;
};

}  // namespace eqd::daemon
