// The control API's request parser and response builders. Pure functions: fuzzed (tests/fuzz/).
#include "eqd/control/protocol.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <stdexcept>
#include <utility>
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

struct CommandName {
  const char* name;
  Command command;
};
constexpr CommandName kCommands[] = {
    {"hello", Command::hello},       {"status", Command::status},
    {"channels", Command::channels}, {"controllers", Command::controllers},
    {"assign", Command::assign},     {"release", Command::release},
    {"set", Command::set},           {"adopt", Command::adopt},
    {"forget", Command::forget},     {"audit", Command::audit},
    {"report", Command::report},     {"backup", Command::backup},
};

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
  if (line.size() > kMaxRequestBytes)
    return fail(0, error_code::kTooLarge,
                "request of " + std::to_string(line.size()) + " bytes exceeds the limit of " +
                    std::to_string(kMaxRequestBytes) + " bytes");
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!depth_ok(line))
    return fail(0, error_code::kMalformed, "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  DuplicateKeys dup;
  const json j = json::parse(line.begin(), line.end(), std::ref(dup), /*allow_exceptions=*/false);
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
  bool known = false;
  for (const auto& n : kCommands)
    if (name == n.name) {
      r.command = n.command;
      known = true;
    }
  if (!known) {
    std::string shown = name.substr(0, 40);
    return fail(r.id, error_code::kUnknownCommand,
                "unknown command \"" + shown +
                    "\" (known: hello, status, channels, controllers, assign, release, set, adopt, forget, audit, "
                    "report, backup)");
  }

  std::string err;
  switch (r.command) {
    case Command::hello:
    case Command::status:
    case Command::controllers:
      break;
    case Command::channels: {
      err = read_name(j, "bus", r.bus, false);
      if (!err.empty()) break;
      if (auto it = j.find("role"); it != j.end()) {
        if (!it->is_string()) {
          err = "field \"role\" must be a string: eq or test";
          break;
        }
        const auto& role = it->get_ref<const std::string&>();
        if (role == "eq")
          r.role = RoleFilter::eq;
        else if (role == "test")
          r.role = RoleFilter::test;
        else if (role == "any")
          r.role = RoleFilter::any;
        else
          err = "field \"role\" must be eq, test or any";
      }
      break;
    }
    case Command::assign: {
      err = read_name(j, "channel", r.channel, true);
      if (!err.empty()) break;
      err = read_name(j, "bus", r.bus, false);
      if (!err.empty()) break;
      if (auto it = j.find("limits"); it != j.end()) {
        if (!it->is_object()) {
          err = "field \"limits\" must be an object";
          break;
        }
        for (const auto& [key, value] : it->items()) {
          bool ok = false;
          for (const LimitField& f : kLimitFields) ok = ok || key == f.name;
          if (!ok) {
            err = "unknown limit \"" + key.substr(0, 40) + "\" (known: " + limit_names_list() + ")";
            break;
          }
          (void)value;
        }
        if (!err.empty()) break;
        for (const LimitField& f : kLimitFields) {
          err = read_number(*it, std::string(f.name), r.limits.*f.arg);
          if (!err.empty()) {
            err = "limits: " + err;
            break;
          }
        }
      }
      break;
    }
    case Command::release:
      err = read_name(j, "channel", r.channel, true);
      break;
    case Command::adopt:
      err = read_name(j, "controller", r.controller, true);
      if (err.empty()) err = read_name(j, "bus", r.bus, false);  // adopt on this bus
      break;
    case Command::forget:
      err = read_name(j, "controller", r.controller, true);
      break;
    case Command::audit:
      err = read_audit_filter(j, r);
      break;
    case Command::report:
      err = read_report(j, r);
      break;
    case Command::backup:  // no fields: the daemon decides what goes in (backup.hpp)
      break;
    case Command::set: {
      err = read_name(j, "bus", r.bus, true);
      if (!err.empty()) break;
      auto it = j.find("params");
      if (it == j.end()) {
        err = "missing field \"params\" (e.g. {\"tau_s\": 12})";
        break;
      }
      if (!it->is_object() || it->empty()) {
        err = "field \"params\" must be a non-empty object of name: value";
        break;
      }
      for (const auto& [key, value] : it->items()) {
        const core::RuntimeParam* param = core::find_runtime_param(key);
        const bool flag = param != nullptr && param->flag;
        if (flag) {
          if (!value.is_boolean()) {
            err = "params: field \"" + key + "\" must be true or false";
            break;
          }
          r.flags[key] = value.get<bool>();
          continue;
        }
        if (param == nullptr) {
          err = "params: \"" + key.substr(0, 40) + "\" cannot be set at run time (settable: " + settable_list() + ")";
          break;
        }
        if (param->choice != nullptr) {
          // A choice travels by name ("mode": "caps"); inside eqd it is its index, like any number.
          const int i = value.is_string() ? core::find_runtime_choice(*param, value.get<std::string>()) : -1;
          if (i < 0) {
            err = "params: field \"" + key + "\" must be one of: " + choice_names(*param);
            break;
          }
          r.params[key] = i;
          continue;
        }
        std::optional<double> v;
        err = read_number(*it, key, v);
        if (!err.empty()) {
          err = "params: " + err;
          break;
        }
        r.params[key] = *v;
      }
      break;
    }
  }
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
