/// @file signal_map.cpp
/// Built-in CAN profiles and map validation (see signal_map.hpp, docs/can-profile.md).

#include "eqd/io/can/signal_map.hpp"

#include <algorithm>
#include <bitset>
#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace eqd::io::can {

const char* to_string(FrameRole r) noexcept {
  switch (r) {
    case FrameRole::status:
      return "status";
    case FrameRole::command:
      return "command";
    case FrameRole::heartbeat:
      return "heartbeat";
    case FrameRole::forecast:
      return "forecast";
    case FrameRole::program:
      return "program";
  }
  return "?";
}

const Signal* FrameLayout::find(const std::string& signal_name) const noexcept {
  for (const Signal& s : signals)
    if (s.name == signal_name) return &s;
  return nullptr;
}

const FrameLayout* SignalMap::frame(FrameRole role) const noexcept {
  for (const FrameLayout& f : frames)
    if (f.role == role) return &f;
  return nullptr;
}

const RoleSignals& signal_names(FrameRole role) {
  static const RoleSignals kStatus{
      {"voltage", "current", "state"},
      {"channel", "power", "eq_flag", "fault_code", "counter", "forecast_power", "step_index", "cycle_index"}};
  static const RoleSignals kCommand{{"enable", "setpoint"}, {"channel", "lease"}};
  static const RoleSignals kHeartbeat{{"counter"}, {}};
  static const RoleSignals kForecast{{"forecast_power"}, {"channel"}};
  static const RoleSignals kProgram{{}, {"channel", "step_index", "cycle_index"}};
  switch (role) {
    case FrameRole::status:
      return kStatus;
    case FrameRole::command:
      return kCommand;
    case FrameRole::heartbeat:
      return kHeartbeat;
    case FrameRole::forecast:
      return kForecast;
    case FrameRole::program:
      return kProgram;
  }
  return kHeartbeat;
}

namespace {

Signal sig(const char* name, std::uint16_t start, std::uint8_t len, bool is_signed = false, double scale = 1.0) {
  Signal s;
  s.name = name;
  s.start_bit = start;
  s.length = len;
  s.is_signed = is_signed;
  s.scale = scale;
  return s;
}

// Frames shared by both built-in profiles: the command and heartbeat frames stay classic so that a
// controller on a classic bus can take them whatever its status frame is.
void add_command_and_heartbeat(SignalMap& m) {
  FrameLayout cmd;
  cmd.role = FrameRole::command;
  cmd.id = 0x200;
  cmd.length = 8;
  cmd.signals = {sig("channel", 0, 8), sig("enable", 8, 8), sig("lease", 16, 16), sig("setpoint", 32, 32, true, 0.1)};
  m.frames.push_back(cmd);
  FrameLayout hb;
  hb.role = FrameRole::heartbeat;
  hb.id = 0x300;
  hb.length = 2;
  hb.signals = {sig("counter", 0, 16)};
  m.frames.push_back(hb);
  // Announced schedules: the classic status frame has no room left, so the forecast has a frame of its
  // own, sent by a controller that announces one at least once a second per channel (at the lowest
  // priority of the profile's frames). Classic in both profiles, like the command and heartbeat.
  FrameLayout fc;
  fc.role = FrameRole::forecast;
  fc.id = 0x400;
  fc.length = 8;  // bytes 5..7 reserved (0)
  fc.signals = {sig("channel", 0, 8), sig("forecast_power", 8, 32, true, 0.1)};
  m.frames.push_back(fc);
  // Program position: a step number and a 32-bit pass number fit neither the status frames nor the
  // forecast frame's 3 reserved bytes, so they get a frame of their own too, sent on every change
  // (before the status frame that first shows it) and at least once a second. Its identifiers, 0x500 +
  // node id, limit the built-in profiles to node ids up to 0x2FF.
  FrameLayout pg;
  pg.role = FrameRole::program;
  pg.id = 0x500;
  pg.length = 8;  // byte 7 reserved (0)
  pg.signals = {sig("channel", 0, 8), sig("step_index", 8, 16), sig("cycle_index", 24, 32)};
  m.frames.push_back(pg);
}

bool valid_length(unsigned len, bool fd) {
  if (len <= 8) return true;
  if (!fd) return false;
  static constexpr unsigned kFd[] = {12, 16, 20, 24, 32, 48, 64};
  return std::find(std::begin(kFd), std::end(kFd), len) != std::end(kFd);
}

// Bit positions (DBC numbering) a signal occupies, LSB first; false if one falls outside `bytes`.
bool signal_bits(const Signal& s, unsigned bytes, std::vector<unsigned>& out) {
  out.clear();
  const unsigned total = bytes * 8;
  if (s.length == 0 || s.length > 64) return false;
  if (s.order == ByteOrder::little) {
    for (unsigned i = 0; i < s.length; ++i) out.push_back(s.start_bit + i);
  } else {
    // Motorola: start bit is the MSB; walk towards the LSB, wrapping to bit 7 of the next byte.
    unsigned pos = s.start_bit;
    std::vector<unsigned> msb_first;
    for (unsigned i = 0; i < s.length; ++i) {
      msb_first.push_back(pos);
      pos = (pos % 8 == 0) ? pos + 15 : pos - 1;
    }
    out.assign(msb_first.rbegin(), msb_first.rend());
  }
  return std::all_of(out.begin(), out.end(), [&](unsigned p) { return p < total; });
}

std::string fidx(std::size_t i) { return "frames[" + std::to_string(i) + "]"; }

}  // namespace

SignalMap default_can_profile(std::uint16_t channel_count) {
  SignalMap m;
  m.name = kDefaultCanProfile;
  m.channel_count = channel_count;
  FrameLayout st;
  st.role = FrameRole::status;
  st.id = 0x100;
  st.length = 8;
  st.signals = {sig("channel", 0, 8),
                sig("voltage", 8, 16, false, 0.01),
                sig("current", 24, 16, true, 0.01),
                sig("state", 40, 4),
                sig("eq_flag", 44, 1),
                sig("fault_code", 48, 8),
                sig("counter", 56, 8)};
  m.frames.push_back(st);
  add_command_and_heartbeat(m);
  return m;
}

SignalMap default_can_fd_profile(std::uint16_t channel_count) {
  SignalMap m;
  m.name = kDefaultCanFdProfile;
  m.channel_count = channel_count;
  FrameLayout st;
  st.role = FrameRole::status;
  st.id = 0x100;
  st.length = 20;
  st.fd = true;
  st.signals = {sig("channel", 0, 8),
                sig("state", 8, 4),
                sig("eq_flag", 12, 1),
                sig("fault_code", 16, 16),
                sig("counter", 32, 16),
                sig("voltage", 48, 24, false, 0.001),
                sig("current", 72, 32, true, 0.001),
                sig("power", 104, 32, true, 0.1)};
  m.frames.push_back(st);
  add_command_and_heartbeat(m);
  return m;
}

namespace {

// Collects validate_map's issues in the order the rules are checked.
struct Issues {
  std::vector<MapIssue>& out;
  void operator()(std::string where, std::string msg) const { out.push_back({std::move(where), std::move(msg)}); }
};

// A frame's own fields: its role once per map, a length its kind of frame can have, an identifier that fits.
void check_frame_header(const FrameLayout& f, const std::string& fp, std::set<FrameRole>& roles, const Issues& issue) {
  if (!roles.insert(f.role).second) issue(fp + ".role", std::string("a second '") + to_string(f.role) + "' frame");
  if (!valid_length(f.length, f.fd))
    issue(fp + ".length", std::to_string(f.length) + " bytes is not a valid " + (f.fd ? "CAN FD" : "classic CAN") +
                              " length (expected 0..8" +
                              (f.fd ? ", 12, 16, 20, 24, 32, 48 or 64)" : "; more needs fd: true)"));
  const std::uint32_t max_id = f.extended ? 0x1FFFFFFFu : 0x7FFu;
  if (f.id > max_id)
    issue(fp + ".id", "identifier " + std::to_string(f.id) + " is beyond " + (f.extended ? "29" : "11") + " bits");
  if (f.role == FrameRole::heartbeat && f.id_stride != 0)
    issue(fp + ".id_stride", "the heartbeat frame is not per channel");
}

// The bits already taken in a frame, by signal index, for the overlap check.
using PlacedSignals = std::vector<std::pair<std::size_t, std::bitset<512>>>;

// Signal j of frame f: a name its role knows, once; a length, scale and offset that decode; bits inside the
// frame and clear of the signals before it.
void check_signal(const FrameLayout& f, std::size_t j, const std::string& fp, std::set<std::string>& seen,
                  PlacedSignals& placed, const Issues& issue) {
  const RoleSignals& names = signal_names(f.role);
  const Signal& s = f.signals[j];
  const std::string sp = fp + ".signals[" + std::to_string(j) + "]";
  const bool known =
      std::any_of(names.required.begin(), names.required.end(), [&](const char* n) { return s.name == n; }) ||
      std::any_of(names.optional.begin(), names.optional.end(), [&](const char* n) { return s.name == n; });
  if (!known) {
    std::string list;
    for (const char* n : names.required) list += (list.empty() ? "" : ", ") + std::string(n);
    for (const char* n : names.optional) list += (list.empty() ? "" : ", ") + std::string(n);
    issue(sp + ".name",
          "unknown " + std::string(to_string(f.role)) + " signal '" + s.name + "' (expected one of: " + list + ")");
  }
  if (!seen.insert(s.name).second) issue(sp + ".name", "signal '" + s.name + "' appears twice in this frame");
  if (s.length < 1 || s.length > 64) {
    issue(sp + ".length", std::to_string(s.length) + " bits (expected 1..64)");
    return;
  }
  if (!(s.scale != 0.0 && std::isfinite(s.scale))) issue(sp + ".scale", "must be finite and not 0");
  if (!std::isfinite(s.offset)) issue(sp + ".offset", "must be finite");
  std::vector<unsigned> bits;
  if (!signal_bits(s, f.length, bits)) {
    issue(sp + ".start_bit", "signal '" + s.name + "' (start bit " + std::to_string(s.start_bit) + ", " +
                                 std::to_string(s.length) + " bits, " +
                                 (s.order == ByteOrder::little ? "little" : "big") +
                                 " endian) reaches beyond the frame's " + std::to_string(f.length) + " bytes");
    return;
  }
  std::bitset<512> mask;
  for (unsigned b : bits) mask.set(b);
  for (const auto& [other, m] : placed)
    if ((m & mask).any()) {
      issue(sp + ".start_bit", "signal '" + s.name + "' overlaps signal '" + f.signals[other].name + "' (bit " +
                                   std::to_string((m & mask)._Find_first()) + ")");
      break;
    }
  placed.emplace_back(j, mask);
}

// A per-channel frame of a map with several channels must tell its channel: by a 'channel' signal that
// can count to channel_count, or by id_stride.
void check_channel_signal(const SignalMap& map, const FrameLayout& f, const std::string& fp, const Issues& issue) {
  const Signal* ch = f.find("channel");
  if (ch == nullptr && f.id_stride == 0)
    issue(fp, "several channels but neither a 'channel' signal nor id_stride: channels cannot be told apart");
  if (ch != nullptr && ch->length >= 1 && ch->length < 64) {
    const double max_raw = std::ldexp(1.0, ch->is_signed ? ch->length - 1 : ch->length) - 1.0;
    // The channel signal carries the 1-based channel number: scale 1, offset 0 keeps it a plain count.
    if (ch->scale != 1.0 || ch->offset != 0.0)
      issue(fp + ".signals", "the 'channel' signal must have scale 1 and offset 0");
    else if (max_raw < map.channel_count)
      issue(fp + ".signals", "the 'channel' signal (" + std::to_string(ch->length) + " bits) cannot carry channel " +
                                 std::to_string(map.channel_count));
  }
}

// Frame i: its header, each signal, its role's required signals, and how it tells channels apart.
void check_frame(const SignalMap& map, std::size_t i, std::set<FrameRole>& roles, const Issues& issue) {
  const FrameLayout& f = map.frames[i];
  const std::string fp = fidx(i);
  check_frame_header(f, fp, roles, issue);
  std::set<std::string> seen;
  PlacedSignals placed;
  for (std::size_t j = 0; j < f.signals.size(); ++j) check_signal(f, j, fp, seen, placed, issue);
  for (const char* n : signal_names(f.role).required)
    if (seen.count(n) == 0) issue(fp + ".signals", std::string("missing required signal '") + n + "'");
  const bool per_channel = f.role != FrameRole::heartbeat;
  if (per_channel && map.channel_count > 1) check_channel_signal(map, f, fp, issue);
}

// forecast_power: one place only, and able to say "discharging" (a negative value).
void check_forecast_power(const SignalMap& map, const Issues& issue) {
  const FrameLayout* fst = nullptr;
  for (std::size_t i = 0; i < map.frames.size(); ++i) {
    const FrameLayout& f = map.frames[i];
    for (std::size_t j = 0; j < f.signals.size(); ++j) {
      const Signal& s = f.signals[j];
      if (s.name != "forecast_power") continue;
      const std::string sp = fidx(i) + ".signals[" + std::to_string(j) + "]";
      if (fst != nullptr && fst != &f)
        issue(sp + ".name", "forecast_power is also in the " + std::string(to_string(fst->role)) +
                                " frame (expected it in one frame: status or forecast)");
      fst = &f;
      if (!s.is_signed && !(s.offset < 0.0))
        issue(sp + ".signed",
              "an unsigned forecast_power without a negative offset cannot carry a discharging "
              "(negative) forecast (expected signed: true or a negative offset)");
      if (s.length < 2) issue(sp + ".length", "forecast_power needs at least 2 bits (one raw value means none)");
    }
  }
}

// step_index, cycle_index: one place each; a program frame carries at least one of them.
void check_program_signals(const SignalMap& map, const Issues& issue) {
  for (const char* name : {"step_index", "cycle_index"}) {
    const FrameLayout* first = nullptr;
    for (std::size_t i = 0; i < map.frames.size(); ++i) {
      const FrameLayout& f = map.frames[i];
      for (std::size_t j = 0; j < f.signals.size(); ++j) {
        if (f.signals[j].name != name) continue;
        if (first != nullptr && first != &f)
          issue(fidx(i) + ".signals[" + std::to_string(j) + "].name",
                std::string(name) + " is also in the " + to_string(first->role) +
                    " frame (expected it in one frame: status or program)");
        if (first == nullptr) first = &f;
      }
    }
  }
  for (std::size_t i = 0; i < map.frames.size(); ++i)
    if (map.frames[i].role == FrameRole::program && map.frames[i].find("step_index") == nullptr &&
        map.frames[i].find("cycle_index") == nullptr)
      issue(fidx(i) + ".signals", "a program frame needs step_index or cycle_index (or both)");
}

}  // namespace

std::vector<MapIssue> validate_map(const SignalMap& map) {
  std::vector<MapIssue> out;
  const Issues issue{out};
  if (map.channel_count == 0) issue("channel_count", "must be at least 1");
  std::set<FrameRole> roles;
  for (std::size_t i = 0; i < map.frames.size(); ++i) check_frame(map, i, roles, issue);
  check_forecast_power(map, issue);
  check_program_signals(map, issue);
  if (map.frame(FrameRole::status) == nullptr) issue("frames", "missing the 'status' frame");
  if (map.frame(FrameRole::command) == nullptr) issue("frames", "missing the 'command' frame");
  if (out.empty())
    for (auto& i : validate_ids(map, 0)) out.push_back(std::move(i));
  return out;
}

std::uint32_t frame_id(const FrameLayout& f, std::uint32_t node_id, std::size_t channel) noexcept {
  return f.id + (f.add_node_id ? node_id : 0u) + static_cast<std::uint32_t>(channel) * f.id_stride;
}

std::vector<FrameId> frame_ids(const SignalMap& map, std::uint32_t node_id) {
  std::vector<FrameId> out;
  for (const FrameLayout& f : map.frames) {
    const std::size_t n = f.id_stride == 0 || f.role == FrameRole::heartbeat ? 1 : map.channel_count;
    for (std::size_t k = 0; k < n; ++k) out.push_back({frame_id(f, node_id, k), f.extended, f.role});
  }
  return out;
}

std::vector<MapIssue> validate_ids(const SignalMap& map, std::uint32_t node_id) {
  std::vector<MapIssue> out;
  for (std::size_t i = 0; i < map.frames.size(); ++i) {
    const FrameLayout& f = map.frames[i];
    const std::uint64_t max_id = f.extended ? 0x1FFFFFFFu : 0x7FFu;
    const std::size_t n = f.id_stride == 0 || f.role == FrameRole::heartbeat ? 1 : map.channel_count;
    const std::uint64_t last =
        std::uint64_t{f.id} + (f.add_node_id ? node_id : 0u) + std::uint64_t{f.id_stride} * (n - 1);
    if (last > max_id)
      out.push_back({fidx(i) + ".id", std::string(to_string(f.role)) + " identifiers reach " + std::to_string(last) +
                                          " with node id " + std::to_string(node_id) + ", beyond " +
                                          (f.extended ? "29" : "11") + " bits (max " + std::to_string(max_id) + ")"});
  }
  if (!out.empty()) return out;
  const std::vector<FrameId> ids = frame_ids(map, node_id);
  for (std::size_t a = 0; a < ids.size(); ++a)
    for (std::size_t b = a + 1; b < ids.size(); ++b)
      if (ids[a] == ids[b] && ids[a].role != ids[b].role) {
        std::size_t fi = 0;
        for (std::size_t i = 0; i < map.frames.size(); ++i)
          if (map.frames[i].role == ids[b].role) fi = i;
        out.push_back({fidx(fi) + ".id", std::string(to_string(ids[b].role)) + " and " + to_string(ids[a].role) +
                                             " frames share identifier " + std::to_string(ids[a].id) + " (node id " +
                                             std::to_string(node_id) + ")"});
        return out;
      }
  return out;
}

}  // namespace eqd::io::can
