#pragma once
/// @file bts_server.hpp
/// A Neware-BTS-like server: the TCP/XML exchange of the BTS test software's API as its public clients
/// show it (docs/devices.md, "Neware BTS"), written from those facts and not from eqd's client (it
/// shares no code with io/neware). It answers `connect`, `getdevinfo`, `getchlstatus` and `inquire`
/// for the channels of its devices, taken from a ChannelSource (a test's script, or eqsim's rig), and
/// refuses every command that would act on a channel (start, stop, ...) with a `false` per channel,
/// counting them: a read-only client must send none. Faults for tests: malformed, partial, oversized,
/// trickled, silent or mislabelled replies.
///
/// Thread-safety: start()/stop() from the owner thread; everything else from any thread. One accept
/// thread and one thread per connection; the ChannelSource is called from connection threads.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace eqd::sim::bts {

/// What the server reports of one channel (inquire's attributes; getchlstatus's text is workstatus).
struct ChannelStatus {
  double voltage_V = 0.0;
  double current_A = 0.0;           ///< > 0 charging (the BTS's cc/cv steps), < 0 discharging (dc)
  std::string workstatus = "stop";  ///< working | stop | finish | protect | pause (or anything, for tests)
  long step_id = -1;                ///< -1: no test running (served without step_id, step_type "--")
  long cycle_id = -1;               ///< -1: served as 1 (as a BTS does before a test)
  std::string step_type = "--";     ///< cc, cv, dc, rest, ...
  bool with_power = false;          ///< also serve a power attribute: power_W, or voltage x current when NaN
  double power_W = std::numeric_limits<double>::quiet_NaN();
};

/// Where the server's channel values come from. Called from connection threads (implementations lock).
class ChannelSource {
 public:
  virtual ~ChannelSource() = default;
  /// Status of channel `channel` (0-based, unit-major) of device `device` (index into the config's list).
  virtual ChannelStatus status(std::size_t device, std::size_t channel) = 0;
};

/// One BTS device served: type, id, sub-devices (units) of unit_channels channels each.
struct DeviceSpec {
  int devtype = 27;
  int devid = 1;
  int units = 1;
  int unit_channels = 8;
};

/// How the server misbehaves on `inquire` and `getchlstatus` replies (connect and getdevinfo stay
/// correct unless `on_every_reply`).
enum class Fault : std::uint8_t {
  none,
  malformed,  ///< a terminated reply that is not well-formed XML (an unclosed element)
  partial,    ///< half of the reply, then the connection closed
  oversized,  ///< 2 MiB of elements before the terminator
  trickle,    ///< the reply one byte every trickle_byte_ms
  silent,     ///< no reply at all (the connection stays open)
  wrong_cmd,  ///< a well-formed reply naming another command
  trailing,   ///< a correct reply followed by a second, unasked message
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  ///< 0: an ephemeral port (port() tells which)
  std::vector<DeviceSpec> devices;
  std::string username = "admin";  ///< connect's expected credentials
  std::string password = "neware";
};

struct ServerStats {
  std::uint64_t connections = 0;
  std::uint64_t requests = 0;
  std::uint64_t inquiries = 0;
  std::uint64_t devinfos = 0;
  std::uint64_t logins_refused = 0;
  std::uint64_t channel_commands = 0;  ///< start/stop/... requests: a read-only client sends none
};

class BtsServer {
 public:
  /// Binds at once (throws std::runtime_error naming the address when it cannot).
  BtsServer(ServerConfig cfg, ChannelSource& source);
  ~BtsServer();
  BtsServer(const BtsServer&) = delete;
  BtsServer& operator=(const BtsServer&) = delete;

  void start();
  void stop();
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  void set_fault(Fault f) noexcept { fault_.store(f); }
  void set_trickle_byte_ms(int ms) noexcept { trickle_byte_ms_.store(ms); }
  /// Close every open client connection now (the server keeps listening).
  void drop_connections();
  [[nodiscard]] ServerStats stats() const;

 private:
  void accept_loop();
  void serve(int fd);
  std::string answer(const std::string& request, bool& close_after);
  void send_reply(int fd, const std::string& reply);

  ServerConfig cfg_;
  ChannelSource& source_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> running_{false};
  std::atomic<Fault> fault_{Fault::none};
  std::atomic<int> trickle_byte_ms_{20};
  mutable std::mutex mutex_;  // stats_, clients_, threads_
  ServerStats stats_;
  std::vector<int> clients_;
  std::vector<std::thread> threads_;
  std::thread accept_thread_;
};

}  // namespace eqd::sim::bts
