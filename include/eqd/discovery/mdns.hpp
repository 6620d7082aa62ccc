#pragma once
/// @file mdns.hpp
/// A session with avahi-daemon through libavahi-client and its threaded poll: browse service types
/// (resolving each instance to IPv4) and publish services. No mDNS is spoken here: avahi-daemon does.
///
/// Thread-safety: construct, start(), browse(), publish(), stop() from one owner thread (eqd's main
/// thread, eqsim's main thread). The callbacks given to start() run on Avahi's poll thread; they
/// must not block and must not call back into this object.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "eqd/discovery/txt.hpp"

namespace eqd::discovery {

/// What the browser saw. Plain data.
struct MdnsEvent {
  enum class Kind : std::uint8_t { resolved, removed, resolve_failed };
  Kind kind = Kind::resolved;
  ResolvedService service;  ///< resolved: everything; removed/resolve_failed: instance and type
  std::string error;        ///< resolve_failed: Avahi's reason
};

/// One service to publish. Plain data.
struct PublishedService {
  std::string name;  ///< instance name; Avahi picks an alternative on a collision
  std::string type;  ///< e.g. "_eqd._tcp"
  std::uint16_t port = 0;
  std::vector<std::string> txt;
};

class MdnsSession {
 public:
  /// Called on Avahi's thread for every browse event.
  using EventSink = std::function<void(const MdnsEvent&)>;
  /// Called on Avahi's thread, once, when the session fails after start() (avahi-daemon went away).
  using FailureSink = std::function<void(const std::string& reason)>;

  MdnsSession();
  ~MdnsSession();
  MdnsSession(const MdnsSession&) = delete;
  MdnsSession& operator=(const MdnsSession&) = delete;

  /// Connects to avahi-daemon (over the system D-Bus, DBUS_SYSTEM_BUS_ADDRESS honoured) and starts
  /// the poll thread. Returns an empty string, or why it is not possible (e.g. "Daemon not running").
  /// Owner thread.
  [[nodiscard]] std::string start(EventSink on_event, FailureSink on_failure);
  /// Browses `type` in the default domain on every interface. Returns an empty string or an error.
  /// Owner thread, after a successful start().
  [[nodiscard]] std::string browse(const std::string& type);
  /// Publishes `services` (replacing what this session published before). Registration completes
  /// asynchronously; a name collision is resolved with Avahi's alternative names. Returns an empty
  /// string or an error. Owner thread, after a successful start().
  [[nodiscard]] std::string publish(std::vector<PublishedService> services);
  /// Names under which the services are registered so far (after collisions). Owner thread.
  [[nodiscard]] std::vector<std::string> published_names() const;
  /// Withdraws everything and stops the poll thread. Idempotent; also done by the destructor.
  void stop();

  /// Implementation (Avahi's C callbacks); public only so that mdns.cpp can name it.
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace eqd::discovery
