#pragma once
/// @file can_link.hpp
/// One CAN controller (interface + node id) served by its own I/O thread running a Boost.Asio
/// io_context: a CAN_RAW socket with kernel receive filters for the controller's identifiers, its
/// cyclic status frames published as samples the moment they arrive (receive time on the
/// steady/CLOCK_MONOTONIC clock), the core's commands written on change and refreshed before the
/// lease, the supervisor heartbeat frame, error frames (bus-off, error-passive -> controller down
/// until recovery), and a full transmit queue (ENOBUFS/EAGAIN) retried on the next tick, never waited
/// for. One thread per controller, not per interface: a controller's fault or a full queue only
/// delays its own thread, and the kernel's filters demultiplex the bus at no cost to eqd.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "eqd/core/control_core.hpp"
#include "eqd/core/sample.hpp"
#include "eqd/core/seqlock.hpp"
#include "eqd/io/can/codec.hpp"
#include "eqd/io/can/signal_map.hpp"
#include "eqd/io/command_engine.hpp"
#include "eqd/io/link.hpp"

namespace eqd::io::can {

using io::ChannelSlots;
using io::kNoChannel;
using io::slots_from_core;

/// Configuration of one CAN controller link. Plain data; config keys in docs/can-profile.md.
struct CanLinkConfig {
  std::string name;                ///< controller name (channels are NAME/N)
  std::string interface = "can0";  ///< controllers[].interface
  std::uint32_t node_id = 1;       ///< controllers[].node_id (added to the map's identifiers)
  SignalMap map = default_can_profile();
  /// Controller channel k -> core channel index (kNoChannel: not used; size <= map.channel_count).
  std::vector<core::ChannelIndex> channel_slots;
  double status_hz = 10.0;                  ///< controllers[].poll_hz: the controller's cyclic status rate
  int timeout_ms = 500;                     ///< controllers[].timeout_ms: silence after which it is down
  std::uint32_t heartbeat_period_ms = 500;  ///< 0: never send the heartbeat
  std::uint32_t tick_ms = 10;               ///< how often commands are picked up from the core
  /// Socket receive buffer: a burst the I/O thread cannot take at once waits here instead of being
  /// dropped by the kernel (1 MiB holds ~1000 frames, ~120 ms of a saturated 1 Mbit/s bus). Needs
  /// CAP_NET_ADMIN beyond net.core.rmem_max; else the largest allowed is used.
  int receive_buffer_bytes = 1 << 20;
  /// A channel's forecast (forecast frame) goes with its status frames for this long after it arrived;
  /// older: NaN. Controllers send it at least once a second, so 3000 ms survives two lost frames.
  std::uint32_t forecast_max_age_ms = 3000;
  /// A channel's program position (program frame) goes with its status frames for this long after it
  /// arrived; older: not reported. Controllers send it on every change and at least once a second.
  std::uint32_t program_max_age_ms = 3000;
  int backoff_initial_ms = 100;  ///< socket reopen delay; doubles per failure
  int backoff_max_ms = 5000;
  /// Called on the link's thread with each error it records in LinkStats::last_error (`channel`
  /// 1-based, 0 for the link as a whole), e.g. to log it. Empty: errors are only counted.
  LinkErrorHook on_error;
};

/// Opens the socket of a link: returns a non-blocking fd carrying one kernel can_frame/canfd_frame per
/// read and write, or -1 with ec set. Called on the link's thread. The default opens CAN_RAW on
/// cfg.interface with filters for codec.ids(); tests pass one end of a socketpair.
using SocketFactory = std::function<int(const CanLinkConfig& cfg, const Codec& codec, std::error_code& ec)>;

/// CAN-specific counters (besides LinkStats). Trivially copyable.
struct CanStats {
  std::uint64_t frames_received = 0;    ///< every frame read (data and error frames)
  std::uint64_t status_frames = 0;      ///< status frames decoded and published
  std::uint64_t forecast_frames = 0;    ///< forecast frames received (good, refused or malformed)
  std::uint64_t program_frames = 0;     ///< program frames received (good, refused or malformed)
  std::uint64_t ignored_frames = 0;     ///< frames with an identifier of no interest (filters off)
  std::uint64_t bad_frames = 0;         ///< malformed: wrong size, short, bad channel or state code
  std::uint64_t error_frames = 0;       ///< CAN_ERR_FLAG frames
  std::uint64_t bus_off = 0;            ///< bus-off events
  std::uint64_t error_passive = 0;      ///< error-passive events
  std::uint64_t recoveries = 0;         ///< restarted / back to error-active
  std::uint64_t tx_queue_full = 0;      ///< writes refused with ENOBUFS/EAGAIN (retried next tick)
  std::uint64_t kernel_timestamps = 0;  ///< frames stamped by the kernel (SO_TIMESTAMP)
  std::uint64_t kernel_drops = 0;       ///< frames the kernel dropped for a full receive queue (SO_RXQ_OVFL)
  bool bus_ok = true;                   ///< false while bus-off or error-passive
};

/// Thread-safety: construct, start(), stop() from one owner thread; every other method from any
/// thread (lock-free). The link's own thread is the only writer of its sample slots.
class CanLink final : public io::Link {
 public:
  /// Validates the configuration and compiles the map (throws std::invalid_argument naming the
  /// controller and every problem). Samples start offline.
  CanLink(CanLinkConfig cfg, ChannelSlots slots, SocketFactory factory = {});
  ~CanLink() override;
  CanLink(const CanLink&) = delete;
  CanLink& operator=(const CanLink&) = delete;

  /// Start the I/O thread (idempotent).
  void start() override;
  /// Stop and join the I/O thread (idempotent; returns within a tick).
  void stop() override;
  [[nodiscard]] LinkStats stats() const override { return stats_.load(); }
  /// CAN-specific counters. Any thread.
  [[nodiscard]] CanStats can_stats() const { return can_stats_.load(); }
  [[nodiscard]] bool connected() const noexcept override { return connected_.load(std::memory_order_acquire); }
  /// True when every commanded channel's last command was written and reads back the commanded mode.
  [[nodiscard]] bool all_acknowledged() const noexcept { return engine_.acknowledged(); }
  void release_all() noexcept override { engine_.request_release(); }
  [[nodiscard]] bool wait_released(std::chrono::milliseconds timeout) const override;
  [[nodiscard]] const std::string& name() const noexcept override { return cfg_.name; }
  /// 0: CAN is event driven (status frames arrive at the controller's own rate).
  [[nodiscard]] double poll_hz() const noexcept override { return 0.0; }
  [[nodiscard]] const CanLinkConfig& config() const noexcept { return cfg_; }

 private:
  struct Impl;
  CanLinkConfig cfg_;
  ChannelSlots slots_;
  /// The command policy; its I/O-thread side is used by impl_ only.
  CommandEngine engine_;
  std::unique_ptr<Impl> impl_;
  core::Seqlock<LinkStats> stats_;
  core::Seqlock<CanStats> can_stats_;
  std::atomic<bool> connected_{false};
  std::thread thread_;
};

}  // namespace eqd::io::can
