#pragma once
/// @file link.hpp
/// What the daemon, the control API and the metrics see of one controller link, whatever its
/// transport (Modbus TCP/RTU, CAN). A link owns its device and its I/O thread; it publishes samples
/// into the core's slots and writes the core's commands to the controller.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "eqd/core/control_core.hpp"
#include "eqd/core/snapshot.hpp"
#include "eqd/io/error.hpp"

namespace eqd::io {

/// Entry of a link's channel_slots for a controller channel that eqd does not use: it is neither
/// sampled nor commanded.
inline constexpr core::ChannelIndex kNoChannel = 0xFFFFFFFFu;

/// Where a link publishes samples and reads commands, by controller channel k (a null pair: unused),
/// and how it knows that the control thread is alive. The pointed-to slots and clock must outlive the
/// link; the link is the only writer of its sample slots.
struct ChannelSlots {
  std::vector<core::Seqlock<core::Sample>*> samples;
  std::vector<const core::Seqlock<core::Command>*> commands;
  /// Where a transport whose devices report their own power limits (SunSpec storage) publishes them,
  /// by controller channel k (null, or a vector shorter than `samples`: nowhere). Other transports leave
  /// them alone: not reported (NaN), the configured limits alone apply. The link is their only writer.
  std::vector<core::DeviceLimitsSlot*> device_limits;
  /// Monotonic ns of the control thread's last completed cycle (core::ControlCore::cycle_clock()).
  /// Required: a link sends heartbeats and equalize commands only while it is younger than liveness_ns.
  const std::atomic<std::int64_t>* cycle_clock = nullptr;
  std::int64_t liveness_ns = 1'000'000'000;  ///< core::ControlCore::liveness_ns()
};

/// Slots of a ControlCore for `channel_slots` (controller channel k -> core channel index, or
/// kNoChannel). Throws std::out_of_range naming an index beyond core.channel_count(). Any thread.
inline ChannelSlots slots_from_core(core::ControlCore& core, const std::vector<core::ChannelIndex>& channel_slots) {
  ChannelSlots s;
  for (const core::ChannelIndex i : channel_slots) {
    if (i == kNoChannel) {
      s.samples.push_back(nullptr);
      s.commands.push_back(nullptr);
      s.device_limits.push_back(nullptr);
      continue;
    }
    if (i >= core.channel_count())
      throw std::out_of_range("channel slot " + std::to_string(i) + " is beyond the core's " +
                              std::to_string(core.channel_count()) + " channels");
    s.samples.push_back(&core.sample_slot(i));
    s.commands.push_back(&core.command_slot(i));
    s.device_limits.push_back(&core.device_limits_slot(i));
  }
  s.cycle_clock = &core.cycle_clock();
  s.liveness_ns = core.liveness_ns();
  return s;
}

/// True when two commands ask the same of the controller (the sequence number aside). Any thread.
inline bool same_effective(const core::Command& a, const core::Command& b) noexcept {
  return a.equalize == b.equalize && a.setpoint_W == b.setpoint_W && a.lease_ms == b.lease_ms;
}

/// Counters and state of one link. Trivially copyable (links publish it through a Seqlock).
/// Transport-specific counters that do not apply stay 0.
struct LinkStats {
  std::uint64_t polls = 0;              ///< poll (or receive) cycles run, connected or not
  std::uint64_t polls_ok = 0;           ///< cycles where every channel was read
  std::uint64_t overruns = 0;           ///< periods skipped because a cycle ran late
  std::uint64_t timeouts = 0;           ///< requests without a response in time / status frames missing
  std::uint64_t exceptions = 0;         ///< protocol exception responses (Modbus)
  std::uint64_t connection_errors = 0;  ///< failed connects, broken links, bus-off
  std::uint64_t invalid_samples = 0;    ///< samples published invalid while connected (NaN, range, missing)
  std::uint64_t protocol_errors =
      0;  ///< bad CRC/data, device block mismatch, unencodable command, refused forecast or program position
  /// Announced forecasts refused (infinite, beyond the plausible power range, a controller that may not
  /// offer them): forecast_W published as NaN, the sample itself kept. Also counted in protocol_errors.
  std::uint64_t forecast_errors = 0;
  /// Program positions refused (a step_index/cycle_index the sample cannot hold, a controller that may
  /// not offer them): published as not reported, the sample itself kept. Also counted in protocol_errors.
  std::uint64_t program_errors = 0;
  std::uint64_t writes = 0;  ///< command writes (frames) sent successfully
  std::uint64_t write_errors = 0;
  std::uint64_t heartbeats = 0;  ///< heartbeats sent successfully
  std::uint64_t reconnects = 0;  ///< successful connects after the first
  /// Times the link found the control thread's last cycle older than the liveness bound and stopped
  /// sending heartbeats and equalize commands (its controller's watchdogs then release the buffers).
  std::uint64_t control_stalls = 0;
  /// Equalize commands not sent (nor refreshed) because the control thread was late or the command
  /// older than the liveness bound or its lease (counted per channel and pass).
  std::uint64_t commands_held = 0;
  double achieved_hz = 0.0;                      ///< smoothed poll rate
  double controller_heartbeat_timeout_ms = 0.0;  ///< as the controller reports it (0: unknown)
  core::Histogram latency{};                     ///< duration of the read phase of a cycle, s
  char last_error[120] = {};                     ///< last error, NUL-terminated
  /// The code of last_error (LinkErrc value, io/error.hpp); 0 while there has been none.
  std::uint8_t last_error_code = 0;
  /// Errors recorded per code (index: LinkErrc value; 0 unused). Each error counts once here, also
  /// when one of the counters above counts it too.
  std::array<std::uint64_t, kLinkErrcCount + 1> errors_by_code{};
  bool connected = false;
  bool all_acknowledged = true;  ///< every channel's last command written and read back
  bool released = false;         ///< after release_all(): no channel reads back in equalization
};

/// Records an error of `code` in `stats` (last_error_code, errors_by_code; the caller has written
/// last_error) and hands it to `hook` when there is one, with `message` when the whole text is longer
/// than last_error holds (nullptr: last_error). Called on the link's I/O thread, which owns `stats`
/// until it publishes them.
inline void record_link_error(LinkStats& stats, const LinkErrorHook& hook, std::uint16_t channel, LinkErrc code,
                              const char* message = nullptr) {
  const auto index = static_cast<std::size_t>(code);
  stats.last_error_code = static_cast<std::uint8_t>(code);
  if (index < stats.errors_by_code.size()) ++stats.errors_by_code[index];
  if (hook) hook(channel, make_error_code(code), message != nullptr ? message : stats.last_error);
}

/// One controller link. Thread-safety: start()/stop() from the owner (main) thread; everything else
/// from any thread. Implementations document their own I/O thread.
class Link {
 public:
  virtual ~Link() = default;
  /// Start the I/O thread (idempotent).
  virtual void start() = 0;
  /// Stop and join the I/O thread (idempotent; bounded by the transport's timeout).
  virtual void stop() = 0;
  /// Latest statistics (lock-free read).
  [[nodiscard]] virtual LinkStats stats() const = 0;
  [[nodiscard]] virtual bool connected() const noexcept = 0;
  /// Shutdown path: ignore the core's commands from now on and write stop (0 W, leave equalization)
  /// to every channel this link commanded or sees in equalization mode.
  virtual void release_all() noexcept = 0;
  /// Wait until every channel reads back out of equalization with every stop written; false on timeout.
  [[nodiscard]] virtual bool wait_released(std::chrono::milliseconds timeout) const = 0;
  /// Controller name (channels are NAME/N).
  [[nodiscard]] virtual const std::string& name() const noexcept = 0;
  /// Configured poll rate, Hz (0 for event-driven transports).
  [[nodiscard]] virtual double poll_hz() const noexcept = 0;
};

}  // namespace eqd::io
