#pragma once
/// @file app.hpp
/// The eqd process, the composition root: the Daemon (core, control thread, links) plus its services
/// (control API, metrics), which see it only through daemon::RigView and daemon::RequestSink, and
/// reloads by handover. The only layer that knows all the others (docs/architecture.md, "Layers").
/// Thread-safety: every member function from the main thread only.

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "eqd/config/config.hpp"
#include "eqd/control/server.hpp"
#include "eqd/control/state_store.hpp"
#include "eqd/daemon/daemon.hpp"
#include "eqd/history/store.hpp"

namespace eqd::control {
class ApiServer;
}
namespace eqd::metrics {
class ExporterService;
}

namespace eqd::app {

class App {
 public:
  explicit App(config::Config cfg);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  /// Open the history database, load the persisted state, start the daemon, then the services
  /// (audited as `start`). Throws on failure.
  void start();

  /// Who asked for a daemon event: a signal's sender (sigtimedwait's si_pid and si_uid), or eqd
  /// itself. Plain data.
  struct Requester {
    pid_t pid = -1;  ///< -1: unknown
    uid_t uid = 0;
    bool known = false;  ///< false: uid and pid unknown (e.g. the signal came from the kernel)
  };
  /// Records a daemon event in the audit log (journal + history database): `command` is "start",
  /// "stop" or "reload"; `before`/`after` the values it changed (null: none). Never blocks.
  void audit_event(const char* command, const Requester& from, bool ok, const std::string& message,
                   nlohmann::json before = nullptr, nlohmann::json after = nullptr);
  /// What a reload changes, for its audit record: the configuration file, controllers and channels.
  [[nodiscard]] nlohmann::json rig_summary() const;

  /// Replace the running configuration by `next` (already parsed and validated). The new daemon is
  /// built first; if that fails the old one keeps running and false is returned. Otherwise the old
  /// daemon detaches (buffers keep their setpoints), the new one starts and adopts them at their
  /// present power, buffers that the new configuration no longer assigns are released, and energy
  /// counting goes on. Settings that need a restart (state_dir) are refused.
  bool reload(const config::Config& next);

  /// Handlers of the control API's `adopt` / `forget` (discovery); used by the API server from the
  /// next start()/reload() on. Main thread.
  void set_controller_hooks(control::ControllerHook adopt, control::ControllerHook forget);

  /// Stop the services, then take every buffer out of equalization and stop. Idempotent.
  daemon::ShutdownReport stop();

  [[nodiscard]] daemon::Daemon& daemon() noexcept { return *daemon_; }
  [[nodiscard]] const config::Config& config() const noexcept { return cfg_; }

 private:
  void start_services();
  void stop_services();

  config::Config cfg_;
  control::StateStore store_;
  /// The history database and its writer (audit log); opened at start(), kept across reloads
  /// (history.* is read at start only), stopped last.
  std::shared_ptr<history::HistoryStore> history_;
  /// The per-minute energy history: samples the running daemon; detached around a reload's handover.
  std::unique_ptr<history::EnergyRecorder> energy_;
  std::unique_ptr<daemon::Daemon> daemon_;
  std::unique_ptr<control::ApiServer> api_;
  std::unique_ptr<metrics::ExporterService> metrics_;
  /// Control API requests by operation and result: counted by the API, exported by the metrics. Kept
  /// across reloads (the counters are cumulative).
  std::shared_ptr<daemon::ApiRequestStats> api_stats_ = std::make_shared<daemon::ApiRequestStats>();
  /// The configuration file's text as read at the last start or reload (the running configuration,
  /// for backups); nullopt when it could not be read.
  std::optional<std::string> config_text_;
  control::ControllerHook adopt_hook_;
  control::ControllerHook forget_hook_;
  bool stopped_ = false;
};

}  // namespace eqd::app
