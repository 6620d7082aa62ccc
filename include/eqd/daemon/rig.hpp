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
#include "eqd/io/can/can_link.hpp"
#include "eqd/io/modbus/poller.hpp"

namespace eqd::daemon {

/// Everything the daemon builds from a Config.
struct RigPlan {
  Directory directory;
  core::CoreConfig core;
  std::vector<io::modbus::PollerConfig> pollers;  ///< one per controller, same order as directory.controllers
  /// transport: can controllers by controller index: the daemon makes a CanLink for these (their
  /// `pollers` entry only carries name and channel_slots).
  std::map<std::size_t, io::can::CanLinkConfig> can_links;
};

/// Adjusts the rig plan before the core is built (e.g. persisted assignments). Main thread.
using PlanHook = std::function<void(RigPlan&)>;

/// Build the rig from a validated configuration. Buffers from config start assigned.
/// Throws std::invalid_argument on inconsistencies that validation cannot see. Main thread.
RigPlan plan_rig(const config::Config& cfg);

}  // namespace eqd::daemon
