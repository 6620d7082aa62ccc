// eqd: the power-equalization daemon. See README.md and docs/architecture.md.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <pthread.h>

#include "eqd/config/config.hpp"
#include "eqd/daemon/app.hpp"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitConfig = 2;

int run(int argc, char** argv) {
  CLI::App app{"eqd: power-equalization daemon for battery cycler rigs"};
  std::string config_path = eqd::config::kDefaultConfigPath;
  std::string check_path;
  std::vector<std::string> overrides;
  std::string log_level;
  bool version = false;
  app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  app.add_option("--check-config", check_path, "validate FILE and exit (0 valid, 2 invalid)");
  app.add_option("--set", overrides, "override a config key: KEY.PATH=VALUE (repeatable)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error (overrides log_level)");
  app.add_flag("--version", version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitConfig;
  }
  if (version) {
    std::printf("eqd %s\n", EQD_VERSION);
    return kExitOk;
  }

  const bool check_only = !check_path.empty();
  eqd::config::Config cfg;
  try {
    cfg = eqd::config::load_config(check_only ? check_path : config_path);
    eqd::config::apply_overrides(cfg, overrides);
    if (!log_level.empty()) cfg.log_level = log_level;
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
    std::fprintf(stderr, "eqd: %s: %s\n", check_only ? check_path.c_str() : config_path.c_str(), e.what());
    return kExitConfig;
  }

  spdlog::set_default_logger(spdlog::stderr_color_mt("eqd"));
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));

  // Block the signals in every thread (threads inherit the mask) and take them with sigwait() here,
  // so no handler ever runs on the control thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  eqd::daemon::App app_state(cfg);
  try {
    app_state.start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return kExitFailure;
  }

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      // Reload: parse and validate the file again (with the same --set overrides); an invalid one is
      // refused with its error and the running configuration stays.
      spdlog::info("SIGHUP: reloading {}", config_path);
      try {
        eqd::config::Config next = eqd::config::load_config(config_path);
        eqd::config::apply_overrides(next, overrides);
        if (!log_level.empty()) next.log_level = log_level;
        if (app_state.reload(next)) spdlog::set_level(spdlog::level::from_str(next.log_level));
      } catch (const std::exception& e) {
        spdlog::error("reload refused: {}; keeping the running configuration", e.what());
      }
      continue;
    }
    spdlog::info("{} received", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }
  app_state.stop();
  return kExitOk;
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
