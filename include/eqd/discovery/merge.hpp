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

/// The first rule of discovery.adopt whose glob pattern matches `name` (fnmatch(3) rules), or
/// nullptr. Any thread.
[[nodiscard]] const config::AdoptRule* find_adopt_rule(const std::string& name,
                                                       const std::vector<config::AdoptRule>& rules);
/// True if `name` matches one of the rules of discovery.adopt. Any thread.
[[nodiscard]] bool matches_adopt_rule(const std::string& name, const std::vector<config::AdoptRule>& rules);

/// The bus a discovered controller is put on, and where that came from. Plain data.
struct BusChoice {
  std::string bus;   ///< a bus of the configuration; empty: unknown (read-only, in no bus's balance)
  std::string note;  ///< non-empty: why the bus is unknown, or which announced bus was overridden
};

/// Which bus `r` is on, first of: the bus it was adopted on with `eqctl controllers adopt --bus`
/// (when adopted), the bus of the first matching discovery.adopt rule that names one, the bus it
/// announces (TXT `bus`), and, when it announces none and the configuration has exactly one bus, that
/// bus. A bus the configuration does not have is unknown. Any thread (pure).
[[nodiscard]] BusChoice choose_bus(const config::Config& base, const ControllerRecord& r);

/// A controller known from the cache or from discovery, with where it was last learnt of.
struct KnownController {
  ControllerRecord record;
  config::ControllerOrigin origin = config::ControllerOrigin::cache;
};

/// Result of merge_controllers().
struct MergeResult {
  config::Config config;             ///< `base` plus the known controllers that could be added
  std::vector<std::string> skipped;  ///< "NAME: reason" for each known controller left out
  std::vector<std::string> notes;    ///< "controller NAME ...": a bus unknown or overridden (say once)
};

/// `base` with every known controller appended as a Modbus TCP controller on the bus choose_bus()
/// gives. A controller is commanded (not read-only) when its record is adopted or its name matches an
/// adopt rule of base.discovery.adopt, and its bus is known; one whose bus is unknown gets
/// `bus_unknown` (its channels are in no bus's balance). Configured controllers win: a known one with
/// a configured name or endpoint is left out, as is one whose profile is unknown or too small. Any
/// thread.
[[nodiscard]] MergeResult merge_controllers(const config::Config& base, const std::vector<KnownController>& known);

}  // namespace eqd::discovery
