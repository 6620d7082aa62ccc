#pragma once
/// @file link.hpp
/// The link of one SunSpec storage device (transport `sunspec`): Modbus TCP, framed and checked by
/// eqd (io/modbus/transaction.hpp), one channel (the storage). Its I/O thread connects, finds the
/// marker and walks the model chain (io/sunspec/models.hpp), then polls the inverter model (101-103 or
/// 111-113), 124 and 802 every 1/poll_hz s, publishes the sample and the device's own power limits
/// (models.hpp, device_limits(); ChannelSlots::device_limits, which the allocator honours) and writes the
/// command engine's commands into model 124, clamped to those limits as the last safety.

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "eqd/core/seqlock.hpp"
#include "eqd/io/command_engine.hpp"
#include "eqd/io/link.hpp"
#include "eqd/io/link_thread.hpp"
#include "eqd/io/modbus/transaction.hpp"
#include "eqd/io/sunspec/models.hpp"

namespace eqd::io::sunspec {

/// Everything one SunSpec link is made of. Plain data.
struct SunSpecLinkConfig {
  std::string name;
  std::string host;
  std::uint16_t port = 502;
  int unit_id = 1;
  int base_address = -1;  ///< -1: find the marker at 0, 40000, 50000
  double poll_hz = 5.0;
  int timeout_ms = 200;
  int backoff_initial_ms = 100;
  int backoff_max_ms = 5000;
  bool read_only = false;
  std::vector<core::ChannelIndex> channel_slots;  ///< one entry: the storage
  LinkErrorHook on_error;
};

/// Thread-safety: start()/stop() from the owner thread; stats(), connected(), release_all(),
/// wait_released(), identity() from any thread. Everything else runs on the link's own I/O thread.
class SunSpecLink final : public io::Link {
 public:
  /// Throws std::invalid_argument naming the controller for a bad configuration (rates, slots).
  SunSpecLink(SunSpecLinkConfig cfg, ChannelSlots slots);
  ~SunSpecLink() override;
  SunSpecLink(const SunSpecLink&) = delete;
  SunSpecLink& operator=(const SunSpecLink&) = delete;

  void start() override;
  void stop() override;
  [[nodiscard]] LinkStats stats() const override { return stats_.load(); }
  [[nodiscard]] bool connected() const noexcept override { return connected_.load(std::memory_order_acquire); }
  void release_all() noexcept override { engine_.request_release(); }
  [[nodiscard]] bool wait_released(std::chrono::milliseconds timeout) const override;
  [[nodiscard]] const std::string& name() const noexcept override { return cfg_.name; }
  [[nodiscard]] double poll_hz() const noexcept override { return cfg_.poll_hz; }
  /// "Mn Md SN" from model 1 after the first discovery (empty before). Any thread.
  [[nodiscard]] std::string identity() const;
  /// Discoveries that failed (malformed chain, missing models, no marker). Any thread.
  [[nodiscard]] std::uint64_t discovery_errors() const noexcept { return discovery_errors_.load(); }

 private:
  void run();
  /// Holding registers through eqd's checked framing; -1 with errno ETIMEDOUT also for a reply that
  /// took longer than timeout_ms in all (modbus::read_registers).
  int read(std::uint32_t address, int count, std::uint16_t* dest);
  bool connect_link(std::int64_t t_ns);
  void close_link();
  bool poll_once();  // reads and decodes; false when the link broke
  void publish(std::int64_t t_ns, bool read_ok);
  /// The device's limits from this poll's models 124/802 into ChannelSlots::device_limits, on a change.
  void publish_limits();
  WriteResult send(const core::Command& c);
  /// Count an errno from libmodbus and report it (a write: write_failed); true: reopen the link.
  bool note_error(int err, const char* what, std::uint32_t address, bool write = false);
  /// Record `message` (truncated into last_error) with `code` and hand it whole to the error hook.
  void report(const char* message, LinkErrc code);

  SunSpecLinkConfig cfg_;
  ChannelSlots slots_;
  CommandEngine engine_;
  // I/O thread only:
  modbus::Transactor tx_;
  void* ctx_ = nullptr;  // modbus_t*
  Discovery dev_;
  std::vector<std::uint16_t> inverter_regs_, storage_regs_, battery_regs_;
  bool storage_fresh_ = false;  // storage_regs_ read in this cycle (commands are encoded from them)
  std::int64_t next_connect_ns_ = 0;
  int backoff_ms_ = 100;
  int consecutive_timeouts_ = 0;
  bool ever_connected_ = false;
  bool identity_logged_ = false;
  std::uint32_t sequence_ = 0;
  SampleProblem last_problem_ = SampleProblem::none;
  double last_limit_W_ = 0.0;  // the device limit last announced (a notice once per limit)
  std::uint64_t published_limits_ = core::DeviceLimitsSlot::pack(core::DeviceLimits{});  // as last stored
  LinkStats local_{};
  // Shared:
  core::Seqlock<LinkStats> stats_;
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> discovery_errors_{0};
  mutable std::mutex identity_mutex_;
  std::string identity_;
  LinkThread thread_;  // last: joined before the members its thread uses are destroyed
};

}  // namespace eqd::io::sunspec
