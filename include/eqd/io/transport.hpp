#pragma once
/// @file transport.hpp
/// Transports as plug-ins: what the configuration, the rig plan and the daemon know of a transport
/// (Modbus TCP, Modbus RTU, CAN, or one a test adds). Each transport owns its settings of a controller
/// (host and port; device and baud; interface and node id ...), the keys that set them, their checks,
/// the endpoint text, and the factory of its links. It registers itself by name in the registry; the
/// configuration reads `controllers[].transport` and hands every other key the registry says belongs
/// to that transport to it. No YAML here: the configuration reads values through a ValueReader.
///
/// Adding a transport: docs/architecture.md, "Adding a transport".
///
/// Thread-safety: a Transport is immutable after registration and safe from any thread. The
/// registry is filled before use: the built-in transports on first use, others by register_transport()
/// on the main thread before any configuration is read (not thread-safe against concurrent lookups).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eqd/core/control_core.hpp"
#include "eqd/io/can/signal_map.hpp"
#include "eqd/io/link.hpp"
#include "eqd/io/modbus/register_map.hpp"

namespace eqd::io {

/// A transport's own settings of one controller. Implementations are plain data (thread-safety as
/// plain data: share as const).
class TransportSettings {
 public:
  virtual ~TransportSettings() = default;
  /// A deep copy (configurations are copied: overrides and reloads must not change another copy).
  [[nodiscard]] virtual std::unique_ptr<TransportSettings> clone() const = 0;

 protected:
  TransportSettings() = default;
  TransportSettings(const TransportSettings&) = default;
  TransportSettings& operator=(const TransportSettings&) = default;
};

/// A TransportSettings held by value: copying copies the settings. Plain data.
class SettingsBox {
 public:
  SettingsBox() = default;
  explicit SettingsBox(std::unique_ptr<TransportSettings> s) : s_(std::move(s)) {}
  SettingsBox(const SettingsBox& o) : s_(o.s_ ? o.s_->clone() : nullptr) {}
  SettingsBox& operator=(const SettingsBox& o) {
    if (this != &o) s_ = o.s_ ? o.s_->clone() : nullptr;
    return *this;
  }
  SettingsBox(SettingsBox&&) noexcept = default;
  SettingsBox& operator=(SettingsBox&&) noexcept = default;

  [[nodiscard]] TransportSettings* get() noexcept { return s_.get(); }
  [[nodiscard]] const TransportSettings* get() const noexcept { return s_.get(); }
  /// The settings as transport type S, or null when they are another transport's.
  template <class S>
  [[nodiscard]] S* as() noexcept {
    return dynamic_cast<S*>(s_.get());
  }
  template <class S>
  [[nodiscard]] const S* as() const noexcept {
    return dynamic_cast<const S*>(s_.get());
  }

 private:
  std::unique_ptr<TransportSettings> s_;
};

/// One configuration value for a transport's key. The configuration implements it over a YAML node
/// (file or --set); every read fails with the configuration's error at the value's position
/// (file:line:column, key path) when the value is not what is asked for, and so does refuse().
class ValueReader {
 public:
  virtual ~ValueReader() = default;
  [[nodiscard]] virtual std::string text() const = 0;
  [[nodiscard]] virtual long long integer(long long lo, long long hi, const char* unit) const = 0;
  [[nodiscard]] virtual double real(double lo, double hi, const char* unit) const = 0;
  /// Fails at this value with "got 'TEXT' (expected `expected`)".
  [[noreturn]] virtual void refuse(const std::string& expected) const = 0;
};

/// One key of `controllers[]` that a transport owns. `read` stores the value into the transport's
/// settings (the same type its defaults() returns).
struct TransportKey {
  const char* name;
  void (*read)(TransportSettings& settings, const ValueReader& value);
};

/// A problem found in a controller's settings: the key it concerns (relative to the controller:
/// "host", "node_id", "channels") and the message. For an unknown name (a profile), `unknown` and
/// `known`: the configuration then adds "(did you mean '...'?)" and "(known: ...)" to the message.
struct SettingProblem {
  std::string key;
  std::string message;
  std::string unknown;
  std::vector<std::string> known;
};

/// What a transport may look up while it resolves a controller's profile: the named maps of the
/// configuration (`maps:` register maps, `can_maps:` CAN signal maps). A transport with a map
/// format of its own adds its section here and in the configuration's top-level keys.
struct NamedMaps {
  const std::map<std::string, modbus::RegisterMap>* register_maps = nullptr;
  const std::map<std::string, can::SignalMap>* signal_maps = nullptr;
};

/// Everything a link of any transport is built from besides its transport settings. Plain data.
struct LinkSpec {
  std::string name;              ///< controller name (channels are NAME/N)
  double poll_hz = 10.0;         ///< controllers[].poll_hz (for CAN: the cyclic status rate)
  int timeout_ms = 200;          ///< controllers[].timeout_ms
  int backoff_initial_ms = 100;  ///< controllers[].backoff_initial_ms
  int backoff_max_ms = 5000;     ///< controllers[].backoff_max_ms
  bool read_only = false;        ///< polled only: no command, stop or heartbeat (discovered, not adopted)
  /// Controller channel k (0-based) -> core channel index, kNoChannel for an ignored channel.
  std::vector<core::ChannelIndex> channel_slots;
  /// Called on the link's thread with every error it records (channel 1-based, 0: the link). The
  /// daemon logs them; every transport must call it (the journal sees every link's errors).
  LinkErrorHook on_error;
};

/// A transport. Implementations are stateless and registered once.
class Transport {
 public:
  virtual ~Transport() = default;
  /// The value of `controllers[].transport` ("tcp").
  [[nodiscard]] virtual const char* name() const noexcept = 0;
  /// One line for `eqd --help`-like listings and errors ("Modbus TCP").
  [[nodiscard]] virtual const char* title() const noexcept = 0;
  /// False for a transport that only reads (Neware BTS: the vendor software owns its channels): eqd
  /// then never commands its controllers, and none of their channels may become a buffer (refused in
  /// the configuration's `equalization:`, a persisted assignment, and the control API's `assign`).
  [[nodiscard]] virtual bool commands() const noexcept { return true; }
  /// The keys of `controllers[]` this transport owns, besides the common ones (name, transport,
  /// poll_hz, timeout_ms, backoff_*, channels, bus, channel_bus, ignore_channels, efficiency).
  [[nodiscard]] virtual const std::vector<TransportKey>& keys() const = 0;
  /// Settings with every default.
  [[nodiscard]] virtual std::unique_ptr<TransportSettings> defaults() const = 0;
  /// Checks this controller's keys (a required one missing: "missing required key 'host' (transport
  /// tcp)"; combinations) and resolves its profile against `maps`; sets `channels` when it is 0 (the
  /// profile's count) and refuses a count the profile cannot carry. Run again after every override.
  [[nodiscard]] virtual std::optional<SettingProblem> resolve(TransportSettings& settings, std::uint16_t& channels,
                                                              const NamedMaps& maps) const = 0;
  /// A conflict between two resolved controllers of this transport (e.g. one CAN identifier on one
  /// interface); the problem concerns `a`.
  [[nodiscard]] virtual std::optional<SettingProblem> conflict(const TransportSettings& a, const TransportSettings& b,
                                                               const std::string& b_name) const {
    (void)a, (void)b, (void)b_name;
    return std::nullopt;
  }
  /// Empty when `lease_ms` reaches the controller unchanged (its lease register or signal holds it
  /// exactly), else why not. `controller`: its name, for the message.
  [[nodiscard]] virtual std::string lease_problem(const TransportSettings& settings, std::uint32_t lease_ms,
                                                  const std::string& controller) const = 0;
  /// The endpoint as eqctl and the metrics show it ("10.0.0.5:502#1", "can0#3").
  [[nodiscard]] virtual std::string endpoint(const TransportSettings& settings) const = 0;
  /// The link of one controller, not started. Throws std::invalid_argument naming the controller when
  /// the settings cannot make a link (the configuration's checks make that rare).
  [[nodiscard]] virtual std::unique_ptr<Link> make_link(const TransportSettings& settings, const LinkSpec& spec,
                                                        core::ControlCore& core) const = 0;
};

/// nullptr when `text` is a name of letters, digits, '_' and '-' (controller, bus, map and profile
/// names), else the expected-text for an error. Any thread.
[[nodiscard]] const char* check_name(const std::string& text) noexcept;

/// True for an IPv4 or IPv6 literal or an RFC 1123 host name (labels of letters, digits and '-', not
/// all digits): what a TCP transport hands to getaddrinfo(). Any thread.
[[nodiscard]] bool is_host(const std::string& text);

/// The transport registered under `name`, or null. Any thread after registration.
[[nodiscard]] const Transport* find_transport(std::string_view name);
/// Every registered transport's name, in registration order (built-ins first: tcp, rtu, can).
[[nodiscard]] std::vector<std::string> transport_names();
/// The names of the transports that own `key` (for "'host' applies only to transport: tcp").
[[nodiscard]] std::vector<std::string> transports_owning(std::string_view key);
/// Adds a transport (tests, or a site's own build). Throws std::invalid_argument when its name is
/// taken. (A key that is also a common key of controllers[] is refused by the configuration when it
/// reads such a controller.) Main thread, before any configuration is read.
void register_transport(std::unique_ptr<Transport> transport);

}  // namespace eqd::io
