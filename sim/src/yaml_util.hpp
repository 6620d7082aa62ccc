#pragma once
// Private helpers for reading YAML with precise error locations (file:line:column + key path).

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "eqd/core/schedule.hpp"
#include "eqd/sim/errors.hpp"
#include "eqd/sim/rig.hpp"

namespace eqd::sim::detail {

/// An undefined node: tests false, unlike a default-constructed YAML::Node (which is a defined null).
inline YAML::Node none() { return YAML::Node(YAML::NodeType::Undefined); }

/// The file being read; every error is raised through it so that messages carry the location.
struct YamlCtx {
  std::string file;
  std::string dir;  ///< directory of `file`, for relative paths (profiles, rigs)

  [[noreturn]] void fail(const YAML::Node& at, const std::string& path, const std::string& msg) const;
  /// Reject keys of a mapping that are not in `allowed` (a typo must not be silently ignored).
  void check_keys(const YAML::Node& map, const std::string& path, std::initializer_list<const char*> allowed) const;
  void require_map(const YAML::Node& n, const std::string& path) const;
  void require_seq(const YAML::Node& n, const std::string& path) const;
  double num(const YAML::Node& n, const std::string& path) const;
  /// map[key] as a number within [lo, hi], or def when absent.
  double num(const YAML::Node& map, const char* key, const std::string& path, double def, double lo, double hi) const;
  std::int64_t integer(const YAML::Node& map, const char* key, const std::string& path, std::int64_t def,
                       std::int64_t lo, std::int64_t hi) const;
  /// map[key] as a range: a number (both ends equal) or a list [low, high] with low <= high, each within
  /// [lo, hi]; def when absent. For values that a rig draws (random levels, start delays).
  std::pair<double, double> range(const YAML::Node& map, const char* key, const std::string& path,
                                  std::pair<double, double> def, double lo, double hi) const;
  bool boolean(const YAML::Node& map, const char* key, const std::string& path, bool def) const;
  std::string str(const YAML::Node& map, const char* key, const std::string& path, const std::string& def,
                  bool required) const;
  std::string resolve(const std::string& p) const;
};

/// A target schedule (`buses[].schedule`) in eqd's config syntax (docs/configuration.md "Target
/// schedules"): a list of at most core::kMaxScheduleWindows windows {days, start, end, target_W |
/// import_limit_W / export_limit_W}. Errors name the window's key as eqd's config does.
std::vector<core::ScheduleWindow> parse_target_schedule(const YAML::Node& n, const YamlCtx& c, const std::string& path);
/// The days, start and end of a window-like mapping (a schedule window, a tariff's peak period) into w.
void parse_window_times(const YAML::Node& n, const YamlCtx& c, const std::string& path, core::ScheduleWindow& w);

/// Load a YAML file (syntax errors become InputError with line:column).
YAML::Node load_yaml_file(const std::string& path);
/// Parse a rig mapping (root of a rig file, or a scenario's inline `rig:`).
RigSpec parse_rig(const YAML::Node& root, const YamlCtx& ctx, const std::string& path);

}  // namespace eqd::sim::detail
