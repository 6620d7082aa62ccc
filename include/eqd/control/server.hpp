#pragma once
/// @file server.hpp
/// The control API server: a Unix stream socket served by one Boost.Asio io thread. It reads the
/// rig through a daemon::RigView (lock-free snapshots), submits Requests to a daemon::RequestSink
/// (the core's request queue) and routes the Responses to the waiting clients by Request::id from
/// one dispatcher timer; the control thread is never touched. Accepted changes are persisted
/// (StateStore) from the io thread. It knows nothing of daemon::Daemon: tests serve a fake rig.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "eqd/config/config.hpp"
#include "eqd/control/state_store.hpp"
#include "eqd/control/views.hpp"
#include "eqd/daemon/api_stats.hpp"
#include "eqd/daemon/views.hpp"
#include "eqd/history/audit.hpp"
#include "eqd/history/store.hpp"

namespace eqd::control {

/// Outcome of `adopt` / `forget` as decided by their handler: ok, or an error code of
/// protocol.hpp's error_code and a message for the user.
struct ControllerChange {
  bool ok = false;
  std::string code;
  std::string message;
};
/// Handler of `adopt` or `forget` for one controller name; `bus`: the bus given with `adopt` (empty:
/// none; always empty for `forget`). Called on the server's io thread; must not block (the discovery
/// manager only queues the change for the main thread).
using ControllerHook = std::function<ControllerChange(const std::string& controller, const std::string& bus)>;

/// Reads the metrics endpoint's state. Called on the server's io thread; must not block for long
/// and must stay valid while the server runs.
using MetricsStateHook = std::function<MetricsEndpointState()>;

/// Reads the history database's state for `status` (field "history": path, error, rows written,
/// records lost). Called on the server's io thread; must not block (no disk I/O).
using HistoryStateHook = std::function<nlohmann::json()>;

/// Makes a backup archive for `backup` (the App: on the history writer, store.hpp) and calls `done`
/// later with it, on another thread, never inline. False when it cannot be started (then `done` is
/// never called). Called on the server's io thread; must not block.
using BackupHook = std::function<bool(std::function<void(history::BackupResult)> done)>;

/// Settings of the server. Plain data.
struct ApiServerOptions {
  std::string socket_path = "/run/eqd/eqd.sock";  ///< Config.api.socket_path
  std::string group = "eqd";                      ///< Config.api.group: operators (assign, release)
  std::string admin_group = "eqd-admin";  ///< Config.api.admin_group: admins besides root (also set, adopt, forget)
  std::chrono::milliseconds response_timeout{3000};  ///< wait for the control thread's answer
  /// A connection with no complete request line (or whose reader takes no reply) for this long gets
  /// an "idle" error line and is closed. Config.api.idle_timeout_ms.
  std::chrono::milliseconds idle_timeout{60000};
  std::size_t max_connections = 64;         ///< Config.api.max_connections: one more gets "busy"
  std::size_t max_connections_per_uid = 8;  ///< Config.api.max_connections_per_uid (root exempt)
  std::size_t reserved_connections = 8;     ///< Config.api.reserved_connections: root and api.group only
  ControllerHook adopt{};                   ///< `adopt`; empty: refused as "unavailable" (discovery is off)
  ControllerHook forget{};                  ///< `forget`; empty: refused as "unavailable" (discovery is off)
  MetricsStateHook metrics_state{};         ///< `status` field "metrics"; empty: the field is absent
  /// Where every answered request is counted by operation and result (metrics); null: not counted.
  std::shared_ptr<daemon::ApiRequestStats> request_stats{};
  /// Where every change request's audit record goes (assign, release, set, adopt, forget, refused
  /// ones included) and what `audit` asks; null: nothing recorded, `audit` answers "unavailable".
  /// record() and query() never wait (the history writer does the disk work on its own thread).
  std::shared_ptr<history::AuditSink> audit{};
  HistoryStateHook history_state{};  ///< `status` field "history"; empty: the field is absent
  /// `backup` (admin): makes the archive, which is passed to the client as an open file descriptor
  /// (SCM_RIGHTS) with the answer line; empty: refused as "unavailable".
  BackupHook backup{};
  /// How long `backup` may take before the client gets a timeout (a large database takes seconds).
  std::chrono::milliseconds backup_timeout{300000};
};

/// The options of the `api:` section (socket, group, idle timeout, connection limits). Any thread.
[[nodiscard]] ApiServerOptions api_server_options(const config::ApiConfig& api);

/// Thread-safety: construct, start(), stop() from the main thread. Everything else runs on the
/// server's own io thread.
class ApiServer {
 public:
  /// `rig`: what the reading commands show and the requests are checked against; `requests`: where
  /// accepted changes go (for eqd both are the running Daemon). Both must be started before start()
  /// and outlive the server. `store`/`state`: the persisted state loaded at start (kept up to date
  /// and rewritten after every accepted change).
  ApiServer(const daemon::RigView& rig, daemon::RequestSink& requests, StateStore& store, PersistedState state,
            ApiServerOptions opts);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  /// Creates the socket (mode 0660, group api.group if it exists) and starts the io thread.
  /// Refuses (throws std::runtime_error) if another process answers on the socket. Main thread.
  void start();
  /// Closes the socket and all connections, joins the io thread, removes the socket file. Idempotent.
  void stop();

  /// Implementation (io thread state); public only so that the connection class in server.cpp can
  /// name it. Not usable from outside server.cpp.
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace eqd::control
