/// @file keys.cpp
/// The key tables: every key eqd accepts, its type, range and whether it is required. Ranges that
/// concern one value live here (so --set overrides get them too); checks across values live in
/// validate.cpp. Adding a key here without documenting it in config/eqd.yaml fails a unit test.
/// This file: the top level and the service sections (control_loop, api, metrics, history, discovery);
/// buses[] are in keys_bus.cpp, controllers[] and equalization[] in keys_controller.cpp, maps and
/// can_maps in keys_maps.cpp (key_rules.hpp: what they share).

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <set>

#include "eqd/io/modbus/transport.hpp"
#include "key_rules.hpp"

namespace eqd::config::detail {

const char* check_name(const std::string& s) { return s.empty() ? nullptr : eqd::io::check_name(s); }

const char* check_channel_ref(const std::string& s) {
  static const char* kExpected = "CONTROLLER/N with N the 1-based channel number, e.g. cab1/3";
  const auto slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == s.size()) return kExpected;
  if (check_name(s.substr(0, slash)) != nullptr) return kExpected;
  const std::string n = s.substr(slash + 1);
  if (n.size() > 5 || !std::all_of(n.begin(), n.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return kExpected;
  return nullptr;
}

namespace {

const char* check_abs_path(const std::string& s) { return s.front() == '/' ? nullptr : "an absolute path"; }

// A libpq connection URI: postgresql:// or postgres:// (the schemes libpq takes); empty: SQLite.
const char* check_pg_url(const std::string& s) {
  return s.empty() || s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0
             ? nullptr
             : "a PostgreSQL URI: postgresql://[user[:password]@][host][:port][/dbname][?param=value...]";
}

const char* check_log_level(const std::string& s) {
  static constexpr std::array<const char*, 7> kLevels{"trace", "debug", "info", "warn", "error", "critical", "off"};
  for (const char* l : kLevels)
    if (s == l) return nullptr;
  return "one of trace, debug, info, warn, error, critical, off";
}

bool is_ipv4(const std::string& s) {
  in_addr a{};
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
  in6_addr a{};
  return ::inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// metrics.listen goes to civetweb, which takes an IP literal only (IPv6 in brackets), not a name.
const char* check_listen(const std::string& s) {
  const auto colon = s.rfind(':');
  static const char* kExpected =
      "HOST:PORT with HOST an IPv4 address or [IPv6 address] and PORT 1..65535, e.g. 127.0.0.1:9860";
  if (colon == std::string::npos || colon == 0) return kExpected;
  const std::string host = s.substr(0, colon);
  const bool host_ok = is_ipv4(host) || (host.size() > 2 && host.front() == '[' && host.back() == ']' &&
                                         is_ipv6(host.substr(1, host.size() - 2)));
  if (!host_ok) return kExpected;
  const std::string port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return kExpected;
  const long p = std::stol(port);
  return (p >= 1 && p <= 65535) ? nullptr : kExpected;
}

template <class T>
Key<Config> list_key(
    const char* name, std::vector<T> Config::*member, const std::vector<Key<T>>& (*keys)(),
    std::function<void(T&, const std::set<std::string>&, const YAML::Node&, const Ctx&, const std::string&)> post =
        nullptr) {
  return {name, false, [member, keys, post](Config& cfg, const YAML::Node& n, const Ctx& c, const std::string& p) {
            if (!n.IsSequence())
              fail(c, n.Mark(), p, "got " + describe(n) + " (expected a list of entries '- key: value')");
            auto& out = cfg.*member;
            out.clear();
            for (std::size_t i = 0; i < n.size(); ++i) {
              const std::string ip = p + "[" + std::to_string(i) + "]";
              T obj;
              const auto given = decode_mapping(n[i], ip, keys(), obj, c);
              if (post) post(obj, given, n[i], c, ip);
              out.push_back(std::move(obj));
            }
          }};
}

}  // namespace

const std::vector<Key<ControlLoopConfig>>& loop_keys() {
  using T = ControlLoopConfig;
  static const std::vector<Key<T>> k{
      int_key<T>(
          "period_ms", [](T& o) -> int& { return o.period_ms; }, 10, 1000, "ms"),
      int_key<T>(
          "shutdown_timeout_ms", [](T& o) -> int& { return o.shutdown_timeout_ms; }, 0, 600000, "ms"),
      int_key<T>(
          "liveness_timeout_ms", [](T& o) -> int& { return o.liveness_timeout_ms; }, 100, 60000, "ms"),
      int_key<T>(
          "realtime_priority", [](T& o) -> int& { return o.realtime_priority; }, 0, 99, ""),
      bool_key<T>("lock_memory", [](T& o) -> bool& { return o.lock_memory; }),
  };
  return k;
}

const std::vector<Key<ApiConfig>>& api_keys() {
  using T = ApiConfig;
  static const std::vector<Key<T>> k{
      string_key<T>(
          "socket", [](T& o) -> std::string& { return o.socket_path; }, check_abs_path),
      string_key<T>(
          "group", [](T& o) -> std::string& { return o.group; }, check_name),
      string_key<T>(
          "admin_group", [](T& o) -> std::string& { return o.admin_group; }, check_name),
      int_key<T>(
          "idle_timeout_ms", [](T& o) -> int& { return o.idle_timeout_ms; }, 100, 86400000, "ms"),
      int_key<T>(
          "max_connections", [](T& o) -> int& { return o.max_connections; }, 2, 10000, ""),
      int_key<T>(
          "max_connections_per_uid", [](T& o) -> int& { return o.max_connections_per_uid; }, 1, 10000, ""),
      int_key<T>(
          "reserved_connections", [](T& o) -> int& { return o.reserved_connections; }, 0, 9999, ""),
  };
  return k;
}

const std::vector<Key<MetricsConfig>>& metrics_keys() {
  using T = MetricsConfig;
  static const std::vector<Key<T>> k{
      bool_key<T>("enabled", [](T& o) -> bool& { return o.enabled; }),
      string_key<T>(
          "listen", [](T& o) -> std::string& { return o.listen; }, check_listen),
      bool_key<T>("per_channel", [](T& o) -> bool& { return o.per_channel; }),
  };
  return k;
}

// A text key whose empty value ("") means "not set" (history.url: SQLite; history.instance: the host
// name), so that the shipped file can show it without turning it on.
template <class T, class Get>
Key<T> optional_text(const char* name, Get get, const char* (*check)(const std::string&)) {
  return {name, false, [get, check](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            if (n.IsScalar() && n.Scalar().empty()) {
              get(o).clear();
              return;
            }
            std::string s = read_string(n, c, p);
            if (const char* expected = check(s))
              fail(c, n.Mark(), p, "got " + quoted(s) + " (expected " + expected + ")");
            get(o) = std::move(s);
          }};
}

const std::vector<Key<HistoryConfig>>& history_keys() {
  using T = HistoryConfig;
  static const std::vector<Key<T>> k{
      bool_key<T>("enabled", [](T& o) -> bool& { return o.enabled; }),
      // Not given: <state_dir>/history.db (decided where the store is opened, so it follows state_dir).
      string_key<T>(
          "path", [](T& o) -> std::string& { return o.path; }, check_abs_path),
      int_key<T>(
          "retention_days", [](T& o) -> int& { return o.retention_days; }, 1, 36500, "days"),
      optional_text<T>(
          "url", [](T& o) -> std::string& { return o.url; }, check_pg_url),
      optional_text<T>(
          "instance", [](T& o) -> std::string& { return o.instance; }, check_name),
  };
  return k;
}

namespace {

// A DNS-SD service type: "_name._tcp" (or _udp), name of letters, digits and '-' (RFC 6335: <= 15).
const char* check_service_type(const std::string& s) {
  static const char* kExpected = "a DNS-SD service type like _eqd-ctrl._tcp";
  if (s.size() < 7 || s.front() != '_') return kExpected;
  const std::string suffix = s.substr(s.size() - 5);
  if (suffix != "._tcp" && suffix != "._udp") return kExpected;
  const std::string name = s.substr(1, s.size() - 6);
  if (name.empty() || name.size() > 15 || name.front() == '-' || name.back() == '-') return kExpected;
  const bool ok = std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-';
  });
  return ok ? nullptr : kExpected;
}

// Adopt rules are glob patterns over controller names: name characters plus '*', '?' and '[...]'.
const char* check_adopt_pattern(const std::string& s) {
  const bool ok = !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
           ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '!';
  });
  return ok ? nullptr : "a glob pattern over controller names (letters, digits, '_', '-', '*', '?', '[...]')";
}

const std::vector<Key<AdoptRule>>& adopt_rule_keys() {
  using T = AdoptRule;
  static const std::vector<Key<T>> k{
      string_key<T>(
          "match", [](T& o) -> std::string& { return o.match; }, check_adopt_pattern, true),
      string_key<T>(
          "bus", [](T& o) -> std::string& { return o.bus; }, check_name),
  };
  return k;
}

// discovery.adopt: a list whose entries are a plain glob pattern ("cab*": adopted on the bus they
// announce) or a mapping {match: PATTERN, bus: BUS} (adopted on BUS, whatever they announce).
Key<DiscoveryConfig> adopt_key() {
  return {"adopt", false, [](DiscoveryConfig& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            if (!n.IsSequence())
              fail(c, n.Mark(), p,
                   "got " + describe(n) + " (expected a list of glob patterns or {match: PATTERN, bus: BUS})");
            std::vector<AdoptRule> out;
            for (std::size_t i = 0; i < n.size(); ++i) {
              const std::string ip = p + "[" + std::to_string(i) + "]";
              AdoptRule r;
              if (n[i].IsMap()) {
                decode_mapping(n[i], ip, adopt_rule_keys(), r, c);
              } else {
                r.match = read_string(n[i], c, ip);
                if (const char* e = check_adopt_pattern(r.match))
                  fail(c, n[i].Mark(), ip,
                       "got " + quoted(r.match) + " (expected " + e + ", or {match: PATTERN, bus: BUS})");
              }
              if (c.marks) (*c.marks)[ip] = n[i].Mark();
              out.push_back(std::move(r));
            }
            o.adopt = std::move(out);
          }};
}

Key<DiscoveryConfig> string_list_key(const char* name, std::vector<std::string> DiscoveryConfig::*member,
                                     const char* (*check)(const std::string&), bool non_empty) {
  return {name, false,
          [member, check, non_empty](DiscoveryConfig& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            if (!n.IsSequence()) fail(c, n.Mark(), p, "got " + describe(n) + " (expected a list of strings)");
            if (non_empty && n.size() == 0) fail(c, n.Mark(), p, "got an empty list (expected at least one entry)");
            std::vector<std::string> out;
            for (std::size_t i = 0; i < n.size(); ++i) {
              const std::string ip = p + "[" + std::to_string(i) + "]";
              std::string s = read_string(n[i], c, ip);
              if (const char* e = check(s)) fail(c, n[i].Mark(), ip, "got " + quoted(s) + " (expected " + e + ")");
              out.push_back(std::move(s));
            }
            o.*member = std::move(out);
          }};
}

}  // namespace

const std::vector<Key<DiscoveryConfig>>& discovery_keys() {
  using T = DiscoveryConfig;
  static const std::vector<Key<T>> k{
      bool_key<T>("enabled", [](T& o) -> bool& { return o.enabled; }),
      string_list_key("service_types", &T::service_types, check_service_type, true),
      adopt_key(),
      int_key<T>(
          "cache_expiry_s", [](T& o) -> int& { return o.cache_expiry_s; }, 60, 10 * 365 * 86400, "s"),
      bool_key<T>("publish", [](T& o) -> bool& { return o.publish; }),
      int_key<T>(
          "debounce_ms", [](T& o) -> int& { return o.debounce_ms; }, 0, 60000, "ms"),
  };
  return k;
}

const std::vector<Key<Config>>& top_keys() {
  using T = Config;
  static const std::vector<Key<T>> k{
      string_key<T>(
          "log_level", [](T& o) -> std::string& { return o.log_level; }, check_log_level),
      string_key<T>(
          "state_dir", [](T& o) -> std::string& { return o.state_dir; }, check_abs_path),
      {"control_loop", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         decode_mapping(n, p, loop_keys(), o.loop, c);
       }},
      {"api", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         decode_mapping(n, p, api_keys(), o.api, c);
       }},
      {"metrics", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         decode_mapping(n, p, metrics_keys(), o.metrics, c);
       }},
      {"discovery", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         decode_mapping(n, p, discovery_keys(), o.discovery, c);
       }},
      {"history", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         decode_mapping(n, p, history_keys(), o.history, c);
       }},
      list_key<BusConfig>("buses", &T::buses, &bus_keys),
      controllers_key(),
      list_key<BufferConfig>("equalization", &T::buffers, &buffer_keys),
      {"can_maps", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         if (!n.IsMap()) fail(c, n.Mark(), p, "got " + describe(n) + " (expected a mapping {MAP_NAME: {...}})");
         o.can_maps.clear();
         for (auto it = n.begin(); it != n.end(); ++it) {
           const std::string name = read_string(it->first, c, p);
           const std::string mp = p + "." + name;
           if (const char* e = check_name(name))
             fail(c, it->first.Mark(), mp, "got " + quoted(name) + " (expected " + e + ")");
           if (name == eqd::io::can::kDefaultCanProfile || name == eqd::io::can::kDefaultCanFdProfile)
             fail(c, it->first.Mark(), mp, "'" + name + "' is a built-in CAN profile's name");
           if (o.can_maps.count(name) != 0) fail(c, it->first.Mark(), mp, "duplicate CAN map name '" + name + "'");
           eqd::io::can::SignalMap m;
           m.name = name;
           m.frames.clear();
           decode_mapping(it->second, mp, can_map_keys(), m, c);
           o.can_maps.emplace(name, std::move(m));
         }
       }},
      {"maps", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         if (!n.IsMap()) fail(c, n.Mark(), p, "got " + describe(n) + " (expected a mapping {MAP_NAME: {...}})");
         o.maps.clear();
         for (auto it = n.begin(); it != n.end(); ++it) {
           const std::string name = read_string(it->first, c, p);
           const std::string mp = p + "." + name;
           if (const char* e = check_name(name))
             fail(c, it->first.Mark(), mp, "got " + quoted(name) + " (expected " + e + ")");
           if (name == eqd::io::modbus::kDefaultProfileName)
             fail(c, it->first.Mark(), mp,
                  std::string("'") + eqd::io::modbus::kDefaultProfileName + "' is the built-in profile's name");
           if (o.maps.count(name) != 0) fail(c, it->first.Mark(), mp, "duplicate map name '" + name + "'");
           mb::RegisterMap m;
           m.name = name;
           decode_mapping(it->second, mp, map_keys(), m, c);
           o.maps.emplace(name, std::move(m));
         }
       }},
  };
  return k;
}

}  // namespace eqd::config::detail
