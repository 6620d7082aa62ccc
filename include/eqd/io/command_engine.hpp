#pragma once
/// @file command_engine.hpp
/// The command policy of one controller link, shared by every transport: which command to write to
/// which channel and when (on change, refreshed at half its lease), what a stale command is, when the
/// supervisor heartbeat may be sent, how the shutdown stop is written and confirmed. A transport only
/// encodes, sends and decodes; it calls this engine from its I/O thread.
///
/// The liveness rules (docs/faults.md): a link sends an equalize command, refreshes it, or sends a
/// heartbeat only while the control thread has completed a cycle within the liveness bound
/// (ChannelSlots::liveness_ns), and never an equalize command older than that bound or its lease
/// (core::Command::issued_ns). A stalled control thread therefore lets the controllers' own lease and
/// heartbeat watchdogs take its buffers to 0 W, and after a stall no command from before it is sent.
/// A stop (0 W, leave equalization) is always allowed.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "eqd/core/sample.hpp"
#include "eqd/io/link.hpp"

namespace eqd::io {

/// What a transport reports for one command write.
enum class WriteResult : std::uint8_t {
  ok,            ///< written (and, where the transport has one, confirmed by the response)
  failed,        ///< not written this time (queue full, error response): retried next cycle
  encode_error,  ///< the command cannot be encoded (out of the map's range): never sent, counted
  link_lost,     ///< the link was closed while writing: stop this pass
};

/// Thread-safety: the I/O thread of the owning link calls everything but request_release(),
/// releasing(), acknowledged(), released() and wait_released(), which any thread may call (atomics).
class CommandEngine {
 public:
  struct Options {
    /// Repeat a stop, at most this often, while the channel still reads back in equalization mode
    /// (0: never). For transports whose writes get no response (CAN), where a lost frame has no error
    /// to tell; a transport with responses (Modbus) retries only a write that failed.
    std::int64_t repeat_stop_ns = 0;
  };

  /// `slots` must outlive the engine; links refuse slots that check() rejects.
  CommandEngine(const ChannelSlots& slots, Options opt);
  /// Why `slots` cannot drive a link (no cycle clock, bad liveness bound), or nullptr. Any thread.
  [[nodiscard]] static const char* check(const ChannelSlots& slots) noexcept;

  /// Channels the engine knows (one per controller channel in use or not).
  [[nodiscard]] std::size_t size() const noexcept { return io_.size(); }

  /// I/O thread: record what channel k reported (after publishing it). `rx_ns` dates the sample.
  void observe(std::size_t k, const core::Sample& s, std::int64_t rx_ns) noexcept;
  /// I/O thread: channel k is unreadable now (link down, invalid frame).
  void observe_invalid(std::size_t k) noexcept;
  /// I/O thread: a new link (connect, reconnect, bus recovered): every command is written again, since
  /// the controller may have restarted with its defaults.
  void link_up() noexcept;

  /// I/O thread: true while the control thread completed a cycle within the liveness bound. The first
  /// false after a true counts one LinkStats::control_stalls in `stats`.
  bool control_alive(std::int64_t now_ns, LinkStats& stats) noexcept;

  /// I/O thread: one pass over every commanded channel. `send(k, cmd)` encodes and sends `cmd` to
  /// controller channel k and returns a WriteResult; it is called only for what must be written now.
  /// `link_ok`: the link is up (false: nothing is sent, nothing is acknowledged). Counts writes,
  /// write errors and held commands in `stats`; updates acknowledged() and, while releasing, released().
  template <class Send>
  void write_commands(std::int64_t now_ns, bool link_ok, LinkStats& stats, Send&& send);

  /// Any thread: from now on ignore the core's commands and write stop (0 W, leave equalization) to
  /// every channel this link commanded or sees in equalization mode (shutdown).
  void request_release() noexcept { release_all_.store(true, std::memory_order_release); }
  [[nodiscard]] bool releasing() const noexcept { return release_all_.load(std::memory_order_acquire); }
  /// Any thread: every channel with a command had it written and reads back the commanded mode.
  [[nodiscard]] bool acknowledged() const noexcept { return acknowledged_.load(std::memory_order_acquire); }
  /// Any thread: after request_release(), every stop written and a valid status received after it
  /// shows no channel in equalization mode.
  [[nodiscard]] bool released() const noexcept { return releasing() && released_.load(std::memory_order_acquire); }
  /// Any thread but the link's own: waits for released(); false on timeout.
  [[nodiscard]] bool wait_released(std::chrono::milliseconds timeout) const;
  /// I/O thread: the link is down (nothing can be acknowledged or released now).
  void set_down() noexcept {
    acknowledged_.store(false, std::memory_order_release);
    released_.store(false, std::memory_order_release);
  }

 private:
  struct ChannelIo {
    core::Command written{};  ///< last command written successfully (effective values)
    std::int64_t last_write_ns = 0;
    std::int64_t stop_written_ns = 0;  ///< when the last stop was written (0: none)
    std::int64_t last_rx_ns = 0;       ///< time of the last valid sample
    bool have_written = false;
    bool ever_equalize = false;    ///< commanded or seen in equalization mode
    bool last_equalizing = false;  ///< last valid readback
    bool last_valid = false;
  };
  enum class Action : std::uint8_t { skip, busy, hold, write, keep };
  /// What to do with channel k now; fills `cmd` with what to write.
  Action decide(std::size_t k, std::int64_t now_ns, bool releasing, bool alive, core::Command& cmd) noexcept;
  /// After a write attempt of `cmd` to channel k.
  void wrote(std::size_t k, const core::Command& cmd, std::int64_t now_ns) noexcept;
  [[nodiscard]] bool channel_released(std::size_t k) const noexcept;

  const ChannelSlots& slots_;
  Options opt_;
  std::vector<ChannelIo> io_;
  bool was_alive_ = true;
  std::atomic<bool> release_all_{false};
  std::atomic<bool> released_{false};
  std::atomic<bool> acknowledged_{true};
};

template <class Send>
void CommandEngine::write_commands(std::int64_t now_ns, bool link_ok, LinkStats& stats, Send&& send) {
  const bool releasing = this->releasing();
  const bool alive = control_alive(now_ns, stats);
  bool acked = link_ok;
  for (std::size_t k = 0; k < io_.size() && link_ok; ++k) {
    core::Command cmd{};
    const Action a = decide(k, now_ns, releasing, alive, cmd);
    if (a == Action::skip) continue;
    if (a == Action::busy) {  // the control thread is mid-store: next cycle
      acked = false;
      continue;
    }
    if (a == Action::hold) {
      ++stats.commands_held;
      acked = false;
      continue;
    }
    if (a == Action::write) {
      const WriteResult r = send(k, cmd);
      if (r == WriteResult::link_lost) {
        ++stats.write_errors;
        link_ok = false;
        acked = false;
        break;
      }
      if (r != WriteResult::ok) {
        ++stats.write_errors;
        if (r == WriteResult::encode_error) ++stats.protocol_errors;
        acked = false;
        continue;
      }
      ++stats.writes;
      wrote(k, cmd, now_ns);
    }
    const ChannelIo& c = io_[k];
    if (!(c.last_valid && c.last_equalizing == cmd.equalize)) acked = false;
  }
  acknowledged_.store(acked && link_ok, std::memory_order_release);
  if (releasing) {
    bool released = link_ok;
    for (std::size_t k = 0; k < io_.size() && released; ++k) released = channel_released(k);
    released_.store(released, std::memory_order_release);
  }
}

}  // namespace eqd::io
