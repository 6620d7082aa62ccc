// Control API request parser and response builders.
#include <catch2/catch.hpp>

#include <string>

#include "eqd/control/protocol.hpp"

using namespace eqd::control;
using nlohmann::json;

namespace {
ApiRequest ok(const std::string& line) {
  auto r = parse_request(line);
  if (auto* e = std::get_if<ParseError>(&r)) FAIL("rejected: " << line << ": " << e->code << ": " << e->message);
  return std::get<ApiRequest>(r);
}
ParseError bad(const std::string& line) {
  auto r = parse_request(line);
  if (!std::holds_alternative<ParseError>(r)) FAIL("accepted: " << line.substr(0, 200));
  return std::get<ParseError>(r);
}
}  // namespace

TEST_CASE("control protocol: every command parses", "[control][protocol]") {
  CHECK(ok(R"({"v":1,"id":7,"cmd":"status"})").command == Command::status);
  CHECK(ok(R"({"v":1,"id":7,"cmd":"status"})").id == 7);
  CHECK(ok(R"({"cmd":"hello"})").command == Command::hello);
  CHECK(ok(R"({"cmd":"controllers"})").command == Command::controllers);
  const ApiRequest ch = ok(R"({"cmd":"channels","bus":"main","role":"eq"})");
  CHECK(ch.bus == "main");
  CHECK(ch.role == RoleFilter::eq);
  CHECK(ok(R"({"cmd":"channels","role":"test"})").role == RoleFilter::test);
  const ApiRequest a =
      ok(R"({"cmd":"assign","channel":"cab1/3","bus":"main","limits":{"max_charge_W":500,"v_min_V":40.5}})");
  CHECK(a.channel == "cab1/3");
  CHECK(a.limits.max_charge_W == 500.0);
  CHECK(a.limits.v_min_V == 40.5);
  CHECK_FALSE(a.limits.max_discharge_W.has_value());
  CHECK(ok(R"({"cmd":"release","channel":"cab1/3"})").command == Command::release);
  const ApiRequest s = ok(R"({"cmd":"set","bus":"main","params":{"tau_s":12,"deadband_W":20}})");
  CHECK(s.params.at("tau_s") == 12.0);
  CHECK(s.params.at("deadband_W") == 20.0);
  CHECK(s.flags.empty());
  const ApiRequest f = ok(R"({"cmd":"set","bus":"main","params":{"use_forecast":false,"tau_s":11}})");
  CHECK(f.flags.at("use_forecast") == false);
  CHECK(f.params.at("tau_s") == 11.0);
  CHECK(f.params.count("use_forecast") == 0);
  CHECK(ok(R"({"cmd":"set","bus":"main","params":{"use_forecast":true}})").flags.at("use_forecast") == true);
  CHECK(ok("{\"cmd\":\"status\"}\r").command == Command::status);
}

TEST_CASE("control protocol: bad requests get a clear error", "[control][protocol]") {
  CHECK(std::string(bad("hello").code) == error_code::kMalformed);
  CHECK(std::string(bad("[1,2]").code) == error_code::kMalformed);
  CHECK(std::string(bad("").code) == error_code::kMalformed);
  CHECK(std::string(bad(R"({"id":5})").code) == error_code::kBadRequest);
  const ParseError u = bad(R"({"id":9,"cmd":"reboot"})");
  CHECK(std::string(u.code) == error_code::kUnknownCommand);
  CHECK(u.id == 9);
  CHECK(u.message.find("reboot") != std::string::npos);
  CHECK(std::string(bad(R"({"v":2,"cmd":"status"})").code) == error_code::kUnsupportedVersion);
  CHECK(std::string(bad(R"({"v":"1","cmd":"status"})").code) == error_code::kUnsupportedVersion);
  CHECK(std::string(bad(R"({"id":-1,"cmd":"status"})").code) == error_code::kBadRequest);
  CHECK(bad(R"({"cmd":"assign"})").message.find("channel") != std::string::npos);
  CHECK(bad(R"({"cmd":"assign","channel":3})").message.find("must be a string") != std::string::npos);
  CHECK(bad(R"({"cmd":"assign","channel":""})").message.find("empty") != std::string::npos);
  CHECK(bad(R"({"cmd":"assign","channel":"a\u0001b"})").message.find("control character") != std::string::npos);
  CHECK(bad(R"({"cmd":"assign","channel":"c/1","limits":{"max_power":3}})").message.find("max_power") !=
        std::string::npos);
  CHECK(bad(R"({"cmd":"assign","channel":"c/1","limits":{"v_min_V":"40"}})").message.find("v_min_V") !=
        std::string::npos);
  // nlohmann refuses a number that overflows a double as invalid JSON: either way it is refused.
  const std::string inf_code = bad(R"({"cmd":"assign","channel":"c/1","limits":{"v_min_V":1e999}})").code;
  CHECK((inf_code == error_code::kMalformed || inf_code == error_code::kBadRequest));
  CHECK(bad(R"({"cmd":"assign","channel":"c/1","limits":[]})").message.find("limits") != std::string::npos);
  CHECK(bad(R"({"cmd":"channels","role":"boss"})").message.find("role") != std::string::npos);
  CHECK(bad(R"({"cmd":"set","bus":"main"})").message.find("params") != std::string::npos);
  CHECK(bad(R"({"cmd":"set","bus":"main","params":{}})").message.find("params") != std::string::npos);
  CHECK(bad(R"({"cmd":"set","bus":"main","params":{"lease_ms":3}})").message.find("lease_ms") != std::string::npos);
  CHECK(bad(R"({"cmd":"set","params":{"tau_s":3}})").message.find("bus") != std::string::npos);
  // use_forecast is a boolean, the others numbers: no 0/1 or "false" for it, no true for them.
  for (const char* v : {"1", "0", "\"false\"", "null"})
    CHECK(bad(std::string(R"({"cmd":"set","bus":"main","params":{"use_forecast":)") + v + "}}")
              .message.find("use_forecast\" must be true or false") != std::string::npos);
  CHECK(bad(R"({"cmd":"set","bus":"main","params":{"tau_s":true}})").message.find("tau_s") != std::string::npos);
  CHECK(bad(R"({"cmd":"set","bus":"main","params":{"lease_ms":3}})").message.find("use_forecast") != std::string::npos);
  CHECK(bad(R"({"cmd":"release","channel":")" + std::string(kMaxNameBytes + 1, 'x') + "\"}").message.find("longer") !=
        std::string::npos);
}

TEST_CASE("control protocol: oversized and deeply nested input is refused cheaply", "[control][protocol]") {
  const std::string big = R"({"cmd":"status","pad":")" + std::string(kMaxRequestBytes, 'x') + "\"}";
  CHECK(std::string(bad(big).code) == error_code::kTooLarge);
  const std::string deep = std::string(1000, '[') + std::string(1000, ']');
  CHECK(bad(deep).message.find("nested") != std::string::npos);
  // Brackets inside strings are not nesting.
  CHECK(ok(R"({"cmd":"release","channel":"[[[[[[[[[[[[[[[[[[[["})").channel == "[[[[[[[[[[[[[[[[[[[[");
}

TEST_CASE("control protocol: serialize then parse gives the same request", "[control][protocol]") {
  ApiRequest r;
  r.id = 42;
  r.command = Command::assign;
  r.channel = "cab2/7";
  r.bus = "aux";
  r.limits.max_discharge_W = 750.0;
  r.limits.hysteresis_V = 0.2;
  r.limits.efficiency = 0.92;
  const ApiRequest back = ok(serialize_request(r));
  CHECK(back.id == 42);
  CHECK(back.command == Command::assign);
  CHECK(back.channel == "cab2/7");
  CHECK(back.bus == "aux");
  CHECK(back.limits.max_discharge_W == 750.0);
  CHECK(back.limits.hysteresis_V == 0.2);
  CHECK(back.limits.efficiency == 0.92);
  CHECK_FALSE(back.limits.v_max_V.has_value());

  ApiRequest s;
  s.command = Command::set;
  s.bus = "main";
  s.params["deadband_W"] = 30.0;
  s.flags["use_forecast"] = false;
  const std::string line = serialize_request(s);
  CHECK(json::parse(line)["params"] == json{{"deadband_W", 30.0}, {"use_forecast", false}});
  const ApiRequest sb = ok(line);
  CHECK(sb.params == s.params);
  CHECK(sb.flags == s.flags);
}

TEST_CASE("control protocol: responses are single JSON lines", "[control][protocol]") {
  const std::string e =
      error_response(3, error_code::kUnknownChannel, "unknown channel \"x\"\nsecond", json{{"suggestions", {"a"}}});
  REQUIRE(e.back() == '\n');
  CHECK(e.find('\n') == e.size() - 1);
  const json j = json::parse(e);
  CHECK(j["v"] == kProtocolVersion);
  CHECK(j["id"] == 3);
  CHECK(j["ok"] == false);
  CHECK(j["error"]["code"] == "unknown_channel");
  CHECK(j["error"]["suggestions"][0] == "a");
  // Invalid UTF-8 in a name must not make the response throw.
  const std::string o = ok_response(4, json{{"name", std::string("\xff\xfe")}});
  CHECK(json::parse(o)["ok"] == true);
}

TEST_CASE("control protocol: merge_limits overrides only the given fields", "[control][protocol]") {
  eqd::core::BufferLimits base;
  base.max_charge_W = 1000;
  base.max_discharge_W = 800;
  base.v_min_V = 40;
  base.v_max_V = 56;
  LimitArgs a;
  a.max_charge_W = 300;
  const auto m = merge_limits(base, a);
  CHECK(m.max_charge_W == 300);
  CHECK(m.max_discharge_W == 800);
  CHECK(m.v_max_V == 56);
  CHECK(m.efficiency == 1.0);
  a.efficiency = 0.9;
  CHECK(merge_limits(base, a).efficiency == 0.9);
  // efficiency goes over the wire and into the state file with the other limits.
  eqd::core::BufferLimits back;
  limits_from_json(limits_to_json(merge_limits(base, a)), back);
  CHECK(back.efficiency == 0.9);
}

TEST_CASE("control protocol: a key given twice is refused, naming it", "[control][protocol]") {
  // nlohmann keeps the last value: {"cmd":"status","cmd":"assign"} used to run assign.
  ParseError e = bad(R"({"id":4,"cmd":"status","cmd":"assign","channel":"cab1/2"})");
  CHECK(std::string(e.code) == error_code::kBadRequest);
  CHECK(e.message.find("duplicate key \"cmd\"") != std::string::npos);
  CHECK(e.id == 4);
  // Escapes do not hide a duplicate: "\u0063md" is "cmd".
  CHECK(bad(R"({"cmd":"status","\u0063md":"release","channel":"cab1/2"})").message.find("\"cmd\"") !=
        std::string::npos);
  // Nested: named by its path.
  e = bad(R"({"cmd":"assign","channel":"cab1/2","limits":{"v_max_V":50,"v_min_V":40,"v_max_V":60}})");
  CHECK(e.message.find("duplicate key \"limits.v_max_V\"") != std::string::npos);
  e = bad(R"({"cmd":"set","bus":"main","params":{"tau_s":12,"tau_s":5}})");
  CHECK(e.message.find("\"params.tau_s\"") != std::string::npos);
  // The same key in different objects is no duplicate.
  CHECK(ok(R"({"cmd":"set","bus":"main","params":{"tau_s":12},"x":{"bus":1}})").params.at("tau_s") == 12.0);
  // Many distinct keys stay cheap (a set, not a list).
  std::string many = R"({"cmd":"status")";
  for (int i = 0; i < 5000; ++i) many += ",\"k" + std::to_string(i) + "\":0";
  CHECK(ok(many + "}").command == Command::status);
  CHECK(bad(many + ",\"k17\":1}").message.find("\"k17\"") != std::string::npos);
}

TEST_CASE("control protocol: adopt takes an optional bus", "[control][protocol]") {
  const ApiRequest a = ok(R"({"cmd":"adopt","controller":"unit2","bus":"aux"})");
  CHECK(a.command == Command::adopt);
  CHECK(a.controller == "unit2");
  CHECK(a.bus == "aux");
  CHECK(ok(R"({"cmd":"adopt","controller":"unit2"})").bus.empty());
  CHECK(std::string(bad(R"({"cmd":"adopt","controller":"unit2","bus":7})").code) == error_code::kBadRequest);
  ApiRequest r;
  r.command = Command::adopt;
  r.controller = "unit2";
  r.bus = "aux";
  const ApiRequest back = ok(serialize_request(r));
  CHECK(back.controller == "unit2");
  CHECK(back.bus == "aux");
}
