#pragma once
/// @file directory.hpp
/// Names of a rig's buses, controllers and channels and how they map to the core's dense indices.
/// Plain data built once from the configuration (daemon::plan_rig) and read by every layer above it:
/// the control API, metrics and the daemon's own log lines. Thread-safety: immutable after it is
/// built; share as const from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "eqd/core/control_core.hpp"

namespace eqd::daemon {

/// One channel: `CONTROLLER/NUMBER`, NUMBER 1-based as cyclers label them.
struct ChannelInfo {
  std::string name;
  std::uint16_t controller = 0;  ///< index into Directory::controllers
  std::uint16_t number = 1;      ///< 1-based channel number on its controller
  core::BusIndex bus = 0;        ///< core::kNoBus: its controller's bus is not known (in no bus's balance)
};

/// Where a controller came from (config file, connection cache, mDNS discovery).
enum class ControllerSource : std::uint8_t { config, cache, discovery };
const char* to_string(ControllerSource s) noexcept;

struct ControllerInfo {
  std::string name;
  std::string transport;  ///< "tcp" | "rtu" | "can"
  std::string endpoint;   ///< "host:port#unit", "device@baud#unit" or "interface#node"
  ControllerSource source = ControllerSource::config;
  bool read_only = false;    ///< discovered and not adopted, or its bus unknown: polled only, no buffer may be assigned
  bool bus_unknown = false;  ///< discovered and its bus not known: read-only, its channels of core::kNoBus
  /// False when its transport cannot command (io::Transport::commands(), e.g. neware): every channel is
  /// a test channel and no buffer may be assigned, adopted or not.
  bool commands = true;
  std::string identity;                  ///< discovery: serial or mDNS instance name; empty for configured ones
  core::ChannelIndex first_channel = 0;  ///< its channels are [first_channel, first_channel + channels)
  std::uint16_t channels = 0;
};

/// Name lookups. Immutable; any thread.
struct Directory {
  std::vector<std::string> buses;
  std::vector<ControllerInfo> controllers;
  std::vector<ChannelInfo> channels;

  [[nodiscard]] std::optional<core::ChannelIndex> find_channel(std::string_view name) const;
  [[nodiscard]] std::optional<core::BusIndex> find_bus(std::string_view name) const;
  [[nodiscard]] std::optional<std::uint16_t> find_controller(std::string_view name) const;
  /// Up to `max` known channel names closest to `name` (edit distance), for "did you mean".
  [[nodiscard]] std::vector<std::string> suggest_channels(std::string_view name, std::size_t max = 3) const;

  std::unordered_map<std::string, core::ChannelIndex> by_name;
};

/// Levenshtein distance, for suggestions. Any thread.
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace eqd::daemon
