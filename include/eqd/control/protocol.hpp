#pragma once
/// @file protocol.hpp
/// The control API's wire protocol (version 1): one JSON object per line in each direction, over the
/// daemon's Unix stream socket. docs/control-api.md describes every request with an example.
///
/// Thread-safety: everything here is pure (no shared state); any thread.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqd/core/params.hpp"

namespace eqd::control {

/// Protocol version spoken by this build (field "v" of requests and responses).
inline constexpr int kProtocolVersion = 1;
/// Largest request line accepted, newline excluded. A longer line gets error "too_large".
inline constexpr std::size_t kMaxRequestBytes = 64 * 1024;
/// Deepest JSON nesting accepted in a request (requests are flat; this bounds the parser's work).
inline constexpr int kMaxJsonDepth = 8;
/// Longest channel, bus or parameter name accepted.
inline constexpr std::size_t kMaxNameBytes = 128;

/// What a client asks for.
enum class Command : std::uint8_t {
  hello,
  status,
  channels,
  controllers,
  assign,
  release,
  set,
  adopt,
  forget,
  audit,
  report,
  backup
};
/// Wire name of a command ("status", ...). Any thread.
const char* to_string(Command c) noexcept;
/// True for commands that change the daemon (need authorization). Any thread.
bool is_change(Command c) noexcept;

/// Who may do what through the control API (docs/control-api.md, "Roles"), in increasing order: each
/// role may do everything of the ones before it.
/// - viewer: anyone who can open the socket: hello, status, channels, controllers, audit, report (and
///   eqctl watch);
/// - operator: members of api.group (default eqd): also assign and release;
/// - admin: root and members of api.admin_group (default eqd-admin): also set, adopt, forget and backup.
enum class Role : std::uint8_t { viewer = 0, operator_ = 1, admin = 2 };
/// "viewer", "operator", "admin". Any thread.
const char* to_string(Role r) noexcept;
/// The least role that may send `c`. Any thread.
Role required_role(Command c) noexcept;

/// Role filter of `channels`.
enum class RoleFilter : std::uint8_t { any, eq, test };

/// Limits given with `assign`; unset fields come from the persisted or configured limits.
struct LimitArgs {
  std::optional<double> max_charge_W, max_discharge_W, max_charge_A, max_discharge_A, v_min_V, v_max_V, hysteresis_V,
      efficiency, capacity_Wh, soc_min_pct, soc_max_pct;
  [[nodiscard]] bool any() const noexcept;
};

/// One parsed, schema-checked request. Names are not resolved yet (the server does that).
struct ApiRequest {
  std::uint64_t id = 0;  ///< echoed in the response; 0 when the client sent none
  Command command = Command::hello;
  std::string channel;     ///< assign, release; audit (filter)
  std::string controller;  ///< adopt, forget
  std::string bus;  ///< channels (filter), assign (check), set (required), adopt (the bus to adopt on), report (filter)
  RoleFilter role = RoleFilter::any;      ///< channels
  LimitArgs limits;                       ///< assign
  std::map<std::string, double> params;   ///< set: numeric parameters, name -> value (core::kRuntimeParams)
  std::map<std::string, bool> flags;      ///< set: boolean parameters, name -> value (core::kRuntimeParams)
  std::string user;                       ///< audit: only this user name's records
  std::optional<std::int64_t> since_ms;   ///< audit: only records at or after this time (UTC, ms since 1970)
  std::optional<std::int64_t> before_id;  ///< audit: paging, only records with a smaller id
  std::optional<std::int64_t> limit;      ///< audit: at most this many records (1..kMaxAuditLimit; default 100)
  std::vector<std::int64_t> edges_s;      ///< report: interval edges, UTC s, strictly increasing (history/report.hpp)
};

/// Largest `limit` of an `audit` request (one answer's rows; older ones are paged with before_id).
inline constexpr std::int64_t kMaxAuditLimit = 1000;

/// Most intervals of one `report` request (history::kMaxReportIntervals; a client asks again for more).
inline constexpr std::size_t kMaxReportIntervals = 2000;

/// Machine-readable error codes of responses ("error": {"code": ..., "message": ...}).
namespace error_code {
inline constexpr const char* kTooLarge = "too_large";
inline constexpr const char* kMalformed = "malformed";     ///< not JSON / not an object
inline constexpr const char* kBadRequest = "bad_request";  ///< a field is missing, of the wrong type or given twice
inline constexpr const char* kUnsupportedVersion = "unsupported_version";
inline constexpr const char* kUnknownCommand = "unknown_command";
inline constexpr const char* kUnknownChannel = "unknown_channel";
inline constexpr const char* kUnknownBus = "unknown_bus";
inline constexpr const char* kForbidden = "forbidden";
inline constexpr const char* kRefusedRunning = "refused_running";
inline constexpr const char* kRefusedFault = "refused_fault";
inline constexpr const char* kInvalid = "invalid";  ///< limits / parameters rejected
inline constexpr const char* kBusy = "busy";        ///< request queue full, or connection limits reached (then closed)
inline constexpr const char* kTimeout = "timeout";  ///< the control thread did not answer
inline constexpr const char* kStalled = "stalled";  ///< the control thread is stalled: change requests refused at once
inline constexpr const char* kUnknownController = "unknown_controller";
inline constexpr const char* kNotAdopted = "not_adopted";  ///< assign on a read-only (discovered) controller
/// assign of a channel whose transport cannot command it (neware): a test channel for good
inline constexpr const char* kNotCommandable = "not_commandable";
inline constexpr const char* kUnavailable = "unavailable";  ///< e.g. adopt/forget while discovery is off
inline constexpr const char* kIdle = "idle";                ///< sent just before the server closes an idle connection
}  // namespace error_code

/// A request that could not be parsed: error code, message naming the field, and the id if one was read.
struct ParseError {
  std::uint64_t id = 0;
  const char* code = error_code::kMalformed;
  std::string message;
};

/// Parses one request line (without its newline). Never throws; any input yields a request or an error.
[[nodiscard]] std::variant<ApiRequest, ParseError> parse_request(std::string_view line);

/// Serialises a request (used by eqctl and tests) as one line without newline.
[[nodiscard]] std::string serialize_request(const ApiRequest& r);

/// Builds {"v":1,"id":id,"ok":true,"result":result} as one line with its newline.
[[nodiscard]] std::string ok_response(std::uint64_t id, const nlohmann::json& result);
/// Builds {"v":1,"id":id,"ok":false,"error":{"code":code,"message":message}} (+ extra fields in
/// "error", e.g. "suggestions") as one line with its newline.
[[nodiscard]] std::string error_response(std::uint64_t id, std::string_view code, std::string_view message,
                                         const nlohmann::json& extra = nlohmann::json::object());

/// Applies the set fields of `args` over `base`. Any thread.
[[nodiscard]] core::BufferLimits merge_limits(const core::BufferLimits& base, const LimitArgs& args) noexcept;

/// One limit of a buffer: its name on the wire, in the state file and in the configuration's
/// `equalization:` entries, its fields, eqctl's option and help. The table drives the protocol, the
/// state file and eqctl, so a new limit is one row here (and its key in src/config/keys_controller.cpp).
struct LimitField {
  const char* name;
  std::optional<double> LimitArgs::*arg;
  double core::BufferLimits::*limit;
  const char* flag;  ///< eqctl assign's option
  const char* help;
};
inline constexpr LimitField kLimitFields[] = {
    {"max_charge_W", &LimitArgs::max_charge_W, &core::BufferLimits::max_charge_W, "--max-charge-W",
     "max charging power, W"},
    {"max_discharge_W", &LimitArgs::max_discharge_W, &core::BufferLimits::max_discharge_W, "--max-discharge-W",
     "max discharging power, W"},
    {"max_charge_A", &LimitArgs::max_charge_A, &core::BufferLimits::max_charge_A, "--max-charge-A",
     "max charging current, A (0: none)"},
    {"max_discharge_A", &LimitArgs::max_discharge_A, &core::BufferLimits::max_discharge_A, "--max-discharge-A",
     "max discharging current, A (0: none)"},
    {"v_min_V", &LimitArgs::v_min_V, &core::BufferLimits::v_min_V, "--v-min-V", "lower window voltage, V"},
    {"v_max_V", &LimitArgs::v_max_V, &core::BufferLimits::v_max_V, "--v-max-V", "upper window voltage, V"},
    {"hysteresis_V", &LimitArgs::hysteresis_V, &core::BufferLimits::hysteresis_V, "--hysteresis-V",
     "window re-entry hysteresis, V"},
    {"efficiency", &LimitArgs::efficiency, &core::BufferLimits::efficiency, "--efficiency",
     "its converter's efficiency, 0.5..1: charging P draws P / efficiency from the bus"},
    {"capacity_Wh", &LimitArgs::capacity_Wh, &core::BufferLimits::capacity_Wh, "--capacity-Wh",
     "usable energy between v_min and v_max, Wh (0: not known; valley filling counts it)"},
    {"soc_min_pct", &LimitArgs::soc_min_pct, &core::BufferLimits::soc_min_pct, "--soc-min-pct",
     "never discharge at or below this state of charge, % (where the controller reports one)"},
    {"soc_max_pct", &LimitArgs::soc_max_pct, &core::BufferLimits::soc_max_pct, "--soc-max-pct",
     "never charge at or above this state of charge, % (where the controller reports one)"},
};
/// Every limit's name, for messages: "max_charge_W, max_discharge_W, ...". Any thread.
[[nodiscard]] std::string limit_names_list();

/// The bus parameters `set` may change at run time, and that persist across restarts, are the rows of
/// core::kRuntimeParams (numbers in ApiRequest::params, flags as JSON true/false in ApiRequest::flags,
/// choices by name in JSON and by index in ApiRequest::params).
/// Every settable name, for messages: "tau_s, deadband_W, target_W, use_forecast, learn_forecast, ...".
/// Any thread.
[[nodiscard]] const std::string& settable_list();

/// The names of a choice row, for messages: "balance, caps". Any thread.
[[nodiscard]] std::string choice_names(const core::RuntimeParam& r);

/// The run-time parameters of `p` (core::kRuntimeParams) as a JSON object in the table's order:
/// numbers as numbers, flags as true/false, choices by name. Any thread.
[[nodiscard]] nlohmann::ordered_json runtime_params_json(const core::BusParams& p);
/// One run-time parameter's value (a flag as 0 or non-zero) as JSON: true/false for a flag, else the
/// number. The API's answers and the state file write values alike. Any thread.
[[nodiscard]] nlohmann::json runtime_value_json(const core::RuntimeParam& r, double v);

/// JSON of BufferLimits with the wire names, and back (missing fields keep `l`'s values; throws
/// std::invalid_argument naming a field of the wrong type).
[[nodiscard]] nlohmann::json limits_to_json(const core::BufferLimits& l);
void limits_from_json(const nlohmann::json& j, core::BufferLimits& l);

}  // namespace eqd::control
