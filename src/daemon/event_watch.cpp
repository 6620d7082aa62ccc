/// @file event_watch.cpp
/// Logs what happened to a running daemon, once per event (see event_watch.hpp).

#include "eqd/daemon/event_watch.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "eqd/daemon/daemon.hpp"
#include "eqd/daemon/logging.hpp"

namespace eqd::daemon {

namespace {
constexpr double kNsPerS = 1e9;

std::string more(std::uint64_t suppressed) {
  return suppressed == 0 ? std::string() : " (" + std::to_string(suppressed) + " more not logged)";
}
}  // namespace

bool EventWatch::allow(Limited& l, std::int64_t now_ns, std::uint64_t& suppressed) {
  const std::int64_t min_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(min_interval_).count();
  if (l.last_ns != 0 && now_ns - l.last_ns < min_ns) {
    ++l.suppressed;
    return false;
  }
  suppressed = l.suppressed;
  l.suppressed = 0;
  l.last_ns = now_ns;
  return true;
}

void EventWatch::tick(const Daemon& d, std::int64_t now_ns) {
  // A new daemon (start or reload): take its present state as known, log only what changes from now.
  if (daemon_ != &d) take_over(d);
  const StallView sv = d.stall(now_ns);
  watch_stall(sv, now_ns);
  watch_links(d, sv, now_ns);
  watch_buffers(d, now_ns);
}

void EventWatch::take_over(const Daemon& d) {
  const core::ControlCore& core = d.core();
  const Directory& dir = d.directory();
  daemon_ = &d;
  channels_.assign(dir.channels.size(), ChannelWatch{});
  for (std::size_t i = 0; i < channels_.size() && i < core.channel_count(); ++i) {
    const auto idx = static_cast<core::ChannelIndex>(i);
    channels_[i].buffer = core.channel(idx).role == core::Role::equalization;
    channels_[i].equalizing = core.sample_slot(idx).load().equalization_mode;
  }
  links_.assign(d.links().size(), LinkWatch{});
  for (std::size_t c = 0; c < links_.size(); ++c) {
    const io::LinkStats st = d.links()[c]->stats();
    links_[c].connected = st.connected;
    links_[c].ever_connected = st.connected || st.reconnects > 0;
    links_[c].reconnects = st.reconnects;
    links_[c].control_stalls = st.control_stalls;
  }
  next_channel_ = 0;
  stalled_ = false;
}

// The control thread: a stall is said when it starts (error) and when it ends (warning).
void EventWatch::watch_stall(const StallView& sv, std::int64_t now_ns) {
  if (sv.stalled && !stalled_) {
    stalled_ = true;
    stall_since_ns_ = now_ns - static_cast<std::int64_t>(sv.cycle_age_s * kNsPerS);
    std::uint64_t n = 0;
    stall_logged_ = allow(stall_log_, now_ns, n);
    if (stall_logged_)
      spdlog::error(
          "control thread stalled: no control cycle for {:.1f} s (bound {:.1f} s); the links hold their "
          "heartbeat and commands, so the controllers' watchdogs take the buffers to 0 W{}",
          sv.cycle_age_s, sv.bound_s, more(n));
  } else if (!sv.stalled && stalled_) {
    stalled_ = false;
    // The end of a stall whose start was logged is always said, so that the log tells how long it was.
    if (stall_logged_)
      spdlog::warn("control thread resumed after {:.1f} s; buffers are commanded again from new samples only",
                   static_cast<double>(now_ns - stall_since_ns_) / kNsPerS);
  }
}

// Links: down, back up, and the control stalls they saw.
void EventWatch::watch_links(const Daemon& d, const StallView& sv, std::int64_t now_ns) {
  const Directory& dir = d.directory();
  for (std::size_t c = 0; c < links_.size() && c < dir.controllers.size(); ++c) {
    const io::Link& link = *d.links()[c];
    const io::LinkStats st = link.stats();
    LinkWatch& w = links_[c];
    const std::string& name = dir.controllers[c].name;
    std::uint64_t n = 0;
    if (w.connected && !st.connected) {
      if (allow(w.log, now_ns, n))
        logging::log_with(spdlog::level::warn, {{"CONTROLLER", name}}, "controller {}: link down ({}){}", name,
                          st.last_error[0] != '\0' ? st.last_error : "no detail", more(n));
    } else if (!w.connected && st.connected) {
      if (w.ever_connected && allow(w.log, now_ns, n))
        logging::log_with(spdlog::level::info, {{"CONTROLLER", name}}, "controller {}: link up again (reconnect {}){}",
                          name, st.reconnects, more(n));
      w.ever_connected = true;
    }
    w.connected = st.connected;
    w.reconnects = st.reconnects;
    w.control_stalls = st.control_stalls;
    // The controller releases its buffers one heartbeat timeout after eqd stops beating, and eqd stops
    // one liveness bound after a stall: a watchdog shorter than twice the bound answers mostly late.
    const double hb_ms = st.controller_heartbeat_timeout_ms;
    const double bound_ms = sv.bound_s * 1000.0;
    if (!w.warned_heartbeat && hb_ms > 0.0 && hb_ms < 2.0 * bound_ms) {
      w.warned_heartbeat = true;
      logging::log_with(spdlog::level::warn, {{"CONTROLLER", name}},
                        "controller {}: its heartbeat watchdog ({:.0f} ms) is shorter than twice "
                        "control_loop.liveness_timeout_ms ({:.0f} ms): lower the bound to at most {:.0f} ms",
                        name, hb_ms, bound_ms, hb_ms / 2.0);
    }
  }
}

// Buffers that leave equalization mode without eqd asking (round robin over the rig).
void EventWatch::watch_buffers(const Daemon& d, std::int64_t now_ns) {
  const core::ControlCore& core = d.core();
  const Directory& dir = d.directory();
  const std::size_t total = std::min(channels_.size(), core.channel_count());
  const std::size_t count = std::min(total, kChannelsPerTick);
  for (std::size_t k = 0; k < count; ++k) {
    const std::size_t i = (next_channel_ + k) % total;
    const auto idx = static_cast<core::ChannelIndex>(i);
    ChannelWatch& w = channels_[i];
    const core::ChannelSnapshot snap = core.channel(idx);
    const core::Sample s = core.sample_slot(idx).load();
    const bool buffer = snap.role == core::Role::equalization;
    const bool equalizing = s.valid && s.equalization_mode;
    // Still ours and still commanded to equalize: eqd did not ask it to leave.
    if (w.buffer && buffer && snap.command_equalize && w.equalizing && s.valid && !s.equalization_mode) {
      const ChannelInfo& info = dir.channels[i];
      const std::string& ctl = info.controller < dir.controllers.size() ? dir.controllers[info.controller].name : "";
      std::uint64_t n = 0;
      if (allow(w.log, now_ns, n))
        logging::log_with(spdlog::level::warn, {{"CONTROLLER", ctl}, {"CHANNEL", info.name}},
                          "{}: left equalization mode without eqd asking (the controller's heartbeat or lease "
                          "watchdog, or a local stop; now {:.0f} W, state {}); eqd asks it back in at 0 W{}",
                          info.name, s.power_W, core::to_string(s.state), more(n));
    }
    w.buffer = buffer;
    if (s.valid) w.equalizing = equalizing;
  }
  if (total > 0) next_channel_ = (next_channel_ + count) % total;
}

}  // namespace eqd::daemon
