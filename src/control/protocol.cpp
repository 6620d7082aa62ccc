// The control API's request parser and response builders. Pure functions: fuzzed (tests/fuzz/).
#include "eqd/control/protocol.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <stdexcept>
#include <utility>
#include <variant>
#include <vector>

namespace eqd::control {

const std::string& settable_list() {
  static const std::string list = [] {
    std::string l;
    for (const core::RuntimeParam& r : core::kRuntimeParams) l += (l.empty() ? "" : ", ") + std::string(r.name);
    return l;
  }();
  return list;
}

std::string choice_names(const core::RuntimeParam& r) {
  std::string l;
  for (std::size_t i = 0; i < r.choice_count; ++i) l += (i == 0 ? "" : ", ") + std::string(r.choice_names[i]);
  return l;
}

namespace {

using nlohmann::json;

// Latest report edge accepted: year 9999 (a bound, so that ms arithmetic on it cannot overflow).
constexpr std::int64_t kMaxEdge_s = 253'402'300'799;

// Rejects deep nesting before nlohmann builds a tree: a 64 KiB line of '[' would otherwise cost a
// tree of 64 Ki nodes for nothing. Brackets inside strings are skipped.
bool depth_ok(std::string_view s) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : s) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (ch == '\\')
        escaped = true;
      else if (ch == '"')
        in_string = false;
      continue;
    }
    if (ch == '"')
      in_string = true;
    else if (ch == '{' || ch == '[') {
      if (++depth > kMaxJsonDepth) return false;
    } else if (ch == '}' || ch == ']')
      --depth;
  }
  return true;
}

// Parser callback that finds the first key repeated within one object; it names it by its path
// ("limits.v_max_V"). Depth is bounded by depth_ok() before parsing, so the stack stays small.
struct DuplicateKeys {
  struct Level {
    std::string name;            ///< key of this value in its parent ("" at the top and in arrays)
    std::set<std::string> keys;  // a set: a 64 KiB object of distinct keys must stay cheap
  };
  std::vector<Level> stack;
  std::string pending_key;
  std::string first;  ///< path of the first duplicate; empty if none

  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    using E = json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        stack.push_back(Level{std::exchange(pending_key, {}), {}});
        break;
      case E::object_end:
      case E::array_end:
        if (!stack.empty()) stack.pop_back();
        break;
      case E::key: {
        if (stack.empty() || !parsed.is_string()) break;
        const std::string& k = parsed.get_ref<const std::string&>();
        Level& top = stack.back();
        if (!top.keys.insert(k).second && first.empty()) {
          for (const Level& l : stack)
            if (!l.name.empty()) first += l.name.substr(0, 40) + ".";
          first += k.substr(0, 40);
        }
        pending_key = k;
        break;
      }
      case E::value:
        pending_key.clear();
        break;
    }
    return true;
  }
};

ParseError fail(std::uint64_t id, const char* code, std::string message) {
  return ParseError{id, code, std::move(message)};
}

// Reads a name field; returns an error message or empty.
std::string read_name(const json& obj, const char* key, std::string& out, bool required) {
  auto it = obj.find(key);
  if (it == obj.end()) return required ? std::string("missing field \"") + key + "\"" : std::string();
  if (!it->is_string()) return std::string("field \"") + key + "\" must be a string";
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty()) return std::string("field \"") + key + "\" must not be empty";
  if (s.size() > kMaxNameBytes)
    return std::string("field \"") + key + "\" is longer than " + std::to_string(kMaxNameBytes) + " bytes";
  for (unsigned char ch : s)
    if (ch < 0x20 || ch == 0x7f) return std::string("field \"") + key + "\" contains a control character";
  out = s;
  return {};
}

std::string read_number(const json& obj, const std::string& key, std::optional<double>& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (!it->is_number()) return "field \"" + key + "\" must be a number";
  const double v = it->get<double>();
  if (!std::isfinite(v)) return "field \"" + key + "\" must be finite";
  out = v;
  return {};
}

// An integer field within [lo, hi]: empty string, or why not.
std::string read_integer(const json& j, const char* key, std::int64_t lo, std::int64_t hi,
                         std::optional<std::int64_t>& out) {
  auto it = j.find(key);
  if (it == j.end()) return {};
  if (!it->is_number_integer() || it->get<std::int64_t>() < lo || it->get<std::int64_t>() > hi)
    return std::string("field \"") + key + "\" must be an integer within " + std::to_string(lo) + ".." +
           std::to_string(hi);
  out = it->get<std::int64_t>();
  return {};
}

// The filter of `audit`: channel, user, since_ms, before_id, limit (all optional).
std::string read_audit_filter(const json& j, ApiRequest& r) {
  std::string err = read_name(j, "channel", r.channel, false);
  if (err.empty()) err = read_name(j, "user", r.user, false);
  if (err.empty()) err = read_integer(j, "since_ms", 0, std::numeric_limits<std::int64_t>::max(), r.since_ms);
  if (err.empty()) err = read_integer(j, "before_id", 1, std::numeric_limits<std::int64_t>::max(), r.before_id);
  if (err.empty()) err = read_integer(j, "limit", 1, kMaxAuditLimit, r.limit);
  return err;
}

// The fields of `report`: edges_s (required: 2 .. kMaxReportIntervals + 1 integers, UTC s, strictly
// increasing) and bus (optional).
std::string read_report(const json& j, ApiRequest& r) {
  std::string err = read_name(j, "bus", r.bus, false);
  if (!err.empty()) return err;
  auto it = j.find("edges_s");
  if (it == j.end()) return "missing field \"edges_s\" (interval edges, UTC s since 1970)";
  if (!it->is_array() || it->size() < 2 || it->size() > kMaxReportIntervals + 1)
    return "field \"edges_s\" must be an array of 2.." + std::to_string(kMaxReportIntervals + 1) + " integers";
  r.edges_s.reserve(it->size());
  for (const json& e : *it) {
    if (!e.is_number_integer() || e.get<std::int64_t>() < 0 || e.get<std::int64_t>() > kMaxEdge_s)
      return "field \"edges_s\" must hold integers within 0.." + std::to_string(kMaxEdge_s) + " (UTC s since 1970)";
    if (!r.edges_s.empty() && e.get<std::int64_t>() <= r.edges_s.back())
      return "field \"edges_s\" must be strictly increasing (each interval ends after it starts)";
    r.edges_s.push_back(e.get<std::int64_t>());
  }
  return {};
}

// Commands without fields (for backup the daemon decides what goes in: backup.hpp).
std::string read_no_args(const json& /*j*/, ApiRequest& /*r*/) { return {}; }

// `channels`: bus and role (eq, test or any), both optional.
std::string read_channels_args(const json& j, ApiRequest& r) {
  std::string err = read_name(j, "bus", r.bus, false);
  if (!err.empty()) return err;
  auto it = j.find("role");
  if (it == j.end()) return {};
  if (!it->is_string()) return "field \"role\" must be a string: eq or test";
  const auto& role = it->get_ref<const std::string&>();
  if (role == "eq")
    r.role = RoleFilter::eq;
  else if (role == "test")
    r.role = RoleFilter::test;
  else if (role == "any")
    r.role = RoleFilter::any;
  else
    return "field \"role\" must be eq, test or any";
  return {};
}

// `assign`'s limits: an object of known limit names, each a finite number.
std::string read_limits(const json& limits, LimitArgs& out) {
  if (!limits.is_object()) return "field \"limits\" must be an object";
  for (const auto& [key, value] : limits.items()) {
    bool ok = false;
    for (const LimitField& f : kLimitFields) ok = ok || key == f.name;
    if (!ok) return "unknown limit \"" + key.substr(0, 40) + "\" (known: " + limit_names_list() + ")";
    (void)value;
  }
  for (const LimitField& f : kLimitFields) {
    const std::string err = read_number(limits, std::string(f.name), out.*f.arg);
    if (!err.empty()) return "limits: " + err;
  }
  return {};
}

// `assign`: channel (required), bus and limits (optional).
std::string read_assign_args(const json& j, ApiRequest& r) {
  std::string err = read_name(j, "channel", r.channel, true);
  if (err.empty()) err = read_name(j, "bus", r.bus, false);
  if (!err.empty()) return err;
  auto it = j.find("limits");
  return it == j.end() ? std::string() : read_limits(*it, r.limits);
}

// `release`: the channel (required).
std::string read_release_args(const json& j, ApiRequest& r) { return read_name(j, "channel", r.channel, true); }

// `adopt`: the controller (required) and the bus to adopt it on (optional).
std::string read_adopt_args(const json& j, ApiRequest& r) {
  std::string err = read_name(j, "controller", r.controller, true);
  if (err.empty()) err = read_name(j, "bus", r.bus, false);
  return err;
}

// `forget`: the controller (required).
std::string read_forget_args(const json& j, ApiRequest& r) { return read_name(j, "controller", r.controller, true); }

// One entry of `set`'s params: a flag (true or false), a choice (by name) or a finite number.
std::string read_param(const json& params, const std::string& key, const json& value, ApiRequest& r) {
  const core::RuntimeParam* param = core::find_runtime_param(key);
  if (param != nullptr && param->flag) {
    if (!value.is_boolean()) return "params: field \"" + key + "\" must be true or false";
    r.flags[key] = value.get<bool>();
    return {};
  }
  if (param == nullptr)
    return "params: \"" + key.substr(0, 40) + "\" cannot be set at run time (settable: " + settable_list() + ")";
  if (param->choice != nullptr) {
    // A choice travels by name ("mode": "caps"); inside eqd it is its index, like any number.
    const int i = value.is_string() ? core::find_runtime_choice(*param, value.get<std::string>()) : -1;
    if (i < 0) return "params: field \"" + key + "\" must be one of: " + choice_names(*param);
    r.params[key] = i;
    return {};
  }
  std::optional<double> v;
  const std::string err = read_number(params, key, v);
  if (!err.empty()) return "params: " + err;
  r.params[key] = *v;
  return {};
}

// `set`: the bus (required) and a non-empty object of params.
std::string read_set_args(const json& j, ApiRequest& r) {
  std::string err = read_name(j, "bus", r.bus, true);
  if (!err.empty()) return err;
  auto it = j.find("params");
  if (it == j.end()) return "missing field \"params\" (e.g. {\"tau_s\": 12})";
  if (!it->is_object() || it->empty()) return "field \"params\" must be a non-empty object of name: value";
  for (const auto& [key, value] : it->items()) {
    err = read_param(*it, key, value, r);
    if (!err.empty()) return err;
  }
  return {};
}

// Each command's name on the wire and the reader of its fields (an error message, or empty).
struct CommandName {
  const char* name;
  Command command;
  std::string (*read_args)(const json& j, ApiRequest& r);
};
constexpr CommandName kCommands[] = {
    {"hello", Command::hello, read_no_args},
    {"status", Command::status, read_no_args},
    {"channels", Command::channels, read_channels_args},
    {"controllers", Command::controllers, read_no_args},
    {"assign", Command::assign, read_assign_args},
    {"release", Command::release, read_release_args},
    {"set", Command::set, read_set_args},
    {"adopt", Command::adopt, read_adopt_args},
    {"forget", Command::forget, read_forget_args},
    {"audit", Command::audit, read_audit_filter},
    {"report", Command::report, read_report},
    {"backup", Command::backup, read_no_args},
};

// The line as one JSON object: bounded size and depth, valid JSON, an object, no key twice.
std::variant<json, ParseError> parse_object(std::string_view line) {
  if (line.size() > kMaxRequestBytes)
    return fail(0, error_code::kTooLarge,
                "request of " + std::to_string(line.size()) + " bytes exceeds the limit of " +
                    std::to_string(kMaxRequestBytes) + " bytes");
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!depth_ok(line))
    return fail(0, error_code::kMalformed, "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  DuplicateKeys dup;
  json j = json::parse(line.begin(), line.end(), std::ref(dup), /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(0, error_code::kMalformed, "not valid JSON (expected one JSON object per line)");
  if (!j.is_object()) return fail(0, error_code::kMalformed, "a request must be a JSON object");
  if (!dup.first.empty()) {
    // nlohmann keeps the last value of a repeated key: {"cmd":"status","cmd":"assign"} would run
    // assign while a reader of the text (a log, a proxy's filter) sees status. Refuse instead.
    std::uint64_t id = 0;
    if (auto it = j.find("id"); it != j.end() && it->is_number_unsigned() && dup.first != "id")
      id = it->get<std::uint64_t>();
    return fail(id, error_code::kBadRequest,
                "duplicate key \"" + dup.first + "\" (each key may appear once per object)");
  }
  return j;
}

}  // namespace

const char* to_string(Command c) noexcept {
  for (const auto& n : kCommands)
    if (n.command == c) return n.name;
  return "unknown";
}

bool is_change(Command c) noexcept { return required_role(c) != Role::viewer; }

const char* to_string(Role r) noexcept {
  switch (r) {
    case Role::viewer:
      return "viewer";
    case Role::operator_:
      return "operator";
    case Role::admin:
      return "admin";
  }
  return "unknown";
}

Role required_role(Command c) noexcept {
  switch (c) {
    // Taking a buffer in or out of equalization is the operators' daily work.
    case Command::assign:
    case Command::release:
      return Role::operator_;
    // Tuning a bus and changing which controllers eqd commands change the rig for everyone.
    case Command::set:
    case Command::adopt:
    case Command::forget:
    // A backup holds the whole audit log and configuration: as much as an admin may see and change.
    case Command::backup:
      return Role::admin;
    default:
      return Role::viewer;
  }
}

bool LimitArgs::any() const noexcept {
  for (const LimitField& f : kLimitFields)
    if (this->*f.arg) return true;
  return false;
}

std::string limit_names_list() {
  std::string l;
  for (const LimitField& f : kLimitFields) l += (l.empty() ? "" : ", ") + std::string(f.name);
  return l;
}

std::variant<ApiRequest, ParseError> parse_request(std::string_view line) {
  std::variant<json, ParseError> parsed = parse_object(line);
  if (auto* e = std::get_if<ParseError>(&parsed)) return std::move(*e);
  const json& j = std::get<json>(parsed);

  ApiRequest r;
  if (auto it = j.find("id"); it != j.end()) {
    if (!it->is_number_unsigned())
      return fail(0, error_code::kBadRequest, "field \"id\" must be a non-negative integer");
    r.id = it->get<std::uint64_t>();
  }
  if (auto it = j.find("v"); it != j.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() != kProtocolVersion)
      return fail(r.id, error_code::kUnsupportedVersion,
                  "protocol version " + it->dump() + " is not supported (this eqd speaks version " +
                      std::to_string(kProtocolVersion) + ")");
  }
  auto cmd = j.find("cmd");
  if (cmd == j.end()) return fail(r.id, error_code::kBadRequest, "missing field \"cmd\"");
  if (!cmd->is_string()) return fail(r.id, error_code::kBadRequest, "field \"cmd\" must be a string");
  const auto& name = cmd->get_ref<const std::string&>();
  const CommandName* known = nullptr;
  for (const auto& n : kCommands)
    if (name == n.name) known = &n;
  if (known == nullptr) {
    std::string shown = name.substr(0, 40);
    return fail(r.id, error_code::kUnknownCommand,
                "unknown command \"" + shown +
                    "\" (known: hello, status, channels, controllers, assign, release, set, adopt, forget, audit, "
                    "report, backup)");
  }
  r.command = known->command;
  const std::string err = known->read_args(j, r);
  if (!err.empty()) return fail(r.id, error_code::kBadRequest, std::string(to_string(r.command)) + ": " + err);
  return r;
}

std::string serialize_request(const ApiRequest& r) {
  json j{{"v", kProtocolVersion}, {"id", r.id}, {"cmd", to_string(r.command)}};
  if (!r.channel.empty()) j["channel"] = r.channel;
  if (!r.bus.empty()) j["bus"] = r.bus;
  if (!r.controller.empty()) j["controller"] = r.controller;
  if (r.command == Command::channels && r.role != RoleFilter::any) j["role"] = r.role == RoleFilter::eq ? "eq" : "test";
  if (!r.user.empty()) j["user"] = r.user;
  if (r.since_ms) j["since_ms"] = *r.since_ms;
  if (r.before_id) j["before_id"] = *r.before_id;
  if (r.limit) j["limit"] = *r.limit;
  if (r.command == Command::report) j["edges_s"] = r.edges_s;
  if (r.limits.any()) {
    json l = json::object();
    for (const LimitField& f : kLimitFields)
      if (const std::optional<double>& v = r.limits.*f.arg) l[f.name] = *v;
    j["limits"] = l;
  }
  if (!r.params.empty() || !r.flags.empty()) {
    json p = json::object();
    for (const auto& [key, v] : r.params) {
      const core::RuntimeParam* row = core::find_runtime_param(key);
      p[key] = row != nullptr ? runtime_value_json(*row, v) : json(v);
    }
    for (const auto& [key, v] : r.flags) p[key] = v;
    j["params"] = p;
  }
  return j.dump();
}

std::string ok_response(std::uint64_t id, const json& result) {
  json j{{"v", kProtocolVersion}, {"id", id}, {"ok", true}, {"result", result}};
  // Replace invalid UTF-8 rather than throw: names come from config, but a response must never fail.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string error_response(std::uint64_t id, std::string_view code, std::string_view message, const json& extra) {
  json e = extra.is_object() ? extra : json::object();
  e["code"] = std::string(code);
  e["message"] = std::string(message);
  json j{{"v", kProtocolVersion}, {"id", id}, {"ok", false}, {"error", e}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

core::BufferLimits merge_limits(const core::BufferLimits& base, const LimitArgs& a) noexcept {
  core::BufferLimits l = base;
  for (const LimitField& f : kLimitFields)
    if (const std::optional<double>& v = a.*f.arg) l.*f.limit = *v;
  return l;
}

json runtime_value_json(const core::RuntimeParam& r, double v) {
  if (r.choice != nullptr) {
    const char* name = core::runtime_choice_name(r, v);
    return name != nullptr ? json(name) : json(v);  // out of range: the number, never a crash
  }
  return r.flag ? json(v != 0.0) : json(v);
}

nlohmann::ordered_json runtime_params_json(const core::BusParams& p) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const core::RuntimeParam& r : core::kRuntimeParams) j[r.name] = runtime_value_json(r, core::runtime_value(r, p));
  return j;
}

json limits_to_json(const core::BufferLimits& l) {
  json j = json::object();
  for (const LimitField& f : kLimitFields) j[f.name] = l.*f.limit;
  return j;
}

void limits_from_json(const json& j, core::BufferLimits& l) {
  if (!j.is_object()) throw std::invalid_argument("limits: must be an object");
  for (const LimitField& f : kLimitFields) {
    auto it = j.find(f.name);
    if (it == j.end()) continue;  // a state file from before the limit existed: its default
    if (!it->is_number()) throw std::invalid_argument(std::string("limits.") + f.name + ": must be a number");
    l.*f.limit = it->get<double>();
  }
}

}  // namespace eqd::control
