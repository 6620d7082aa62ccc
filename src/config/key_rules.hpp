/// @file key_rules.hpp
/// What the key tables share (keys.cpp: top level, control_loop, api, metrics, history, discovery;
/// keys_bus.cpp: buses[]; keys_controller.cpp: controllers[] and equalization[]; keys_maps.cpp: maps and
/// can_maps): the bounds of physical values and the checks used by more than one of them. Constants and
/// pure functions: any thread may use them (the parser itself runs on the main thread, at start-up).
#pragma once

#include <limits>
#include <string>

#include "eqd/core/params.hpp"
#include "yaml_read.hpp"

namespace eqd::config::detail {

namespace mb = eqd::io::modbus;

inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr Bound kAny{};
inline constexpr Bound kNonNeg{0.0, kInf, false};
inline constexpr Bound kPositive{0.0, kInf, true};
// Physical bounds (eqd::core::kMax*): the same as core::validate() applies to the API and state file.
inline constexpr Bound kPower{-eqd::core::kMaxPower_W, eqd::core::kMaxPower_W};
inline constexpr Bound kPowerMagnitude{0.0, eqd::core::kMaxPower_W};
inline constexpr Bound kPowerPositive{0.0, eqd::core::kMaxPower_W, true};
inline constexpr Bound kVoltage{0.0, eqd::core::kMaxVoltage_V};
inline constexpr Bound kVoltagePositive{0.0, eqd::core::kMaxVoltage_V, true};
inline constexpr Bound kSignedVoltage{-eqd::core::kMaxVoltage_V, eqd::core::kMaxVoltage_V};
inline constexpr Bound kCurrentMagnitude{0.0, eqd::core::kMaxCurrent_A};
inline constexpr Bound kCurrentPositive{0.0, eqd::core::kMaxCurrent_A, true};

// Names appear in channel names ("cab1/3") and in --set paths ("buses.main.tau_s"): keep them free
// of '/', '.', spaces and YAML-special characters. Null when `s` is a name, else what is expected.
const char* check_name(const std::string& s);

// A channel reference CONTROLLER/N (N from 1). Null when `s` is one, else what is expected.
const char* check_channel_ref(const std::string& s);

// controllers: a list; each entry's transport is read first, since it decides which keys exist.
Key<Config> controllers_key();

}  // namespace eqd::config::detail
