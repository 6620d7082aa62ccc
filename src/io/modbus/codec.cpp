/// @file codec.cpp
/// Field codec, read planner, sample decoding and command encoding (see codec.hpp).

#include "eqd/io/modbus/codec.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

namespace eqd::io::modbus {

const char* to_string(CodecStatus s) noexcept {
  switch (s) {
    case CodecStatus::ok:
      return "ok";
    case CodecStatus::not_finite:
      return "not finite";
    case CodecStatus::out_of_range:
      return "does not fit the data type";
    case CodecStatus::bad_scale:
      return "scale is zero or not finite";
  }
  return "?";
}

const char* to_string(SampleError e) noexcept {
  switch (e) {
    case SampleError::none:
      return "none";
    case SampleError::missing:
      return "missing";
    case SampleError::not_finite:
      return "not finite";
    case SampleError::out_of_range:
      return "out of range";
  }
  return "?";
}

namespace {

std::uint32_t join32(const Field& f, const std::uint16_t* regs) noexcept {
  const std::uint32_t hi = f.word_order == WordOrder::big ? regs[0] : regs[1];
  const std::uint32_t lo = f.word_order == WordOrder::big ? regs[1] : regs[0];
  return (hi << 16) | lo;
}

void split32(const Field& f, std::uint32_t v, std::uint16_t* out) noexcept {
  const auto hi = static_cast<std::uint16_t>(v >> 16);
  const auto lo = static_cast<std::uint16_t>(v & 0xFFFFU);
  out[0] = f.word_order == WordOrder::big ? hi : lo;
  out[1] = f.word_order == WordOrder::big ? lo : hi;
}

/// Integer raw value within [lo, hi] after rounding, or an error. Rounding (not truncation) so that
/// 0.1 W steps survive a scale of 0.1 despite binary floating point.
template <class I>
CodecStatus to_integer(double raw, I& out) noexcept {
  const double r = std::nearbyint(raw);
  if (r < static_cast<double>(std::numeric_limits<I>::min()) || r > static_cast<double>(std::numeric_limits<I>::max()))
    return CodecStatus::out_of_range;
  out = static_cast<I>(r);
  return CodecStatus::ok;
}

}  // namespace

double decode_field(const Field& f, const std::uint16_t* regs) noexcept {
  double raw = 0.0;
  switch (f.type) {
    case DataType::u16:
      raw = regs[0];
      break;
    case DataType::i16:
      raw = static_cast<std::int16_t>(regs[0]);
      break;
    case DataType::u32:
      raw = join32(f, regs);
      break;
    case DataType::i32:
      raw = static_cast<std::int32_t>(join32(f, regs));
      break;
    case DataType::f32: {
      const std::uint32_t bits = join32(f, regs);
      float v;
      std::memcpy(&v, &bits, sizeof v);
      raw = v;
      break;
    }
  }
  return raw * f.scale + f.offset;
}

bool is_not_available(const Field& f, const std::uint16_t* regs) noexcept {
  switch (f.type) {
    case DataType::u16:
      return regs[0] == 0xFFFFU;
    case DataType::i16:
      return regs[0] == 0x8000U;
    case DataType::u32:
      return join32(f, regs) == 0xFFFFFFFFU;
    case DataType::i32:
      return join32(f, regs) == 0x80000000U;
    case DataType::f32: {
      const std::uint32_t bits = join32(f, regs);
      return (bits & 0x7F800000U) == 0x7F800000U && (bits & 0x007FFFFFU) != 0;  // any NaN
    }
  }
  return false;
}

void encode_not_available(const Field& f, std::uint16_t* out) noexcept {
  switch (f.type) {
    case DataType::u16:
      out[0] = 0xFFFFU;
      return;
    case DataType::i16:
      out[0] = 0x8000U;
      return;
    case DataType::u32:
      split32(f, 0xFFFFFFFFU, out);
      return;
    case DataType::i32:
      split32(f, 0x80000000U, out);
      return;
    case DataType::f32:
      split32(f, 0x7FC00000U, out);
      return;
  }
}

CodecStatus encode_field(const Field& f, double value, std::uint16_t* out) noexcept {
  if (!std::isfinite(f.scale) || f.scale == 0.0 || !std::isfinite(f.offset)) return CodecStatus::bad_scale;
  if (!std::isfinite(value)) return CodecStatus::not_finite;
  const double raw = (value - f.offset) / f.scale;
  if (!std::isfinite(raw)) return CodecStatus::not_finite;
  switch (f.type) {
    case DataType::u16: {
      std::uint16_t v;
      if (auto s = to_integer(raw, v); s != CodecStatus::ok) return s;
      out[0] = v;
      return CodecStatus::ok;
    }
    case DataType::i16: {
      std::int16_t v;
      if (auto s = to_integer(raw, v); s != CodecStatus::ok) return s;
      out[0] = static_cast<std::uint16_t>(v);
      return CodecStatus::ok;
    }
    case DataType::u32: {
      std::uint32_t v;
      if (auto s = to_integer(raw, v); s != CodecStatus::ok) return s;
      split32(f, v, out);
      return CodecStatus::ok;
    }
    case DataType::i32: {
      std::int32_t v;
      if (auto s = to_integer(raw, v); s != CodecStatus::ok) return s;
      split32(f, static_cast<std::uint32_t>(v), out);
      return CodecStatus::ok;
    }
    case DataType::f32: {
      if (std::fabs(raw) > static_cast<double>(FLT_MAX)) return CodecStatus::out_of_range;
      const auto v = static_cast<float>(raw);
      std::uint32_t bits;
      std::memcpy(&bits, &v, sizeof bits);
      split32(f, bits, out);
      return CodecStatus::ok;
    }
  }
  return CodecStatus::out_of_range;
}

namespace {

struct Interval {
  Table table;
  std::uint32_t start;
  std::uint32_t end;  // exclusive
};

std::vector<ReadRequest> coalesce(std::vector<Interval> iv, PlanOptions opt) {
  std::sort(iv.begin(), iv.end(), [](const Interval& a, const Interval& b) {
    return a.table != b.table ? a.table < b.table : a.start < b.start;
  });
  const std::uint32_t max_count = std::clamp<std::uint32_t>(opt.max_count, 2, kMaxReadRegisters);
  std::vector<ReadRequest> out;
  bool open = false;
  Interval cur{};
  auto emit = [&] {
    out.push_back({cur.table, static_cast<std::uint16_t>(cur.start), static_cast<std::uint16_t>(cur.end - cur.start)});
  };
  for (const Interval& i : iv) {
    if (open && i.table == cur.table && i.start <= cur.end + opt.max_gap &&
        std::max(cur.end, i.end) - cur.start <= max_count) {
      cur.end = std::max(cur.end, i.end);
      continue;
    }
    if (open) emit();
    cur = i;
    open = true;
  }
  if (open) emit();
  return out;
}

void add_channel_field(std::vector<Interval>& iv, const Field& f, std::size_t channels) {
  for (std::size_t k = 0; k < channels; ++k) {
    const std::uint32_t a = channel_address(f, k);
    const std::uint32_t e = a + register_count(f.type);
    if (e > 0x10000U) continue;  // validate_map reports the overflow; never read a wrapped address
    iv.push_back({f.table, a, e});
  }
}

}  // namespace

std::vector<ReadRequest> plan_status_reads(const RegisterMap& map, PlanOptions opt) {
  std::vector<Interval> iv;
  const std::size_t n = map.channel_count;
  add_channel_field(iv, map.voltage, n);
  add_channel_field(iv, map.current, n);
  add_channel_field(iv, map.state, n);
  for (const auto* f : {&map.power, &map.fault_code, &map.eq_flag, &map.sample_counter})
    if (*f) add_channel_field(iv, **f, n);
  // Gated by a capability bit: only once the controller said it has it (with_capabilities()).
  if (map.forecast_power && map.forecast_capability == 0) add_channel_field(iv, *map.forecast_power, n);
  if (map.program_capability == 0) {
    if (map.step_index && map.cycle_index) {
      // A channel's step and cycle describe one position: where their registers touch (the default
      // profile: 3 registers per channel), read them as one unit so that a request boundary never
      // pairs a step with the cycle of another poll instant.
      const Field& s = *map.step_index;
      const Field& c = *map.cycle_index;
      for (std::size_t k = 0; k < n; ++k) {
        const std::uint32_t sa = channel_address(s, k), se = sa + register_count(s.type);
        const std::uint32_t ca = channel_address(c, k), ce = ca + register_count(c.type);
        if (s.table == c.table && (se == ca || ce == sa) && std::max(se, ce) <= 0x10000U) {
          iv.push_back({s.table, std::min(sa, ca), std::max(se, ce)});
        } else {
          if (se <= 0x10000U) iv.push_back({s.table, sa, se});
          if (ce <= 0x10000U) iv.push_back({c.table, ca, ce});
        }
      }
    } else {
      for (const auto* f : {&map.step_index, &map.cycle_index})
        if (*f) add_channel_field(iv, **f, n);
    }
  }
  return coalesce(std::move(iv), opt);
}

std::vector<ReadRequest> plan_device_reads(const RegisterMap& map, PlanOptions opt) {
  std::vector<Interval> iv;
  for (const auto* f : {&map.profile_version, &map.device_channel_count, &map.capabilities, &map.heartbeat_timeout})
    if (*f) add_channel_field(iv, **f, 1);
  return coalesce(std::move(iv), opt);
}

const std::uint16_t* find_registers(const std::vector<ReadBlock>& blocks, Table table, std::uint16_t address,
                                    std::uint16_t count) noexcept {
  for (const ReadBlock& b : blocks) {
    if (!b.ok || b.request.table != table) continue;
    const std::uint32_t a = b.request.address;
    if (address >= a && static_cast<std::uint32_t>(address) + count <= a + b.request.count &&
        b.registers.size() >= b.request.count)
      return b.registers.data() + (address - a);
  }
  return nullptr;
}

namespace {

/// Reads one per-channel field; false when its registers are missing.
bool read_field(const Field& f, std::size_t channel, const std::vector<ReadBlock>& blocks, double& out) noexcept {
  const std::uint32_t a = channel_address(f, channel);
  if (a + register_count(f.type) > 0x10000U) return false;
  const std::uint16_t* r = find_registers(blocks, f.table, static_cast<std::uint16_t>(a), register_count(f.type));
  if (r == nullptr) return false;
  out = decode_field(f, r);
  return true;
}

/// An optional program-position field of `channel`: false when absent, unread or "not available"
/// (not reported, no error); else `value` and, when it is not a whole number in [0, max], `error`.
bool read_index(const std::optional<Field>& opt, std::size_t channel, const std::vector<ReadBlock>& blocks, double max,
                double& value, SampleError& error) noexcept {
  if (!opt) return false;
  const Field& f = *opt;
  const std::uint32_t a = channel_address(f, channel);
  const std::uint16_t n = register_count(f.type);
  if (a + n > 0x10000U) return false;
  const std::uint16_t* regs = find_registers(blocks, f.table, static_cast<std::uint16_t>(a), n);
  if (regs == nullptr || is_not_available(f, regs)) return false;
  value = decode_field(f, regs);
  if (!std::isfinite(value))
    error = SampleError::not_finite;
  else if (value < 0.0 || value > max || value != std::floor(value))
    error = SampleError::out_of_range;
  return true;
}

/// Announced schedule: optional; whatever it holds, voltage, current and power already decoded stay good.
/// Its block missing (a failed read, already counted by the poller) or "not available" means no forecast.
void decode_forecast(const RegisterMap& map, std::size_t channel, const std::vector<ReadBlock>& blocks,
                     DecodedSample& d) noexcept {
  core::Sample& s = d.sample;
  s.forecast_W = std::numeric_limits<float>::quiet_NaN();
  if (!map.forecast_power || map.forecast_capability != 0) return;
  const Field& f = *map.forecast_power;
  const std::uint32_t a = channel_address(f, channel);
  const std::uint16_t n = register_count(f.type);
  const std::uint16_t* regs =
      a + n <= 0x10000U ? find_registers(blocks, f.table, static_cast<std::uint16_t>(a), n) : nullptr;
  if (regs == nullptr || is_not_available(f, regs)) return;
  const double w = decode_field(f, regs);
  d.forecast_raw_W = w;
  if (!std::isfinite(w))
    d.forecast_error = SampleError::not_finite;
  else if (std::fabs(w) > map.range.power_abs_max_W || std::fabs(w) > static_cast<double>(FLT_MAX))
    d.forecast_error = SampleError::out_of_range;
  else
    s.forecast_W = static_cast<float>(w);
}

/// Program position: optional like the forecast, and each field judged on its own. The largest
/// reported values stop one below the sample's "not reported" sentinels, which must stay unambiguous.
void decode_program_position(const RegisterMap& map, std::size_t channel, const std::vector<ReadBlock>& blocks,
                             DecodedSample& d) noexcept {
  core::Sample& s = d.sample;
  s.step_index = core::Sample::kNoStep;
  s.cycle_index = core::Sample::kNoIndex;
  if (map.program_capability != 0) return;
  double idx = 0.0;
  if (read_index(map.step_index, channel, blocks, core::Sample::kNoStep - 1.0, idx, d.step_error)) {
    d.step_raw = idx;
    if (d.step_error == SampleError::none) s.step_index = static_cast<std::uint16_t>(idx);
  }
  if (read_index(map.cycle_index, channel, blocks, core::Sample::kNoIndex - 1.0, idx, d.cycle_error)) {
    d.cycle_raw = idx;
    if (d.cycle_error == SampleError::none) s.cycle_index = static_cast<std::uint32_t>(idx);
  }
}

}  // namespace

DecodedSample decode_sample(const RegisterMap& map, std::size_t channel,
                            const std::vector<ReadBlock>& blocks) noexcept {
  DecodedSample d;
  core::Sample& s = d.sample;
  s.valid = false;
  auto fail = [&](SampleError e, const char* field) {
    d.error = e;
    d.field = field;
    return d;
  };
  double v = 0, i = 0, p = 0, st = 0;
  if (!read_field(map.voltage, channel, blocks, v)) return fail(SampleError::missing, "voltage");
  if (!read_field(map.current, channel, blocks, i)) return fail(SampleError::missing, "current");
  if (!read_field(map.state, channel, blocks, st)) return fail(SampleError::missing, "state");
  if (map.power) {
    if (!read_field(*map.power, channel, blocks, p)) return fail(SampleError::missing, "power");
  } else {
    p = v * i;
  }
  double fc = 0, eq = 0, counter = 0;
  if (map.fault_code && !read_field(*map.fault_code, channel, blocks, fc))
    return fail(SampleError::missing, "fault_code");
  if (map.eq_flag && !read_field(*map.eq_flag, channel, blocks, eq)) return fail(SampleError::missing, "eq_flag");
  if (map.sample_counter && !read_field(*map.sample_counter, channel, blocks, counter))
    return fail(SampleError::missing, "sample_counter");

  if (!std::isfinite(v)) return fail(SampleError::not_finite, "voltage");
  if (!std::isfinite(i)) return fail(SampleError::not_finite, "current");
  if (!std::isfinite(p)) return fail(SampleError::not_finite, "power");
  if (!std::isfinite(st)) return fail(SampleError::not_finite, "state");
  const PlausibleRange& r = map.range;
  if (v < r.voltage_min_V || v > r.voltage_max_V) return fail(SampleError::out_of_range, "voltage");
  if (std::fabs(i) > r.current_abs_max_A) return fail(SampleError::out_of_range, "current");
  if (std::fabs(p) > r.power_abs_max_W) return fail(SampleError::out_of_range, "power");
  // A state code must be a small non-negative integer; anything else is a garbled register.
  if (st < 0 || st > 65535 || st != std::floor(st)) return fail(SampleError::out_of_range, "state");
  const auto code = static_cast<std::size_t>(st);
  core::ChannelState state = core::ChannelState::fault;  // unknown codes: fault (never "idle" by default)
  if (code < map.state_codes.size() && map.state_codes[code] <= static_cast<std::uint8_t>(core::ChannelState::offline))
    state = static_cast<core::ChannelState>(map.state_codes[code]);
  if (map.eq_flag && !(eq == 0.0 || eq == 1.0)) return fail(SampleError::out_of_range, "eq_flag");
  if (!std::isfinite(fc) || fc < 0 || fc > 65535) return fail(SampleError::out_of_range, "fault_code");
  if (!std::isfinite(counter) || counter < 0 || counter > 4294967295.0)
    return fail(SampleError::out_of_range, "sample_counter");

  s.voltage_V = v;
  s.current_A = i;
  s.power_W = p;
  s.state = state;
  s.fault_code = static_cast<std::uint16_t>(fc);
  s.equalization_mode = map.eq_flag ? eq == 1.0 : state == core::ChannelState::equalizing;
  s.sequence = static_cast<std::uint32_t>(counter);
  s.valid = true;

  decode_forecast(map, channel, blocks, d);
  decode_program_position(map, channel, blocks, d);
  return d;
}

EncodedCommand encode_command(const RegisterMap& map, std::size_t channel, const core::Command& cmd) {
  EncodedCommand out;
  struct Part {
    const Field* field;
    const char* name;
    double value;
  };
  Part parts[3] = {
      {&map.cmd_enable, "cmd_enable", cmd.equalize ? 1.0 : 0.0},
      // A stop always carries 0 W, so a controller that applies fields one by one never follows a
      // stale setpoint after leaving equalization mode.
      {&map.cmd_setpoint, "cmd_setpoint", cmd.equalize ? cmd.setpoint_W : 0.0},
      {map.cmd_lease ? &*map.cmd_lease : nullptr, "cmd_lease", static_cast<double>(cmd.lease_ms)},
  };
  struct Encoded {
    std::uint32_t address;
    std::uint16_t regs[2];
    std::uint16_t count;
  };
  std::vector<Encoded> enc;
  for (const Part& p : parts) {
    if (p.field == nullptr) continue;
    Encoded e{};
    e.address = channel_address(*p.field, channel);
    e.count = register_count(p.field->type);
    if (e.address + e.count > 0x10000U) {
      out.status = CodecStatus::out_of_range;
      out.field = p.name;
      return out;
    }
    const CodecStatus s = encode_field(*p.field, p.value, e.regs);
    if (s != CodecStatus::ok) {
      out.status = s;
      out.field = p.name;
      return out;
    }
    enc.push_back(e);
  }
  std::sort(enc.begin(), enc.end(), [](const Encoded& a, const Encoded& b) { return a.address < b.address; });
  for (const Encoded& e : enc) {
    if (!out.writes.empty()) {
      WriteRequest& w = out.writes.back();
      if (w.address + w.values.size() == e.address && w.values.size() + e.count <= kMaxWriteRegisters) {
        w.values.insert(w.values.end(), e.regs, e.regs + e.count);
        continue;
      }
    }
    out.writes.push_back({static_cast<std::uint16_t>(e.address), std::vector<std::uint16_t>(e.regs, e.regs + e.count)});
  }
  return out;
}

}  // namespace eqd::io::modbus
