#pragma once
/// @file systemd_notify.hpp
/// eqd as a Type=notify service: readiness only once the control thread cycles, a watchdog that is
/// fed only while it keeps cycling, STATUS= lines, RELOADING=1/READY=1 around a reload and
/// STOPPING=1. Without $NOTIFY_SOCKET (not started by systemd) every call does nothing.
///
/// Thread-safety: Notifier and WatchdogGate are used from the main thread only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace eqd::daemon {
class ControlLoop;
}

namespace eqd::app {

class App;

/// Sends sd_notify() messages. Main thread.
class Notifier {
 public:
  /// Sends one datagram's text (default: sd_notify(0, text)); tests may capture instead.
  using Sender = std::function<void(std::string_view text)>;

  /// Reads $NOTIFY_SOCKET and the watchdog settings (sd_watchdog_enabled) of this process.
  Notifier();
  /// For tests: explicit sender and watchdog interval (0: off).
  Notifier(Sender sender, std::chrono::microseconds watchdog_interval);

  /// True when there is a service manager to notify.
  [[nodiscard]] bool active() const noexcept { return active_; }
  /// WatchdogSec as systemd passed it (0: no watchdog).
  [[nodiscard]] std::chrono::microseconds watchdog_interval() const noexcept { return watchdog_; }

  void ready(std::string_view status);
  void reloading(std::string_view status);
  void stopping(std::string_view status);
  /// Sends STATUS= only when the text changed since the last one sent.
  void status(std::string_view status);
  void watchdog();

 private:
  void send(const std::string& text);

  Sender sender_;
  std::chrono::microseconds watchdog_{0};
  bool active_ = false;
  std::string last_status_;
};

/// Decides whether to feed the watchdog: only if the control loop completed cycles since the last
/// feed. A reload replaces the loop; a new loop counts as progress once it has cycled at least once.
/// Pure logic; main thread.
class WatchdogGate {
 public:
  /// `loop`: identity of the running ControlLoop; `cycles`: its cycles() now.
  [[nodiscard]] bool should_feed(const void* loop, std::uint64_t cycles) noexcept;

 private:
  const void* loop_ = nullptr;
  std::uint64_t cycles_ = 0;
};

/// Waits until `loop` completed a cycle or `timeout` passed; true if it cycled. Main thread.
[[nodiscard]] bool wait_first_cycle(const daemon::ControlLoop& loop, std::chrono::milliseconds timeout);

/// One-line service status: buses, controllers connected, equalization channels, cycles. Main thread.
[[nodiscard]] std::string status_line(App& app);

/// How long the main loop may sleep between ticks: half the watchdog interval (systemd's advice),
/// at most `max_tick`. Pure.
[[nodiscard]] std::chrono::milliseconds tick_interval(std::chrono::microseconds watchdog,
                                                      std::chrono::milliseconds max_tick) noexcept;

}  // namespace eqd::app
