#pragma once
/// @file codec.hpp
/// Frames and signals: bit packing (Intel/Motorola, signed, scaled), and a Codec compiled from a
/// SignalMap for one node id that turns status frames into core::Sample and core::Command into
/// command frames (and, for simulated controllers, the reverse). Pure and allocation-free after
/// construction; a Codec is immutable, so any thread may use a shared one.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "eqd/core/sample.hpp"
#include "eqd/io/can/signal_map.hpp"

namespace eqd::io::can {

/// One CAN or CAN FD frame, transport-neutral (the socket layer converts to the kernel's
/// struct can_frame / canfd_frame). Trivially copyable.
struct Frame {
  std::uint32_t id = 0;  ///< 11 or 29 bits, without flags
  bool extended = false;
  bool fd = false;
  bool error = false;    ///< an error frame (CAN_ERR_FLAG): id holds the CAN_ERR_* class bits
  std::uint8_t len = 0;  ///< data bytes
  std::uint8_t data[64] = {};
};

/// Outcome of encoding or decoding one value.
enum class CodecStatus : std::uint8_t {
  ok = 0,
  out_of_range,   ///< the value does not fit the signal (never wrapped or clamped)
  not_finite,     ///< NaN or infinite
  bad_value,      ///< a raw code with no meaning (state code, enable not 0/1)
  short_frame,    ///< the frame is shorter than the map says
  wrong_channel,  ///< multiplexed channel number outside 1..channel_count
};
/// Short text of a status. Any thread.
const char* to_string(CodecStatus s) noexcept;

/// Raw bits of `s` in `data` (at least the frame length the map says). Sign-extended when signed
/// (returned as the two's complement bit pattern in 64 bits). Any thread.
[[nodiscard]] std::uint64_t extract_raw(const Signal& s, const std::uint8_t* data) noexcept;
/// Writes the low `s.length` bits of `raw` at the signal's place; other bits untouched. Any thread.
void insert_raw(const Signal& s, std::uint64_t raw, std::uint8_t* data) noexcept;
/// Physical value of `s` in `data` (raw * scale + offset). Any thread.
[[nodiscard]] double decode_signal(const Signal& s, const std::uint8_t* data) noexcept;
/// Stores `physical` (rounded to the nearest raw step); out_of_range or not_finite leave data as is.
[[nodiscard]] CodecStatus encode_signal(const Signal& s, double physical, std::uint8_t* data) noexcept;
/// True when `s` holds its "not available" raw value, which forecast_power uses for "nothing
/// announced": the most negative value of a signed signal (e.g. 0x80000000 in 32 bits), all ones for
/// an unsigned one. Any thread.
[[nodiscard]] bool is_not_available(const Signal& s, const std::uint8_t* data) noexcept;
/// Writes that "not available" raw value. Any thread.
void insert_not_available(const Signal& s, std::uint8_t* data) noexcept;

/// Which frame of a controller a received frame is.
struct FrameMatch {
  enum class Kind : std::uint8_t { none, status, command, heartbeat, forecast, program } kind = Kind::none;
  std::size_t channel = 0;  ///< 0-based, for per-id multiplexing (status/command); else decided by decode
};

/// What a command frame asks (decoded by a simulated controller).
struct DecodedCommand {
  std::size_t channel = 0;  ///< 0-based
  bool equalize = false;
  double setpoint_W = 0.0;
  std::uint32_t lease_ms = 0;
};

/// What a controller reports for one channel, to encode a status frame (simulated controllers).
struct StatusValues {
  double voltage_V = 0.0;
  double current_A = 0.0;
  double power_W = 0.0;
  std::uint16_t state_code = 0;
  std::uint16_t fault_code = 0;
  bool equalizing = false;
  std::uint32_t counter = 0;
  /// Announced forecast (W); NaN = none (sent as the "not available" raw value). Goes into the status
  /// frame when the map places forecast_power there; else see encode_forecast().
  double forecast_W = std::numeric_limits<double>::quiet_NaN();
  /// Program position (Sample::kNoStep / kNoIndex = not reported, sent as "not available"). Goes into
  /// the status frame when the map places step_index / cycle_index there; else see encode_program().
  std::uint16_t step_index = core::Sample::kNoStep;
  std::uint32_t cycle_index = core::Sample::kNoIndex;
};

/// A program position as decoded from a status or program frame: the values (Sample::kNoStep /
/// kNoIndex = not reported: absent, "not available" or refused) and, per field, whether it was
/// refused: out_of_range (negative, not whole, above 65534 / 4294967294) or not_finite.
struct ProgramPosition {
  std::uint16_t step_index = core::Sample::kNoStep;
  std::uint32_t cycle_index = core::Sample::kNoIndex;
  CodecStatus step = CodecStatus::ok;
  CodecStatus cycle = CodecStatus::ok;
};

/// A SignalMap compiled for one node id. Construct at start-up (throws std::invalid_argument naming
/// every problem of validate_map()/validate_ids()); then every method is noexcept, allocation-free
/// and const: thread-safe.
class Codec {
 public:
  Codec(const SignalMap& map, std::uint32_t node_id);
  Codec(const Codec&) = delete;  // holds pointers into its own copy of the map
  Codec& operator=(const Codec&) = delete;

  /// Classifies a received frame by identifier (data not checked).
  [[nodiscard]] FrameMatch match(const Frame& f) const noexcept;
  /// Decodes a status frame into `out` (receive_time_ns left 0) and its 0-based channel. On an
  /// error, `field` names the signal and `out` is unchanged except valid = false.
  [[nodiscard]] CodecStatus decode_status(const Frame& f, core::Sample& out, std::size_t& channel,
                                          const char*& field) const noexcept;
  /// Same; when the status frame carries forecast_power, out.forecast_W is its value (NaN for "not
  /// available") and `forecast` says whether it was refused (out_of_range beyond kForecastAbsMax_W:
  /// out.forecast_W NaN, the sample itself unaffected). Otherwise (or for an invalid sample) NaN.
  [[nodiscard]] CodecStatus decode_status(const Frame& f, core::Sample& out, std::size_t& channel, const char*& field,
                                          CodecStatus& forecast) const noexcept;
  /// Same; when the status frame carries step_index / cycle_index, out has their values (not reported
  /// for "not available" or a refused value) and `program` says which were refused. Otherwise (or for
  /// an invalid sample) not reported.
  [[nodiscard]] CodecStatus decode_status(const Frame& f, core::Sample& out, std::size_t& channel, const char*& field,
                                          CodecStatus& forecast, ProgramPosition& program) const noexcept;
  /// Decodes a program frame: its 0-based channel and position. ok: the frame is usable (a refused
  /// value is in out.step / out.cycle, that field not reported); short_frame / wrong_channel /
  /// bad_value: the frame itself is unusable (field names the signal).
  [[nodiscard]] CodecStatus decode_program(const Frame& f, std::size_t& channel, ProgramPosition& out,
                                           const char*& field) const noexcept;
  /// Decodes a forecast frame: its 0-based channel and forecast_W (NaN = "not available"). ok;
  /// out_of_range: a value beyond kForecastAbsMax_W, refused (forecast_W NaN, channel valid);
  /// short_frame / wrong_channel / bad_value: the frame itself is unusable (field names the signal).
  [[nodiscard]] CodecStatus decode_forecast(const Frame& f, std::size_t& channel, float& forecast_W,
                                            const char*& field) const noexcept;
  /// Encodes a command for channel k (0-based). `field` names the signal on error; nothing is sent then.
  [[nodiscard]] CodecStatus encode_command(std::size_t k, const core::Command& cmd, Frame& out,
                                           const char*& field) const noexcept;
  /// Encodes the supervisor heartbeat. False when the map has no heartbeat frame.
  [[nodiscard]] bool encode_heartbeat(std::uint32_t counter, Frame& out) const noexcept;

  /// Simulated controller side: status frame of channel k.
  [[nodiscard]] CodecStatus encode_status(std::size_t k, const StatusValues& v, Frame& out,
                                          const char*& field) const noexcept;
  /// Simulated controller side: forecast frame of channel k (NaN = "not available"). out_of_range for a
  /// value the signal cannot carry (or that would read as "not available"). False-y status when the
  /// map has no forecast frame (bad_value).
  [[nodiscard]] CodecStatus encode_forecast(std::size_t k, double forecast_W, Frame& out,
                                            const char*& field) const noexcept;
  /// Simulated controller side: program frame of channel k (kNoStep / kNoIndex = "not available").
  /// out_of_range for a value the signal cannot carry (or that would read as "not available");
  /// bad_value when the map has no program frame.
  [[nodiscard]] CodecStatus encode_program(std::size_t k, std::uint16_t step_index, std::uint32_t cycle_index,
                                           Frame& out, const char*& field) const noexcept;
  /// Simulated controller side: decode a command frame (validated: enable 0/1, channel in range).
  [[nodiscard]] CodecStatus decode_command(const Frame& f, DecodedCommand& out, const char*& field) const noexcept;
  /// Simulated controller side: heartbeat counter of a heartbeat frame.
  [[nodiscard]] CodecStatus decode_heartbeat(const Frame& f, std::uint32_t& counter) const noexcept;

  [[nodiscard]] const SignalMap& map() const noexcept { return map_; }
  [[nodiscard]] std::uint32_t node_id() const noexcept { return node_id_; }
  /// True when the map has a forecast frame (forecast_power sent on its own).
  [[nodiscard]] bool has_forecast_frame() const noexcept { return forecast_.frame != nullptr; }
  /// True when the status frame itself carries forecast_power.
  [[nodiscard]] bool forecast_in_status() const noexcept { return s_forecast_ != nullptr; }
  /// True when the map has a program frame (step_index / cycle_index sent on their own).
  [[nodiscard]] bool has_program_frame() const noexcept { return program_.frame != nullptr; }
  /// True when the status frame itself carries step_index or cycle_index.
  [[nodiscard]] bool program_in_status() const noexcept { return s_step_ != nullptr || s_cycle_ != nullptr; }
  /// True if any frame of the map is CAN FD.
  [[nodiscard]] bool uses_fd() const noexcept { return uses_fd_; }
  /// Every identifier this codec sends or receives (for kernel receive filters).
  [[nodiscard]] const std::vector<FrameId>& ids() const noexcept { return ids_; }

 private:
  struct Compiled {
    const FrameLayout* frame = nullptr;
    std::uint32_t base_id = 0;  ///< id (+ node id)
  };
  const Signal* sig(const FrameLayout* f, const char* name) const noexcept;
  [[nodiscard]] bool id_of(const Compiled& c, const Frame& f, std::size_t& channel) const noexcept;
  void start_frame(const Compiled& c, std::size_t k, Frame& out) const noexcept;

  SignalMap map_;
  std::uint32_t node_id_ = 0;
  Compiled status_, command_, heartbeat_, forecast_, program_;
  // Signals resolved once so that the I/O path does no name lookups.
  const Signal* s_channel_ = nullptr;
  const Signal* s_voltage_ = nullptr;
  const Signal* s_current_ = nullptr;
  const Signal* s_power_ = nullptr;
  const Signal* s_state_ = nullptr;
  const Signal* s_fault_ = nullptr;
  const Signal* s_eq_ = nullptr;
  const Signal* s_counter_ = nullptr;
  const Signal* s_forecast_ = nullptr;  ///< forecast_power in the status frame
  const Signal* f_channel_ = nullptr;   ///< forecast frame
  const Signal* f_forecast_ = nullptr;
  const Signal* s_step_ = nullptr;  ///< step_index / cycle_index in the status frame
  const Signal* s_cycle_ = nullptr;
  const Signal* p_channel_ = nullptr;  ///< program frame
  const Signal* p_step_ = nullptr;
  const Signal* p_cycle_ = nullptr;
  const Signal* c_channel_ = nullptr;
  const Signal* c_enable_ = nullptr;
  const Signal* c_setpoint_ = nullptr;
  const Signal* c_lease_ = nullptr;
  const Signal* h_counter_ = nullptr;
  bool uses_fd_ = false;
  std::vector<FrameId> ids_;
};

}  // namespace eqd::io::can
