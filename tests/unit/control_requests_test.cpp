// The control API's request handling on a fake rig (tests/fakes/fake_rig.hpp): the real server on a
// real Unix socket, eqctl's real client, and behind them no Daemon, no control thread and no links.
// What the core answers is set by each test, so every refusal is reached on purpose and at once.
#include <catch2/catch.hpp>

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "../fakes/fake_rig.hpp"
#include "../fakes/other_uid.hpp"
#include "../fakes/temp_files.hpp"
#include "client.hpp"
#include "control_test_util.hpp"
#include "../fakes/runtime_values.hpp"
#include "eqd/control/server.hpp"
#include "eqd/control/state_store.hpp"
#include "eqd/history/store.hpp"

using eqd::cli::Client;
using eqd::control::ApiRequest;
using eqd::control::ApiServer;
using eqd::control::ApiServerOptions;
using eqd::control::Command;
using eqd::control::PersistedState;
using eqd::control::StateStore;
using eqd::core::ResponseStatus;
using eqd::core::Role;
using eqd::test::FakeRig;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// The process's own primary group: with it as api.group this test may change things without root.
std::string own_group() {
  const group* g = ::getgrgid(::getgid());
  REQUIRE(g != nullptr);
  return g->gr_name;
}

// Bus main (cab1/1..4, buffer cab1/4 from config) and bus aux (allow_any_tau, cab2/1..2), as in
// control_test_util.hpp, served from a FakeRig. `prepare` runs before the server starts.
struct FakeServer {
  eqd::control::test::TempDir dir;
  std::string socket = (dir.path / "eqd.sock").string();
  eqd::config::Config cfg = eqd::control::test::small_rig(dir.path.string(), socket);
  FakeRig rig{cfg};
  StateStore store{cfg.state_dir};
  std::unique_ptr<ApiServer> server;

  explicit FakeServer(const std::function<void(FakeRig&)>& prepare = {},
                      const std::function<void(ApiServerOptions&)>& tune = {}) {
    if (prepare) prepare(rig);
    ApiServerOptions o = eqd::control::api_server_options(cfg.api);
    o.group = own_group();
    if (tune) tune(o);
    server = std::make_unique<ApiServer>(rig, rig, store, store.load().state, o);
    server->start();
  }
  ~FakeServer() { server->stop(); }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  json call(ApiRequest r) {
    Client c(socket, 5000);
    return c.call(std::move(r));
  }
  json raw(const std::string& line) {
    Client c(socket, 5000);
    return json::parse(c.call_raw(line));
  }
  PersistedState on_disk() const { return StateStore(cfg.state_dir).load().state; }
};

/// One connection to `s` from uid 65534 (primary group nogroup), as another user's eqctl would open it:
/// the socket is opened to others first. Needs root (callers check). Asks one request line at a time.
struct OtherUidPeer {
  explicit OtherUidPeer(FakeServer& s) {
    REQUIRE(::chmod(s.dir.path.c_str(), 0755) == 0);
    REQUIRE(::chmod(s.socket.c_str(), 0666) == 0);
    fds = eqd::test::connect_as(65534, s.socket, 1);
    REQUIRE(fds.size() == 1);
  }
  json ask(const std::string& line) {
    REQUIRE(eqd::test::send_all(fds[0].fd, line + "\n"));
    const auto got = eqd::test::read_line(fds[0].fd, 3000ms);
    REQUIRE(got.has_value());
    return json::parse(*got);
  }
  std::vector<eqd::test::Fd> fds;
};

ApiRequest req(Command c, std::string channel = "", std::string bus = "") {
  ApiRequest r;
  r.command = c;
  r.channel = std::move(channel);
  r.bus = std::move(bus);
  return r;
}

ApiRequest assign(const std::string& channel) {
  ApiRequest r = req(Command::assign, channel);
  r.limits.max_charge_W = 800;
  r.limits.max_discharge_W = 600;
  r.limits.v_min_V = 44;
  r.limits.v_max_V = 56;
  return r;
}

std::string code_of(const json& resp) {
  INFO(resp.dump());
  REQUIRE(resp["ok"] == false);
  return resp["error"]["code"].get<std::string>();
}

std::string message_of(const json& resp) {
  INFO(resp.dump());
  REQUIRE(resp["ok"] == false);
  return resp["error"]["message"].get<std::string>();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("control API on a fake rig: parse errors are answered and reach nothing", "[control][server][fake]") {
  FakeServer s;
  Client c(s.socket, 5000);
  CHECK(code_of(json::parse(c.call_raw("this is not json"))) == "malformed");
  CHECK(code_of(json::parse(c.call_raw("[1,2,3]"))) == "malformed");
  const json unknown = json::parse(c.call_raw(R"({"id":77,"cmd":"format_disk"})"));
  CHECK(code_of(unknown) == "unknown_command");
  CHECK(unknown["id"] == 77);
  const json dup = json::parse(c.call_raw(R"({"id":3,"cmd":"status","cmd":"assign","channel":"cab1/2"})"));
  CHECK(code_of(dup) == "bad_request");
  CHECK(contains(message_of(dup), "duplicate key \"cmd\""));
  CHECK(dup["id"] == 3);
  CHECK(code_of(json::parse(c.call_raw(R"({"cmd":"assign"})"))) == "bad_request");            // no channel
  CHECK(code_of(json::parse(c.call_raw(R"({"cmd":"set","bus":"main"})"))) == "bad_request");  // no params
  CHECK(code_of(json::parse(c.call_raw(R"({"cmd":"set","bus":"main","params":{"use_forecast":0}})"))) == "bad_request");
  CHECK(code_of(json::parse(c.call_raw(R"({"cmd":"set","bus":"main","params":{"tau_s":"x"}})"))) == "bad_request");
  CHECK(code_of(json::parse(c.call_raw(R"({"cmd":"assign","channel":"cab1/2","limits":[800]})"))) == "bad_request");
  CHECK(code_of(json::parse(c.call_raw(R"({"cmd":"assign","channel":"cab1/2","limits":{"v_min_V":"low"}})"))) ==
        "bad_request");
  CHECK(c.call(req(Command::status))["ok"] == true);  // the same connection goes on

  Client big(s.socket, 5000);
  CHECK(code_of(json::parse(big.call_raw(std::string(eqd::control::kMaxRequestBytes + 10, 'x')))) == "too_large");
  CHECK_THROWS_AS(big.call(req(Command::status)), eqd::cli::UnreachableError);  // closed after too_large
  CHECK(c.call(req(Command::status))["ok"] == true);                            // the other connection still works

  CHECK(s.rig.requests().empty());  // nothing of it reached the control thread
}

TEST_CASE("control API on a fake rig: every answered request is counted by operation and result",
          "[control][server][fake][metrics]") {
  using Stats = eqd::daemon::ApiRequestStats;
  auto stats = std::make_shared<Stats>();
  FakeServer s({}, [&](ApiServerOptions& o) { o.request_stats = stats; });
  const auto at = [&](std::string_view op, std::string_view result) {
    std::size_t o = 0, r = 0;
    while (Stats::kOperations[o] != op) ++o;
    while (Stats::kResults[r] != result) ++r;
    return stats->value(o, r);
  };
  Client c(s.socket, 5000);
  CHECK(code_of(json::parse(c.call_raw("this is not json"))) == "malformed");   // refused by the API thread
  CHECK(code_of(c.call(req(Command::assign, "cab9/9"))) == "unknown_channel");  // refused by the API thread
  CHECK(c.call(req(Command::status))["ok"] == true);
  CHECK(c.call(req(Command::status))["ok"] == true);
  CHECK(code_of(c.call(req(Command::set, "", "nowhere"))) != "");  // unknown bus or bad request
  CHECK(at("unparsed", "malformed") == 1);
  CHECK(at("assign", "unknown_channel") == 1);
  CHECK(at("status", "ok") == 2);
  std::uint64_t total = 0;
  for (std::size_t o = 0; o < Stats::kOperations.size(); ++o)
    for (std::size_t r = 0; r < Stats::kResults.size(); ++r) total += stats->value(o, r);
  CHECK(total == 5);  // every answer, once
}

TEST_CASE("control API on a fake rig: assign and release are checked and persisted", "[control][server][fake]") {
  FakeServer srv;
  const json unknown = srv.call(req(Command::assign, "cab1/9"));
  CHECK(code_of(unknown) == "unknown_channel");
  CHECK(unknown["error"]["message"].get<std::string>().find("did you mean") != std::string::npos);
  CHECK_FALSE(unknown["error"]["suggestions"].empty());

  const json no_limits = srv.call(req(Command::assign, "cab1/2"));
  CHECK(code_of(no_limits) == "invalid");
  CHECK(no_limits["error"]["message"].get<std::string>().find("max_charge_W") != std::string::npos);
  // The missing fields by wire name, for clients that name them their own way (eqctl's --max-charge-W).
  CHECK(no_limits["error"]["missing"] == json{"max_charge_W", "max_discharge_W", "v_min_V", "v_max_V"});

  ApiRequest a = req(Command::assign, "cab1/2");
  a.limits.max_charge_W = 800;
  a.limits.max_discharge_W = 600;
  a.limits.v_min_V = 44;
  a.limits.v_max_V = 40;  // below v_min
  CHECK(srv.call(a)["error"]["message"].get<std::string>().find("v_min_V") != std::string::npos);
  a.limits.v_max_V = 56;
  a.bus = "aux";
  CHECK(srv.call(a)["error"]["message"].get<std::string>().find("is on bus main") != std::string::npos);
  a.bus = "main";
  const json assigned = srv.call(a);
  INFO(assigned.dump());
  REQUIRE(assigned["ok"] == true);
  CHECK(assigned["result"]["status"] == "pending");  // its controller is unreachable
  CHECK(assigned["result"]["persisted"] == true);

  PersistedState on_disk = srv.on_disk();
  REQUIRE(on_disk.channels.count("cab1/2") == 1);
  CHECK(on_disk.channels["cab1/2"].assigned);
  CHECK(on_disk.channels["cab1/2"].limits.max_discharge_W == 600);

  // A re-assign with one changed limit keeps the others (persisted limits are the base).
  ApiRequest again = req(Command::assign, "cab1/2");
  again.limits.max_charge_W = 700;
  const json re = srv.call(again);
  REQUIRE(re["ok"] == true);
  CHECK(re["result"]["status"] == "already");
  CHECK(re["result"]["limits"]["max_discharge_W"] == 600.0);
  CHECK(re["result"]["limits"]["max_charge_W"] == 700.0);
  // The answer carries the limits before the request, so that a client can say what changed.
  CHECK(re["result"]["previous_limits"]["max_charge_W"] == 800.0);
  CHECK(re["result"]["message"].get<std::string>().find("limits updated") != std::string::npos);

  // A re-assign without limits changes nothing, and says so (issue #18 item 4).
  const json same = srv.call(req(Command::assign, "cab1/2"));
  INFO(same.dump());
  REQUIRE(same["ok"] == true);
  CHECK(same["result"]["status"] == "already");
  CHECK(same["result"]["previous_limits"] == same["result"]["limits"]);
  CHECK(same["result"]["message"].get<std::string>().find("nothing changed") != std::string::npos);

  // The converter's efficiency is a limit like the others: given, applied, persisted.
  ApiRequest eff = req(Command::assign, "cab1/2");
  eff.limits.efficiency = 0.92;
  const json e = srv.call(eff);
  REQUIRE(e["ok"] == true);
  CHECK(e["result"]["limits"]["efficiency"] == 0.92);
  CHECK(e["result"]["previous_limits"]["efficiency"] == 1.0);
  CHECK(srv.on_disk().channels["cab1/2"].limits.efficiency == 0.92);
  eff.limits.efficiency = 0.3;
  CHECK(srv.call(eff)["error"]["message"].get<std::string>().find("efficiency") != std::string::npos);

  const json rel = srv.call(req(Command::release, "cab1/4"));  // a config buffer
  REQUIRE(rel["ok"] == true);
  on_disk = srv.on_disk();
  REQUIRE(on_disk.channels.count("cab1/4") == 1);
  CHECK_FALSE(on_disk.channels["cab1/4"].assigned);
  CHECK(code_of(srv.call(req(Command::release, "cab1/44"))) == "unknown_channel");
}

TEST_CASE("control API on a fake rig: set validates with the bus's allow_any_tau", "[control][server][fake]") {
  FakeServer srv;
  srv.rig.cycle();  // the control thread has cycled: there are parameters to start from
  ApiRequest s = req(Command::set, "", "main");
  s.params["tau_s"] = 5;
  const json refused = srv.call(s);
  CHECK(code_of(refused) == "invalid");
  CHECK(refused["error"]["message"].get<std::string>().find("tau_s") != std::string::npos);
  s.bus = "aux";
  REQUIRE(srv.call(s)["ok"] == true);
  s.bus = "main";
  s.params["tau_s"] = 12;
  s.params["deadband_W"] = 25;
  const json ok = srv.call(s);
  REQUIRE(ok["ok"] == true);
  CHECK(ok["result"]["params"]["tau_s"] == 12.0);
  const json st = srv.call(req(Command::status));
  CHECK(st["result"]["buses"][0]["params"]["tau_s"] == 12.0);
  CHECK(st["result"]["buses"][0]["params"]["deadband_W"] == 25.0);
  CHECK(st["result"]["buses"][1]["params"]["tau_s"] == 5.0);
  PersistedState on_disk = srv.on_disk();
  CHECK(on_disk.buses.at("main").get("tau_s") == 12.0);
  CHECK_FALSE(on_disk.buses.at("main").get("target_W").has_value());
  CHECK_FALSE(on_disk.buses.at("main").get("use_forecast").has_value());

  // use_forecast: a boolean parameter, applied and persisted like the others; the rest stays.
  ApiRequest f = req(Command::set, "", "main");
  f.flags["use_forecast"] = false;
  const json off = srv.call(f);
  INFO(off.dump());
  REQUIRE(off["ok"] == true);
  CHECK(off["result"]["params"]["use_forecast"] == false);
  CHECK(off["result"]["params"]["tau_s"] == 12.0);
  const json st2 = srv.call(req(Command::status));
  CHECK(st2["result"]["buses"][0]["params"]["use_forecast"] == false);
  CHECK(st2["result"]["buses"][1]["params"]["use_forecast"] == true);
  CHECK(st2["result"]["buses"][0]["params"]["tau_s"] == 12.0);
  CHECK(srv.rig.bus(0).params.use_forecast == false);
  on_disk = srv.on_disk();
  REQUIRE(on_disk.buses.at("main").get("use_forecast").has_value());
  CHECK(*on_disk.buses.at("main").get("use_forecast") == false);
  CHECK(on_disk.buses.at("main").get("tau_s") == 12.0);
  CHECK_FALSE(on_disk.buses.at("aux").get("use_forecast").has_value());
  // Raw wire: a number is not a boolean.
  Client raw(srv.socket, 5000);
  const json bad_flag = json::parse(raw.call_raw(R"({"cmd":"set","bus":"main","params":{"use_forecast":0}})"));
  CHECK(bad_flag["error"]["code"] == "bad_request");
  CHECK(code_of(srv.call(req(Command::set, "", "nope"))) == "bad_request");  // no params: parser
}

TEST_CASE("control API on a fake rig: assign is refused before the core when it cannot be right",
          "[control][server][fake]") {
  FakeServer s([](FakeRig& r) {
    // cab2 was discovered and is not adopted: read-only.
    r.make_read_only("cab2");
  });
  const json unknown = s.call(assign("cab1/9"));
  CHECK(code_of(unknown) == "unknown_channel");
  CHECK(contains(message_of(unknown), "did you mean"));
  CHECK_FALSE(unknown["error"]["suggestions"].empty());

  const json no_limits = s.call(req(Command::assign, "cab1/2"));
  CHECK(code_of(no_limits) == "invalid");
  CHECK(contains(message_of(no_limits), "max_charge_W"));

  ApiRequest bad = assign("cab1/2");
  bad.limits.v_max_V = 40;  // below v_min_V
  CHECK(code_of(s.call(bad)) == "invalid");
  CHECK(contains(message_of(s.call(bad)), "v_min_V"));

  ApiRequest other_bus = assign("cab1/2");
  other_bus.bus = "aux";
  CHECK(contains(message_of(s.call(other_bus)), "is on bus main"));
  other_bus.bus = "mian";
  CHECK(code_of(s.call(other_bus)) == "unknown_bus");

  const json read_only = s.call(assign("cab2/1"));
  CHECK(code_of(read_only) == "not_adopted");
  CHECK(contains(message_of(read_only), "eqctl controllers adopt cab2"));

  CHECK(s.rig.requests().empty());
}

TEST_CASE("control API on a fake rig: assign on a controller whose bus is unknown names --bus",
          "[control][server][fake]") {
  FakeServer s([](FakeRig& r) { r.make_read_only("cab2", true); });
  const json refused = s.call(assign("cab2/2"));
  CHECK(code_of(refused) == "not_adopted");
  CHECK(contains(message_of(refused), "--bus BUS"));
  CHECK(s.rig.requests().empty());
}

TEST_CASE("control API on a fake rig: assign on a controller whose transport cannot command is refused",
          "[control][server][fake]") {
  FakeServer s([](FakeRig& r) { r.make_test_only("cab2"); });
  const json refused = s.call(assign("cab2/1"));
  CHECK(code_of(refused) == "not_commandable");
  CHECK(contains(message_of(refused), "cab2/1 is a test channel"));
  CHECK(contains(message_of(refused), "transport neware"));
  CHECK(s.rig.requests().empty());
  // controllers says so.
  const json list = s.call(req(Command::controllers));
  bool seen = false;
  for (const auto& c : list["result"]["controllers"]) {
    if (c["controller"] == "cab2") {
      CHECK(c["commands"] == false);
      seen = true;
    }
    if (c["controller"] == "cab1") CHECK(c["commands"] == true);
  }
  CHECK(seen);
  // The other controller's channels are unaffected.
  CHECK(s.call(assign("cab1/2"))["ok"] == true);
}

TEST_CASE("control API on a fake rig: the core's answers to assign", "[control][server][fake]") {
  FakeServer s([](FakeRig& r) {
    eqd::core::Sample running;
    running.state = eqd::core::ChannelState::running;
    running.valid = true;
    r.set_sample("cab1/1", running);
    eqd::core::Sample fault = running;
    fault.state = eqd::core::ChannelState::fault;
    r.set_sample("cab1/3", fault);
    r.set_link("cab2", true);
  });

  // Its controller is down: accepted, pending, persisted.
  const json pending = s.call(assign("cab1/2"));
  INFO(pending.dump());
  REQUIRE(pending["ok"] == true);
  CHECK(pending["result"]["status"] == "pending");
  CHECK(pending["result"]["persisted"] == true);
  CHECK(s.on_disk().channels.at("cab1/2").assigned);
  CHECK(s.rig.channel_named("cab1/2").role == Role::pending);
  const auto sent = s.rig.requests();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].kind == eqd::core::RequestKind::assign);
  CHECK(sent[0].limits.max_discharge_W == 600.0);

  // Its controller is up: assigned.
  const json ok = s.call(assign("cab2/1"));
  REQUIRE(ok["ok"] == true);
  CHECK(ok["result"]["status"] == "assigned");
  CHECK(s.rig.channel_named("cab2/1").role == Role::equalization);

  // Assigned again: already, the persisted limits are the base of what is not given.
  ApiRequest again = req(Command::assign, "cab1/2");
  again.limits.max_charge_W = 700;
  const json re = s.call(again);
  REQUIRE(re["ok"] == true);
  CHECK(re["result"]["status"] == "already");
  CHECK(re["result"]["limits"]["max_charge_W"] == 700.0);
  CHECK(re["result"]["limits"]["max_discharge_W"] == 600.0);

  // The core refuses: a channel running a test, one in fault, limits it does not take.
  const json running = s.call(assign("cab1/1"));
  CHECK(code_of(running) == "refused_running");
  CHECK(contains(message_of(running), "running a test"));
  CHECK(code_of(s.call(assign("cab1/3"))) == "refused_fault");
  s.rig.answer_next(ResponseStatus::refused_invalid);
  const json invalid = s.call(assign("cab2/2"));
  CHECK(code_of(invalid) == "invalid");
  CHECK(contains(message_of(invalid), "refused the limits"));
  // A refusal is not persisted.
  const PersistedState disk = s.on_disk();
  CHECK(disk.channels.count("cab1/1") == 0);
  CHECK(disk.channels.count("cab1/3") == 0);
  CHECK(disk.channels.count("cab2/2") == 0);
}

TEST_CASE("control API on a fake rig: release", "[control][server][fake]") {
  FakeServer s;
  CHECK(code_of(s.call(req(Command::release, "cab1/44"))) == "unknown_channel");

  // A configured buffer: released, and recorded (with config's limits) so that it stays released.
  const json rel = s.call(req(Command::release, "cab1/4"));
  INFO(rel.dump());
  REQUIRE(rel["ok"] == true);
  CHECK(rel["result"]["status"] == "released");
  const PersistedState disk = s.on_disk();
  REQUIRE(disk.channels.count("cab1/4") == 1);
  CHECK_FALSE(disk.channels.at("cab1/4").assigned);
  CHECK(disk.channels.at("cab1/4").limits.max_charge_W == 1000.0);
  CHECK(s.rig.channel_named("cab1/4").role == Role::test);

  // A test channel: nothing to do.
  const json already = s.call(req(Command::release, "cab1/1"));
  REQUIRE(already["ok"] == true);
  CHECK(already["result"]["status"] == "already");

  // The core refuses.
  s.rig.answer_next(ResponseStatus::refused_invalid);
  const json refused = s.call(req(Command::release, "cab1/2"));
  CHECK(code_of(refused) == "invalid");
  CHECK(contains(message_of(refused), "cab1/2"));
  CHECK(s.rig.requests().size() == 3);
}

TEST_CASE("control API on a fake rig: set", "[control][server][fake]") {
  FakeServer s;
  ApiRequest set = req(Command::set, "", "main");
  set.params["tau_s"] = 12;

  // Before the first control cycle there are no parameters to start from.
  const json early = s.call(set);
  CHECK(code_of(early) == "busy");
  CHECK(contains(message_of(early), "has not run yet"));
  s.rig.cycle();

  ApiRequest unknown = set;
  unknown.bus = "nope";
  CHECK(code_of(s.call(unknown)) == "unknown_bus");

  // tau_s 5 is outside the bounds of main, allowed on aux (allow_any_tau).
  ApiRequest fast = set;
  fast.params["tau_s"] = 5;
  const json refused = s.call(fast);
  CHECK(code_of(refused) == "invalid");
  CHECK(contains(message_of(refused), "tau_s"));
  CHECK(s.rig.requests().empty());
  fast.bus = "aux";
  REQUIRE(s.call(fast)["ok"] == true);
  CHECK(s.rig.bus(1).params.tau_s == 5.0);

  set.params["deadband_W"] = 25;
  set.flags["use_forecast"] = false;
  const json ok = s.call(set);
  INFO(ok.dump());
  REQUIRE(ok["ok"] == true);
  CHECK(ok["result"]["params"]["tau_s"] == 12.0);
  CHECK(ok["result"]["params"]["use_forecast"] == false);
  CHECK(s.rig.bus(0).params.tau_s == 12.0);
  CHECK(s.rig.bus(0).params.deadband_W == 25.0);
  const PersistedState disk = s.on_disk();
  CHECK(disk.buses.at("main").get("tau_s") == 12.0);
  CHECK(disk.buses.at("main").get("use_forecast") == false);
  CHECK_FALSE(disk.buses.at("main").get("target_W").has_value());
  CHECK(disk.buses.at("aux").get("tau_s") == 5.0);

  // The core refuses.
  s.rig.answer_next(ResponseStatus::refused_invalid);
  CHECK(code_of(s.call(set)) == "invalid");
}

TEST_CASE("control API on a fake rig: set warns where stat_forecast stays on and does nothing",
          "[control][server][fake][stat_forecast]") {
  FakeServer s;
  s.rig.cycle();
  ApiRequest on = req(Command::set, "", "main");
  on.flags["stat_forecast"] = true;
  // Bus main runs law adaptive (the default is planned): the set succeeds, is persisted, and says it
  // does nothing.
  s.rig.set_law(0, eqd::core::LawKind::adaptive);
  const json adaptive = s.call(on);
  INFO(adaptive.dump());
  REQUIRE(adaptive["ok"] == true);
  CHECK(adaptive["result"]["persisted"] == true);
  CHECK(s.rig.bus(0).params.stat_forecast);
  REQUIRE(adaptive["result"].contains("warning"));
  CHECK(adaptive["result"]["warning"] ==
        "bus main: stat_forecast is on but does nothing with law adaptive (it is a path for law planned, which is set "
        "in the configuration: buses.main.law)");
  // An unrelated set on that bus does not repeat it; turning it off says nothing.
  ApiRequest tau = req(Command::set, "", "main");
  tau.params["tau_s"] = 14;
  CHECK_FALSE(s.call(tau)["result"].contains("warning"));
  ApiRequest off = on;
  off.flags["stat_forecast"] = false;
  CHECK_FALSE(s.call(off)["result"].contains("warning"));

  // Law planned: no warning, unless use_forecast is off (then planned plans over no path).
  s.rig.set_law(0, eqd::core::LawKind::planned);
  const json planned = s.call(on);
  REQUIRE(planned["ok"] == true);
  CHECK_FALSE(planned["result"].contains("warning"));
  ApiRequest no_forecast = req(Command::set, "", "main");
  no_forecast.flags["use_forecast"] = false;
  const json nf = s.call(no_forecast);
  REQUIRE(nf["ok"] == true);
  CHECK(
      nf["result"]["warning"] ==
      "bus main: stat_forecast is on but does nothing while use_forecast is off (law planned then plans over no path)");
}

TEST_CASE("control API on a fake rig: a stalled control thread refuses changes at once", "[control][server][fake]") {
  FakeServer s([](FakeRig& r) { r.cycle(); });
  s.rig.stall(true);
  ApiRequest set = req(Command::set, "", "main");
  set.params["tau_s"] = 12;
  for (const ApiRequest& r : {assign("cab1/2"), req(Command::release, "cab1/4"), set}) {
    const auto t0 = std::chrono::steady_clock::now();
    const json refused = s.call(r);
    CHECK(code_of(refused) == "stalled");
    CHECK(contains(message_of(refused), "STALLED"));
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);  // at once, not after the response timeout
  }
  CHECK(s.rig.requests().empty());

  // Reading goes on, and says so.
  const json st = s.call(req(Command::status));
  REQUIRE(st["ok"] == true);
  CHECK(st["result"]["control"]["stalled"] == true);
  CHECK(st["result"]["control"]["stalls"] == 1);
  CHECK(st["result"]["buses"][0]["status"] == "stalled");

  // Cycling again: changes are taken again.
  s.rig.stall(false);
  REQUIRE(s.call(assign("cab1/2"))["ok"] == true);
  const json after = s.call(req(Command::status));
  CHECK(after["result"]["control"]["stalled"] == false);
  CHECK(after["result"]["control"]["stalls"] == 1);
}

TEST_CASE("control API on a fake rig: a full queue is busy, a silent control thread a timeout",
          "[control][server][fake]") {
  FakeServer s({}, [](ApiServerOptions& o) { o.response_timeout = 300ms; });
  s.rig.fill_queue(true);
  const json busy = s.call(assign("cab1/2"));
  CHECK(code_of(busy) == "busy");
  CHECK(contains(message_of(busy), "queue is full"));
  CHECK(s.rig.requests().empty());
  s.rig.fill_queue(false);

  s.rig.hold_responses(true);
  const auto t0 = std::chrono::steady_clock::now();
  const json late = s.call(assign("cab1/2"));
  CHECK(code_of(late) == "timeout");
  CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);
  CHECK(s.rig.requests().size() == 1);
  CHECK(s.on_disk().channels.count("cab1/2") == 0);

  // The answer that comes after the timeout is still applied: the change is persisted.
  s.rig.hold_responses(false);
  bool persisted = false;
  for (int i = 0; i < 100 && !persisted; ++i) {
    std::this_thread::sleep_for(20ms);
    const PersistedState disk = s.on_disk();
    persisted = disk.channels.count("cab1/2") == 1 && disk.channels.at("cab1/2").assigned;
  }
  CHECK(persisted);
}

TEST_CASE("control API on a fake rig: a reader may not change anything", "[control][server][fake]") {
  if (::getuid() != 0) {
    WARN("not run: connecting as another uid needs root");
    return;
  }
  FakeServer s([](FakeRig& r) { r.cycle(); });
  OtherUidPeer peer(s);
  CHECK(peer.ask(R"({"cmd":"hello"})")["result"]["may_change"] == false);
  const json refused = peer.ask(R"({"cmd":"release","channel":"cab1/4"})");
  CHECK(code_of(refused) == "forbidden");
  CHECK(contains(message_of(refused), "needs the operator role"));
  CHECK(contains(message_of(refused), "role viewer"));
  CHECK(code_of(peer.ask(R"({"cmd":"set","bus":"main","params":{"tau_s":12}})")) == "forbidden");
  CHECK(peer.ask(R"({"cmd":"channels"})")["ok"] == true);  // reading is allowed
  CHECK(s.rig.requests().empty());
}

// Issue #16, roles: an operator (api.group) may assign and release, not set; an admin (api.admin_group)
// may set too. The peer is uid 65534 with primary group nogroup (65534), which each case names.
TEST_CASE("control API on a fake rig: operators release, only admins set", "[control][server][fake][roles]") {
  if (::getuid() != 0) {
    WARN("not run: connecting as another uid needs root");
    return;
  }
  for (const bool admin : {false, true}) {
    INFO((admin ? "nogroup is api.admin_group" : "nogroup is api.group"));
    FakeServer s([](FakeRig& r) { r.cycle(); },
                 [admin](ApiServerOptions& o) {
                   o.group = admin ? "users" : "nogroup";
                   o.admin_group = admin ? "nogroup" : "staff";
                 });
    OtherUidPeer peer(s);
    const json hello = peer.ask(R"({"cmd":"hello"})");
    CHECK(hello["result"]["role"] == (admin ? "admin" : "operator"));
    CHECK(hello["result"]["may_change"] == true);
    const json set = peer.ask(R"({"cmd":"set","bus":"aux","params":{"deadband_W":45}})");
    if (admin) {
      CHECK(set["ok"] == true);
    } else {
      CHECK(code_of(set) == "forbidden");
      CHECK(contains(message_of(set), "set needs the admin role (root or group 'staff')"));
      CHECK(contains(message_of(set), "role operator"));
    }
    // Releasing is an operator's work: it reaches the control thread in both roles.
    const std::size_t before = s.rig.requests().size();
    const json rel = peer.ask(R"({"cmd":"release","channel":"cab1/4"})");
    INFO(rel.dump());
    CHECK((rel["ok"] == true || rel["error"]["code"] != "forbidden"));
    CHECK(s.rig.requests().size() == before + 1);
  }
}

TEST_CASE("control API on a fake rig: the reading commands show the rig's view", "[control][server][fake]") {
  FakeServer s([](FakeRig& r) {
    r.cycle();
    eqd::io::LinkStats st;
    st.polls = 42;
    st.achieved_hz = 9.5;
    r.set_link("cab1", true, st);
    eqd::core::Sample smp;
    smp.state = eqd::core::ChannelState::running;
    smp.power_W = 1234.0;
    smp.voltage_V = 50.0;
    smp.forecast_W = 1500.0F;
    smp.step_index = 3;
    smp.cycle_index = 70000;
    smp.valid = true;
    r.set_sample("cab1/1", smp);
  });
  const json hello = s.call(req(Command::hello));
  REQUIRE(hello["ok"] == true);
  CHECK(hello["result"]["may_change"] == true);
  CHECK(hello["result"]["channels"] == 6);
  CHECK(hello["result"]["buses"] == json{"main", "aux"});

  const json st = s.call(req(Command::status));
  REQUIRE(st["ok"] == true);
  CHECK(st["result"]["controllers"]["connected"] == 1);
  CHECK(st["result"]["controllers"]["disconnected"] == 1);
  CHECK(st["result"]["buses"][0]["channels"]["pending"] == 1);  // cab1/4 from config
  CHECK(st["result"]["buses"][1]["params"]["allow_any_tau"] == true);
  CHECK(st["result"]["control"]["cycles"] == 1);

  const json chans = s.call(req(Command::channels, "", "main"));
  REQUIRE(chans["ok"] == true);
  REQUIRE(chans["result"]["channels"].size() == 4);
  const json& c1 = chans["result"]["channels"][0];
  CHECK(c1["channel"] == "cab1/1");
  CHECK(c1["state"] == "running");
  CHECK(c1["power_W"] == 1234.0);
  CHECK(c1["forecast_W"] == 1500.0);
  CHECK(c1["step_index"] == 3);
  CHECK(c1["cycle_index"] == 70000);
  // A channel whose controller reports no program position: null, not the sentinels.
  const json& c2 = chans["result"]["channels"][1];
  CHECK(c2["step_index"].is_null());
  CHECK(c2["cycle_index"].is_null());

  const json ctl = s.call(req(Command::controllers));
  REQUIRE(ctl["ok"] == true);
  CHECK(ctl["result"]["controllers"][0]["connected"] == true);
  CHECK(ctl["result"]["controllers"][0]["polls"] == 42);
  CHECK(ctl["result"]["controllers"][0]["achieved_hz"] == 9.5);
  CHECK(ctl["result"]["controllers"][1]["connected"] == false);
}

// Issue #13, the run-time parameter table: every row of core::kRuntimeParams is settable through the
// API, answered, shown by status, applied to the core and persisted, with no code naming it.
TEST_CASE("control API on a fake rig: every row of the run-time parameter table is set, shown and persisted",
          "[control][server][fake][params]") {
  FakeServer srv;
  srv.rig.cycle();
  for (const eqd::core::RuntimeParam& row : eqd::core::kRuntimeParams) {
    INFO(row.name);
    ApiRequest s = req(Command::set, "", "aux");  // aux allows any tau
    const eqd::core::BusParams before = srv.rig.bus(1).params;
    // A value the row accepts and that differs from the current one.
    const double now = eqd::core::runtime_value(row, before);
    const double value = eqd::test::other_runtime_value(row, now);
    if (row.flag)
      s.flags[row.name] = value != 0.0;
    else
      s.params[row.name] = value;
    const json ok = srv.call(s);
    INFO(ok.dump());
    REQUIRE(ok["ok"] == true);
    const json answered = ok["result"]["params"][row.name];
    // A choice is answered by name (mode "caps"), a flag as true/false.
    CHECK((row.choice != nullptr ? json(eqd::core::runtime_choice_name(row, value))
           : row.flag            ? json(value != 0.0)
                                 : json(value)) == answered);
    CHECK(eqd::core::runtime_value(row, srv.rig.bus(1).params) == value);
    CHECK(srv.call(req(Command::status))["result"]["buses"][1]["params"][row.name] == answered);
    CHECK(srv.on_disk().buses.at("aux").get(row.name) == value);
  }
  // Every row, and nothing else, is in the answer's params.
  ApiRequest s = req(Command::set, "", "aux");
  s.params["deadband_W"] = 30;
  const json ok = srv.call(s);
  REQUIRE(ok["ok"] == true);
  CHECK(ok["result"]["params"].size() == eqd::core::kRuntimeParams.size());
  CHECK(eqd::control::settable_list() ==
        "tau_s, deadband_W, target_W, use_forecast, learn_forecast, stat_forecast, plan_travel_weight_s, mode, "
        "import_limit_W, "
        "export_limit_W, "
        "import_limit_average_s, valley_fill, fill_margin, fill_lead_s, fill_energy_Wh, level_shaving");
}

namespace {

// The audit log behind a FakeServer: a real history store (SQLite) in this process's scratch directory.
std::shared_ptr<eqd::history::HistoryStore> audit_store(const std::string& name) {
  static eqd::test::ProcessTempDir dir("eqd-control-audit");
  eqd::history::HistoryOptions o;
  o.path = (dir.path() / name).string();
  o.journal = false;
  auto s = std::make_shared<eqd::history::HistoryStore>(o);
  REQUIRE(s->database_error().empty());
  s->start();
  return s;
}

// The store's records, oldest first, once everything recorded so far is written.
std::vector<eqd::history::AuditRecord> audit_records(eqd::history::HistoryStore& s) {
  REQUIRE(s.flush(5s));
  auto got = std::make_shared<std::promise<eqd::history::AuditPage>>();
  REQUIRE(s.query(eqd::history::AuditQuery{}, [got](eqd::history::AuditPage p) { got->set_value(std::move(p)); }));
  auto f = got->get_future();
  REQUIRE(f.wait_for(5s) == std::future_status::ready);
  auto page = f.get();
  REQUIRE(page.error.empty());
  std::reverse(page.records.begin(), page.records.end());
  return page.records;
}

}  // namespace

// Issue #16, audit log: every change request is recorded with who (uid, user, pid, role), the request,
// the result and the values before and after; refusals too; `audit` answers from the database.
TEST_CASE("control API on a fake rig: change requests are audited with who, result, before and after",
          "[control][server][fake][audit]") {
  auto store = audit_store("audit.db");
  FakeServer s([](FakeRig& r) { r.cycle(); },
               [&store](ApiServerOptions& o) {
                 o.audit = store;
                 o.history_state = [] {
                   return json{{"path", "/x/history.db"}, {"error", nullptr}, {"records_lost", 0}};
                 };
               });
  const std::int64_t me = ::getuid();
  CHECK(s.call(req(Command::status))["result"]["history"]["path"] == "/x/history.db");

  REQUIRE(s.call(assign("cab1/2"))["ok"] == true);
  REQUIRE(s.call(req(Command::release, "cab1/2"))["ok"] == true);
  ApiRequest set = req(Command::set, "", "main");
  set.params["deadband_W"] = 45;
  REQUIRE(s.call(set)["ok"] == true);
  CHECK(code_of(s.call(req(Command::assign, "cab1/99"))) == "unknown_channel");
  CHECK(code_of(s.raw(R"({"cmd":"set","bus":"main","params":{"lease_ms":3}})")) == "bad_request");
  REQUIRE(s.call(req(Command::status))["ok"] == true);  // reading is not audited

  auto recs = audit_records(*store);
  REQUIRE(recs.size() == 5);
  const auto& a = recs[0];
  CHECK(a.command == "assign");
  CHECK(a.ok);
  CHECK(a.uid == me);
  CHECK(a.user == eqd::history::user_name(static_cast<uid_t>(me)));
  CHECK(a.pid == ::getpid());  // eqctl's client runs in this process
  CHECK(a.role == (me == 0 ? "admin" : "operator"));
  CHECK(a.channel == "cab1/2");
  CHECK(a.request["cmd"] == "assign");
  CHECK(a.request["limits"]["max_charge_W"] == 800.0);
  CHECK(a.before == json{{"role", "test"}});
  CHECK(a.after["role"] == "pending");  // its controller is down in the fake
  CHECK(a.after["limits"]["max_discharge_W"] == 600.0);

  const auto& rel = recs[1];
  CHECK(rel.command == "release");
  CHECK(rel.ok);
  CHECK(rel.before["role"] == "pending");
  CHECK(rel.before["limits"]["max_charge_W"] == 800.0);
  CHECK(rel.after == json{{"role", "test"}});

  const auto& st = recs[2];
  CHECK(st.command == "set");
  CHECK(st.bus == "main");
  CHECK(st.ok);
  CHECK(st.request["params"]["deadband_W"] == 45.0);
  CHECK(st.after["params"]["deadband_W"] == 45.0);
  CHECK(st.before["params"]["deadband_W"] != 45.0);

  CHECK_FALSE(recs[3].ok);
  CHECK(recs[3].error_code == "unknown_channel");
  CHECK(recs[3].before.is_null());
  CHECK(recs[3].after.is_null());
  CHECK_FALSE(recs[4].ok);
  CHECK(recs[4].command == "set");
  CHECK(recs[4].error_code == "bad_request");
  CHECK(recs[4].request["params"]["lease_ms"] == 3);

  // The API's own `audit` answers from the same database, newest first, filtered.
  ApiRequest q = req(Command::audit, "cab1/2");
  const json got = s.call(q);
  INFO(got.dump());
  REQUIRE(got["ok"] == true);
  REQUIRE(got["result"]["records"].size() == 2);
  CHECK(got["result"]["records"][0]["command"] == "release");
  CHECK(got["result"]["records"][1]["result"] == "ok");
  CHECK(got["result"]["more"] == false);
}

TEST_CASE("control API on a fake rig: a set refused to a non-admin uid is audited with that uid and role",
          "[control][server][fake][audit][roles]") {
  if (::getuid() != 0) {
    WARN("not run: connecting as another uid needs root");
    return;
  }
  auto store = audit_store("refused.db");
  FakeServer s([](FakeRig& r) { r.cycle(); },
               [&store](ApiServerOptions& o) {
                 o.group = "nogroup";  // uid 65534 (primary group nogroup) is an operator
                 o.admin_group = "staff";
                 o.audit = store;
               });
  OtherUidPeer peer(s);
  CHECK(code_of(peer.ask(R"({"cmd":"set","bus":"aux","params":{"deadband_W":45}})")) == "forbidden");
  CHECK(peer.ask(R"({"cmd":"release","channel":"cab1/4"})")["ok"] == true);
  CHECK(peer.ask(R"({"cmd":"audit","user":"nobody"})")["result"]["records"].size() == 2);

  auto recs = audit_records(*store);
  REQUIRE(recs.size() == 2);
  const auto& refused = recs[0];
  CHECK(refused.command == "set");
  CHECK(refused.uid == 65534);
  CHECK(refused.user == eqd::history::user_name(65534));
  CHECK(refused.role == "operator");
  CHECK(refused.pid > 0);
  CHECK(refused.bus == "aux");
  CHECK_FALSE(refused.ok);
  CHECK(refused.error_code == "forbidden");
  CHECK_THAT(refused.message, Catch::Contains("set needs the admin role"));
  CHECK(refused.before["params"].contains("deadband_W"));
  CHECK(refused.after.is_null());
  CHECK(recs[1].command == "release");
  CHECK(recs[1].uid == 65534);
  CHECK(recs[1].ok);
  CHECK(recs[1].before["role"] == "pending");
  CHECK(recs[1].after == json{{"role", "test"}});
}

TEST_CASE("control API on a fake rig: audit without a history answers unavailable", "[control][server][fake][audit]") {
  FakeServer s;
  CHECK(code_of(s.call(req(Command::audit))) == "unavailable");
}

TEST_CASE("control API on a fake rig: an audit query the history never answers times out",
          "[control][server][fake][audit]") {
  // A history writer stuck on a slow disk: it takes the query and never calls back.
  struct SilentSink final : eqd::history::AuditSink {
    bool record(eqd::history::AuditRecord) noexcept override { return true; }
    bool query(const eqd::history::AuditQuery&, std::function<void(eqd::history::AuditPage)> done) noexcept override {
      kept = std::move(done);
      return true;
    }
    bool report(const eqd::history::ReportQuery&, std::function<void(eqd::history::ReportAnswer)>) noexcept override {
      return false;  // a full queue: the client is told `busy`
    }
    std::function<void(eqd::history::AuditPage)> kept;
  };
  auto sink = std::make_shared<SilentSink>();
  FakeServer s({}, [&sink](ApiServerOptions& o) {
    o.audit = sink;
    o.response_timeout = 300ms;
  });
  const auto t0 = std::chrono::steady_clock::now();
  const json got = s.call(req(Command::audit));
  CHECK(code_of(got) == "timeout");
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  CHECK(s.call(req(Command::hello))["ok"] == true);  // the server goes on
  // A report the history cannot take is `busy` at once; an unknown bus or bad edges never reach it.
  ApiRequest rep = req(Command::report);
  rep.edges_s = {1'796'320'800, 1'796'324'400};
  CHECK(code_of(s.call(rep)) == "busy");
  rep.bus = "nosuch";
  CHECK(code_of(s.call(rep)) == "unknown_bus");
  rep.bus.clear();
  rep.edges_s = {1'796'324'400, 1'796'320'800};
  CHECK(code_of(s.call(rep)) == "bad_request");
}

TEST_CASE("control API on a fake rig: status shows a bus's grid meter beside the computed net", "[control][fake]") {
  FakeServer s;
  eqd::daemon::MeterView v;
  v.configured = true;
  v.ok = true;
  v.age_s = 0.4;
  v.transport = "sunspec";
  v.sign = "export_positive";
  v.tolerance_W = 500.0;
  v.persistence_s = 10.0;
  v.status.connected = true;
  v.status.valid = true;
  v.status.model = 203;
  v.status.power_W = 2500.0;
  v.status.frequency_Hz = 49.98;
  v.status.computed_W = 1000.0;
  v.status.difference_W = 1500.0;
  v.status.disagreement = true;
  v.status.episodes = 1;
  v.status.readings = 40;
  s.rig.set_meter(0, v);
  json st = s.call(req(Command::status));
  REQUIRE(st["ok"] == true);
  const json& m = st["result"]["buses"][0]["meter"];
  INFO(m.dump());
  CHECK(m["ok"] == true);
  CHECK(m["model"] == 203);
  CHECK(m["transport"] == "sunspec");
  CHECK(m["sign"] == "export_positive");
  CHECK(m["power_W"] == 2500.0);
  CHECK(m["frequency_Hz"] == 49.98);
  CHECK(m["computed_W"] == 1000.0);
  CHECK(m["difference_W"] == 1500.0);
  CHECK(m["age_s"] == 0.4);
  CHECK(m["tolerance_W"] == 500.0);
  CHECK(m["disagreement"] == true);
  CHECK(m["disagreements"] == 1);
  CHECK(m["last_error"] == "");
  CHECK(m["trim"] == false);  // meter.trim off: no bias, state off
  CHECK(m["trim_W"] == 0.0);
  CHECK(m["trim_state"] == "off");
  CHECK(m["trim_tau_s"].is_null());
  CHECK(st["result"]["buses"][1]["meter"].is_null());  // aux has none
  // The meter trim on: its bias (eqd's sign) and state, its settings.
  v.trim = true;
  v.trim_tau_s = 120.0;
  v.trim_max_W = 2000.0;
  v.status.trim_W = 1480.0;
  v.status.trim_state = eqd::core::MeterTrimState::tracking;
  s.rig.set_meter(0, v);
  st = s.call(req(Command::status));
  const json& t = st["result"]["buses"][0]["meter"];
  CHECK(t["trim"] == true);
  CHECK(t["trim_W"] == 1480.0);
  CHECK(t["trim_state"] == "tracking");
  CHECK(t["trim_tau_s"] == 120.0);
  CHECK(t["trim_max_W"] == 2000.0);
  // Offline: not ok, no power or difference, the error said.
  v.ok = false;
  v.status.connected = false;
  v.status.valid = false;
  v.status.disagreement = false;
  std::snprintf(v.status.last_error, sizeof v.status.last_error, "%s", "meter of bus main connect: refused");
  s.rig.set_meter(0, v);
  st = s.call(req(Command::status));
  const json& off = st["result"]["buses"][0]["meter"];
  CHECK(off["ok"] == false);
  CHECK(off["connected"] == false);
  CHECK(off["power_W"].is_null());
  CHECK(off["difference_W"].is_null());
  CHECK(off["last_error"] == "meter of bus main connect: refused");
}
