#pragma once
/// @file merge.hpp
/// From the configuration file plus the known (cached or discovered) controllers to the
/// configuration the daemon runs, and the adoption rules.
///
/// Thread-safety: pure functions; any thread.

#include <string>
#include <vector>

#include "eqd/config/config.hpp"
#include "eqd/discovery/cache.hpp"

namespace eqd::discovery {

/// True if `name` matches one of the glob patterns of discovery.adopt (fnmatch(3) rules). Any thread.
[[nodiscard]] bool matches_adopt_rule(const std::string& name, const std::vector<std::string>& patterns);

/// A controller known from the cache or from discovery, with where it was last learnt of.
struct KnownController {
  ControllerRecord record;
  config::ControllerOrigin origin = config::ControllerOrigin::cache;
};

/// Result of merge_controllers().
struct MergeResult {
  config::Config config;              ///< `base` plus the known controllers that could be added
  std::vector<std::string> skipped;   ///< "NAME: reason" for each known controller left out
};

/// `base` with every known controller appended as a Modbus TCP controller on the first bus. A
/// controller is commanded (not read-only) when its record is adopted or its name matches an adopt
/// rule of base.discovery.adopt. Configured controllers win: a known one with a configured name or
/// endpoint is left out, as is one whose profile is unknown or too small. Any thread.
[[nodiscard]] MergeResult merge_controllers(const config::Config& base, const std::vector<KnownController>& known);

}  // namespace eqd::discovery
