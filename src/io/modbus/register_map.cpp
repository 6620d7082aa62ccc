/// @file register_map.cpp
/// The eqd default profile and map validation (see register_map.hpp, docs/modbus-profile.md).

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "eqd/core/sample.hpp"
#include "eqd/io/modbus/register_map.hpp"

namespace eqd::io::modbus {

const char* to_string(Table t) noexcept { return t == Table::input ? "input" : "holding"; }

const char* to_string(DataType t) noexcept {
  switch (t) {
    case DataType::u16:
      return "u16";
    case DataType::i16:
      return "i16";
    case DataType::u32:
      return "u32";
    case DataType::i32:
      return "i32";
    case DataType::f32:
      return "f32";
  }
  return "?";
}

const char* to_string(WordOrder w) noexcept { return w == WordOrder::big ? "big" : "little"; }

namespace {
Field field(Table t, std::uint16_t address, DataType type, std::uint16_t stride = 0) {
  Field f;
  f.table = t;
  f.address = address;
  f.type = type;
  f.word_order = WordOrder::big;
  f.stride = stride;
  return f;
}
}  // namespace

RegisterMap default_profile(std::uint16_t channel_count) {
  // Layout rationale: device block at 0 so that a generic tool (mbpoll -r 0) finds the profile
  // version first; per-channel blocks start at 100 so that the device block can grow. Status stride
  // 12 (11 used) keeps 16 channels in 192 registers = 2 read requests; command stride 8 leaves room
  // for future per-channel commands without renumbering.
  constexpr std::uint16_t kStatusBase = 100, kStatusStride = 12;
  constexpr std::uint16_t kCmdBase = 100, kCmdStride = 8;
  RegisterMap m;
  m.name = "eqd-default";
  m.channel_count = channel_count;
  m.profile_version = field(Table::input, 0, DataType::u16);
  m.expected_profile_version = kDefaultProfileVersion;
  m.device_channel_count = field(Table::input, 1, DataType::u16);
  m.capabilities = field(Table::input, 2, DataType::u16);
  m.heartbeat_timeout = field(Table::input, 3, DataType::u16);

  m.voltage = field(Table::input, kStatusBase + 0, DataType::f32, kStatusStride);
  m.current = field(Table::input, kStatusBase + 2, DataType::f32, kStatusStride);
  m.power = field(Table::input, kStatusBase + 4, DataType::f32, kStatusStride);
  m.state = field(Table::input, kStatusBase + 6, DataType::u16, kStatusStride);
  m.fault_code = field(Table::input, kStatusBase + 7, DataType::u16, kStatusStride);
  m.eq_flag = field(Table::input, kStatusBase + 8, DataType::u16, kStatusStride);
  m.sample_counter = field(Table::input, kStatusBase + 9, DataType::u32, kStatusStride);
  m.state_codes = {0, 1, 2, 3, 4, 5};
  // Announced schedules: the status block had no room left (one reserved register per channel), so
  // version 1 grows a separate block that a controller announces with a capability bit; one that does
  // not set it is never asked for those registers. Beyond kDefaultForecastMaxChannels the block would
  // collide with the status block: such a map has no forecast.
  if (channel_count <= kDefaultForecastMaxChannels) {
    m.forecast_power = field(Table::input, kDefaultForecastBase, DataType::f32, 2);
    m.forecast_capability = capability::kForecast;
  }
  // Program position: a block of its own for the same reason, gated by its own bit (a controller may
  // know its program's steps without announcing power). 3 registers per channel from 59000 reach the
  // end of the register space at kDefaultProgramMaxChannels.
  if (channel_count <= kDefaultProgramMaxChannels) {
    m.step_index = field(Table::input, kDefaultProgramBase, DataType::u16, 3);
    m.cycle_index = field(Table::input, kDefaultProgramBase + 1, DataType::u32, 3);
    m.program_capability = capability::kProgram;
  }

  m.cmd_enable = field(Table::holding, kCmdBase + 0, DataType::u16, kCmdStride);
  m.cmd_setpoint = field(Table::holding, kCmdBase + 1, DataType::f32, kCmdStride);
  m.cmd_lease = field(Table::holding, kCmdBase + 3, DataType::u32, kCmdStride);
  m.heartbeat = field(Table::holding, 0, DataType::u16);
  return m;
}

RegisterMap with_capabilities(const RegisterMap& map, std::optional<std::uint16_t> capabilities) {
  RegisterMap m = map;
  if (m.forecast_power && m.forecast_capability != 0 && (!capabilities || (*capabilities & m.forecast_capability) == 0))
    m.forecast_power.reset();
  m.forecast_capability = 0;
  if (m.program_capability != 0 && (!capabilities || (*capabilities & m.program_capability) == 0)) {
    m.step_index.reset();
    m.cycle_index.reset();
  }
  m.program_capability = 0;
  return m;
}

namespace {

struct Named {
  const char* name;
  const Field* field;
  bool per_channel;
  bool command;  // must live in the holding table
};

// One register range of one field on one channel; the overlap check sorts these.
struct Occupied {
  Table table;
  std::uint32_t start;
  std::uint32_t end;  // exclusive
  std::size_t field;
  std::size_t channel;
};

// The map's errors, each prefixed with the map's name, in the order the rules are checked.
struct MapErrors {
  std::string prefix;
  std::vector<std::string> list;
  void add(const std::string& msg) { list.push_back(prefix + msg); }
};

std::string where(const Named& n, std::size_t channel, std::uint32_t start, std::uint32_t count) {
  char buf[160];
  if (n.per_channel)  // channels from 1, as cyclers and every other message number them
    std::snprintf(buf, sizeof buf, "%s (channel %zu, %s %u..%u)", n.name, channel + 1, to_string(n.field->table), start,
                  start + count - 1);
  else
    std::snprintf(buf, sizeof buf, "%s (%s %u..%u)", n.name, to_string(n.field->table), start, start + count - 1);
  return buf;
}

// Every field the map has: the mandatory ones, then the optional ones it sets.
std::vector<Named> present_fields(const RegisterMap& map) {
  std::vector<Named> fields = {
      {"voltage", &map.voltage, true, false},
      {"current", &map.current, true, false},
      {"state", &map.state, true, false},
      {"cmd_enable", &map.cmd_enable, true, true},
      {"cmd_setpoint", &map.cmd_setpoint, true, true},
  };
  auto opt = [&](const char* name, const std::optional<Field>& f, bool per_channel, bool command) {
    if (f) fields.push_back({name, &*f, per_channel, command});
  };
  opt("power", map.power, true, false);
  opt("fault_code", map.fault_code, true, false);
  opt("eq_flag", map.eq_flag, true, false);
  opt("sample_counter", map.sample_counter, true, false);
  opt("forecast_power", map.forecast_power, true, false);
  opt("step_index", map.step_index, true, false);
  opt("cycle_index", map.cycle_index, true, false);
  opt("cmd_lease", map.cmd_lease, true, true);
  opt("heartbeat", map.heartbeat, false, true);
  opt("profile_version", map.profile_version, false, false);
  opt("device_channel_count", map.device_channel_count, false, false);
  opt("capabilities", map.capabilities, false, false);
  opt("heartbeat_timeout", map.heartbeat_timeout, false, false);
  return fields;
}

// Rules between fields of the device: a version or capability to check needs the field it is read from.
void check_device_rules(const RegisterMap& map, MapErrors& errors) {
  if (map.channel_count == 0) errors.add("channel_count must be at least 1");
  if (map.expected_profile_version != 0 && !map.profile_version)
    errors.add("expected_profile_version " + std::to_string(map.expected_profile_version) +
               " but the map has no profile_version field to read it from");
  if (map.forecast_power) {
    const Field& f = *map.forecast_power;
    // A forecast is signed (+ charging, - discharging): an unsigned register can carry a discharge only
    // through a negative offset.
    if ((f.type == DataType::u16 || f.type == DataType::u32) && !(f.offset < 0.0))
      errors.add(std::string("forecast_power: type ") + to_string(f.type) +
                 " cannot carry a discharging (negative) forecast (expected i16, i32 or f32, or a negative offset)");
    if (map.forecast_capability != 0 && !map.capabilities) {
      char buf[120];
      std::snprintf(buf, sizeof buf,
                    "forecast_power: read only with capability 0x%X but the map has no capabilities field",
                    static_cast<unsigned>(map.forecast_capability));
      errors.add(buf);
    }
  }

  if (map.program_capability != 0 && (map.step_index || map.cycle_index) && !map.capabilities) {
    char buf[140];
    std::snprintf(buf, sizeof buf, "%s: read only with capability 0x%X but the map has no capabilities field",
                  map.step_index ? "step_index" : "cycle_index", static_cast<unsigned>(map.program_capability));
    errors.add(buf);
  }
}

// Each field's own rules (scale, offset, table, stride, address space); returns the register ranges of
// the fields whose every instance fits in the address space, for the overlap check.
std::vector<Occupied> check_fields(const RegisterMap& map, const std::vector<Named>& fields, MapErrors& errors) {
  std::vector<Occupied> occ;
  for (std::size_t fi = 0; fi < fields.size(); ++fi) {
    const Named& n = fields[fi];
    const Field& f = *n.field;
    if (!std::isfinite(f.scale) || f.scale == 0.0)
      errors.add(std::string(n.name) + ": scale must be finite and non-zero");
    if (!std::isfinite(f.offset)) errors.add(std::string(n.name) + ": offset must be finite");
    if (n.command && f.table != Table::holding)
      errors.add(std::string(n.name) + ": must be in the holding table (it is written), not input");
    if (!n.per_channel && f.stride != 0) errors.add(std::string(n.name) + ": device-level field must have stride 0");
    const std::uint32_t count = register_count(f.type);
    const std::size_t channels = n.per_channel ? std::max<std::size_t>(map.channel_count, 1) : 1;
    const std::uint32_t last = f.address + static_cast<std::uint32_t>(channels - 1) * f.stride + count;
    if (last > 0x10000U) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "%s: address %u + (channel_count %zu - 1) * stride %u + %u registers passes 65535",
                    n.name, f.address, channels, f.stride, count);
      errors.add(buf);
      continue;  // its instances would wrap; overlaps would be noise
    }
    for (std::size_t k = 0; k < channels; ++k) {
      const std::uint32_t a = f.address + static_cast<std::uint32_t>(k) * f.stride;
      occ.push_back({f.table, a, a + count, fi, k});
    }
  }
  return occ;
}

// Overlaps: sort all register ranges of all channels per table; compare each with the range that
// reaches furthest so far (catches a long range covering several later ones).
void check_overlaps(std::vector<Occupied> occ, const std::vector<Named>& fields, MapErrors& errors) {
  std::sort(occ.begin(), occ.end(), [](const Occupied& a, const Occupied& b) {
    return a.table != b.table ? a.table < b.table : a.start < b.start;
  });
  constexpr std::size_t kMaxOverlapReports = 16;  // a bad stride overlaps every channel; keep it readable
  std::size_t overlaps = 0;
  for (std::size_t i = 1, reach = 0; i < occ.size(); ++i) {
    const Occupied& prev = occ[reach];
    const Occupied& cur = occ[i];
    if (cur.table == prev.table && cur.start < prev.end) {
      if (++overlaps <= kMaxOverlapReports)
        errors.add(where(fields[cur.field], cur.channel, cur.start, cur.end - cur.start) + " overlaps " +
                   where(fields[prev.field], prev.channel, prev.start, prev.end - prev.start));
    }
    if (cur.table != prev.table || cur.end > prev.end) reach = i;
  }
  if (overlaps > kMaxOverlapReports)
    errors.add(std::to_string(overlaps - kMaxOverlapReports) + " more overlaps not listed");
}

// The decoding tables: state codes that map to eqd states, and a plausible range that is not empty.
void check_states_and_range(const RegisterMap& map, MapErrors& errors) {
  if (map.state_codes.empty()) errors.add("state_codes is empty");
  for (std::size_t c = 0; c < map.state_codes.size(); ++c)
    if (map.state_codes[c] > static_cast<std::uint8_t>(core::ChannelState::offline))
      errors.add("state_codes[" + std::to_string(c) + "] = " + std::to_string(map.state_codes[c]) +
                 " is not an eqd state (0..5)");
  const PlausibleRange& r = map.range;
  if (!(r.voltage_min_V < r.voltage_max_V)) errors.add("range: voltage_min_V must be below voltage_max_V");
  if (!(r.current_abs_max_A > 0)) errors.add("range: current_abs_max_A must be positive");
  if (!(r.power_abs_max_W > 0)) errors.add("range: power_abs_max_W must be positive");
}

}  // namespace

std::vector<std::string> validate_map(const RegisterMap& map) {
  MapErrors errors{"map '" + map.name + "': ", {}};
  const std::vector<Named> fields = present_fields(map);
  check_device_rules(map, errors);
  check_overlaps(check_fields(map, fields, errors), fields, errors);
  check_states_and_range(map, errors);
  return std::move(errors.list);
}

}  // namespace eqd::io::modbus
