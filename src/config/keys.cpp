/// @file keys.cpp
/// The key tables: every key eqd accepts, its type, range and whether it is required. Ranges that
/// concern one value live here (so --set overrides get them too); checks across values live in
/// validate.cpp. Adding a key here without documenting it in config/eqd.yaml fails a unit test.

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <limits>
#include <set>

#include "eqd/core/bus_law.hpp"
#include "eqd/core/schedule.hpp"
#include "eqd/core/schedule_text.hpp"
#include "eqd/io/modbus/transport.hpp"
#include "yaml_read.hpp"

namespace eqd::config::detail {

namespace mb = eqd::io::modbus;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr Bound kAny{};
constexpr Bound kNonNeg{0.0, kInf, false};
constexpr Bound kPositive{0.0, kInf, true};
// Physical bounds (eqd::core::kMax*): the same as core::validate() applies to the API and state file.
constexpr Bound kPower{-eqd::core::kMaxPower_W, eqd::core::kMaxPower_W};
constexpr Bound kPowerMagnitude{0.0, eqd::core::kMaxPower_W};
constexpr Bound kPowerPositive{0.0, eqd::core::kMaxPower_W, true};
constexpr Bound kVoltage{0.0, eqd::core::kMaxVoltage_V};
constexpr Bound kVoltagePositive{0.0, eqd::core::kMaxVoltage_V, true};
constexpr Bound kSignedVoltage{-eqd::core::kMaxVoltage_V, eqd::core::kMaxVoltage_V};
constexpr Bound kCurrentMagnitude{0.0, eqd::core::kMaxCurrent_A};
constexpr Bound kCurrentPositive{0.0, eqd::core::kMaxCurrent_A, true};

// Names appear in channel names ("cab1/3") and in --set paths ("buses.main.tau_s"): keep them free
// of '/', '.', spaces and YAML-special characters.
const char* check_name(const std::string& s) { return s.empty() ? nullptr : eqd::io::check_name(s); }

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

template <class E, std::size_t N>
Key<mb::Field> enum_field_key(const char* name, E mb::Field::*member, std::array<std::pair<const char*, E>, N> values) {
  return {name, false, [member, values](mb::Field& f, const YAML::Node& n, const Ctx& c, const std::string& p) {
            const std::string s = read_string(n, c, p);
            std::string expected;
            for (const auto& [text, v] : values) {
              if (s == text) {
                f.*member = v;
                return;
              }
              expected += (expected.empty() ? "" : " | ") + std::string(text);
            }
            fail(c, n.Mark(), p, "got " + quoted(s) + " (expected " + expected + ")");
          }};
}

Key<mb::RegisterMap> map_field(const char* name, mb::Field mb::RegisterMap::*member, bool required) {
  return {name, required, [member](mb::RegisterMap& m, const YAML::Node& n, const Ctx& c, const std::string& p) {
            mb::Field f;
            decode_mapping(n, p, field_keys(), f, c);
            m.*member = f;
          }};
}

Key<mb::RegisterMap> map_opt_field(const char* name, std::optional<mb::Field> mb::RegisterMap::*member) {
  return {name, false, [member](mb::RegisterMap& m, const YAML::Node& n, const Ctx& c, const std::string& p) {
            mb::Field f;
            decode_mapping(n, p, field_keys(), f, c);
            m.*member = f;
          }};
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

namespace {

// days: "weekdays", "weekends", "all", a day ("mon".."sun") or a list of days. 0: not days.
std::uint8_t parse_days(const YAML::Node& n, const Ctx& c, const std::string& p) {
  const auto one = [&](const YAML::Node& d, const std::string& dp) -> std::uint8_t {
    const std::string s = read_string(d, c, dp);
    if (const std::uint8_t days = core::parse_day_word(s)) return days;
    fail(c, d.Mark(), dp, "got " + quoted(s) + " (expected " + core::kDayWordsExpected + ")");
  };
  if (!n.IsSequence()) return one(n, p);
  if (n.size() == 0) fail(c, n.Mark(), p, "got an empty list (expected at least one day)");
  std::uint8_t days = 0;
  for (std::size_t i = 0; i < n.size(); ++i) days |= one(n[i], p + "[" + std::to_string(i) + "]");
  return days;
}

}  // namespace

// The keys of one window of buses[].schedule (docs/configuration.md, "Target schedules").
const std::vector<Key<core::ScheduleWindow>>& schedule_window_keys() {
  using T = core::ScheduleWindow;
  const auto time_key = [](const char* name, bool is_end) -> Key<T> {
    return {name, true, [is_end](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
              const std::string s = read_string(n, c, p);
              const int m = core::parse_hhmm(s, is_end);
              if (m < 0)
                fail(c, n.Mark(), p,
                     "got " + quoted(s) + " (expected " + (is_end ? core::kHhmmEndExpected : core::kHhmmStartExpected) +
                         ")");
              (is_end ? o.end_min : o.start_min) = m;
            }};
  };
  static const std::vector<Key<T>> k{
      {"days", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) { o.days = parse_days(n, c, p); }},
      time_key("start", false),
      time_key("end", true),
      real_key<T>(
          "target_W", [](T& o) -> double& { return o.target_W; }, Bound{-core::kMaxPower_W, core::kMaxPower_W}, "W"),
      real_key<T>(
          "import_limit_W", [](T& o) -> double& { return o.import_limit_W; }, Bound{0.0, core::kMaxPower_W}, "W"),
      real_key<T>(
          "export_limit_W", [](T& o) -> double& { return o.export_limit_W; }, Bound{0.0, core::kMaxPower_W}, "W"),
  };
  return k;
}

namespace {

// buses[].schedule: a list of windows, each with a target (balance) or limits (caps).
Key<BusConfig> schedule_key() {
  return {"schedule", false, [](BusConfig& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            if (!n.IsSequence()) fail(c, n.Mark(), p, "got " + describe(n) + " (expected a list of windows)");
            if (n.size() > core::kMaxScheduleWindows)
              fail(c, n.Mark(), p,
                   "got " + std::to_string(n.size()) + " windows (at most " +
                       std::to_string(core::kMaxScheduleWindows) + " per bus)");
            std::vector<core::ScheduleWindow> out;
            for (std::size_t i = 0; i < n.size(); ++i) {
              const std::string ip = p + "[" + std::to_string(i) + "]";
              core::ScheduleWindow w;
              const std::set<std::string> given = decode_mapping(n[i], ip, schedule_window_keys(), w, c);
              const bool target = given.count("target_W") != 0;
              const bool caps = given.count("import_limit_W") != 0 || given.count("export_limit_W") != 0;
              if (const char* why = core::window_aim_error(target, caps)) fail(c, n[i].Mark(), ip, why);
              w.mode = caps ? core::BusMode::caps : core::BusMode::balance;
              if (const char* why = core::validate(w)) fail(c, n[i].Mark(), ip, why);
              out.push_back(w);
            }
            o.schedule = std::move(out);
          }};
}

// "balance or caps": the names of a choice row, for messages.
std::string choice_list(const core::RuntimeParam& r) {
  std::string l;
  for (std::size_t i = 0; i < r.choice_count; ++i)
    l += std::string(i == 0 ? "" : (i + 1 == r.choice_count ? " or " : ", ")) + r.choice_names[i];
  return l;
}

// The keys of the run-time parameter table (core::kRuntimeParams): one row there is one key here.
// tau_s accepts any positive value here: its 10..20 s range depends on allow_any_tau, which may
// come later in the mapping, so validate.cpp checks it.
std::vector<Key<BusConfig>> runtime_param_keys() {
  std::vector<Key<BusConfig>> k;
  for (const core::RuntimeParam& r : core::kRuntimeParams) {
    const Bound b{r.min, r.max, r.min_exclusive};
    k.push_back({r.name, false, [&r, b](BusConfig& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
                   if (r.choice != nullptr) {
                     const std::string s = read_string(n, c, p);
                     const int i = core::find_runtime_choice(r, s);
                     if (i < 0) fail(c, n.Mark(), p, "got " + quoted(s) + " (expected " + choice_list(r) + ")");
                     core::set_runtime_value(r, o.params, i);
                     return;
                   }
                   core::set_runtime_value(r, o.params,
                                           r.flag ? (read_bool(n, c, p) ? 1.0 : 0.0) : read_double(n, c, p, b, r.unit));
                 }});
  }
  return k;
}

}  // namespace

const std::vector<Key<MeterConfig>>& meter_keys() {
  using T = MeterConfig;
  static const std::vector<Key<T>> k{
      {"transport", true,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         const std::string s = read_string(n, c, p);
         if (s != "sunspec" && s != "modbus")
           fail(c, n.Mark(), p,
                "got " + quoted(s) + " (expected sunspec (a SunSpec meter, models 201-204) or modbus (one register))");
         o.transport = s;
       }},
      {"host", true,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         std::string h = read_string(n, c, p);
         if (!eqd::io::is_host(h))
           fail(c, n.Mark(), p,
                "got " + quoted(h) + " (expected an IPv4 or IPv6 address or an RFC 1123 host name, e.g. 192.0.2.50)");
         o.host = std::move(h);
       }},
      int_key<T>(
          "port", [](T& o) -> std::uint16_t& { return o.port; }, 1, 65535, ""),
      int_key<T>(
          "unit_id", [](T& o) -> int& { return o.unit_id; }, 0, 247, ""),
      {"base_address", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         const std::string t = read_string(n, c, p);
         if (t == "auto")
           o.base_address = -1;
         else if (t == "0" || t == "40000" || t == "50000")
           o.base_address = std::stoi(t);
         else
           fail(c, n.Mark(), p, "got " + quoted(t) + " (expected auto | 0 | 40000 | 50000)");
       }},
      {"power", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         mb::Field f;
         f.table = mb::Table::holding;  // meters mostly serve holding registers
         const std::set<std::string> given = decode_mapping(n, p, field_keys(), f, c);
         if (given.count("stride") != 0)
           fail(c, n["stride"].Mark(), join(p, "stride"), "a meter has no channels (no stride)");
         if (!(f.scale != 0.0)) fail(c, n.Mark(), join(p, "scale"), "got 0 (expected a scale other than 0)");
         o.power = f;
       }},
      {"sign", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         const std::string s = read_string(n, c, p);
         if (s != "import_positive" && s != "export_positive")
           fail(c, n.Mark(), p,
                "got " + quoted(s) + " (expected import_positive (> 0 = drawn from the grid) or export_positive)");
         o.export_positive = s == "export_positive";
       }},
      real_key<T>(
          "poll_hz", [](T& o) -> double& { return o.poll_hz; }, Bound{0.1, 10.0}, "Hz"),
      int_key<T>(
          "timeout_ms", [](T& o) -> int& { return o.timeout_ms; }, 10, 60000, "ms"),
      real_key<T>(
          "tolerance_W", [](T& o) -> double& { return o.tolerance_W; }, kPowerMagnitude, "W"),
      real_key<T>(
          "persistence_s", [](T& o) -> double& { return o.persistence_s; }, Bound{0.0, 3600.0}, "s"),
      int_key<T>(
          "max_age_ms", [](T& o) -> int& { return o.max_age_ms; }, 100, 3600000, "ms"),
      bool_key<T>("trim", [](T& o) -> bool& { return o.trim; }),
      real_key<T>(
          "trim_tau_s", [](T& o) -> double& { return o.trim_tau_s; }, Bound{10.0, 3600.0}, "s"),
      real_key<T>(
          "trim_max_W", [](T& o) -> double& { return o.trim_max_W; }, Bound{0.0, eqd::core::kMaxPower_W, true}, "W"),
  };
  return k;
}

std::pair<std::string, std::string> meter_problem(const MeterConfig& m) {
  if (m.transport == "sunspec" && m.power)
    return {"power",
            "'power' applies only to meter transport: modbus (this meter uses sunspec: W and W_SF of model "
            "201-204)"};
  if (m.transport == "modbus" && m.base_address != -1)
    return {"base_address", "'base_address' applies only to meter transport: sunspec (this meter uses modbus)"};
  if (m.transport == "modbus" && !m.power)
    return {"power", "missing required key 'power' (meter transport modbus: the register of the grid power)"};
  // As a channel's max_age_ms: one late reading must not make the meter 'not ok'.
  if (m.max_age_ms < 2000.0 / m.poll_hz)
    return {"max_age_ms", "max_age_ms " + std::to_string(m.max_age_ms) + " is shorter than two poll periods (" +
                              num(2000.0 / m.poll_hz) + " ms at poll_hz " + num(m.poll_hz) + ")"};
  return {};
}

namespace {

// buses[].meter: a mapping; its transport decides which keys apply.
Key<BusConfig> meter_key() {
  return {"meter", false, [](BusConfig& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            MeterConfig m;
            decode_mapping(n, p, meter_keys(), m, c);
            if (const auto [key, why] = meter_problem(m); !key.empty()) {
              const YAML::Node at = n[key];
              fail(c, at ? at.Mark() : n.Mark(), join(p, key), why);
            }
            o.meter = std::move(m);
          }};
}

}  // namespace

const std::vector<Key<BusConfig>>& bus_keys() {
  using T = BusConfig;
  static const std::vector<Key<T>> k = [] {
    std::vector<Key<T>> keys{
        string_key<T>(
            "name", [](T& o) -> std::string& { return o.name; }, check_name, true),
        {"law", false,
         [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
           // The registered laws (src/core/bus_law.cpp); the law object is built with the control core.
           const std::string s = read_string(n, c, p);
           if (!core::parse_law_kind(s.c_str(), o.params.law))
             fail(c, n.Mark(), p, "got " + quoted(s) + " (expected a control law: " + core::law_names() + ")");
         }},
        real_key<T>(
            "slew_W_per_s", [](T& o) -> double& { return o.params.slew_W_per_s; }, kPowerMagnitude, "W/s"),
        real_key<T>(
            "flip_dwell_s", [](T& o) -> double& { return o.params.flip_dwell_s; }, kNonNeg, "s"),
        real_key<T>(
            "update_interval_s", [](T& o) -> double& { return o.params.update_interval_s; }, kPositive, "s"),
        real_key<T>(
            "trim_tau_s", [](T& o) -> double& { return o.params.trim_tau_s; }, kNonNeg, "s"),
        real_key<T>(
            "trim_max_fraction", [](T& o) -> double& { return o.params.trim_max_fraction; }, Bound{0.0, 0.5}, ""),
        real_key<T>(
            "hold_max_s", [](T& o) -> double& { return o.params.hold_max_s; }, kNonNeg, "s"),
        int_key<T>(
            "max_age_ms", [](T& o) -> std::int64_t& { return o.params.max_age_ms; }, 1, 3600000, "ms"),
        int_key<T>(
            "lease_ms", [](T& o) -> std::uint32_t& { return o.params.lease_ms; }, 1, 3600000, "ms"),
        bool_key<T>("allow_any_tau", [](T& o) -> bool& { return o.allow_any_tau; }),
        schedule_key(),
        meter_key(),
        real_key<T>(
            "forecast_horizon_s", [](T& o) -> double& { return o.params.forecast_horizon_s; }, Bound{1.0, 120.0}, "s"),
    };
    for (Key<T>& r : runtime_param_keys()) keys.push_back(std::move(r));
    return keys;
  }();
  return k;
}

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

namespace {

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

}  // namespace

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

const std::vector<Key<mb::Field>>& field_keys() {
  using T = mb::Field;
  using P = std::pair<const char*, mb::Table>;
  using D = std::pair<const char*, mb::DataType>;
  using W = std::pair<const char*, mb::WordOrder>;
  static const std::vector<Key<T>> k{
      enum_field_key<mb::Table, 2>("table", &T::table,
                                   {P{"input", mb::Table::input}, P{"holding", mb::Table::holding}}),
      int_key<T>(
          "address", [](T& o) -> std::uint16_t& { return o.address; }, 0, 65535, "", true),
      enum_field_key<mb::DataType, 5>(
          "type", &T::type,
          {D{"u16", mb::DataType::u16}, D{"i16", mb::DataType::i16}, D{"u32", mb::DataType::u32},
           D{"i32", mb::DataType::i32}, D{"f32", mb::DataType::f32}}),
      enum_field_key<mb::WordOrder, 2>("word_order", &T::word_order,
                                       {W{"big", mb::WordOrder::big}, W{"little", mb::WordOrder::little}}),
      real_key<T>(
          "scale", [](T& o) -> double& { return o.scale; }, kAny, ""),
      real_key<T>(
          "offset", [](T& o) -> double& { return o.offset; }, kAny, ""),
      int_key<T>(
          "stride", [](T& o) -> std::uint16_t& { return o.stride; }, 0, 65535, ""),
  };
  return k;
}

const std::vector<Key<mb::PlausibleRange>>& range_keys() {
  using T = mb::PlausibleRange;
  static const std::vector<Key<T>> k{
      real_key<T>(
          "voltage_min_V", [](T& o) -> double& { return o.voltage_min_V; }, kSignedVoltage, "V"),
      real_key<T>(
          "voltage_max_V", [](T& o) -> double& { return o.voltage_max_V; }, kSignedVoltage, "V"),
      real_key<T>(
          "current_abs_max_A", [](T& o) -> double& { return o.current_abs_max_A; }, kCurrentPositive, "A"),
      real_key<T>(
          "power_abs_max_W", [](T& o) -> double& { return o.power_abs_max_W; }, kPowerPositive, "W"),
  };
  return k;
}

const std::vector<std::string>& map_field_names() {
  static const std::vector<std::string> k{"voltage",      "current",          "power",           "state",
                                          "fault_code",   "eq_flag",          "sample_counter",  "forecast_power",
                                          "step_index",   "cycle_index",      "cmd_enable",      "cmd_setpoint",
                                          "cmd_lease",    "heartbeat",        "profile_version", "device_channel_count",
                                          "capabilities", "heartbeat_timeout"};
  return k;
}

const std::vector<Key<mb::RegisterMap>>& map_keys() {
  using T = mb::RegisterMap;
  static const std::vector<Key<T>> k{
      int_key<T>(
          "channel_count", [](T& o) -> std::uint16_t& { return o.channel_count; }, 1, 65535, ""),
      map_field("voltage", &T::voltage, true),
      map_field("current", &T::current, true),
      map_opt_field("power", &T::power),
      map_field("state", &T::state, true),
      map_opt_field("fault_code", &T::fault_code),
      map_opt_field("eq_flag", &T::eq_flag),
      map_opt_field("sample_counter", &T::sample_counter),
      map_opt_field("forecast_power", &T::forecast_power),
      map_opt_field("step_index", &T::step_index),
      map_opt_field("cycle_index", &T::cycle_index),
      map_field("cmd_enable", &T::cmd_enable, true),
      map_field("cmd_setpoint", &T::cmd_setpoint, true),
      {"cmd_lease", false,
       [](T& m, const YAML::Node& n, const Ctx& c, const std::string& p) {
         mb::Field f;
         const auto given = decode_mapping(n, p, field_keys(), f, c);
         // The lease is written in ms; a device that counts seconds with no scale would hold a 5000 ms
         // lease for 5000 s. The unit is the device's, so the map must say it rather than default it.
         if (given.count("scale") == 0)
           fail(c, n.Mark(), p,
                "give 'scale' explicitly: the lease is written in ms, so scale is ms per count (1 for a device "
                "that counts ms, 1000 for one that counts seconds)");
         m.cmd_lease = f;
       }},
      map_opt_field("heartbeat", &T::heartbeat),
      map_opt_field("profile_version", &T::profile_version),
      int_key<T>(
          "expected_profile_version", [](T& o) -> std::uint16_t& { return o.expected_profile_version; }, 1, 65535, ""),
      map_opt_field("device_channel_count", &T::device_channel_count),
      map_opt_field("capabilities", &T::capabilities),
      map_opt_field("heartbeat_timeout", &T::heartbeat_timeout),
      {"state_codes", false,
       [](T& m, const YAML::Node& n, const Ctx& c, const std::string& p) {
         // Index = the device's raw state code; value = eqd's state, by name or number.
         static constexpr std::array<const char*, 6> kStates{"idle",  "running",    "paused",
                                                             "fault", "equalizing", "offline"};
         if (!n.IsSequence() || n.size() == 0)
           fail(c, n.Mark(), p, "got " + describe(n) + " (expected a non-empty list of eqd states, index = raw code)");
         m.state_codes.clear();
         for (std::size_t i = 0; i < n.size(); ++i) {
           const std::string ip = p + "[" + std::to_string(i) + "]";
           const std::string s = read_string(n[i], c, ip);
           const auto it = std::find(kStates.begin(), kStates.end(), s);
           if (it != kStates.end()) {
             m.state_codes.push_back(static_cast<std::uint8_t>(it - kStates.begin()));
           } else {
             // Not a name: a number 0..5, else the error says that names are accepted too (and which was meant).
             constexpr const char* kExpected = "or a state name: idle, running, paused, fault, equalizing, offline";
             const std::string near = suggest(s, {kStates.begin(), kStates.end()});  // never a number
             if (!near.empty())
               fail(c, n[i].Mark(), ip,
                    "got " + quoted(s) + " (expected a whole number 0..5 " + kExpected + "; did you mean '" + near +
                        "'?)");
             m.state_codes.push_back(static_cast<std::uint8_t>(read_int(n[i], c, ip, 0, 5, kExpected)));
           }
         }
       }},
      {"range", false,
       [](T& m, const YAML::Node& n, const Ctx& c, const std::string& p) {
         decode_mapping(n, p, range_keys(), m.range, c);
       }},
  };
  return k;
}

// CAN signal maps: lists of frames and of signals (DBC-like), so that positions of errors are
// "can_maps.NAME.frames[i].signals[j].KEY".
namespace {
template <class T, class Item>
Key<T> can_list_key(const char* name, std::vector<Item> T::*member, const std::vector<Key<Item>>& (*keys)()) {
  return {name, false, [member, keys](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            if (!n.IsSequence())
              fail(c, n.Mark(), p, "got " + describe(n) + " (expected a list of entries '- key: value')");
            (o.*member).clear();
            for (std::size_t i = 0; i < n.size(); ++i) {
              Item item;
              decode_mapping(n[i], p + "[" + std::to_string(i) + "]", keys(), item, c);
              (o.*member).push_back(std::move(item));
            }
          }};
}
}  // namespace

const std::vector<Key<eqd::io::can::Signal>>& can_signal_keys() {
  using T = eqd::io::can::Signal;
  static const std::vector<Key<T>> k{
      string_key<T>(
          "name", [](T& o) -> std::string& { return o.name; }, check_name, true),
      int_key<T>(
          "start_bit", [](T& o) -> std::uint16_t& { return o.start_bit; }, 0, 511, "", true),
      int_key<T>(
          "length", [](T& o) -> std::uint8_t& { return o.length; }, 1, 64, "bits", true),
      {"byte_order", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         const std::string s = read_string(n, c, p);
         if (s == "little" || s == "intel")
           o.order = eqd::io::can::ByteOrder::little;
         else if (s == "big" || s == "motorola")
           o.order = eqd::io::can::ByteOrder::big;
         else
           fail(c, n.Mark(), p, "got " + quoted(s) + " (expected little | big)");
       }},
      bool_key<T>("signed", [](T& o) -> bool& { return o.is_signed; }),
      real_key<T>(
          "scale", [](T& o) -> double& { return o.scale; }, kAny, ""),
      real_key<T>(
          "offset", [](T& o) -> double& { return o.offset; }, kAny, ""),
  };
  return k;
}

const std::vector<Key<eqd::io::can::FrameLayout>>& can_frame_keys() {
  using T = eqd::io::can::FrameLayout;
  static const std::vector<Key<T>> k{
      {"role", true,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         const std::string s = read_string(n, c, p);
         if (s == "status")
           o.role = eqd::io::can::FrameRole::status;
         else if (s == "command")
           o.role = eqd::io::can::FrameRole::command;
         else if (s == "heartbeat")
           o.role = eqd::io::can::FrameRole::heartbeat;
         else if (s == "forecast")
           o.role = eqd::io::can::FrameRole::forecast;
         else if (s == "program")
           o.role = eqd::io::can::FrameRole::program;
         else
           fail(c, n.Mark(), p, "got " + quoted(s) + " (expected status | command | heartbeat | forecast | program)");
       }},
      int_key<T>(
          "id", [](T& o) -> std::uint32_t& { return o.id; }, 0, 0x1FFFFFFF, "", true),
      bool_key<T>("extended", [](T& o) -> bool& { return o.extended; }),
      int_key<T>(
          "length", [](T& o) -> std::uint8_t& { return o.length; }, 0, 64, "bytes"),
      bool_key<T>("fd", [](T& o) -> bool& { return o.fd; }),
      bool_key<T>("add_node_id", [](T& o) -> bool& { return o.add_node_id; }),
      int_key<T>(
          "id_stride", [](T& o) -> std::uint32_t& { return o.id_stride; }, 0, 0x1FFFFFFF, ""),
      can_list_key<T, eqd::io::can::Signal>("signals", &T::signals, &can_signal_keys),
  };
  return k;
}

const std::vector<Key<eqd::io::can::SignalMap>>& can_map_keys() {
  using T = eqd::io::can::SignalMap;
  static const std::vector<Key<T>> k{
      int_key<T>(
          "channel_count", [](T& o) -> std::uint16_t& { return o.channel_count; }, 1, 65535, ""),
      can_list_key<T, eqd::io::can::FrameLayout>("frames", &T::frames, &can_frame_keys),
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
