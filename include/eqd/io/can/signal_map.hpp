#pragma once
/// @file signal_map.hpp
/// A CAN signal map (eqd's "CAN profile"): which frames a controller sends and takes, and where each
/// value sits in them, DBC-like (start bit, length, byte order, signedness, scale, offset), with
/// multiplexing by channel (a `channel` signal carrying the 1-based channel number, or one frame id
/// per channel). Plain data plus pure functions; thread-safety: immutable once built, share as const.
/// The default profile is documented in docs/can-profile.md.

#include <cstdint>
#include <string>
#include <vector>

namespace eqd::io::can {

/// Byte order of a signal: Intel (little endian, start bit = LSB) or Motorola (big endian, start
/// bit = MSB in DBC's sawtooth numbering).
enum class ByteOrder : std::uint8_t { little, big };

/// One value inside a frame. raw = bits as stored; physical = raw * scale + offset.
struct Signal {
  std::string name;             ///< one of the role's signal names (see signal_names())
  std::uint16_t start_bit = 0;  ///< DBC numbering: bit b of byte B is B*8 + b (b = 0 the LSB)
  std::uint8_t length = 1;      ///< bits, 1..64
  ByteOrder order = ByteOrder::little;
  bool is_signed = false;  ///< two's complement
  double scale = 1.0;      ///< must not be 0
  double offset = 0.0;
};

/// What a frame is for. status: controller -> eqd, cyclic, per channel; command: eqd -> controller,
/// per channel; heartbeat: eqd -> controller (supervisor heartbeat); forecast: controller -> eqd, per
/// channel, at least once a second (announced schedule, optional: a controller may never send it);
/// program: controller -> eqd, per channel, on every change and at least once a second (the test
/// program's step and pass, optional).
enum class FrameRole : std::uint8_t { status, command, heartbeat, forecast, program };

/// "status" | "command" | "heartbeat" | "forecast" | "program". Any thread.
const char* to_string(FrameRole r) noexcept;

/// One frame of a map.
struct FrameLayout {
  FrameRole role = FrameRole::status;
  std::uint32_t id = 0;         ///< base identifier
  bool extended = false;        ///< 29-bit identifier (else 11-bit)
  std::uint8_t length = 8;      ///< data bytes: 0..8 classic; 12, 16, 20, 24, 32, 48, 64 need CAN FD
  bool fd = false;              ///< send/expect CAN FD frames (required when length > 8)
  bool add_node_id = true;      ///< identifier = id + node_id (+ channel offset)
  std::uint32_t id_stride = 0;  ///< per-channel identifier step (multiplexing by id); 0 = one id
  std::vector<Signal> signals;

  /// Signal by name, or nullptr. Any thread.
  [[nodiscard]] const Signal* find(const std::string& signal_name) const noexcept;
};

/// A whole profile: the frames a controller uses. Exactly one frame per role (heartbeat, forecast and
/// program optional).
struct SignalMap {
  std::string name;
  std::uint16_t channel_count = 16;  ///< channels the map describes
  std::vector<FrameLayout> frames;

  /// Frame of a role, or nullptr. Any thread.
  [[nodiscard]] const FrameLayout* frame(FrameRole role) const noexcept;
};

/// Names a frame role's signals may have (the first ones listed in `required` must be present).
struct RoleSignals {
  std::vector<const char*> required;
  std::vector<const char*> optional;
};
/// status: voltage, current, state required; channel, power, eq_flag, fault_code, counter,
/// forecast_power, step_index, cycle_index optional. command: enable, setpoint required; channel, lease
/// optional. heartbeat: counter required. forecast: forecast_power required; channel optional.
/// program: step_index, cycle_index, channel optional (validate_map wants step_index or cycle_index).
/// Any thread.
const RoleSignals& signal_names(FrameRole role);

/// Name of the built-in classic CAN profile ("eqd-default") and of its CAN FD variant.
inline constexpr const char* kDefaultCanProfile = "eqd-default";
inline constexpr const char* kDefaultCanFdProfile = "eqd-default-fd";

/// Announced forecasts (signal forecast_power, W) beyond this magnitude are implausible: refused (NaN,
/// counted), never passed on. The same bound as a Modbus map's default range.power_abs_max_W.
inline constexpr double kForecastAbsMax_W = 1.0e6;

/// The built-in classic CAN profile for `channel_count` channels (1..255), with its forecast frame
/// (0x400 + node id: channel, forecast_power) and program frame (0x500 + node id: channel,
/// step_index, cycle_index). Any thread.
SignalMap default_can_profile(std::uint16_t channel_count = 16);
/// The built-in CAN FD profile (20-byte status frame with power and 16-bit fault/counter; command,
/// heartbeat, forecast and program frames as the classic profile).
SignalMap default_can_fd_profile(std::uint16_t channel_count = 16);

/// One problem of a map. `where` is a path relative to the map in the YAML's shape, e.g.
/// "frames[0].signals[2].length" or "frames[1].id", so that the config loader can point at file:line.
struct MapIssue {
  std::string where;
  std::string message;
};

/// Checks a map on its own: roles present once, signal names known and unique, required signals,
/// forecast_power in one frame only (status or forecast) and able to carry a negative value,
/// step_index and cycle_index each in one frame only (status or program), a program frame with one,
/// lengths 1..64 (1 for eq_flag allowed), signals inside the frame, no overlapping bits, frame lengths
/// valid (FD lengths need fd), scale != 0, multiplexing (a channel signal wide enough for
/// channel_count, or id_stride > 0 when channel_count > 1), identifiers in range for node id 0.
/// Empty = valid. Any thread.
[[nodiscard]] std::vector<MapIssue> validate_map(const SignalMap& map);

/// Checks the identifiers the map uses for `node_id` (1..127 typical): each within 11 or 29 bits
/// and no two roles sharing an identifier. Empty = valid. Any thread.
[[nodiscard]] std::vector<MapIssue> validate_ids(const SignalMap& map, std::uint32_t node_id);

/// One identifier in use: (id, extended).
struct FrameId {
  std::uint32_t id = 0;
  bool extended = false;
  FrameRole role = FrameRole::status;
  friend bool operator==(const FrameId& a, const FrameId& b) noexcept {
    return a.id == b.id && a.extended == b.extended;
  }
};
/// Every identifier a controller with this map and node id uses (per channel when id_stride > 0).
[[nodiscard]] std::vector<FrameId> frame_ids(const SignalMap& map, std::uint32_t node_id);

/// Identifier of `role`'s frame for channel k (0-based) of node `node_id`. Precondition: the role exists.
[[nodiscard]] std::uint32_t frame_id(const FrameLayout& f, std::uint32_t node_id, std::size_t channel) noexcept;

}  // namespace eqd::io::can
