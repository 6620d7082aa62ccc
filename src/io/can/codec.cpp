/// @file codec.cpp
/// Bit packing and the compiled per-node codec (see codec.hpp).

#include "eqd/io/can/codec.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace eqd::io::can {

const char* to_string(CodecStatus s) noexcept {
  switch (s) {
    case CodecStatus::ok:
      return "ok";
    case CodecStatus::out_of_range:
      return "out of range";
    case CodecStatus::not_finite:
      return "not finite";
    case CodecStatus::bad_value:
      return "bad value";
    case CodecStatus::short_frame:
      return "short frame";
    case CodecStatus::wrong_channel:
      return "wrong channel";
  }
  return "?";
}

namespace {

inline bool get_bit(const std::uint8_t* d, unsigned pos) noexcept { return ((d[pos >> 3] >> (pos & 7)) & 1U) != 0; }
inline void put_bit(std::uint8_t* d, unsigned pos, bool v) noexcept {
  const auto m = static_cast<std::uint8_t>(1U << (pos & 7));
  d[pos >> 3] = static_cast<std::uint8_t>(v ? (d[pos >> 3] | m) : (d[pos >> 3] & ~m));
}

}  // namespace

std::uint64_t extract_raw(const Signal& s, const std::uint8_t* data) noexcept {
  std::uint64_t raw = 0;
  if (s.order == ByteOrder::little) {
    // Whole-byte fast path for byte-aligned little-endian signals (the common case).
    if ((s.start_bit & 7) == 0 && (s.length & 7) == 0) {
      const unsigned b0 = s.start_bit >> 3;
      for (unsigned i = s.length >> 3; i-- > 0;) raw = (raw << 8) | data[b0 + i];
    } else {
      for (unsigned i = 0; i < s.length; ++i)
        if (get_bit(data, s.start_bit + i)) raw |= std::uint64_t{1} << i;
    }
  } else {
    unsigned pos = s.start_bit;
    for (unsigned i = 0; i < s.length; ++i) {
      raw = (raw << 1) | (get_bit(data, pos) ? 1U : 0U);
      pos = (pos % 8 == 0) ? pos + 15 : pos - 1;
    }
  }
  if (s.is_signed && s.length < 64 && ((raw >> (s.length - 1)) & 1U) != 0) raw |= ~std::uint64_t{0} << s.length;
  return raw;
}

void insert_raw(const Signal& s, std::uint64_t raw, std::uint8_t* data) noexcept {
  if (s.order == ByteOrder::little) {
    for (unsigned i = 0; i < s.length; ++i) put_bit(data, s.start_bit + i, ((raw >> i) & 1U) != 0);
  } else {
    unsigned pos = s.start_bit;
    for (unsigned i = s.length; i-- > 0;) {
      put_bit(data, pos, ((raw >> i) & 1U) != 0);
      pos = (pos % 8 == 0) ? pos + 15 : pos - 1;
    }
  }
}

double decode_signal(const Signal& s, const std::uint8_t* data) noexcept {
  const std::uint64_t raw = extract_raw(s, data);
  const double r = s.is_signed ? static_cast<double>(static_cast<std::int64_t>(raw)) : static_cast<double>(raw);
  return r * s.scale + s.offset;
}

CodecStatus encode_signal(const Signal& s, double physical, std::uint8_t* data) noexcept {
  if (!std::isfinite(physical)) return CodecStatus::not_finite;
  const double r = std::nearbyint((physical - s.offset) / s.scale);
  if (!std::isfinite(r)) return CodecStatus::not_finite;
  const double lo = s.is_signed ? -std::ldexp(1.0, s.length - 1) : 0.0;
  const double hi = s.is_signed ? std::ldexp(1.0, s.length - 1) - 1.0 : std::ldexp(1.0, s.length) - 1.0;
  if (r < lo || r > hi) return CodecStatus::out_of_range;
  const std::uint64_t raw =
      s.is_signed ? static_cast<std::uint64_t>(static_cast<std::int64_t>(r)) : static_cast<std::uint64_t>(r);
  insert_raw(s, raw, data);
  return CodecStatus::ok;
}

bool is_not_available(const Signal& s, const std::uint8_t* data) noexcept {
  if (s.length < 1 || s.length > 64) return false;
  const std::uint64_t raw = extract_raw(s, data);  // sign-extended when signed
  if (s.is_signed) return raw == (~std::uint64_t{0} << (s.length - 1));
  return raw == (s.length >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << s.length) - 1);
}

void insert_not_available(const Signal& s, std::uint8_t* data) noexcept {
  if (s.length < 1 || s.length > 64) return;
  insert_raw(s, s.is_signed ? std::uint64_t{1} << (s.length - 1) : ~std::uint64_t{0}, data);
}

namespace {

// An announced forecast: "not available" -> NaN (ok); implausible -> NaN and out_of_range.
CodecStatus read_forecast(const Signal& s, const std::uint8_t* data, float& out) noexcept {
  out = std::numeric_limits<float>::quiet_NaN();
  if (is_not_available(s, data)) return CodecStatus::ok;
  const double w = decode_signal(s, data);
  if (!std::isfinite(w)) return CodecStatus::not_finite;
  if (std::fabs(w) > kForecastAbsMax_W) return CodecStatus::out_of_range;
  out = static_cast<float>(w);
  return CodecStatus::ok;
}

// The controller side of it: NaN -> "not available"; a value that would read as such is refused.
CodecStatus write_forecast(const Signal& s, double w, std::uint8_t* data) noexcept {
  if (std::isnan(w)) {
    insert_not_available(s, data);
    return CodecStatus::ok;
  }
  const CodecStatus st = encode_signal(s, w, data);
  if (st != CodecStatus::ok) return st;
  return is_not_available(s, data) ? CodecStatus::out_of_range : CodecStatus::ok;
}

// A program position signal: "not available" -> not reported (ok); a value the sample's field cannot
// hold (negative, not whole, above `max`) -> not reported and out_of_range (not_finite).
template <class T>
CodecStatus read_index(const Signal* s, const std::uint8_t* data, T& out) noexcept {
  constexpr T kNone = std::numeric_limits<T>::max();  // Sample::kNoStep / kNoIndex
  out = kNone;
  if (s == nullptr || is_not_available(*s, data)) return CodecStatus::ok;
  const double v = decode_signal(*s, data);
  if (!std::isfinite(v)) return CodecStatus::not_finite;
  if (v < 0.0 || v > static_cast<double>(kNone) - 1.0 || v != std::floor(v)) return CodecStatus::out_of_range;
  out = static_cast<T>(v);
  return CodecStatus::ok;
}

// The controller side of it: the sentinel -> "not available"; a value that would read as such is refused.
template <class T>
CodecStatus write_index(const Signal* s, T v, std::uint8_t* data) noexcept {
  if (s == nullptr) return CodecStatus::ok;
  if (v == std::numeric_limits<T>::max()) {
    insert_not_available(*s, data);
    return CodecStatus::ok;
  }
  const CodecStatus st = encode_signal(*s, static_cast<double>(v), data);
  if (st != CodecStatus::ok) return st;
  return is_not_available(*s, data) ? CodecStatus::out_of_range : CodecStatus::ok;
}

}  // namespace

Codec::Codec(const SignalMap& map, std::uint32_t node_id) : map_(map), node_id_(node_id) {
  std::vector<MapIssue> issues = validate_map(map_);
  if (issues.empty()) issues = validate_ids(map_, node_id_);
  if (!issues.empty()) {
    std::string msg = "CAN map '" + map_.name + "' (node id " + std::to_string(node_id) + "):";
    for (const auto& i : issues) msg += "\n  " + i.where + ": " + i.message;
    throw std::invalid_argument(msg);
  }
  auto compile = [&](FrameRole r) {
    Compiled c;
    c.frame = map_.frame(r);
    if (c.frame != nullptr) {
      c.base_id = c.frame->id + (c.frame->add_node_id ? node_id_ : 0u);
      uses_fd_ = uses_fd_ || c.frame->fd;
    }
    return c;
  };
  status_ = compile(FrameRole::status);
  command_ = compile(FrameRole::command);
  heartbeat_ = compile(FrameRole::heartbeat);
  forecast_ = compile(FrameRole::forecast);
  program_ = compile(FrameRole::program);
  s_channel_ = sig(status_.frame, "channel");
  s_voltage_ = sig(status_.frame, "voltage");
  s_current_ = sig(status_.frame, "current");
  s_power_ = sig(status_.frame, "power");
  s_state_ = sig(status_.frame, "state");
  s_fault_ = sig(status_.frame, "fault_code");
  s_eq_ = sig(status_.frame, "eq_flag");
  s_counter_ = sig(status_.frame, "counter");
  s_forecast_ = sig(status_.frame, "forecast_power");
  f_channel_ = sig(forecast_.frame, "channel");
  f_forecast_ = sig(forecast_.frame, "forecast_power");
  s_step_ = sig(status_.frame, "step_index");
  s_cycle_ = sig(status_.frame, "cycle_index");
  p_channel_ = sig(program_.frame, "channel");
  p_step_ = sig(program_.frame, "step_index");
  p_cycle_ = sig(program_.frame, "cycle_index");
  c_channel_ = sig(command_.frame, "channel");
  c_enable_ = sig(command_.frame, "enable");
  c_setpoint_ = sig(command_.frame, "setpoint");
  c_lease_ = sig(command_.frame, "lease");
  h_counter_ = sig(heartbeat_.frame, "counter");
  ids_ = frame_ids(map_, node_id_);
}

const Signal* Codec::sig(const FrameLayout* f, const char* name) const noexcept {
  return f == nullptr ? nullptr : f->find(name);
}

bool Codec::id_of(const Compiled& c, const Frame& f, std::size_t& channel) const noexcept {
  if (c.frame == nullptr || f.error || f.extended != c.frame->extended || f.id < c.base_id) return false;
  const std::uint32_t d = f.id - c.base_id;
  if (c.frame->id_stride == 0 || c.frame->role == FrameRole::heartbeat) {
    channel = 0;
    return d == 0;
  }
  if (d % c.frame->id_stride != 0) return false;
  channel = d / c.frame->id_stride;
  return channel < map_.channel_count;
}

FrameMatch Codec::match(const Frame& f) const noexcept {
  FrameMatch m;
  if (id_of(status_, f, m.channel))
    m.kind = FrameMatch::Kind::status;
  else if (id_of(command_, f, m.channel))
    m.kind = FrameMatch::Kind::command;
  else if (id_of(heartbeat_, f, m.channel))
    m.kind = FrameMatch::Kind::heartbeat;
  else if (id_of(forecast_, f, m.channel))
    m.kind = FrameMatch::Kind::forecast;
  else if (id_of(program_, f, m.channel))
    m.kind = FrameMatch::Kind::program;
  return m;
}

CodecStatus Codec::decode_status(const Frame& f, core::Sample& out, std::size_t& channel,
                                 const char*& field) const noexcept {
  CodecStatus forecast = CodecStatus::ok;
  return decode_status(f, out, channel, field, forecast);
}

CodecStatus Codec::decode_status(const Frame& f, core::Sample& out, std::size_t& channel, const char*& field,
                                 CodecStatus& forecast) const noexcept {
  ProgramPosition program;
  return decode_status(f, out, channel, field, forecast, program);
}

CodecStatus Codec::decode_status(const Frame& f, core::Sample& out, std::size_t& channel, const char*& field,
                                 CodecStatus& forecast, ProgramPosition& program) const noexcept {
  forecast = CodecStatus::ok;
  program = ProgramPosition{};
  field = "frame";
  std::size_t k = 0;
  if (!id_of(status_, f, k)) return CodecStatus::bad_value;
  if (f.len < status_.frame->length) {
    out.valid = false;
    return CodecStatus::short_frame;
  }
  if (s_channel_ != nullptr) {
    const auto n = static_cast<std::int64_t>(extract_raw(*s_channel_, f.data));
    if (n < 1 || n > static_cast<std::int64_t>(map_.channel_count) ||
        (status_.frame->id_stride != 0 && static_cast<std::size_t>(n - 1) != k)) {
      field = "channel";
      out.valid = false;
      return CodecStatus::wrong_channel;
    }
    k = static_cast<std::size_t>(n - 1);
  }
  const auto state = static_cast<std::int64_t>(extract_raw(*s_state_, f.data));
  if (state < 0 || state > static_cast<std::int64_t>(core::ChannelState::offline)) {
    field = "state";
    out.valid = false;
    channel = k;
    return CodecStatus::bad_value;
  }
  core::Sample s{};
  s.voltage_V = decode_signal(*s_voltage_, f.data);
  s.current_A = decode_signal(*s_current_, f.data);
  s.power_W = s_power_ != nullptr ? decode_signal(*s_power_, f.data) : s.voltage_V * s.current_A;
  s.state = static_cast<core::ChannelState>(state);
  s.fault_code = s_fault_ != nullptr ? static_cast<std::uint16_t>(extract_raw(*s_fault_, f.data)) : 0;
  s.equalization_mode = s_eq_ != nullptr ? extract_raw(*s_eq_, f.data) != 0 : s.state == core::ChannelState::equalizing;
  s.sequence = s_counter_ != nullptr ? static_cast<std::uint32_t>(extract_raw(*s_counter_, f.data)) : 0;
  s.valid = std::isfinite(s.voltage_V) && std::isfinite(s.current_A) && std::isfinite(s.power_W);
  // forecast_power stays NaN unless this frame carries a good one; a refused one never touches the rest.
  if (s_forecast_ != nullptr && s.valid) forecast = read_forecast(*s_forecast_, f.data, s.forecast_W);
  // Likewise the program position, each field on its own.
  if (s.valid) {
    program.step = read_index(s_step_, f.data, program.step_index);
    program.cycle = read_index(s_cycle_, f.data, program.cycle_index);
    s.step_index = program.step_index;
    s.cycle_index = program.cycle_index;
  }
  channel = k;
  out = s;
  field = "";
  return CodecStatus::ok;
}

void Codec::start_frame(const Compiled& c, std::size_t k, Frame& out) const noexcept {
  out = Frame{};
  out.id =
      c.base_id + static_cast<std::uint32_t>(k) * (c.frame->role == FrameRole::heartbeat ? 0u : c.frame->id_stride);
  out.extended = c.frame->extended;
  out.fd = c.frame->fd;
  out.len = c.frame->length;
}

CodecStatus Codec::encode_command(std::size_t k, const core::Command& cmd, Frame& out,
                                  const char*& field) const noexcept {
  Frame f;
  start_frame(command_, k, f);
  field = "channel";
  if (k >= map_.channel_count) return CodecStatus::wrong_channel;
  if (c_channel_ != nullptr) {
    const CodecStatus st = encode_signal(*c_channel_, static_cast<double>(k + 1), f.data);
    if (st != CodecStatus::ok) return st;
  }
  field = "enable";
  CodecStatus st = encode_signal(*c_enable_, cmd.equalize ? 1.0 : 0.0, f.data);
  if (st != CodecStatus::ok) return st;
  field = "setpoint";
  st = encode_signal(*c_setpoint_, cmd.equalize ? cmd.setpoint_W : 0.0, f.data);
  if (st != CodecStatus::ok) return st;
  if (c_lease_ != nullptr) {
    field = "lease";
    st = encode_signal(*c_lease_, static_cast<double>(cmd.lease_ms), f.data);
    if (st != CodecStatus::ok) return st;
  }
  field = "";
  out = f;
  return CodecStatus::ok;
}

bool Codec::encode_heartbeat(std::uint32_t counter, Frame& out) const noexcept {
  if (heartbeat_.frame == nullptr) return false;
  start_frame(heartbeat_, 0, out);
  // The counter wraps at its width: the controller looks for a change, not a value.
  const unsigned len = h_counter_->length;
  const std::uint64_t mask = len >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << len) - 1;
  insert_raw(*h_counter_, counter & mask, out.data);
  return true;
}

CodecStatus Codec::encode_status(std::size_t k, const StatusValues& v, Frame& out, const char*& field) const noexcept {
  Frame f;
  start_frame(status_, k, f);
  struct Item {
    const Signal* s;
    double value;
    const char* name;
  };
  const Item items[] = {{s_channel_, static_cast<double>(k + 1), "channel"},
                        {s_voltage_, v.voltage_V, "voltage"},
                        {s_current_, v.current_A, "current"},
                        {s_power_, v.power_W, "power"},
                        {s_state_, static_cast<double>(v.state_code), "state"},
                        {s_fault_, static_cast<double>(v.fault_code), "fault_code"},
                        {s_eq_, v.equalizing ? 1.0 : 0.0, "eq_flag"}};
  for (const Item& it : items) {
    if (it.s == nullptr) continue;
    field = it.name;
    const CodecStatus st = encode_signal(*it.s, it.value, f.data);
    if (st != CodecStatus::ok) return st;
  }
  if (s_counter_ != nullptr) {
    const unsigned len = s_counter_->length;
    const std::uint64_t mask = len >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << len) - 1;
    insert_raw(*s_counter_, v.counter & mask, f.data);
  }
  if (s_forecast_ != nullptr) {
    field = "forecast_power";
    const CodecStatus st = write_forecast(*s_forecast_, v.forecast_W, f.data);
    if (st != CodecStatus::ok) return st;
  }
  field = "step_index";
  if (const CodecStatus st = write_index(s_step_, v.step_index, f.data); st != CodecStatus::ok) return st;
  field = "cycle_index";
  if (const CodecStatus st = write_index(s_cycle_, v.cycle_index, f.data); st != CodecStatus::ok) return st;
  field = "";
  out = f;
  return CodecStatus::ok;
}

CodecStatus Codec::decode_program(const Frame& f, std::size_t& channel, ProgramPosition& out,
                                  const char*& field) const noexcept {
  out = ProgramPosition{};
  field = "frame";
  std::size_t k = 0;
  if (!id_of(program_, f, k)) return CodecStatus::bad_value;
  if (f.len < program_.frame->length) return CodecStatus::short_frame;
  if (p_channel_ != nullptr) {
    const auto n = static_cast<std::int64_t>(extract_raw(*p_channel_, f.data));
    if (n < 1 || n > static_cast<std::int64_t>(map_.channel_count) ||
        (program_.frame->id_stride != 0 && static_cast<std::size_t>(n - 1) != k)) {
      field = "channel";
      return CodecStatus::wrong_channel;
    }
    k = static_cast<std::size_t>(n - 1);
  }
  channel = k;
  out.step = read_index(p_step_, f.data, out.step_index);
  out.cycle = read_index(p_cycle_, f.data, out.cycle_index);
  field = "";
  return CodecStatus::ok;
}

CodecStatus Codec::encode_program(std::size_t k, std::uint16_t step_index, std::uint32_t cycle_index, Frame& out,
                                  const char*& field) const noexcept {
  field = "frame";
  if (program_.frame == nullptr) return CodecStatus::bad_value;
  field = "channel";
  if (k >= map_.channel_count) return CodecStatus::wrong_channel;
  Frame f;
  start_frame(program_, k, f);
  if (p_channel_ != nullptr) {
    const CodecStatus st = encode_signal(*p_channel_, static_cast<double>(k + 1), f.data);
    if (st != CodecStatus::ok) return st;
  }
  field = "step_index";
  if (const CodecStatus st = write_index(p_step_, step_index, f.data); st != CodecStatus::ok) return st;
  field = "cycle_index";
  if (const CodecStatus st = write_index(p_cycle_, cycle_index, f.data); st != CodecStatus::ok) return st;
  field = "";
  out = f;
  return CodecStatus::ok;
}

CodecStatus Codec::decode_forecast(const Frame& f, std::size_t& channel, float& forecast_W,
                                   const char*& field) const noexcept {
  forecast_W = std::numeric_limits<float>::quiet_NaN();
  field = "frame";
  std::size_t k = 0;
  if (!id_of(forecast_, f, k)) return CodecStatus::bad_value;
  if (f.len < forecast_.frame->length) return CodecStatus::short_frame;
  if (f_channel_ != nullptr) {
    const auto n = static_cast<std::int64_t>(extract_raw(*f_channel_, f.data));
    if (n < 1 || n > static_cast<std::int64_t>(map_.channel_count) ||
        (forecast_.frame->id_stride != 0 && static_cast<std::size_t>(n - 1) != k)) {
      field = "channel";
      return CodecStatus::wrong_channel;
    }
    k = static_cast<std::size_t>(n - 1);
  }
  channel = k;
  field = "forecast_power";
  const CodecStatus st = read_forecast(*f_forecast_, f.data, forecast_W);
  if (st == CodecStatus::ok) field = "";
  return st;
}

CodecStatus Codec::encode_forecast(std::size_t k, double forecast_W, Frame& out, const char*& field) const noexcept {
  field = "frame";
  if (forecast_.frame == nullptr) return CodecStatus::bad_value;
  field = "channel";
  if (k >= map_.channel_count) return CodecStatus::wrong_channel;
  Frame f;
  start_frame(forecast_, k, f);
  if (f_channel_ != nullptr) {
    const CodecStatus st = encode_signal(*f_channel_, static_cast<double>(k + 1), f.data);
    if (st != CodecStatus::ok) return st;
  }
  field = "forecast_power";
  const CodecStatus st = write_forecast(*f_forecast_, forecast_W, f.data);
  if (st != CodecStatus::ok) return st;
  field = "";
  out = f;
  return CodecStatus::ok;
}

CodecStatus Codec::decode_command(const Frame& f, DecodedCommand& out, const char*& field) const noexcept {
  field = "frame";
  std::size_t k = 0;
  if (!id_of(command_, f, k)) return CodecStatus::bad_value;
  if (f.len < command_.frame->length) return CodecStatus::short_frame;
  if (c_channel_ != nullptr) {
    const auto n = static_cast<std::int64_t>(extract_raw(*c_channel_, f.data));
    field = "channel";
    if (n < 1 || n > static_cast<std::int64_t>(map_.channel_count) ||
        (command_.frame->id_stride != 0 && static_cast<std::size_t>(n - 1) != k))
      return CodecStatus::wrong_channel;
    k = static_cast<std::size_t>(n - 1);
  }
  field = "enable";
  const double en = decode_signal(*c_enable_, f.data);
  if (en != 0.0 && en != 1.0) return CodecStatus::bad_value;
  field = "setpoint";
  const double sp = decode_signal(*c_setpoint_, f.data);
  if (!std::isfinite(sp)) return CodecStatus::not_finite;
  double lease = 0.0;
  if (c_lease_ != nullptr) {
    field = "lease";
    lease = decode_signal(*c_lease_, f.data);
    if (!(lease >= 0.0 && lease <= 4.0e9)) return CodecStatus::out_of_range;
  }
  out.channel = k;
  out.equalize = en == 1.0;
  out.setpoint_W = out.equalize ? sp : 0.0;
  out.lease_ms = static_cast<std::uint32_t>(lease);
  field = "";
  return CodecStatus::ok;
}

CodecStatus Codec::decode_heartbeat(const Frame& f, std::uint32_t& counter) const noexcept {
  std::size_t k = 0;
  if (!id_of(heartbeat_, f, k)) return CodecStatus::bad_value;
  if (f.len < heartbeat_.frame->length) return CodecStatus::short_frame;
  counter = static_cast<std::uint32_t>(extract_raw(*h_counter_, f.data));
  return CodecStatus::ok;
}

}  // namespace eqd::io::can
