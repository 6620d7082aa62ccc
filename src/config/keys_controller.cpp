/// @file keys_controller.cpp
/// The keys of controllers[] (the common ones and each transport's, see keys.cpp) and of equalization[].

#include <algorithm>

#include "eqd/io/transport.hpp"
#include "key_rules.hpp"

namespace eqd::config::detail {

const std::vector<Key<ControllerConfig>>& common_controller_keys() {
  using T = ControllerConfig;
  static const std::vector<Key<T>> k{
      string_key<T>(
          "name", [](T& o) -> std::string& { return o.name; }, check_name, true),
      real_key<T>(
          "poll_hz", [](T& o) -> double& { return o.poll_hz; }, Bound{0.1, 100.0}, "Hz"),
      real_key<T>(
          "efficiency", [](T& o) -> double& { return o.efficiency; }, Bound{0.5, 1.0}, ""),
      int_key<T>(
          "timeout_ms", [](T& o) -> int& { return o.timeout_ms; }, 10, 60000, "ms"),
      int_key<T>(
          "backoff_initial_ms", [](T& o) -> int& { return o.backoff_initial_ms; }, 10, 3600000, "ms"),
      int_key<T>(
          "backoff_max_ms", [](T& o) -> int& { return o.backoff_max_ms; }, 10, 3600000, "ms"),
      int_key<T>(
          "channels", [](T& o) -> std::uint16_t& { return o.channels; }, 1, 65535, ""),
      string_key<T>(
          "bus", [](T& o) -> std::string& { return o.bus; }, check_name),
      {"channel_bus", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         if (!n.IsMap()) fail(c, n.Mark(), p, "got " + describe(n) + " (expected a mapping {CHANNEL_NUMBER: BUS})");
         // Merges rather than replaces so that "--set controllers.X.channel_bus.3=aux" adds one entry.
         std::set<std::uint16_t> seen;
         for (auto it = n.begin(); it != n.end(); ++it) {
           const std::string kp = p + "." + (it->first.IsScalar() ? it->first.Scalar() : std::string("?"));
           const auto ch = static_cast<std::uint16_t>(read_int(it->first, c, kp, 1, 65535, ""));
           if (!seen.insert(ch).second)
             fail(c, it->first.Mark(), kp, "channel " + std::to_string(ch) + " listed twice");
           const std::string bus = read_string(it->second, c, kp);
           if (const char* e = check_name(bus))
             fail(c, it->second.Mark(), kp, "got " + quoted(bus) + " (expected " + e + ")");
           if (c.marks) (*c.marks)[p + "." + std::to_string(ch)] = it->first.Mark();
           o.channel_bus[ch] = bus;
         }
       }},
      {"ignore_channels", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         if (!n.IsSequence()) fail(c, n.Mark(), p, "got " + describe(n) + " (expected a list of channel numbers)");
         o.ignore_channels.clear();
         for (std::size_t i = 0; i < n.size(); ++i) {
           const std::string ip = p + "[" + std::to_string(i) + "]";
           const auto ch = static_cast<std::uint16_t>(read_int(n[i], c, ip, 1, 65535, ""));
           if (std::find(o.ignore_channels.begin(), o.ignore_channels.end(), ch) != o.ignore_channels.end())
             fail(c, n[i].Mark(), ip, "channel " + std::to_string(ch) + " listed twice");
           if (c.marks) (*c.marks)[ip] = n[i].Mark();
           o.ignore_channels.push_back(ch);
         }
       }},
  };
  return k;
}

namespace {

// A transport's key reads its value through this: the YAML node, with the configuration's errors.
class YamlValue final : public eqd::io::ValueReader {
 public:
  YamlValue(const YAML::Node& n, const Ctx& c, const std::string& p) : n_(n), c_(c), p_(p) {}
  std::string text() const override { return read_string(n_, c_, p_); }
  long long integer(long long lo, long long hi, const char* unit) const override {
    return read_int(n_, c_, p_, lo, hi, unit);
  }
  double real(double lo, double hi, const char* unit) const override {
    return read_double(n_, c_, p_, Bound{lo, hi}, unit);
  }
  [[noreturn]] void refuse(const std::string& expected) const override {
    fail(c_, n_.Mark(), p_,
         "got " + (n_.IsScalar() ? quoted(n_.Scalar()) : describe(n_)) + " (expected " + expected + ")");
  }

 private:
  const YAML::Node& n_;
  const Ctx& c_;
  const std::string& p_;
};

const eqd::io::Transport& transport_of(const ControllerConfig& ctl) {
  const eqd::io::Transport* t = eqd::io::find_transport(ctl.transport);
  if (t == nullptr)
    throw std::logic_error("controller '" + ctl.name + "': transport '" + ctl.transport + "' is not registered");
  return *t;
}

std::string transports_text(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : " | ") + n;
  return out;
}

// `transport`: switches the controller to that transport's default settings (a different transport's
// keys do not carry over); naming the transport it already has keeps its settings.
Key<ControllerConfig> transport_key() {
  return {"transport", false, [](ControllerConfig& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            const std::string s = read_string(n, c, p);
            if (eqd::io::find_transport(s) == nullptr)
              fail(c, n.Mark(), p,
                   "got " + quoted(s) + " (expected " + transports_text(eqd::io::transport_names()) + ")");
            if (s == o.transport && o.settings.get() != nullptr) return;
            o.transport = s;
            o.settings = transport_defaults(s);
          }};
}

}  // namespace

std::vector<Key<ControllerConfig>> controller_keys(const ControllerConfig& ctl) {
  using T = ControllerConfig;
  std::vector<Key<T>> keys{transport_key()};
  for (const Key<T>& k : common_controller_keys()) keys.push_back(k);
  const eqd::io::Transport& own = transport_of(ctl);
  for (const eqd::io::TransportKey& tk : own.keys()) {
    if (find_key(keys, tk.name) != nullptr)
      throw std::logic_error(std::string("transport '") + own.name() + "' key '" + tk.name + "' is a common key");
    keys.push_back({tk.name, false, [read = tk.read](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
                      read(*o.settings.get(), YamlValue(n, c, p));
                    }});
  }
  // Another transport's key on this controller is almost always a copy-paste slip or a wrong
  // transport; refusing it beats silently ignoring a setting the engineer believes is in use.
  for (const std::string& name : eqd::io::transport_names())
    for (const eqd::io::TransportKey& tk : eqd::io::find_transport(name)->keys()) {
      if (find_key(keys, tk.name) != nullptr) continue;
      keys.push_back(
          {tk.name, false, [key = std::string(tk.name)](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
             fail(c, n.Mark(), p,
                  "'" + key + "' applies only to transport: " + transports_text(eqd::io::transports_owning(key)) +
                      " (this controller uses " + o.transport + ")");
           }});
    }
  return keys;
}

std::vector<std::string> all_controller_key_names() {
  std::vector<std::string> out{"transport"};
  for (const auto& k : common_controller_keys()) out.emplace_back(k.name);
  for (const std::string& name : eqd::io::transport_names())
    for (const eqd::io::TransportKey& tk : eqd::io::find_transport(name)->keys())
      if (std::find(out.begin(), out.end(), tk.name) == out.end()) out.emplace_back(tk.name);
  return out;
}

// controllers: a list; each entry's transport is read first, since it decides which keys exist.
Key<Config> controllers_key() {
  return {"controllers", false, [](Config& cfg, const YAML::Node& n, const Ctx& c, const std::string& p) {
            if (!n.IsSequence())
              fail(c, n.Mark(), p, "got " + describe(n) + " (expected a list of entries '- key: value')");
            cfg.controllers.clear();
            for (std::size_t i = 0; i < n.size(); ++i) {
              const std::string ip = p + "[" + std::to_string(i) + "]";
              ControllerConfig ctl;
              if (n[i].IsMap())
                if (const YAML::Node t = n[i]["transport"]; t && !t.IsNull())
                  transport_key().set(ctl, t, c, join(ip, "transport"));
              decode_mapping(n[i], ip, controller_keys(ctl), ctl, c);
              cfg.controllers.push_back(std::move(ctl));
            }
          }};
}

const std::vector<Key<BufferConfig>>& buffer_keys() {
  using T = BufferConfig;
  static const std::vector<Key<T>> k{
      string_key<T>(
          "channel", [](T& o) -> std::string& { return o.channel; }, check_channel_ref, true),
      string_key<T>(
          "bus", [](T& o) -> std::string& { return o.bus; }, check_name),
      real_key<T>(
          "max_charge_W", [](T& o) -> double& { return o.limits.max_charge_W; }, kPowerMagnitude, "W", true),
      real_key<T>(
          "max_discharge_W", [](T& o) -> double& { return o.limits.max_discharge_W; }, kPowerMagnitude, "W", true),
      real_key<T>(
          "max_charge_A", [](T& o) -> double& { return o.limits.max_charge_A; }, kCurrentMagnitude, "A"),
      real_key<T>(
          "max_discharge_A", [](T& o) -> double& { return o.limits.max_discharge_A; }, kCurrentMagnitude, "A"),
      real_key<T>(
          "v_min_V", [](T& o) -> double& { return o.limits.v_min_V; }, kVoltage, "V", true),
      real_key<T>(
          "v_max_V", [](T& o) -> double& { return o.limits.v_max_V; }, kVoltagePositive, "V", true),
      real_key<T>(
          "hysteresis_V", [](T& o) -> double& { return o.limits.hysteresis_V; }, kVoltage, "V"),
      real_key<T>(
          "efficiency", [](T& o) -> double& { return o.limits.efficiency; }, Bound{0.5, 1.0}, ""),
      real_key<T>(
          "capacity_Wh", [](T& o) -> double& { return o.limits.capacity_Wh; }, Bound{0.0, 1.0e9}, "Wh"),
      real_key<T>(
          "soc_min_pct", [](T& o) -> double& { return o.limits.soc_min_pct; }, Bound{0.0, 100.0}, "%"),
      real_key<T>(
          "soc_max_pct", [](T& o) -> double& { return o.limits.soc_max_pct; }, Bound{0.0, 100.0}, "%"),
  };
  return k;
}

}  // namespace eqd::config::detail
