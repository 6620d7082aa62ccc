#pragma once
/// @file register_map.hpp
/// Data model of a Modbus register map (a "profile"): where a controller exposes samples and takes
/// commands. Plain data, filled from YAML by eqd::config or from default_profile(); validated by
/// validate_map(). Thread-safety: immutable after construction; share freely as const.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace eqd::io::modbus {

/// Modbus register table a field lives in. Input registers are read-only (function 0x04); holding
/// registers are read (0x03) and written (0x10).
enum class Table : std::uint8_t { input, holding };
/// Wire representation of a value. Within each 16-bit register the byte order is always Modbus
/// big-endian; WordOrder only orders the registers of 32-bit types.
enum class DataType : std::uint8_t { u16, i16, u32, i32, f32 };
/// Order of the two 16-bit words of a 32-bit value: big = high word at the lower address ("ABCD").
enum class WordOrder : std::uint8_t { big, little };

/// Modbus limit on registers in one read request (function 0x03/0x04, spec: 125).
inline constexpr std::uint16_t kMaxReadRegisters = 125;
/// Modbus limit on registers in one write-multiple request (function 0x10, spec: 123).
inline constexpr std::uint16_t kMaxWriteRegisters = 123;
/// Version of the eqd default profile served in the profile_version register.
inline constexpr std::uint16_t kDefaultProfileVersion = 1;

/// Bits of the default profile's capabilities register (device block). Any thread (constants).
namespace capability {
inline constexpr std::uint16_t kLease = 1U << 0;          ///< honours cmd_lease
inline constexpr std::uint16_t kHeartbeat = 1U << 1;      ///< supervisor heartbeat watchdog
inline constexpr std::uint16_t kMeasuredPower = 1U << 2;  ///< power register is measured, not V*I
inline constexpr std::uint16_t kEqFlag = 1U << 3;         ///< eq_flag register present
inline constexpr std::uint16_t kSampleCounter = 1U << 4;  ///< sample_counter register present
/// forecast_power block present (announced schedules: the power one forecast horizon ahead). eqd reads
/// that block only from a controller that sets this bit.
inline constexpr std::uint16_t kForecast = 1U << 5;
/// step_index/cycle_index block present (program position). eqd reads that block only from a
/// controller that sets this bit.
inline constexpr std::uint16_t kProgram = 1U << 6;
}  // namespace capability

/// First register of the default profile's forecast_power block (input registers, f32, stride 2):
/// channel k at 50000 + 2k. Placed beyond the status block of the largest controller that may offer it
/// (kDefaultForecastMaxChannels: status block 100..49251), so the two never collide.
inline constexpr std::uint16_t kDefaultForecastBase = 50000;
/// Largest channel count for which the default profile defines the forecast_power block (4096 channels:
/// forecast block 50000..58191). default_profile() of more channels has no forecast field.
inline constexpr std::uint16_t kDefaultForecastMaxChannels = 4096;

/// First register of the default profile's program block (input registers, stride 3): channel k's
/// step_index (u16) at 59000 + 3k, its cycle_index (u32, big word order) at 59001 + 3k. Beyond the
/// forecast block of its largest controller (50000..58191).
inline constexpr std::uint16_t kDefaultProgramBase = 59000;
/// Largest channel count for which the default profile defines the program block (2048 channels:
/// 59000..65143, the end of the register space). default_profile() of more channels has none.
inline constexpr std::uint16_t kDefaultProgramMaxChannels = 2048;

/// "input" / "holding". Any thread.
const char* to_string(Table t) noexcept;
/// "u16", "i16", "u32", "i32", "f32". Any thread.
const char* to_string(DataType t) noexcept;
/// "big" / "little". Any thread.
const char* to_string(WordOrder w) noexcept;

/// One value in the map. For per-channel fields the register of channel k is address + k * stride.
/// Engineering value = raw * scale + offset (reads); raw = (value - offset) / scale (writes).
struct Field {
  Table table = Table::input;
  std::uint16_t address = 0;
  DataType type = DataType::u16;
  WordOrder word_order = WordOrder::big;
  double scale = 1.0;
  double offset = 0.0;
  std::uint16_t stride = 0;  ///< 0 for device-level fields
};

/// Number of 16-bit registers a value of this type occupies (1 or 2).
constexpr std::uint16_t register_count(DataType t) noexcept {
  return (t == DataType::u32 || t == DataType::i32 || t == DataType::f32) ? 2 : 1;
}

/// Physical plausibility limits: a value outside marks the sample invalid (never fed to the law).
struct PlausibleRange {
  double voltage_min_V = -1.0;
  double voltage_max_V = 1500.0;
  double current_abs_max_A = 5000.0;
  double power_abs_max_W = 1.0e6;
};

/// A complete map. Optional fields may be absent on real devices.
struct RegisterMap {
  std::string name = "eqd-default";  ///< profile name (e.g. "eqd-default" or the YAML map's name)
  std::uint16_t channel_count = 16;  ///< channels exposed by one controller (unit)

  // Device block (optional on third-party devices).
  std::optional<Field> profile_version;
  /// Value the profile_version register must read; 0 = not checked. default_profile():
  /// kDefaultProfileVersion. A YAML map that names profile_version must give it
  /// (maps.NAME.expected_profile_version): a version that is read but never compared protects nothing.
  /// The rig plan hands it to the link (PollerConfig::expected_profile_version), which refuses a
  /// controller reporting another version.
  std::uint16_t expected_profile_version = 0;
  std::optional<Field> device_channel_count;
  std::optional<Field> capabilities;
  std::optional<Field> heartbeat_timeout;  ///< ms after which the controller releases its buffers

  // Per-channel status block.
  Field voltage;
  Field current;
  std::optional<Field> power;  ///< absent: power = voltage * current
  Field state;
  std::optional<Field> fault_code;
  std::optional<Field> eq_flag;  ///< absent: equalizing = (state == equalizing code)
  std::optional<Field> sample_counter;
  /// Announced schedule: the battery-side power (W, + = charging) the controller expects the channel
  /// to draw one forecast horizon from now (core::Sample::forecast_W). Optional and never makes a sample
  /// invalid: "not available" (NaN; integer sentinels, see is_not_available()) decodes as NaN, an
  /// infinite or implausible value (|W| > range.power_abs_max_W) as NaN plus a reported error.
  std::optional<Field> forecast_power;
  /// Non-zero: forecast_power is read only from a controller whose capabilities register has this
  /// bit set (the default profile: capability::kForecast), see with_capabilities(). 0: read whenever
  /// the map names forecast_power (custom YAML maps).
  std::uint16_t forecast_capability = 0;
  /// Program position: the step of the channel's running test program (core::Sample::step_index) and
  /// the pass it belongs to (cycle_index), as the controller numbers them. Optional and never make a
  /// sample invalid: "not available" decodes as not reported (Sample::kNoStep / kNoIndex), a value the
  /// sample field cannot hold (negative, not whole, above 65534 / 4294967294, not finite) as not
  /// reported plus a reported error.
  std::optional<Field> step_index;
  std::optional<Field> cycle_index;
  /// Like forecast_capability, for step_index and cycle_index (the default profile:
  /// capability::kProgram).
  std::uint16_t program_capability = 0;

  /// Raw state code -> eqd::core::ChannelState value (index = raw code); codes beyond: fault.
  std::vector<std::uint8_t> state_codes = {0, 1, 2, 3, 4};

  // Per-channel command block (holding registers). Written together when contiguous.
  Field cmd_enable;                ///< 1 = equalize (working condition simulation step), 0 = stop
  Field cmd_setpoint;              ///< setpoint_W
  std::optional<Field> cmd_lease;  ///< lease_ms; absent: the device has no lease

  // Supervisor heartbeat (holding register, device level).
  std::optional<Field> heartbeat;

  PlausibleRange range{};
};

/// The eqd default channel controller profile (docs/modbus-profile.md), version 1, for
/// `channel_count` channels; with the forecast_power block (gated by capability::kForecast) when
/// channel_count <= kDefaultForecastMaxChannels, and the program block (step_index, cycle_index, gated
/// by capability::kProgram) when channel_count <= kDefaultProgramMaxChannels. Any thread (pure).
RegisterMap default_profile(std::uint16_t channel_count = 16);

/// The map as eqd reads it from a controller whose capabilities register reads `capabilities`
/// (nullopt: not read, or the map has none): a capability-gated forecast_power (step_index and
/// cycle_index) is kept when its bit is set and dropped otherwise; the result has no gated field left
/// (forecast_capability and program_capability 0). Until then
/// plan_status_reads() and decode_sample() ignore a gated field. Any thread (pure).
RegisterMap with_capabilities(const RegisterMap& map, std::optional<std::uint16_t> capabilities);

/// Every problem of a map, one message each naming the field(s) and addresses concerned; empty when
/// the map is usable. Checks: overlaps within each table (over all channels), address overflow with
/// channel_count * stride, fields wider than one request, scale == 0 or non-finite scale/offset,
/// command and heartbeat fields in the holding table, strides narrower than a field, empty
/// state_codes, range sanity, an expected_profile_version without a profile_version field, a forecast_power of an
/// unsigned type without a negative offset (it could not carry a discharge) or gated by a capability the map cannot
/// read, step_index/cycle_index gated by a capability the map cannot read. Any thread (pure).
std::vector<std::string> validate_map(const RegisterMap& map);

}  // namespace eqd::io::modbus
