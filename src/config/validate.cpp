/// @file validate.cpp
/// Resolution of defaults that depend on other entries, and every check across values: names,
/// references, profiles, lease and staleness against poll rates, eqd::core::validate() and
/// eqd::io::modbus::validate_map(). Errors point at the key concerned, or at its entry when the key
/// was left at its default.

#include <algorithm>
#include <cmath>
#include <set>

#include "yaml_read.hpp"

#include "eqd/io/can/signal_map.hpp"
#include "eqd/io/modbus/register_map.hpp"

namespace eqd::config {

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
    fail_at(path, "no bus '" + name + "'" + (s.empty() ? "" : " (did you mean '" + s + "'?)") +
                      " (known: " + list(bus_names()) + ")");
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
        fail_at(bp + ".tau_s", num(tau) +
                                   " is out of range (expected 10..20 s; set allow_any_tau: true to accept any "
                                   "tau_s > 0)");
      if (const char* e = eqd::core::validate(b.params, b.allow_any_tau)) report_core(bp, e);
    }
  }

  void check_maps() {
    for (const auto& [name, map] : cfg_.maps) {
      // Read but never compared, a version register protects nothing: a device of another profile
      // version would be commanded through registers that may mean something else.
      if (map.profile_version && map.expected_profile_version == 0)
        fail_at("maps." + name + ".profile_version",
                "the map reads profile_version but gives no expected_profile_version to check it against (add "
                "maps." +
                    name + ".expected_profile_version: the version this map describes)");
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

  // The controller's transport checks its own keys and resolves its profile against the named maps;
  // then it may refuse a clash with an earlier controller of the same transport (one CAN identifier on
  // one interface).
  void resolve_transport(std::size_t i, const std::string& cp) const {
    ControllerConfig& ctl = cfg_.controllers[i];
    const eqd::io::Transport* t = eqd::io::find_transport(ctl.transport);
    if (t == nullptr || ctl.settings.get() == nullptr)
      fail_at(cp + ".transport", "transport '" + ctl.transport + "' is not available in this build");
    const eqd::io::NamedMaps maps{&cfg_.maps, &cfg_.can_maps};
    if (auto problem = t->resolve(*ctl.settings.get(), ctl.channels, maps)) report(cp, *problem);
    for (std::size_t j = 0; j < i; ++j) {
      const ControllerConfig& o = cfg_.controllers[j];
      if (o.transport != ctl.transport || o.settings.get() == nullptr) continue;
      if (auto problem = t->conflict(*ctl.settings.get(), *o.settings.get(), o.name)) report(cp, *problem);
    }
  }

  [[noreturn]] void report(const std::string& cp, const eqd::io::SettingProblem& p) const {
    std::string msg = p.message;
    if (!p.unknown.empty()) {
      if (const std::string s = suggest(p.unknown, p.known); !s.empty()) msg += " (did you mean '" + s + "'?)";
    }
    if (!p.known.empty()) msg += " (known: " + list(p.known) + ")";
    fail_at(cp + "." + p.key, msg);
  }

  void check_controllers() {
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < cfg_.controllers.size(); ++i) {
      ControllerConfig& ctl = cfg_.controllers[i];
      const std::string cp = ctl_path(i);
      if (const auto [it, fresh] = seen.emplace(ctl.name, i); !fresh)
        fail_at(cp + ".name", "duplicate controller name '" + ctl.name + "' (also " + ctl_path(it->second) + ")");
      if (ctl.backoff_max_ms < ctl.backoff_initial_ms)
        fail_at(cp + ".backoff_max_ms", std::to_string(ctl.backoff_max_ms) + " is below backoff_initial_ms " +
                                            std::to_string(ctl.backoff_initial_ms) +
                                            " (expected >= backoff_initial_ms)");
      resolve_transport(i, cp);
      if (ctl.bus.empty()) ctl.bus = cfg_.buses.front().name;
      require_bus(cp + ".bus", ctl.bus);
      for (const auto& [ch, bus] : ctl.channel_bus) {
        const std::string kp = cp + ".channel_bus." + std::to_string(ch);
        if (ch < 1 || ch > ctl.channels)
          fail_at(kp, "channel " + std::to_string(ch) + " does not exist (expected 1.." + std::to_string(ctl.channels) +
                          ")");
        require_bus(kp, bus);
      }
      for (std::size_t k = 0; k < ctl.ignore_channels.size(); ++k) {
        const auto ch = ctl.ignore_channels[k];
        if (ch < 1 || ch > ctl.channels)
          fail_at(
              cp + ".ignore_channels[" + std::to_string(k) + "]",
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
        fail_at(chp, "'" + buf.channel + "': no controller '" + cname + "'" +
                         (s.empty() ? "" : " (did you mean '" + s + "'?)") + " (known: " + list(names) + ")");
      }
      if (number < 1 || number > it->channels)
        fail_at(chp, "'" + buf.channel + "': controller '" + cname + "' has channels 1.." +
                         std::to_string(it->channels) + " (channel numbers are 1-based)");
      if (const eqd::io::Transport* t = eqd::io::find_transport(it->transport); t != nullptr && !t->commands())
        fail_at(chp, "'" + buf.channel + "': controller '" + cname + "' uses transport " + it->transport +
                         ", which eqd reads but cannot command: its channels are test channels, not buffers");
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
          fail_at(bp + ".bus", "'" + buf.bus + "' does not match the bus of channel " + buf.channel + " ('" +
                                   channel_bus + "', set by the controller's bus or channel_bus)");
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
      fail_at("control_loop.liveness_timeout_ms", std::to_string(cfg_.loop.liveness_timeout_ms) +
                                                      " ms is shorter than 3 control periods (expected >= " +
                                                      std::to_string(3 * cfg_.loop.period_ms) + " ms)");
    for (std::size_t i = 0; i < cfg_.buses.size(); ++i) {
      const BusConfig& b = cfg_.buses[i];
      const std::string bp = bus_path(i);
      const double update_ms = b.params.update_interval_s * 1000.0;
      if (update_ms < cfg_.loop.period_ms)
        fail_at(bp + ".update_interval_s",
                num(b.params.update_interval_s) + " s is shorter than control_loop.period_ms " +
                    std::to_string(cfg_.loop.period_ms) + " (expected >= " + num(cfg_.loop.period_ms / 1000.0) + " s)");
      for (const auto& ctl : cfg_.controllers) {
        bool on_bus = ctl.bus == b.name;
        for (const auto& [ch, bus] : ctl.channel_bus) on_bus = on_bus || bus == b.name;
        if (!on_bus) continue;
        const double min_ms = std::ceil(2.0 * 1000.0 / ctl.poll_hz);
        const std::string why = "controller '" + ctl.name + "' polls at " + num(ctl.poll_hz) +
                                " Hz (expected >= " + num(min_ms) + " ms, two poll periods)";
        // A controller eqd cannot command (neware) holds no lease: only its samples must stay fresh.
        const eqd::io::Transport* t = eqd::io::find_transport(ctl.transport);
        const bool commands = t == nullptr || t->commands();
        if (commands && static_cast<double>(b.params.lease_ms) < min_ms)
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
                                              "api.max_connections " +
                                              std::to_string(a.max_connections) + ")");
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

  /// Empty when `lease_ms` goes through the controller's lease register or signal unchanged, else why not.
  static std::string lease_problem(const ControllerConfig& ctl, std::uint32_t lease_ms) {
    const eqd::io::Transport* t = eqd::io::find_transport(ctl.transport);
    return t != nullptr && ctl.settings.get() != nullptr ? t->lease_problem(*ctl.settings.get(), lease_ms, ctl.name)
                                                         : std::string();
  }

  Config& cfg_;
  const Ctx& ctx_;
  bool by_name_;
};

}  // namespace

void resolve_and_validate(Config& cfg, const Ctx& c, bool by_name) { Checker(cfg, c, by_name).run(); }

}  // namespace detail
}  // namespace eqd::config
