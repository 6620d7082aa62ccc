#pragma once
/// @file poller.hpp
/// One Modbus controller connection (TCP or RTU) served by its own thread: reads every channel's
/// status on an absolute-deadline period, publishes samples to the core's seqlock slots, writes the
/// core's commands as the command engine decides (on change, refreshed before the lease expires) and
/// bumps the supervisor heartbeat, both only while eqd's control thread is alive (command_engine.hpp).
/// A stalled or dead controller only ever delays its own thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "eqd/core/control_core.hpp"
#include "eqd/core/sample.hpp"
#include "eqd/core/seqlock.hpp"
#include "eqd/core/snapshot.hpp"
#include "eqd/io/command_engine.hpp"
#include "eqd/io/link.hpp"
#include "eqd/io/link_thread.hpp"
#include "eqd/io/modbus/codec.hpp"
#include "eqd/io/modbus/register_map.hpp"
#include "eqd/io/modbus/transaction.hpp"

namespace eqd::io::modbus {

/// Link type of one controller connection.
enum class Transport : std::uint8_t { tcp, rtu };

/// Configuration of one controller connection (one poller). Plain data; config keys in
/// docs/modbus-profile.md.
struct PollerConfig {
  std::string name;  ///< controller name (channels are NAME/INDEX)
  Transport transport = Transport::tcp;
  std::string host = "127.0.0.1";                                   ///< tcp
  std::uint16_t port = 502;                                         ///< tcp
  std::string device;                                               ///< rtu: serial device path
  int baud = 115200;                                                ///< rtu
  char parity = 'N';                                                ///< rtu: 'N', 'E' or 'O'
  int data_bits = 8;                                                ///< rtu
  int stop_bits = 1;                                                ///< rtu
  int unit_id = 1;                                                  ///< Modbus unit (slave) id, 1..247
  double poll_hz = 10.0;                                            ///< status reads per second
  int timeout_ms = 200;                                             ///< TCP: the whole reply in it; RTU: the first byte
  int backoff_initial_ms = 100;                                     ///< first reconnect delay; doubles per failure
  int backoff_max_ms = 5000;                                        ///< reconnect delay cap
  int max_consecutive_timeouts = 3;                                 ///< then the link is closed and reopened
  std::uint16_t expected_profile_version = kDefaultProfileVersion;  ///< 0: do not check
  RegisterMap map = default_profile();
  PlanOptions plan{};
  /// Controller channel k -> core channel index (size = number of channels eqd uses, <= map.channel_count).
  std::vector<core::ChannelIndex> channel_slots;
  std::uint32_t heartbeat_period_ms = 1000;  ///< 0: never write the heartbeat
  /// Called on the poller's thread with each error it records in LinkStats::last_error (`channel`
  /// 1-based, 0 for the link as a whole), e.g. to log it. Empty: errors are only counted.
  LinkErrorHook on_error;
  /// Read-only link (a discovered controller that is not adopted): no command, stop or heartbeat is
  /// ever written; its channels are only sampled.
  bool read_only = false;
};

using io::ChannelSlots;
using io::kNoChannel;
using io::slots_from_core;

/// Counters and state of one poller: the transport-neutral link statistics.
using PollerStats = io::LinkStats;

/// Thread-safety: construct, start(), stop() from one owner thread; stats(), connected(),
/// all_acknowledged(), release_all(), wait_released() from any thread (lock-free reads).
/// The poller's own thread is the only writer of its ChannelSlots::samples.
class Poller final : public io::Link {
 public:
  /// Validates the configuration (map, channel slots, rates); throws std::invalid_argument whose
  /// message names the controller and every problem.
  Poller(PollerConfig cfg, ChannelSlots slots);
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  /// Start the thread (idempotent).
  void start() override;
  /// Stop and join; returns within about timeout_ms (the request in flight). Idempotent.
  void stop() override;

  /// Latest statistics. Any thread; wait-free unless the poller is mid-publish.
  [[nodiscard]] PollerStats stats() const override { return stats_.load(); }
  [[nodiscard]] bool connected() const noexcept override { return connected_.load(std::memory_order_acquire); }
  /// True when, for every channel with a command (sequence != 0), that command was written and the
  /// channel reads back the commanded mode. Any thread.
  [[nodiscard]] bool all_acknowledged() const noexcept { return engine_.acknowledged(); }

  /// Shutdown path: from now on, ignore the core's commands and write stop (enable 0, 0 W) to every
  /// channel that this poller commanded to equalize or that reads back in equalization mode. Any thread.
  void release_all() noexcept override { engine_.request_release(); }
  /// Wait until a cycle, after a successful read of every channel, saw no channel in equalization
  /// mode with every stop written. False on timeout (e.g. controller unreachable: it will release
  /// its buffers itself when its lease or heartbeat runs out). Any thread except the poller's.
  [[nodiscard]] bool wait_released(std::chrono::milliseconds timeout) const override;

  [[nodiscard]] const PollerConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] const std::string& name() const noexcept override { return cfg_.name; }
  [[nodiscard]] double poll_hz() const noexcept override { return cfg_.poll_hz; }

 private:
  void run();
  bool connect_link(std::int64_t now_ns);
  std::string identify_device(int& err, LinkErrc& code);
  void close_link();
  bool read_blocks(std::vector<ReadBlock>& blocks, std::int64_t& first_error);
  /// Use `m` (the map of the channels in use, capabilities applied) for reads and decoding; replans
  /// when the set of fields read changes.
  void set_read_map(RegisterMap m);
  /// After the device block of a new link: the map as this controller offers it (a gated
  /// forecast_power only with its capability bit, and only if its block fits the device's channels).
  void apply_device_capabilities(std::optional<std::uint16_t> capabilities, std::optional<double> device_channels);
  void publish_samples(std::int64_t now_ns, bool link_up);
  void write_commands(std::int64_t now_ns);
  /// Writes one command to controller channel k (the command engine's send step).
  WriteResult write_command(std::size_t k, const core::Command& cmd);
  void write_heartbeat(std::int64_t now_ns);
  /// Count an errno from libmodbus and report it (a write: code write_failed; a read: by classify_errno);
  /// returns true if the link must be closed.
  bool note_error(int err, const char* what, std::uint32_t address, bool write = false);
  /// Record local_.last_error with `code` and hand it to cfg_.on_error (channel 1-based, 0: the link).
  void report_error(std::uint16_t channel, LinkErrc code);
  void publish_stats();

  PollerConfig cfg_;
  ChannelSlots slots_;
  RegisterMap read_map_;  ///< cfg_.map for the channels in use, as this controller offers it
  std::vector<ReadRequest> plan_;
  std::vector<ReadBlock> blocks_;
  CommandEngine engine_;
  /// Per channel: the state of its last valid sample (an invalid one keeps it: connected, not offline).
  std::vector<core::ChannelState> last_state_;
  void* ctx_ = nullptr;  ///< modbus_t*; only the poller thread touches it (kept opaque in this header)
  Transactor tx_;        ///< checked requests on ctx_ (transaction.hpp)
  int consecutive_timeouts_ = 0;
  std::uint16_t heartbeat_value_ = 0;
  std::int64_t next_heartbeat_ns_ = 0;
  std::int64_t next_connect_ns_ = 0;
  int backoff_ms_ = 0;
  bool ever_connected_ = false;
  PollerStats local_{};  ///< poller thread's working copy, published to stats_ each cycle

  core::Seqlock<PollerStats> stats_;
  std::atomic<bool> connected_{false};
  LinkThread thread_;  // last: joined before the members its thread uses are destroyed
};

}  // namespace eqd::io::modbus
