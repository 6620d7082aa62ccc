#pragma once
/// @file error.hpp
/// The errors of eqd's controller links, as `std::error_code`s of one category, "eqd.link" (issue #13:
/// before, a link reported an error as text in a fixed buffer, an exception or an errno counter, so
/// that nothing above io/ could tell a timeout from a refused value without parsing a message).
/// Every link (Modbus TCP/RTU, CAN, SunSpec) records each error with one of these codes: the last one
/// in LinkStats::last_error_code, a count per code in LinkStats::errors_by_code, and hands it with its
/// text to the link's error hook (the journal field LINK_ERROR=<name>). The control API's status shows
/// the name, Prometheus counts `eqd_controller_link_errors_total{code}`, and docs/faults.md says what
/// eqd does for each. Codes are stable: a new one is appended, none is renumbered or reused.
/// Thread-safety: everything here is immutable or pure; any thread.

#include <array>
#include <cstdint>
#include <functional>
#include <string_view>
#include <system_error>

namespace eqd::io {

/// What went wrong on a link. 0 is "no error" (std::error_code's convention).
enum class LinkErrc : std::uint8_t {
  connect_failed = 1,  ///< the controller could not be reached or opened (connect, serial port, CAN socket)
  link_lost,           ///< an established link broke (connection reset, bus-off, device error on a read)
  timeout,             ///< a request got no response in time, or status frames stopped arriving
  device_exception,    ///< the controller answered with a protocol exception (Modbus exception code)
  bad_response,        ///< a reply or frame that does not decode (CRC, length, device block, model chain)
  value_refused,       ///< a sample value outside the plausible range or not a number: sample invalid
  forecast_refused,    ///< an announced forecast refused (infinite, implausible, not offered): NaN, sample kept
  program_refused,     ///< a step/cycle number refused: published as not reported, sample kept
  command_refused,     ///< a command that cannot be encoded for this controller (range, resolution)
  write_failed,        ///< a command, heartbeat or release write that did not reach the controller
  device_unusable,     ///< the device is not what eqd can drive (SunSpec models missing or malformed)
};
/// How many codes there are (the last code's value); errors_by_code has one slot more (index 0 unused).
inline constexpr std::size_t kLinkErrcCount = static_cast<std::size_t>(LinkErrc::device_unusable);

/// The stable short name of a code ("timeout"), as in the journal, the API and the metrics; "" for 0
/// or a value that is not a code.
[[nodiscard]] std::string_view link_errc_name(int code) noexcept;
/// The category of LinkErrc: name "eqd.link"; message() is a sentence for each code.
[[nodiscard]] const std::error_category& link_category() noexcept;
[[nodiscard]] inline std::error_code make_error_code(LinkErrc e) noexcept {
  return {static_cast<int>(e), link_category()};
}

/// A link's error hook: called on the link's I/O thread with the channel (1-based; 0: the controller
/// as a whole), the code and the full text of each error it records. The daemon logs through it. An
/// empty code (value 0) is a notice, not an error (a SunSpec device's identity, once per link).
using LinkErrorHook = std::function<void(std::uint16_t channel, std::error_code code, const char* message)>;

}  // namespace eqd::io

template <>
struct std::is_error_code_enum<eqd::io::LinkErrc> : std::true_type {};
