#pragma once
/// @file codec.hpp
/// Pure functions between engineering values and Modbus registers: field decode/encode, the read
/// planner that coalesces a map's status fields into few requests, sample decoding from read blocks
/// and command-block encoding. No I/O, no global state: every function is safe from any thread.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "eqd/core/sample.hpp"
#include "eqd/io/modbus/register_map.hpp"

namespace eqd::io::modbus {

/// Outcome of encoding one value. Never a wrapped or clamped register value: anything that does not
/// fit is refused so that no silently wrong command reaches a battery.
enum class CodecStatus : std::uint8_t {
  ok = 0,
  not_finite,    ///< value (or value after scale/offset) is NaN or infinite
  out_of_range,  ///< raw value does not fit the data type (e.g. i16 overflow after scale)
  bad_scale,     ///< scale is 0 or not finite
};
/// Short English description ("ok", "not finite", ...). Any thread.
const char* to_string(CodecStatus s) noexcept;

/// Engineering value of `f` from its registers `regs[0..register_count(f.type))`: raw * scale + offset.
/// f32 registers holding NaN/Inf give NaN/Inf (the caller marks the sample invalid). Any thread.
[[nodiscard]] double decode_field(const Field& f, const std::uint16_t* regs) noexcept;

/// True when the registers of `f` hold its type's "not available" value, which optional fields such as
/// forecast_power use for "nothing announced": any NaN (f32), 0x8000 (i16), 0xFFFF (u16), 0x80000000
/// (i32), 0xFFFFFFFF (u32) — the SunSpec convention. Any thread.
[[nodiscard]] bool is_not_available(const Field& f, const std::uint16_t* regs) noexcept;
/// Writes that "not available" value of `f`'s type into `out[0..register_count(f.type))` (a quiet NaN
/// for f32). Any thread.
void encode_not_available(const Field& f, std::uint16_t* out) noexcept;

/// Registers for engineering value `value` of `f` into `out[0..register_count(f.type))`:
/// raw = (value - offset) / scale, rounded to nearest for integer types. `out` is untouched unless
/// the result is ok. Any thread.
[[nodiscard]] CodecStatus encode_field(const Field& f, double value, std::uint16_t* out) noexcept;

/// One read request: `count` consecutive registers of `table` starting at `address`.
struct ReadRequest {
  Table table = Table::input;
  std::uint16_t address = 0;
  std::uint16_t count = 0;
  friend bool operator==(const ReadRequest&, const ReadRequest&) = default;
};

/// Tuning of the read planner.
struct PlanOptions {
  /// Unused registers that may be read to join two ranges into one request (saves a round trip:
  /// ~100 us on loopback, milliseconds on RTU, for a few bytes more).
  std::uint16_t max_gap = 8;
  /// Registers per request; the Modbus limit is 125.
  std::uint16_t max_count = kMaxReadRegisters;
};

/// Minimal list of requests covering the per-channel status fields of all `map.channel_count`
/// channels, per table, sorted by (table, address). No field is ever split across two requests. A
/// capability-gated forecast_power is left out (plan with_capabilities(map, caps) to include it).
/// Any thread (pure).
[[nodiscard]] std::vector<ReadRequest> plan_status_reads(const RegisterMap& map, PlanOptions opt = {});
/// Same for the device block (profile_version, device_channel_count, capabilities, heartbeat_timeout).
[[nodiscard]] std::vector<ReadRequest> plan_device_reads(const RegisterMap& map, PlanOptions opt = {});

/// The registers returned for one ReadRequest in one poll cycle.
struct ReadBlock {
  ReadRequest request{};
  std::vector<std::uint16_t> registers;  ///< sized request.count
  bool ok = false;                       ///< false: the read failed (timeout, exception, link)
};

/// Pointer to `count` registers of `table` at `address` inside one ok block, or nullptr. Any thread.
[[nodiscard]] const std::uint16_t* find_registers(const std::vector<ReadBlock>& blocks, Table table,
                                                  std::uint16_t address, std::uint16_t count) noexcept;

/// Why a decoded sample is invalid.
enum class SampleError : std::uint8_t {
  none = 0,
  missing,       ///< a field's registers were not read (failed block)
  not_finite,    ///< NaN or infinite value
  out_of_range,  ///< outside map.range or an impossible state code
};
/// "none", "missing", "not finite", "out of range". Any thread.
const char* to_string(SampleError e) noexcept;

/// A decoded sample and, when invalid, why and which field.
struct DecodedSample {
  core::Sample sample{};  ///< valid == (error == none); receive_time_ns left 0 for the caller
  SampleError error = SampleError::none;
  const char* field = "";  ///< static name of the offending field ("voltage", ...)
  /// A forecast_power that was read but refused (infinite: not_finite; |W| > range.power_abs_max_W:
  /// out_of_range). The sample stays valid with forecast_W = NaN; the caller counts and reports it.
  SampleError forecast_error = SampleError::none;
  double forecast_raw_W = 0.0;  ///< the refused forecast value, for the report
  /// A step_index / cycle_index that was read but does not fit the sample's field (not finite:
  /// not_finite; negative, not whole or above the field's largest reported value: out_of_range). The
  /// sample stays valid with that field "not reported"; the caller counts and reports it.
  SampleError step_error = SampleError::none;
  SampleError cycle_error = SampleError::none;
  double step_raw = 0.0;  ///< the refused values, for the report
  double cycle_raw = 0.0;
};

/// Decode channel `channel` of `map` from `blocks`. Invalid (never a number fed to the law) when a
/// field is missing, NaN/Inf or outside map.range. forecast_power (when the map has it, ungated) never
/// invalidates the sample: missing or "not available" gives forecast_W = NaN, a refused value NaN and
/// forecast_error. step_index and cycle_index (ungated) likewise: missing or "not available" give
/// Sample::kNoStep / kNoIndex, a value that does not fit the same plus step_error / cycle_error.
/// Any thread (pure).
[[nodiscard]] DecodedSample decode_sample(const RegisterMap& map, std::size_t channel,
                                          const std::vector<ReadBlock>& blocks) noexcept;

/// One write-multiple request to holding registers.
struct WriteRequest {
  std::uint16_t address = 0;
  std::vector<std::uint16_t> values;
};

/// Result of encode_command().
struct EncodedCommand {
  CodecStatus status = CodecStatus::ok;
  const char* field = "";            ///< offending field when status != ok
  std::vector<WriteRequest> writes;  ///< one per contiguous run of command fields (one for the default profile)
};

/// Registers of the command block of `channel`: cmd_enable = equalize ? 1 : 0, cmd_setpoint =
/// equalize ? setpoint_W : 0, cmd_lease = lease_ms. Contiguous fields are merged into one write so
/// that the controller applies enable, setpoint and lease together. Any thread (pure).
[[nodiscard]] EncodedCommand encode_command(const RegisterMap& map, std::size_t channel, const core::Command& cmd);

/// Register address of a per-channel field for `channel` (address + channel * stride). Any thread.
[[nodiscard]] constexpr std::uint32_t channel_address(const Field& f, std::size_t channel) noexcept {
  return static_cast<std::uint32_t>(f.address) + static_cast<std::uint32_t>(channel) * f.stride;
}

}  // namespace eqd::io::modbus
