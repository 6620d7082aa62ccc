#pragma once
/// @file link.hpp
/// The link of one Neware BTS device (transport `neware`): the BTS test software's TCP/XML API
/// (io/neware/protocol.hpp), read only. Its I/O thread connects, opens the API session (`connect`),
/// lists the server's devices and channels (`getdevinfo`) and checks the configured ones against it,
/// then asks every configured channel's status in one `inquire` every 1/poll_hz s and publishes the
/// samples. It never sends a command: eqd cannot command a BTS channel, every one is a test channel.

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "eqd/core/seqlock.hpp"
#include "eqd/io/link.hpp"
#include "eqd/io/link_thread.hpp"
#include "eqd/io/neware/protocol.hpp"

namespace eqd::io::neware {

/// Everything one BTS link is made of. Plain data.
struct NewareLinkConfig {
  std::string name;
  std::string host;
  std::uint16_t port = 502;
  int device_id = 1;      ///< the BTS device (devid) this controller is
  int device_type = -1;   ///< devtype; -1: as getdevinfo lists it for device_id
  int unit_channels = 8;  ///< channels per sub-device: channel k (1-based) = unit (k-1)/N+1, chlid (k-1)%N+1
  std::string username = "admin";
  std::string password = "neware";
  double poll_hz = 1.0;
  int timeout_ms = 1000;  ///< one request and its whole reply (a reply trickling in slower is a timeout)
  int backoff_initial_ms = 100;
  int backoff_max_ms = 5000;
  std::vector<core::ChannelIndex> channel_slots;
  LinkErrorHook on_error;
};

/// Thread-safety: start()/stop() from the owner thread; stats(), connected(), release_all(),
/// wait_released(), device_type() from any thread. Everything else runs on the link's own I/O thread.
class NewareLink final : public io::Link {
 public:
  /// Throws std::invalid_argument naming the controller for a bad configuration.
  NewareLink(NewareLinkConfig cfg, ChannelSlots slots);
  ~NewareLink() override;
  NewareLink(const NewareLink&) = delete;
  NewareLink& operator=(const NewareLink&) = delete;

  void start() override;
  void stop() override;
  [[nodiscard]] LinkStats stats() const override { return stats_.load(); }
  [[nodiscard]] bool connected() const noexcept override { return connected_.load(std::memory_order_acquire); }
  /// Nothing to release: eqd never commands a BTS channel.
  void release_all() noexcept override {}
  [[nodiscard]] bool wait_released(std::chrono::milliseconds) const override { return true; }
  [[nodiscard]] const std::string& name() const noexcept override { return cfg_.name; }
  [[nodiscard]] double poll_hz() const noexcept override { return cfg_.poll_hz; }
  /// The device type in use (configured, or found by getdevinfo; -1 before). Any thread.
  [[nodiscard]] int device_type() const noexcept { return device_type_.load(); }
  /// The BTS address of controller channel k (0-based) with device type `devtype`. Any thread.
  [[nodiscard]] ChannelAddress address_of(std::size_t k, int devtype) const noexcept;

 private:
  enum class Xfer : std::uint8_t { ok, timeout, closed, oversized, io_error };
  void run();
  bool connect_link(std::int64_t t_ns);
  bool open_socket();
  void close_link();
  /// Sends `request` and reads one whole reply into `body` within timeout_ms.
  Xfer exchange(const std::string& request, std::string& body);
  /// One request and its parsed reply; false (reported, link closed where the stream is lost) when
  /// the exchange failed.
  bool request(const std::string& req, const char* cmd, XmlDocument& doc);
  void poll_once();
  /// Counts and reports bytes the server sent that answer no request (dropped).
  void note_stray(std::size_t bytes);
  void publish_down(std::int64_t t_ns, bool connected);
  void report(const std::string& message, LinkErrc code, std::uint16_t channel = 0);

  NewareLinkConfig cfg_;
  ChannelSlots slots_;
  // I/O thread only:
  int fd_ = -1;
  std::vector<ChannelAddress> asked_;   // the channels in the inquire request
  std::vector<std::size_t> asked_k_;    // their controller channel index
  std::vector<bool> missing_;           // per channel: not listed by getdevinfo
  std::vector<RecordProblem> problem_;  // per channel: last reported problem (reported on change)
  std::string request_;                 // the inquire request, built at connect
  std::string buffer_;
  int io_errno_ = 0;              // errno of the last failed send/recv
  std::string last_reply_error_;  // the last whole-reply error reported (reported on change)
  std::int64_t next_connect_ns_ = 0;
  int backoff_ms_ = 100;
  bool ever_connected_ = false;
  std::uint32_t sequence_ = 0;
  LinkStats local_{};
  // Shared:
  core::Seqlock<LinkStats> stats_;
  std::atomic<bool> connected_{false};
  std::atomic<int> device_type_{-1};
  LinkThread thread_;  // last: joined before the members its thread uses are destroyed
};

}  // namespace eqd::io::neware
