/// @file validate.cpp
/// Resolution of defaults that depend on other entries, and every check across values: names,
/// references, profiles, lease and staleness against poll rates, eqd::core::validate() and
/// eqd::io::modbus::validate_map(). Errors point at the key concerned, or at its entry when the key
/// was left at its default.

#include <algorithm>
#include <cmath>
#include <set>

#include "yaml_read.hpp"

#include "eqd/io/can/codec.hpp"

#if defined(EQD_CONFIG_HAS_MODBUS)
#include "eqd/io/modbus/codec.hpp"
#include "eqd/io/modbus/register_map.hpp"
#endif

namespace eqd::config {

namespace {
#if defined(EQD_CONFIG_HAS_MODBUS)
DefaultProfileProvider g_default_profile = &eqd::io::modbus::default_profile;
#else
DefaultProfileProvider g_default_profile = nullptr;
#endif
}  // namespace

void set_default_profile_provider(DefaultProfileProvider provider) noexcept { g_default_profile = provider; }

const std::string& ControllerConfig::bus_of(std::uint16_t number) const {
  const auto it = channel_bus.find(number);
  return it != channel_bus.end() ? it->second : bus;
}

namespace detail {

namespace {

namespace mb = eqd::io::modbus;

class Checker {
 public:
  Checker(Config& cfg, const Ctx& c, bool by_name) : cfg_(cfg), ctx_(c), by_name_(by_name) {}

  void run() {
    check_buses();
    check_maps();
    check_can_maps();
    check_controllers();
    check_buffers();
    check_adopt_rules();
    check_timing();
    check_lease_encoding();
    check_api();
  }

 private:
  std::string bus_path(std::size_t i) const {
    return by_name_ ? "buses." + cfg_.buses[i].name : "buses[" + std::to_string(i) + "]";
  }
  std::string ctl_path(std::size_t i) const {
    return by_name_ ? "controllers." + cfg_.controllers[i].name : "controllers[" + std::to_string(i) + "]";
  }
  std::string buf_path(std::size_t i) const {
    return by_name_ ? "equalization." + cfg_.buffers[i].channel : "equalization[" + std::to_string(i) + "]";
  }

  /// Fails at `path`'s recorded position, or its nearest recorded ancestor (a key left at default).
  [[noreturn]] void fail_at(const std::string& path, const std::string& msg) const {
    YAML::Mark m = YAML::Mark::null_mark();
    if (ctx_.marks != nullptr) {
      std::string p = path;
      while (!p.empty()) {
        if (const auto it = ctx_.marks->find(p); it != ctx_.marks->end()) {
          m = it->second;
          break;
        }
        const auto cut = p.find_last_of(".[");
        p = cut == std::string::npos ? std::string() : p.substr(0, cut);
      }
    }
    fail(ctx_, m, path, msg);
  }

  std::vector<std::string> bus_names() const {
    std::vector<std::string> v;
    for (const auto& b : cfg_.buses) v.push_back(b.name);
    return v;
  }

  static std::string list(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? "none" : s;
  }

  const BusConfig* find_bus(const std::string& name) const {
    for (const auto& b : cfg_.buses)
      if (b.name == name) return &b;
    return nullptr;
  }

  void require_bus(const std::string& path, const std::string& name) const {
    if (find_bus(name) != nullptr) return;
    const std::string s = suggest(name, bus_names());
    fail_at(path, "no bus '" + name + "'" + (s.empty() ? "" : " (did you mean '" + s + "'?)") + " (known: " +
                      list(bus_names()) + ")");
  }

  // core::validate() messages are "field: text"; place them at that field's key.
  void report_core(const std::string& entry, const char* msg) const {
    std::string m(msg);
    const auto colon = m.find(": ");
    std::string field = colon == std::string::npos ? std::string() : m.substr(0, colon);
    if (const auto slash = field.find('/'); slash != std::string::npos) field.resize(slash);
    fail_at(field.empty() ? entry : entry + "." + field, colon == std::string::npos ? m : m.substr(colon + 2));
  }

  void check_buses() {
    if (cfg_.buses.empty()) fail_at("buses", "no bus configured (expected at least one entry under 'buses')");
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < cfg_.buses.size(); ++i) {
      const BusConfig& b = cfg_.buses[i];
      const std::string bp = bus_path(i);
      if (const auto [it, fresh] = seen.emplace(b.name, i); !fresh)
        fail_at(bp + ".name", "duplicate bus name '" + b.name + "' (also " + bus_path(it->second) + ")");
      const double tau = b.params.tau_s;
      if (!b.allow_any_tau && (tau < 10.0 || tau > 20.0))
        fail_at(bp + ".tau_s", num(tau) + " is out of range (expected 10..20 s; set allow_any_tau: true to accept any "
                                          "tau_s > 0)");
      if (const char* e = eqd::core::validate(b.params, b.allow_any_tau)) report_core(bp, e);
    }
  }

  void check_maps() {
#if defined(EQD_CONFIG_HAS_MODBUS)
    for (const auto& [name, map] : cfg_.maps) {
      // Read but never compared, a version register protects nothing: a device of another profile
      // version would be commanded through registers that may mean something else.
      if (map.profile_version && map.expected_profile_version == 0)
        fail_at("maps." + name + ".profile_version",
                "the map reads profile_version but gives no expected_profile_version to check it against (add "
                "maps." + name + ".expected_profile_version: the version this map describes)");
      const std::vector<std::string> errors = mb::validate_map(map);
      if (errors.empty()) continue;
      // validate_map says "map 'NAME': FIELD...": point at that field when it was written.
      std::string msg = errors.front();
      const std::string prefix = "map '" + name + "': ";
      if (msg.rfind(prefix, 0) == 0) msg.erase(0, prefix.size());
      std::string path = "maps." + name;
      const auto end = msg.find_first_of(" :");
      if (end != std::string::npos && ctx_.marks != nullptr) {
        std::string field = msg.substr(0, end);
        if (ctx_.marks->count(path + "." + field) != 0) path += "." + field;
      }
      fail_at(path, msg + (errors.size() > 1 ? " (and " + std::to_string(errors.size() - 1) + " more)" : ""));
    }
#endif
  }

  // CAN signal maps: validate_map() names the problem by "frames[i].signals[j].KEY" relative to the
  // map; point at that key's line when it was written, else at its nearest written parent.
  void check_can_maps() {
    for (const auto& [name, map] : cfg_.can_maps) {
      const std::vector<eqd::io::can::MapIssue> issues = eqd::io::can::validate_map(map);
      if (issues.empty()) continue;
      const auto& first = issues.front();
      fail_at("can_maps." + name + "." + first.where,
              first.message + (issues.size() > 1 ? " (and " + std::to_string(issues.size() - 1) + " more)" : ""));
    }
  }

  void resolve_can(ControllerConfig& ctl, const std::string& cp) const {
    namespace can = eqd::io::can;
    if (ctl.interface.empty()) fail_at(cp + ".interface", "missing required key 'interface' (transport can), e.g. can0");
    const std::uint16_t n = ctl.channels != 0 ? ctl.channels : std::uint16_t{16};
    if (ctl.can_profile == can::kDefaultCanProfile || ctl.can_profile == can::kDefaultCanFdProfile) {
      if (n > 255) fail_at(cp + ".channels", std::to_string(n) + " channels: the built-in CAN profiles carry 1..255");
      ctl.can_map = ctl.can_profile == can::kDefaultCanProfile ? can::default_can_profile(n) : can::default_can_fd_profile(n);
    } else {
      const auto it = cfg_.can_maps.find(ctl.can_profile);
      if (it == cfg_.can_maps.end()) {
        std::vector<std::string> known{can::kDefaultCanProfile, can::kDefaultCanFdProfile};
        for (const auto& [name, m] : cfg_.can_maps) known.push_back(name);
        const std::string s = suggest(ctl.can_profile, known);
        fail_at(cp + ".can_profile", "unknown CAN profile '" + ctl.can_profile + "'" +
                                         (s.empty() ? "" : " (did you mean '" + s + "'?)") + " (known: " + list(known) + ")");
      }
      ctl.can_map = it->second;
      if (ctl.channels > ctl.can_map.channel_count)
        fail_at(cp + ".channels", std::to_string(ctl.channels) + " is more than CAN map '" + ctl.can_profile +
                                      "' describes (expected 1.." + std::to_string(ctl.can_map.channel_count) + ")");
    }
    if (ctl.channels == 0) ctl.channels = ctl.can_map.channel_count;
    const auto issues = eqd::io::can::validate_ids(ctl.can_map, ctl.node_id);
    if (!issues.empty()) fail_at(cp + ".node_id", issues.front().message);
    // Two controllers on one interface must not share an identifier: each would take the other's frames.
    for (std::size_t j = 0; j < cfg_.controllers.size(); ++j) {
      const ControllerConfig& o = cfg_.controllers[j];
      if (&o == &ctl || o.transport != Transport::can || o.interface != ctl.interface || o.can_map.frames.empty()) continue;
      for (const auto& a : eqd::io::can::frame_ids(ctl.can_map, ctl.node_id))
        for (const auto& b : eqd::io::can::frame_ids(o.can_map, o.node_id))
          if (a == b)
            fail_at(cp + ".node_id", "identifier " + std::to_string(a.id) + " is also used by controller '" + o.name +
                                         "' on " + ctl.interface + " (expected distinct node ids)");
    }
  }

  void resolve_map(ControllerConfig& ctl, const std::string& cp) const {
    if (ctl.profile == kDefaultProfileName) {
      if (g_default_profile == nullptr)
        fail_at(cp + ".profile", "the built-in profile is not available in this build (expected a key of 'maps')");
      ctl.map = g_default_profile(ctl.channels != 0 ? ctl.channels : std::uint16_t{16});
      if (ctl.channels == 0) ctl.channels = ctl.map.channel_count;
      return;
    }
    const auto it = cfg_.maps.find(ctl.profile);
    if (it == cfg_.maps.end()) {
      std::vector<std::string> known{kDefaultProfileName};
      for (const auto& [name, m] : cfg_.maps) known.push_back(name);
      const std::string s = suggest(ctl.profile, known);
      fail_at(cp + ".profile", "unknown profile '" + ctl.profile + "'" + (s.empty() ? "" : " (did you mean '" + s + "'?)") +
                                   " (known: " + list(known) + ")");
    }
    ctl.map = it->second;
    if (ctl.channels == 0) ctl.channels = ctl.map.channel_count;
    if (ctl.channels > ctl.map.channel_count)
      fail_at(cp + ".channels", std::to_string(ctl.channels) + " is more than map '" + ctl.profile + "' describes (expected 1.." +
                                    std::to_string(ctl.map.channel_count) + ")");
  }

  void check_controllers() {
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < cfg_.controllers.size(); ++i) {
      ControllerConfig& ctl = cfg_.controllers[i];
      const std::string cp = ctl_path(i);
      if (const auto [it, fresh] = seen.emplace(ctl.name, i); !fresh)
        fail_at(cp + ".name", "duplicate controller name '" + ctl.name + "' (also " + ctl_path(it->second) + ")");
      if (ctl.transport == Transport::tcp && ctl.host.empty())
        fail_at(cp + ".host", "missing required key 'host' (transport tcp)");
      if (ctl.transport == Transport::rtu && ctl.device.empty())
        fail_at(cp + ".device", "missing required key 'device' (transport rtu)");
      if (ctl.transport == Transport::rtu && ctl.unit_id == 0)
        fail_at(cp + ".unit_id", "0 is the RTU broadcast address (expected 1..247 for transport rtu)");
      if (ctl.backoff_max_ms < ctl.backoff_initial_ms)
        fail_at(cp + ".backoff_max_ms", std::to_string(ctl.backoff_max_ms) + " is below backoff_initial_ms " +
                                            std::to_string(ctl.backoff_initial_ms) + " (expected >= backoff_initial_ms)");
      if (ctl.transport == Transport::can) resolve_can(ctl, cp);
      else resolve_map(ctl, cp);
      if (ctl.bus.empty()) ctl.bus = cfg_.buses.front().name;
      require_bus(cp + ".bus", ctl.bus);
      for (const auto& [ch, bus] : ctl.channel_bus) {
        const std::string kp = cp + ".channel_bus." + std::to_string(ch);
        if (ch < 1 || ch > ctl.channels)
          fail_at(kp, "channel " + std::to_string(ch) + " does not exist (expected 1.." + std::to_string(ctl.channels) + ")");
        require_bus(kp, bus);
      }
      for (std::size_t k = 0; k < ctl.ignore_channels.size(); ++k) {
        const auto ch = ctl.ignore_channels[k];
        if (ch < 1 || ch > ctl.channels)
          fail_at(cp + ".ignore_channels[" + std::to_string(k) + "]",
                  "channel " + std::to_string(ch) + " does not exist (expected 1.." + std::to_string(ctl.channels) + ")");
      }
    }
  }

  // A rule's bus must exist: a typo would otherwise leave the controllers it adopts read-only and out
  // of every balance (their bus unknown), which is safe but silent.
  void check_adopt_rules() const {
    for (std::size_t i = 0; i < cfg_.discovery.adopt.size(); ++i) {
      const AdoptRule& r = cfg_.discovery.adopt[i];
      if (!r.bus.empty()) require_bus("discovery.adopt[" + std::to_string(i) + "].bus", r.bus);
    }
  }

  void check_buffers() {
    std::map<std::string, std::size_t> seen;
    std::vector<std::string> names;
    for (const auto& c : cfg_.controllers) names.push_back(c.name);
    for (std::size_t i = 0; i < cfg_.buffers.size(); ++i) {
      BufferConfig& buf = cfg_.buffers[i];
      const std::string bp = buf_path(i);
      const std::string chp = bp + ".channel";
      const auto slash = buf.channel.find('/');
      const std::string cname = buf.channel.substr(0, slash);
      const long number = std::stol(buf.channel.substr(slash + 1));  // syntax checked by the key table
      const auto it = std::find_if(cfg_.controllers.begin(), cfg_.controllers.end(),
                                   [&](const ControllerConfig& c) { return c.name == cname; });
      if (it == cfg_.controllers.end()) {
        const std::string s = suggest(cname, names);
        fail_at(chp, "'" + buf.channel + "': no controller '" + cname + "'" + (s.empty() ? "" : " (did you mean '" + s + "'?)") +
                         " (known: " + list(names) + ")");
      }
      if (number < 1 || number > it->channels)
        fail_at(chp, "'" + buf.channel + "': controller '" + cname + "' has channels 1.." + std::to_string(it->channels) +
                         " (channel numbers are 1-based)");
      const auto ch = static_cast<std::uint16_t>(number);
      if (std::find(it->ignore_channels.begin(), it->ignore_channels.end(), ch) != it->ignore_channels.end())
        fail_at(chp, "'" + buf.channel + "' is in ignore_channels of controller '" + cname + "'");
      if (const auto [prev, fresh] = seen.emplace(buf.channel, i); !fresh)
        fail_at(chp, "'" + buf.channel + "' is listed twice (also " + buf_path(prev->second) + ")");
      const std::string& channel_bus = it->bus_of(ch);
      if (buf.bus.empty()) {
        buf.bus = channel_bus;
      } else {
        require_bus(bp + ".bus", buf.bus);
        if (buf.bus != channel_bus)
          fail_at(bp + ".bus", "'" + buf.bus + "' does not match the bus of channel " + buf.channel + " ('" + channel_bus +
                                   "', set by the controller's bus or channel_bus)");
      }
      if (!(buf.limits.v_min_V < buf.limits.v_max_V))
        fail_at(bp + ".v_min_V", num(buf.limits.v_min_V) + " V is not below v_max_V " + num(buf.limits.v_max_V) +
                                     " V (expected v_min_V < v_max_V)");
      if (const char* e = eqd::core::validate(buf.limits)) report_core(bp, e);
    }
  }

  // Both the lease and the staleness limit must survive one lost poll: with less than two poll
  // periods a single late answer would stale every sample or let a healthy setpoint expire.
  void check_timing() {
    // A stall is a gap of several periods: shorter, one late wake-up of a loaded machine would stop the
    // heartbeat (expected >= 3 periods).
    if (cfg_.loop.liveness_timeout_ms < 3 * cfg_.loop.period_ms)
      fail_at("control_loop.liveness_timeout_ms",
              std::to_string(cfg_.loop.liveness_timeout_ms) + " ms is shorter than 3 control periods (expected >= " +
                  std::to_string(3 * cfg_.loop.period_ms) + " ms)");
    for (std::size_t i = 0; i < cfg_.buses.size(); ++i) {
      const BusConfig& b = cfg_.buses[i];
      const std::string bp = bus_path(i);
      const double update_ms = b.params.update_interval_s * 1000.0;
      if (update_ms < cfg_.loop.period_ms)
        fail_at(bp + ".update_interval_s", num(b.params.update_interval_s) + " s is shorter than control_loop.period_ms " +
                                               std::to_string(cfg_.loop.period_ms) + " (expected >= " +
                                               num(cfg_.loop.period_ms / 1000.0) + " s)");
      for (const auto& ctl : cfg_.controllers) {
        bool on_bus = ctl.bus == b.name;
        for (const auto& [ch, bus] : ctl.channel_bus) on_bus = on_bus || bus == b.name;
        if (!on_bus) continue;
        const double min_ms = std::ceil(2.0 * 1000.0 / ctl.poll_hz);
        const std::string why = "controller '" + ctl.name + "' polls at " + num(ctl.poll_hz) + " Hz (expected >= " +
                                num(min_ms) + " ms, two poll periods)";
        if (static_cast<double>(b.params.lease_ms) < min_ms)
          fail_at(bp + ".lease_ms", std::to_string(b.params.lease_ms) + " ms is too short: " + why);
        if (static_cast<double>(b.params.max_age_ms) < min_ms)
          fail_at(bp + ".max_age_ms", std::to_string(b.params.max_age_ms) + " ms is too short: " + why);
      }
    }
  }

  // The reserved connections are the only ones other users can never take: at least one slot must
  // be left for everybody else, and one uid's share cannot exceed the whole.
  void check_api() {
    const ApiConfig& a = cfg_.api;
    if (a.reserved_connections >= a.max_connections)
      fail_at("api.reserved_connections", std::to_string(a.reserved_connections) +
                                              " leaves no connection for other users (expected less than "
                                              "api.max_connections " + std::to_string(a.max_connections) + ")");
    if (a.max_connections_per_uid > a.max_connections)
      fail_at("api.max_connections_per_uid", std::to_string(a.max_connections_per_uid) +
                                                 " is more than api.max_connections " +
                                                 std::to_string(a.max_connections));
  }

  // The lease each bus commands must reach the controller exactly: a register that cannot carry it
  // (scale 1000 with lease_ms 2500) would silently shorten it (2000 ms) or lengthen it (2600 -> 3000
  // ms), and a lease longer than configured keeps a setpoint alive longer than promised. Refused,
  // not rounded: the fix (a lease that is a multiple of the device's step) is one edit away.
  void check_lease_encoding() const {
    for (const ControllerConfig& ctl : cfg_.controllers) {
      std::set<std::string> buses{ctl.bus};
      for (const auto& [ch, bus] : ctl.channel_bus) buses.insert(bus);
      for (std::size_t bi = 0; bi < cfg_.buses.size(); ++bi) {
        const BusConfig& b = cfg_.buses[bi];
        if (buses.count(b.name) == 0) continue;
        const std::uint32_t lease = b.params.lease_ms;
        if (const std::string why = lease_problem(ctl, lease); !why.empty())
          fail_at(bus_path(bi) + ".lease_ms", std::to_string(lease) + " ms " + why);
      }
    }
  }

  /// Empty when `lease_ms` goes through the controller's lease register unchanged, else why not.
  static std::string lease_problem(const ControllerConfig& ctl, std::uint32_t lease_ms) {
    const double want = static_cast<double>(lease_ms);
    auto inexact = [&](double got, const std::string& where, double step) {
      return "cannot be written exactly to " + where + ": the controller would get " + num(got) +
             " ms (choose a lease that is a multiple of " + num(step) + " ms, or fix the scale)";
    };
    if (ctl.transport == Transport::can) {
      for (const auto& frame : ctl.can_map.frames) {
        if (frame.role != eqd::io::can::FrameRole::command) continue;
        for (const auto& sig : frame.signals) {
          if (sig.name != "lease") continue;
          const std::string where = "the lease signal of CAN profile '" + ctl.can_profile + "' (controller '" + ctl.name +
                                    "', scale " + num(sig.scale) + ", " + std::to_string(sig.length) + " bits)";
          std::uint8_t data[64] = {};
          if (eqd::io::can::encode_signal(sig, want, data) != eqd::io::can::CodecStatus::ok)
            return "does not fit " + where;
          const double got = eqd::io::can::decode_signal(sig, data);
          if (std::abs(got - want) > 1e-6 * want) return inexact(got, where, std::abs(sig.scale));
        }
      }
      return {};
    }
#if defined(EQD_CONFIG_HAS_MODBUS)
    if (!ctl.map.cmd_lease) return {};
    const mb::Field& f = *ctl.map.cmd_lease;
    const std::string where = "cmd_lease of map '" + ctl.map.name + "' (controller '" + ctl.name + "', " +
                              mb::to_string(f.type) + ", scale " + num(f.scale) + " ms per count)";
    std::uint16_t regs[2] = {};
    if (mb::encode_field(f, want, regs) != mb::CodecStatus::ok) return "does not fit " + where;
    const double got = mb::decode_field(f, regs);
    if (std::abs(got - want) > 1e-6 * want) return inexact(got, where, std::abs(f.scale));
#endif
    return {};
  }

  Config& cfg_;
  const Ctx& ctx_;
  bool by_name_;
};

}  // namespace

void resolve_and_validate(Config& cfg, const Ctx& c, bool by_name) { Checker(cfg, c, by_name).run(); }

}  // namespace detail
}  // namespace eqd::config
