#pragma once
/// @file yaml_read.hpp
/// Private helpers of the config parser: typed reads of yaml-cpp nodes that fail with a ConfigError
/// carrying the node's position and key path, and the key tables that drive decoding, overrides and
/// the "every accepted key is documented" test. Not installed; main thread only (start-up).

#include <yaml-cpp/yaml.h>

#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "eqd/config/config.hpp"

namespace eqd::config::detail {

/// Where errors go: the file name, and whether node marks are meaningful (false for --set values,
/// whose marks point into the override string, not into the file).
struct Ctx {
  std::string file;
  bool positions = true;
  std::map<std::string, YAML::Mark>* marks = nullptr;  ///< key path -> value position (parse only)
};

/// Throws ConfigError at `mark` (ignored when !ctx.positions or null).
[[noreturn]] void fail(const Ctx& ctx, const YAML::Mark& mark, const std::string& path, const std::string& message);

/// "a.b" joined; no leading dot when `parent` is empty.
std::string join(const std::string& parent, const std::string& key);

/// Shortest round-trip text of a number ("12", "0.1").
std::string num(double v);

/// "'text'" for an error message; text beyond 80 characters is cut ("'abc…' (1234 characters)"), so
/// that a huge value (a quote that swallowed a file) cannot make a huge message.
std::string quoted(const std::string& text);

/// "'text'", "a mapping", "a list" or "nothing": what the user wrote, for "got ... (expected ...)".
std::string describe(const YAML::Node& n);

/// A numeric bound; the expected-text is generated from it ("10..20", ">= 0", "> 0").
struct Bound {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;  ///< lo itself excluded
  [[nodiscard]] bool contains(double v) const { return (lo_open ? v > lo : v >= lo) && v <= hi; }
  [[nodiscard]] std::string text() const;
};

double read_double(const YAML::Node& n, const Ctx& c, const std::string& path, const Bound& b, const char* unit);
long long read_int(const YAML::Node& n, const Ctx& c, const std::string& path, long long lo, long long hi,
                   const char* unit);
bool read_bool(const YAML::Node& n, const Ctx& c, const std::string& path);
std::string read_string(const YAML::Node& n, const Ctx& c, const std::string& path);

/// Message for an unknown key, with a "did you mean" suggestion or the list of accepted keys.
std::string unknown_key_message(const std::string& what, const std::string& word,
                                const std::vector<std::string>& candidates);

/// One accepted key of a mapping: its name, whether it is required, and how to store its value.
template <class T>
struct Key {
  const char* name;
  bool required;
  std::function<void(T&, const YAML::Node&, const Ctx&, const std::string&)> set;
};

template <class T>
std::vector<std::string> names_of(const std::vector<Key<T>>& keys) {
  std::vector<std::string> out;
  out.reserve(keys.size());
  for (const auto& k : keys) out.emplace_back(k.name);
  return out;
}

template <class T>
const Key<T>* find_key(const std::vector<Key<T>>& keys, const std::string& name) {
  for (const auto& k : keys)
    if (name == k.name) return &k;
  return nullptr;
}

/// Decodes a mapping through its key table: rejects unknown and duplicate keys, records positions,
/// checks required keys. Returns the names that were given.
template <class T>
std::set<std::string> decode_mapping(const YAML::Node& node, const std::string& path, const std::vector<Key<T>>& keys,
                                     T& obj, const Ctx& c) {
  if (!node.IsMap())
    fail(c, node.Mark(), path.empty() ? "(top level)" : path,
         "got " + describe(node) + " (expected a mapping of keys)");
  if (c.marks) (*c.marks)[path] = node.Mark();
  std::map<std::string, YAML::Mark> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node k = it->first;  // a copy: it->first lives in a temporary proxy
    if (!k.IsScalar()) fail(c, k.Mark(), path, "got " + describe(k) + " as a key (expected a plain key name)");
    const std::string& name = k.Scalar();
    const std::string kp = join(path, name);
    if (auto s = seen.find(name); s != seen.end())
      fail(c, k.Mark(), kp, "duplicate key (first given at line " + std::to_string(s->second.line + 1) + ")");
    seen.emplace(name, k.Mark());
    const Key<T>* key = find_key(keys, name);
    if (key == nullptr) fail(c, k.Mark(), kp, unknown_key_message("key", name, names_of(keys)));
    if (c.marks) (*c.marks)[kp] = it->second.Mark();
    if (it->second.IsNull()) {
      // An empty value ("tau_s:") has its mark on the next line; point at the key instead.
      try {
        key->set(obj, it->second, c, kp);
      } catch (const ConfigError& e) {
        fail(c, k.Mark(), e.key_path, e.message);
      }
    } else {
      key->set(obj, it->second, c, kp);
    }
  }
  for (const auto& key : keys)
    if (key.required && seen.count(key.name) == 0)
      fail(c, node.Mark(), join(path, key.name), std::string("missing required key '") + key.name + "'");
  std::set<std::string> given;
  for (const auto& [name, mark] : seen) given.insert(name);
  return given;
}

/// Key factories. `get` is a captureless lambda returning a reference to the member.
template <class T, class Get>
Key<T> real_key(const char* name, Get get, Bound b, const char* unit, bool required = false) {
  return {name, required, [get, b, unit](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            get(o) = read_double(n, c, p, b, unit);
          }};
}

template <class T, class Get>
Key<T> int_key(const char* name, Get get, long long lo, long long hi, const char* unit, bool required = false) {
  return {name, required, [get, lo, hi, unit](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            using I = std::remove_reference_t<decltype(get(o))>;
            get(o) = static_cast<I>(read_int(n, c, p, lo, hi, unit));
          }};
}

template <class T, class Get>
Key<T> bool_key(const char* name, Get get) {
  return {name, false,
          [get](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) { get(o) = read_bool(n, c, p); }};
}

/// `check` returns nullptr when the text is acceptable, else the expected-text for the error.
template <class T, class Get>
Key<T> string_key(const char* name, Get get, const char* (*check)(const std::string&), bool required = false) {
  return {name, required, [get, check](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            std::string s = read_string(n, c, p);
            if (check != nullptr)
              if (const char* expected = check(s))
                fail(c, n.Mark(), p, "got " + quoted(s) + " (expected " + expected + ")");
            get(o) = std::move(s);
          }};
}

// Key tables (one source of truth for decoding, overrides and accepted_key_paths()).
const std::vector<Key<Config>>& top_keys();
const std::vector<Key<ControlLoopConfig>>& loop_keys();
const std::vector<Key<ApiConfig>>& api_keys();
const std::vector<Key<MetricsConfig>>& metrics_keys();
const std::vector<Key<DiscoveryConfig>>& discovery_keys();
const std::vector<Key<HistoryConfig>>& history_keys();
const std::vector<Key<BusConfig>>& bus_keys();
const std::vector<Key<core::ScheduleWindow>>& schedule_window_keys();  ///< buses[].schedule[]
const std::vector<Key<MeterConfig>>& meter_keys();                     ///< buses[].meter
/// A meter's keys that do not fit its transport: {key, message}; empty key: none. The file's `meter`
/// key and a --set of one of its keys check it.
std::pair<std::string, std::string> meter_problem(const MeterConfig& m);
/// Keys of controllers[] every transport has (name, poll_hz, channels, bus ...).
const std::vector<Key<ControllerConfig>>& common_controller_keys();
/// Every key of one controller: `transport`, the common keys, its transport's keys, and every other
/// transport's keys, which fail with "'host' applies only to transport: tcp (this controller uses can)".
std::vector<Key<ControllerConfig>> controller_keys(const ControllerConfig& ctl);
/// Names of every key any controller may have (for accepted_key_paths()).
std::vector<std::string> all_controller_key_names();
/// CAN signal maps (can_maps.NAME): map, frame and signal keys.
const std::vector<Key<eqd::io::can::SignalMap>>& can_map_keys();
const std::vector<Key<eqd::io::can::FrameLayout>>& can_frame_keys();
const std::vector<Key<eqd::io::can::Signal>>& can_signal_keys();
const std::vector<Key<BufferConfig>>& buffer_keys();
const std::vector<Key<eqd::io::modbus::RegisterMap>>& map_keys();
const std::vector<Key<eqd::io::modbus::Field>>& field_keys();
const std::vector<Key<eqd::io::modbus::PlausibleRange>>& range_keys();
/// Keys of map_keys() whose value is a register Field.
const std::vector<std::string>& map_field_names();

/// Resolves profiles and defaults (controller channels, bus, buffer bus) and checks everything that
/// involves more than one value. by_name: key paths name entries ("buses.main") as overrides do;
/// else by index ("buses[0]") as in the file.
void resolve_and_validate(Config& cfg, const Ctx& c, bool by_name);

}  // namespace eqd::config::detail
