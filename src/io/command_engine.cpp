/// @file command_engine.cpp
/// The command policy shared by every link (see command_engine.hpp).

#include "eqd/io/command_engine.hpp"

#include <algorithm>
#include <thread>

namespace eqd::io {

namespace {
// A reader retries a command slot this often before leaving it for the next cycle: the control thread
// writes rarely, and if it is mid-store the next cycle sees the command.
constexpr int kReadAttempts = 4;
constexpr std::int64_t kNsPerMs = 1'000'000;
}  // namespace

CommandEngine::CommandEngine(const ChannelSlots& slots, Options opt) : slots_(slots), opt_(opt) {
  io_.resize(slots_.commands.size());
}

const char* CommandEngine::check(const ChannelSlots& slots) noexcept {
  if (slots.cycle_clock == nullptr) return "no control cycle clock (a link must know that the control thread is alive)";
  if (slots.liveness_ns <= 0) return "the liveness bound must be positive";
  return nullptr;
}

void CommandEngine::observe(std::size_t k, const core::Sample& s, std::int64_t rx_ns) noexcept {
  ChannelIo& c = io_[k];
  c.last_valid = s.valid;
  if (!s.valid) return;
  c.last_rx_ns = rx_ns;
  c.last_equalizing = s.equalization_mode;
  if (s.equalization_mode) c.ever_equalize = true;
}

void CommandEngine::observe_invalid(std::size_t k) noexcept { io_[k].last_valid = false; }

void CommandEngine::link_up() noexcept {
  for (ChannelIo& c : io_) c.have_written = false;
}

bool CommandEngine::control_alive(std::int64_t now_ns, LinkStats& stats) noexcept {
  // Without a clock (refused by the links' constructors) the control thread counts as dead: safe.
  const std::int64_t last = slots_.cycle_clock != nullptr ? slots_.cycle_clock->load(std::memory_order_acquire) : 0;
  const bool alive = last > 0 && now_ns - last <= slots_.liveness_ns;
  if (was_alive_ && !alive && last > 0) ++stats.control_stalls;
  was_alive_ = alive || last == 0;  // before the first cycle there is nothing to call a stall
  return alive;
}

CommandEngine::Action CommandEngine::decide(std::size_t k, std::int64_t now_ns, bool releasing, bool alive,
                                            core::Command& cmd) noexcept {
  if (slots_.commands[k] == nullptr) return Action::skip;  // a channel eqd does not use: never commanded
  ChannelIo& c = io_[k];
  if (releasing) {
    if (!c.ever_equalize && !c.last_equalizing && !(c.have_written && c.written.equalize)) return Action::skip;
    cmd.equalize = false;
    cmd.lease_ms = c.written.lease_ms;
    cmd.sequence = c.written.sequence;  // a stop is written once, then only if it fails (or repeated)
  } else {
    if (!slots_.commands[k]->try_load(cmd, kReadAttempts)) return Action::busy;
    if (cmd.sequence == 0) return Action::skip;  // the core never commanded this channel: leave it alone
    if (cmd.equalize) {
      // Only what a live control thread computed or confirmed lately: never a command from before a
      // stall, and nothing at all (not even a refresh) while the control thread is late.
      std::int64_t max_age_ns = slots_.liveness_ns;
      if (cmd.lease_ms > 0) max_age_ns = std::min(max_age_ns, static_cast<std::int64_t>(cmd.lease_ms) * kNsPerMs);
      if (!alive || now_ns - cmd.issued_ns > max_age_ns) return Action::hold;
    }
  }
  if (!cmd.equalize) cmd.setpoint_W = 0.0;
  const bool changed = !c.have_written || cmd.sequence != c.written.sequence || !same_effective(cmd, c.written);
  // Refresh halfway through the lease so that one lost write never lets it expire.
  const bool refresh = c.have_written && cmd.equalize && cmd.lease_ms > 0 &&
                       now_ns - c.last_write_ns >= static_cast<std::int64_t>(cmd.lease_ms) * (kNsPerMs / 2);
  const bool stop_again = opt_.repeat_stop_ns > 0 && c.have_written && !cmd.equalize && c.last_equalizing &&
                          now_ns - c.last_write_ns >= opt_.repeat_stop_ns;
  return changed || refresh || stop_again ? Action::write : Action::keep;
}

void CommandEngine::wrote(std::size_t k, const core::Command& cmd, std::int64_t now_ns) noexcept {
  ChannelIo& c = io_[k];
  c.written = cmd;
  c.have_written = true;
  c.last_write_ns = now_ns;
  if (cmd.equalize)
    c.ever_equalize = true;
  else
    c.stop_written_ns = now_ns;
}

bool CommandEngine::channel_released(std::size_t k) const noexcept {
  if (slots_.samples[k] == nullptr) return true;
  const ChannelIo& c = io_[k];
  if (!c.last_valid || c.last_equalizing) return false;
  if (c.ever_equalize || (c.have_written && c.written.equalize)) {
    // The stop must be written, and a status must have arrived after it.
    if (!(c.have_written && !c.written.equalize) || c.last_rx_ns <= c.stop_written_ns) return false;
  }
  return true;
}

bool CommandEngine::wait_released(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (released()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return released();
}

}  // namespace eqd::io
