#pragma once
/// @file rig.hpp
/// The daemon's plan of the rig, built once from the configuration: the Directory of names
/// (directory.hpp), the core's configuration and one link configuration per controller.
/// Thread-safety: immutable after plan_rig(); share as const from any thread.

#include <functional>
#include <map>
#include <vector>

#include "eqd/config/config.hpp"
#include "eqd/core/control_core.hpp"
#include "eqd/daemon/directory.hpp"
#include "eqd/io/transport.hpp"

namespace eqd::daemon {

/// One controller's link as planned: its transport, that transport's settings and the common part.
struct LinkPlan {
  const io::Transport* transport = nullptr;  ///< from the registry; never null in a plan
  io::SettingsBox settings;                  ///< the controller's resolved transport settings
  io::LinkSpec spec;                         ///< name, rates, read-only, channel slots (no on_error yet)
};

/// Everything the daemon builds from a Config.
struct RigPlan {
  Directory directory;
  core::CoreConfig core;
  std::vector<LinkPlan> links;  ///< one per controller, same order as directory.controllers
};

/// Adjusts the rig plan before the core is built (e.g. persisted assignments). Main thread.
using PlanHook = std::function<void(RigPlan&)>;

/// Build the rig from a validated configuration. Buffers from config start assigned.
/// Throws std::invalid_argument on inconsistencies that validation cannot see. Main thread.
RigPlan plan_rig(const config::Config& cfg);

}  // namespace eqd::daemon
