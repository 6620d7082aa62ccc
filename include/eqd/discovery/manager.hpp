#pragma once
/// @file manager.hpp
/// eqd's discovery: owns the Avahi session (browse controllers, publish eqd) and the connection
/// cache, and decides when the running configuration must change (a controller found, adopted,
/// forgotten, moved or expired). It never touches the daemon: the main thread asks tick() and does
/// the handover (App::reload) itself. docs/discovery.md.
///
/// Thread-safety: construct, initial_config(), start_mdns(), tick(), set_base(), applied(), stop()
/// on the main thread. adopt() and forget() from any thread (the control API's io thread): they
/// only check the name and queue the change. Avahi's callbacks (its own thread) queue events. Both
/// wake the main thread through the `wake` callback.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "eqd/config/config.hpp"
#include "eqd/discovery/cache.hpp"
#include "eqd/discovery/mdns.hpp"
#include "eqd/discovery/merge.hpp"

namespace eqd::discovery {

/// Link state of one running controller, as the main thread reads it from the daemon.
struct LinkState {
  std::string name;
  bool connected = false;
};

/// Answer to adopt()/forget(). `code` is a control API error code when !ok.
struct ChangeResult {
  bool ok = false;
  std::string code;
  std::string message;
};

class DiscoveryManager {
 public:
  using Clock = std::chrono::steady_clock;
  /// Wakes the main thread (e.g. pthread_kill(main, SIGUSR1)). Called from any thread; must not block.
  using Wake = std::function<void()>;
  /// Wall clock in Unix seconds (cache timestamps); injectable for tests.
  using UnixNow = std::function<std::int64_t()>;

  /// Loads the cache from base.state_dir (a corrupt file is moved aside and reported once).
  /// Main thread.
  DiscoveryManager(const config::Config& base, Wake wake, UnixNow unix_now = {});
  ~DiscoveryManager();
  DiscoveryManager(const DiscoveryManager&) = delete;
  DiscoveryManager& operator=(const DiscoveryManager&) = delete;

  /// The configuration to start with: the file's plus every cached controller (source "cache").
  /// Main thread.
  [[nodiscard]] config::Config initial_config();

  /// Connects to avahi-daemon, publishes eqd (`_eqd._tcp`, when discovery.publish) and browses the
  /// configured service types. Without avahi-daemon, logs once why discovery is off; eqd goes on
  /// from configuration and cache, and discovery starts by itself when avahi-daemon appears. Losing
  /// the daemon later (stopped, restarted) is logged once, and so is the reconnection (tick()).
  /// Returns true if connected now. Main thread.
  bool start_mdns();

  /// Applies queued Avahi events and adopt/forget requests, records connected controllers in the
  /// cache, expires old entries, saves the cache when it changed, and returns the configuration to
  /// hand over to when the set of controllers changed and has been quiet for discovery.debounce_ms.
  /// Main thread; call on every wake-up and at least every second.
  [[nodiscard]] std::optional<config::Config> tick(const std::vector<LinkState>& links, Clock::time_point now);

  /// When tick() will have a handover due if nothing else happens (a debounce running), else
  /// nullopt: the main thread shortens its wait to it. Main thread.
  [[nodiscard]] std::optional<Clock::time_point> due() const;

  /// The configuration file was reloaded: returns the configuration to run (file + known
  /// controllers). Main thread.
  [[nodiscard]] config::Config set_base(const config::Config& base);

  /// The daemon now runs `running` (after start or a successful App::reload). Main thread.
  void applied(const config::Config& running);

  /// Queues one browse event for the next tick() and wakes the main thread. Avahi's thread (or a
  /// test); any thread, never blocks on the main thread.
  void post(const MdnsEvent& ev);

  /// `eqctl controllers adopt NAME [--bus BUS]`: `bus` empty keeps the bus it has (announced, or from a
  /// rule); else BUS must be a bus of the configuration (code "unknown_bus" otherwise) and is used
  /// whatever the controller announces, and remembered in the cache. Adopting an adopted controller
  /// again with another bus moves it. Any thread; never blocks on the main thread.
  [[nodiscard]] ChangeResult adopt(const std::string& name, const std::string& bus = {});
  /// `eqctl controllers forget NAME`. Any thread; never blocks on the main thread.
  [[nodiscard]] ChangeResult forget(const std::string& name);

  /// Stops Avahi and saves the cache. Idempotent. Main thread.
  void stop();

  /// Whether mDNS is running: connected to avahi-daemon now (false: off, see the log). Main thread.
  [[nodiscard]] bool mdns_running() const noexcept { return mdns_ != nullptr && mdns_->connected(); }
  /// Path of the cache file. Any thread (immutable).
  [[nodiscard]] const std::string& cache_path() const noexcept { return cache_path_; }

 private:
  struct Known {
    ControllerRecord record;
    config::ControllerOrigin origin = config::ControllerOrigin::cache;
    bool announced = false;  ///< resolved by mDNS and not removed since
    bool saved = false;      ///< present in the cache file (connected at least once)
  };
  struct Request {
    bool adopt = false;  ///< else forget
    std::string name;
    std::string bus;  ///< adopt --bus
  };
  struct NameInfo {
    bool configured = false;
    bool adopted = false;
    std::string adopted_bus;  ///< given with adopt --bus
    std::string bus;          ///< the bus it is on (choose_bus); empty: unknown
  };

  void handle(const MdnsEvent& ev, std::int64_t now_s);
  // The stages of tick(), in order.
  void report_status(const MdnsStatus& st);
  void apply_request(const Request& rq);
  void note_connections(const std::vector<LinkState>& links, std::int64_t now_s);
  void expire_known(std::int64_t now_s);
  [[nodiscard]] std::optional<config::Config> handover_due(Clock::time_point now);
  [[nodiscard]] std::vector<KnownController> known_list() const;
  [[nodiscard]] config::Config desired() const;
  [[nodiscard]] static std::string signature(const config::Config& cfg);
  void publish_names();
  void warn_merge(const MergeResult& m, const std::string& prefix);
  void save(std::int64_t now_s);
  void warn_once(const std::string& text);

  config::Config base_;
  Wake wake_;
  UnixNow unix_now_;
  std::string cache_path_;
  std::map<std::string, Known> known_;  ///< by controller name
  std::set<std::string> warned_;
  std::unique_ptr<MdnsSession> mdns_;
  std::string applied_signature_;
  std::string desired_signature_;
  std::optional<Clock::time_point> changed_at_;      ///< desired differs from applied since
  std::optional<Clock::time_point> last_change_at_;  ///< desired last changed
  bool dirty_ = false;                               ///< cache content changed
  std::int64_t last_save_s_ = 0;

  mutable std::mutex mutex_;  ///< guards the members below
  std::deque<MdnsEvent> events_;
  std::deque<MdnsStatus> statuses_;  ///< changes of the link to avahi-daemon, for tick() to say
  std::deque<Request> requests_;
  std::map<std::string, NameInfo> names_;
  std::vector<std::string> bus_names_;  ///< of the configuration, for adopt --bus
  /// base_.discovery.debounce_ms for adopt()'s message: adopt() runs on the control API's thread while a
  /// reload may replace base_ on the main thread.
  int debounce_ms_ = 0;
  bool stopped_ = false;
};

}  // namespace eqd::discovery
