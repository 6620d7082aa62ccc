#pragma once
// Invariants of the control API's request parser, shared by the libFuzzer target and by the Catch2
// test that replays the committed corpus under CTest.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "eqd/control/protocol.hpp"

namespace eqd::control::fuzz {

/// Parses `line` and checks the parser's contract; returns "" or what was violated.
inline std::string check_request(std::string_view line) {
  std::variant<ApiRequest, ParseError> parsed;
  try {
    parsed = parse_request(line);
  } catch (const std::exception& e) {
    return std::string("parse_request threw: ") + e.what();
  }
  if (auto* e = std::get_if<ParseError>(&parsed)) {
    if (e->code == nullptr || e->message.empty()) return "error without code or message";
    if (line.size() > kMaxRequestBytes && std::string_view(e->code) != error_code::kTooLarge)
      return "oversized line not reported as too_large";
    const std::string resp = error_response(e->id, e->code, e->message);
    if (resp.find('\n') != resp.size() - 1) return "error response is not one line";
    const auto j = nlohmann::json::parse(resp, nullptr, false);
    if (j.is_discarded() || j["ok"] != false || j["error"]["code"] != e->code) return "error response is not valid";
    return {};
  }
  const ApiRequest& r = std::get<ApiRequest>(parsed);
  if (line.size() > kMaxRequestBytes) return "oversized line accepted";
  // Whatever was accepted must survive a round trip unchanged (eqctl and tests rely on it).
  auto again = parse_request(serialize_request(r));
  auto* b = std::get_if<ApiRequest>(&again);
  if (b == nullptr) return "serialized request rejected: " + std::get<ParseError>(again).message;
  const bool same_limits =
      b->limits.max_charge_W == r.limits.max_charge_W && b->limits.max_discharge_W == r.limits.max_discharge_W &&
      b->limits.max_charge_A == r.limits.max_charge_A && b->limits.max_discharge_A == r.limits.max_discharge_A &&
      b->limits.v_min_V == r.limits.v_min_V && b->limits.v_max_V == r.limits.v_max_V &&
      b->limits.hysteresis_V == r.limits.hysteresis_V;
  if (b->id != r.id || b->command != r.command || b->channel != r.channel || b->bus != r.bus || b->role != r.role ||
      b->params != r.params || b->flags != r.flags || !same_limits)
    return "round trip changed the request";
  if (r.channel.size() > kMaxNameBytes || r.bus.size() > kMaxNameBytes) return "over-long name accepted";
  return {};
}

}  // namespace eqd::control::fuzz
