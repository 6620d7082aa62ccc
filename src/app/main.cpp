// eqd: the power-equalization daemon. See README.md and docs/architecture.md.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <pthread.h>

#include "eqd/app/app.hpp"
#include "eqd/config/config.hpp"
#include "eqd/daemon/event_watch.hpp"
#include "eqd/daemon/logging.hpp"
#include "eqd/discovery/manager.hpp"
#include "restore.hpp"
#include "systemd_notify.hpp"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitConfig = 2;

// Longest sleep of the main loop: also the period of rate-limited log summaries and STATUS= updates.
constexpr std::chrono::milliseconds kMaxTick{1000};
// STATUS= walks every channel's snapshot: often enough for an operator, rare enough for huge rigs.
constexpr std::chrono::seconds kStatusPeriod{5};

// After start() or a reload, the control loop must have cycled before eqd calls itself ready.
bool await_cycling(eqd::app::App& app) {
  const auto timeout =
      std::max(std::chrono::milliseconds(5000), std::chrono::milliseconds(20 * app.config().loop.period_ms));
  if (eqd::app::wait_first_cycle(app.daemon().loop(), timeout)) return true;
  spdlog::critical("the control thread did not complete a cycle within {} ms", timeout.count());
  return false;
}

timespec to_timespec(std::chrono::milliseconds d) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(d.count() / 1000);
  ts.tv_nsec = static_cast<long>((d.count() % 1000) * 1'000'000);
  return ts;
}

// Discovery: the file's controllers plus the cached ones, unless those cannot be planned (then the
// file alone: a bad cache must never keep eqd from starting).
eqd::config::Config discovery_start_config(eqd::discovery::DiscoveryManager& d, const eqd::config::Config& file_cfg) {
  eqd::config::Config c = d.initial_config();
  try {
    (void)eqd::daemon::plan_rig(c);
    return c;
  } catch (const std::exception& e) {
    spdlog::error(
        "discovery: the cached controllers cannot be planned ({}); starting from the configuration file alone",
        e.what());
    return file_cfg;
  }
}

// Who sent signal `info` (SIGHUP, SIGTERM): its pid and uid for the audit log; unknown when the
// kernel sent it (si_code > 0, e.g. a terminal's SIGINT) rather than a process (kill, systemctl).
eqd::app::App::Requester sender_of(const siginfo_t& info) {
  if (info.si_code > 0) return {};
  return eqd::app::App::Requester{info.si_pid, info.si_uid, true};
}

eqd::control::ControllerHook discovery_hook(eqd::discovery::DiscoveryManager& d, bool adopt) {
  return [&d, adopt](const std::string& name, const std::string& bus) {
    const eqd::discovery::ChangeResult r = adopt ? d.adopt(name, bus) : d.forget(name);
    return eqd::control::ControllerChange{r.ok, r.code, r.message};
  };
}

// Main thread: lets discovery see the links and hands over to a new configuration when the set of
// controllers changed. False if the control thread does not cycle afterwards.
bool discovery_tick(eqd::discovery::DiscoveryManager& d, eqd::app::App& app) {
  std::vector<eqd::discovery::LinkState> links;
  const auto& dir = app.daemon().directory();
  for (std::size_t c = 0; c < dir.controllers.size() && c < app.daemon().links().size(); ++c)
    links.push_back({dir.controllers[c].name, app.daemon().links()[c]->connected()});
  std::optional<eqd::config::Config> next = d.tick(links, std::chrono::steady_clock::now());
  if (!next) return true;
  spdlog::info("discovery: the set of controllers changed: handing over to the new configuration");
  if (!app.reload(*next)) {
    // Not retried until something changes again: a refused plan would be refused again.
    d.applied(*next);
    return true;
  }
  d.applied(app.config());
  return await_cycling(app);
}

// The command line (docs/man/eqd.8): what to load, what to do with it.
struct Options {
  std::string config_path = eqd::config::kDefaultConfigPath;
  std::string check_path;
  std::vector<std::string> overrides;
  std::string log_level;
  std::string restore_path;
  bool version = false;
};

// Parses the command line into `o`; an exit status when eqd is done already (--help, --version, a
// bad option), else nullopt.
std::optional<int> parse_options(int argc, char** argv, Options& o) {
  CLI::App app{"eqd: power-equalization daemon for battery cycler rigs"};
  app.add_option("-c,--config", o.config_path, "configuration file")->capture_default_str();
  app.add_option("--check-config", o.check_path, "validate FILE and exit (0 valid, 2 invalid)");
  app.add_option("--set", o.overrides, "override a config key: KEY.PATH=VALUE (repeatable)");
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error (overrides log_level)");
  app.add_option("--restore", o.restore_path,
                 "restore a backup archive (eqctl backup) into this stopped installation and exit (0 restored, 1 "
                 "refused)");
  app.add_flag("--version", o.version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitConfig;
  }
  if (o.version) {
    std::printf("eqd %s\n", EQD_VERSION);
    return kExitOk;
  }
  return std::nullopt;
}

// The file at `path` with the command line's --set overrides and --log-level: at start and on every
// SIGHUP reload alike. Throws what load_config and apply_overrides throw.
eqd::config::Config load_with_options(const std::string& path, const Options& o) {
  eqd::config::Config cfg = eqd::config::load_config(path);
  eqd::config::apply_overrides(cfg, o.overrides);
  if (!o.log_level.empty()) cfg.log_level = o.log_level;
  return cfg;
}

// Loads the configuration into `cfg` and plans the rig from it; with --check-config or --restore that
// is the whole run. An exit status when eqd is done (checked, restored, or an invalid configuration),
// else nullopt: serve `cfg`.
std::optional<int> load_startup_config(const Options& o, eqd::config::Config& cfg) {
  const bool check_only = !o.check_path.empty();
  try {
    cfg = load_with_options(check_only ? o.check_path : o.config_path, o);
    if (!o.restore_path.empty() && !check_only) return eqd::app::run_restore(cfg, o.restore_path);
    // Building the rig checks what only the assembled parts can (e.g. a register map against its use).
    eqd::daemon::RigPlan plan = eqd::daemon::plan_rig(cfg);
    if (check_only) {
      std::size_t buffers = 0;
      for (const auto& c : plan.core.channels) buffers += c.assigned ? 1 : 0;
      std::printf("%s: OK: %zu bus(es), %zu controller(s), %zu channel(s), %zu equalization channel(s)\n",
                  cfg.source_path.c_str(), plan.directory.buses.size(), plan.directory.controllers.size(),
                  plan.directory.channels.size(), buffers);
      return kExitOk;
    }
  } catch (const eqd::config::ConfigError& e) {
    std::fprintf(stderr, "eqd: %s\n", e.what());
    return kExitConfig;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqd: %s: %s\n", check_only ? o.check_path.c_str() : o.config_path.c_str(), e.what());
    return kExitConfig;
  }
  return std::nullopt;
}

// Blocks the signals eqd handles in every thread (threads inherit the mask), so that the main thread
// takes them with sigtimedwait and no handler ever runs on the control thread. Returns the set.
sigset_t block_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR1);  // discovery: an mDNS event or adopt/forget is waiting
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// How long the main loop may sleep: a tick, or less when a discovery debounce ends before it (then
// wake up for it rather than up to a tick late).
timespec next_wait(const timespec& tick, const eqd::discovery::DiscoveryManager* discovery) {
  timespec wait = tick;
  if (const auto due = discovery ? discovery->due() : std::nullopt) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*due - std::chrono::steady_clock::now());
    const auto tick_ms = std::chrono::milliseconds(tick.tv_sec * 1000 + tick.tv_nsec / 1'000'000);
    if (left < tick_ms) wait = to_timespec(std::max(left, std::chrono::milliseconds(1)));
  }
  return wait;
}

// SIGHUP (main thread): parse and validate the file again (with the same --set overrides); an invalid
// one is refused with its error and the running configuration stays. Audited either way. False if the
// control thread does not cycle afterwards.
bool reload(eqd::app::App& app, const Options& o, eqd::discovery::DiscoveryManager* discovery,
            eqd::app::Notifier& notifier, const siginfo_t& info) {
  spdlog::info("SIGHUP: reloading {}", o.config_path);
  notifier.reloading("reloading " + o.config_path);
  const nlohmann::json before = app.rig_summary();
  std::string refused = "refused: see the log";
  bool reloaded = false;
  try {
    eqd::config::Config next = load_with_options(o.config_path, o);
    if (discovery) next = discovery->set_base(next);  // keep the discovered and cached controllers
    reloaded = app.reload(next);
    if (reloaded) eqd::daemon::logging::set_level(next.log_level);
    if (discovery) discovery->applied(app.config());
  } catch (const std::exception& e) {
    spdlog::error("reload refused: {}; keeping the running configuration", e.what());
    refused = std::string("refused: ") + e.what();
  }
  app.audit_event("reload", sender_of(info), reloaded, reloaded ? "configuration reloaded" : refused, before,
                  reloaded ? app.rig_summary() : nlohmann::json(nullptr));
  if (!await_cycling(app)) return false;
  notifier.ready(eqd::app::status_line(app));
  return true;
}

// Runs the daemon on `cfg` until SIGTERM or SIGINT (main thread): discovery, the App, then the loop
// that feeds the watchdog, reports status, ticks discovery and takes the signals.
int serve(const Options& o, const eqd::config::Config& cfg) {
  // The journal (with CONTROLLER=/CHANNEL=/BUS= fields) when systemd connected stderr to it.
  eqd::daemon::logging::init(cfg.log_level);
  const sigset_t signals = block_signals();

  eqd::app::Notifier notifier;
  eqd::app::WatchdogGate watchdog_gate;
  eqd::daemon::EventWatch events;  // stalls, links, buffers leaving equalization: said once each
  auto& controller_errors = eqd::daemon::logging::controller_errors();
  std::unique_ptr<eqd::discovery::DiscoveryManager> discovery;
  eqd::config::Config start_cfg = cfg;
  if (cfg.discovery.enabled) {
    const pthread_t main_thread = pthread_self();
    discovery =
        std::make_unique<eqd::discovery::DiscoveryManager>(cfg, [main_thread] { pthread_kill(main_thread, SIGUSR1); });
    start_cfg = discovery_start_config(*discovery, cfg);
  }
  eqd::app::App app_state(start_cfg);
  if (discovery) app_state.set_controller_hooks(discovery_hook(*discovery, true), discovery_hook(*discovery, false));
  try {
    app_state.start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return kExitFailure;
  }
  // READY=1 means "controlling": configuration loaded and the control thread really cycling.
  if (!await_cycling(app_state)) return kExitFailure;
  notifier.ready(eqd::app::status_line(app_state));
  if (discovery) {
    discovery->applied(app_state.config());
    (void)discovery->start_mdns();
  }

  // sigtimedwait rather than sigwait: the main thread wakes up regularly to feed the watchdog, but
  // only if the control thread made progress, so a stuck control thread gets eqd restarted.
  const timespec tick = to_timespec(eqd::app::tick_interval(notifier.watchdog_interval(), kMaxTick));
  auto next_status = std::chrono::steady_clock::now() + kStatusPeriod;
  for (;;) {
    const timespec wait = next_wait(tick, discovery.get());
    siginfo_t info{};
    const int sig = sigtimedwait(&signals, &info, &wait);
    if (watchdog_gate.should_feed(&app_state.daemon().loop(), app_state.daemon().loop().cycles())) notifier.watchdog();
    events.tick(app_state.daemon(), eqd::daemon::monotonic_ns());
    controller_errors.flush();
    if (discovery && (sig < 0 || sig == SIGUSR1) && !discovery_tick(*discovery, app_state)) return kExitFailure;
    if (sig == SIGUSR1) continue;
    if (sig < 0) {
      if (std::chrono::steady_clock::now() >= next_status) {
        next_status = std::chrono::steady_clock::now() + kStatusPeriod;
        notifier.status(eqd::app::status_line(app_state));
      }
      continue;  // EAGAIN (tick) or EINTR
    }
    if (sig == SIGHUP) {
      if (!reload(app_state, o, discovery.get(), notifier, info)) return kExitFailure;
      continue;
    }
    spdlog::info("{} received", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    app_state.audit_event("stop", sender_of(info), true, sig == SIGTERM ? "SIGTERM: stopping" : "SIGINT: stopping");
    break;
  }
  notifier.stopping("stopping: releasing the equalization channels");
  app_state.stop();
  if (discovery) discovery->stop();
  return kExitOk;
}

int run(int argc, char** argv) {
  Options o;
  if (const std::optional<int> rc = parse_options(argc, argv, o)) return *rc;
  eqd::config::Config cfg;
  if (const std::optional<int> rc = load_startup_config(o, cfg)) return *rc;
  return serve(o, cfg);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqd: fatal: %s\n", e.what());
    return kExitFailure;
  }
}
