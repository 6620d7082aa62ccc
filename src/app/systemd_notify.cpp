#include "systemd_notify.hpp"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "eqd/app/app.hpp"

namespace eqd::app {

Notifier::Notifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  active_ = socket != nullptr && *socket != '\0';
  std::uint64_t usec = 0;
  // unset_environment = 0: keep the variables, they are harmless and help debugging (/proc/PID/environ).
  if (sd_watchdog_enabled(0, &usec) > 0) watchdog_ = std::chrono::microseconds(usec);
  sender_ = [](std::string_view text) { (void)sd_notify(0, std::string(text).c_str()); };
}

Notifier::Notifier(Sender sender, std::chrono::microseconds watchdog_interval)
    : sender_(std::move(sender)), watchdog_(watchdog_interval), active_(true) {}

void Notifier::send(const std::string& text) {
  if (active_) sender_(text);
}

void Notifier::ready(std::string_view status) {
  last_status_ = status;
  send("READY=1\nSTATUS=" + last_status_);
}

void Notifier::reloading(std::string_view status) {
  last_status_ = status;
  send("RELOADING=1\nSTATUS=" + last_status_);
}

void Notifier::stopping(std::string_view status) {
  last_status_ = status;
  send("STOPPING=1\nSTATUS=" + last_status_);
}

void Notifier::status(std::string_view status) {
  if (status == last_status_) return;
  last_status_ = status;
  send("STATUS=" + last_status_);
}

void Notifier::watchdog() {
  if (watchdog_.count() > 0) send("WATCHDOG=1");
}

bool WatchdogGate::should_feed(const void* loop, std::uint64_t cycles) noexcept {
  if (loop != loop_) {
    // A fresh loop (start or reload handover) has proved nothing until it cycled.
    loop_ = loop;
    cycles_ = cycles;
    return cycles > 0;
  }
  if (cycles == cycles_) return false;
  cycles_ = cycles;
  return true;
}

bool wait_first_cycle(const daemon::ControlLoop& loop, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (loop.cycles() == 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::string status_line(App& app) {
  daemon::Daemon& d = app.daemon();
  std::size_t connected = 0;
  for (const auto& l : d.links()) connected += l->connected() ? 1 : 0;
  std::size_t buffers = 0;
  const std::size_t channels = d.directory().channels.size();
  for (std::size_t i = 0; i < channels; ++i)
    buffers += d.core().channel(static_cast<core::ChannelIndex>(i)).role == core::Role::equalization ? 1 : 0;
  return std::to_string(d.directory().buses.size()) + " bus(es), " + std::to_string(connected) + "/" +
         std::to_string(d.links().size()) + " controller(s) connected, " + std::to_string(buffers) +
         " equalization channel(s) active, " + std::to_string(channels) + " channel(s)";
}

std::chrono::milliseconds tick_interval(std::chrono::microseconds watchdog,
                                        std::chrono::milliseconds max_tick) noexcept {
  if (watchdog.count() <= 0) return max_tick;
  const auto half = std::chrono::duration_cast<std::chrono::milliseconds>(watchdog / 2);
  return std::clamp(half, std::chrono::milliseconds(1), max_tick);
}

}  // namespace eqd::app
