#pragma once
/// @file mdns.hpp
/// A session with avahi-daemon through libavahi-client and its threaded poll: browse service types
/// (resolving each instance to IPv4) and publish services. No mDNS is spoken here: avahi-daemon does.
/// The session stays up by itself: started before avahi-daemon runs, it connects when the daemon
/// appears; when the daemon (or the system D-Bus) goes away or restarts, it reconnects and browses and
/// publishes again (libavahi-client's AVAHI_CLIENT_NO_FAIL, and a new client after a failure).
///
/// Thread-safety: construct, start(), browse(), publish(), stop() from one owner thread (eqd's main
/// thread, eqsim's main thread); connected() and not_connected_reason() from any thread. The
/// callbacks given to start() run on Avahi's poll thread (and, during start(), on the owner's);
/// they must not block and must not call back into this object.

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

/// A change of the session's link to avahi-daemon, or a problem it cannot fix itself. Plain data.
struct MdnsStatus {
  enum class Kind : std::uint8_t {
    lost,       ///< the connection to avahi-daemon is lost (`text`: why); the session reconnects by itself
    connected,  ///< connected (again) after start(): browsing and publishing again
    problem,    ///< a browser or the publication failed while connected (`text`: what); retried by reconnecting
  };
  Kind kind = Kind::lost;
  std::string text;
};

class MdnsSession {
 public:
  /// Called on Avahi's thread for every browse event.
  using EventSink = std::function<void(const MdnsEvent&)>;
  /// Called on Avahi's thread when the connection changes after start() (not for the state start()
  /// leaves: see connected()), and for problems.
  using StatusSink = std::function<void(const MdnsStatus&)>;

  MdnsSession();
  ~MdnsSession();
  MdnsSession(const MdnsSession&) = delete;
  MdnsSession& operator=(const MdnsSession&) = delete;

  /// Starts the poll thread and connects to avahi-daemon (over the system D-Bus,
  /// DBUS_SYSTEM_BUS_ADDRESS honoured). Returns an empty string when the session runs, connected or
  /// waiting for the daemon (connected() tells which), or why it cannot run at all (no poll thread).
  /// Owner thread.
  [[nodiscard]] std::string start(EventSink on_event, StatusSink on_status);
  /// True while connected to a running avahi-daemon. Any thread.
  [[nodiscard]] bool connected() const noexcept;
  /// Why the session is not connected now (e.g. "Daemon not running"); empty when it is. Any thread.
  [[nodiscard]] std::string not_connected_reason() const;
  /// Browses `type` in the default domain on every interface, now if connected and again after every
  /// reconnection. Returns an empty string or an error. Owner thread, after a successful start().
  [[nodiscard]] std::string browse(const std::string& type);
  /// Publishes `services` (replacing what this session published before), now if connected and again
  /// after every reconnection. Registration completes asynchronously; a name collision is resolved with
  /// Avahi's alternative names. Returns an empty string or an error. Owner thread, after a successful
  /// start().
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
