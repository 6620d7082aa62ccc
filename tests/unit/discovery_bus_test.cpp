// Which bus a discovered controller is on (issue #12, "Discovery that stays right"): the TXT `bus`
// key, discovery.adopt rules with a bus, `adopt --bus`, the cache remembering both, and the rule
// that a controller whose bus is not known is read-only and in no bus's balance, checked through
// the rig plan and a real ControlCore.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "eqd/core/control_core.hpp"
#include "eqd/daemon/rig.hpp"
#include "eqd/discovery/cache.hpp"
#include "eqd/discovery/manager.hpp"
#include "eqd/discovery/merge.hpp"
#include "eqd/discovery/txt.hpp"

using namespace eqd::discovery;
using eqd::config::AdoptRule;
using eqd::config::Config;
using eqd::config::ControllerConfig;
namespace core = eqd::core;
namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

Config two_buses() {
  Config c;
  for (const char* name : {"main", "aux"}) {
    eqd::config::BusConfig b;
    b.name = name;
    c.buses.push_back(b);
  }
  return c;
}

ResolvedService service(const std::string& name, std::vector<std::string> txt) {
  ResolvedService s;
  s.instance = name;
  s.type = kControllerServiceType;
  s.address = "10.0.0.7";
  s.port = 1502;
  s.txt = std::move(txt);
  return s;
}

KnownController known(const std::string& name, const std::string& announced_bus, std::uint16_t port,
                      std::uint16_t channels = 2) {
  KnownController k;
  k.record.name = name;
  k.record.identity = "SN-" + name;
  k.record.host = "10.0.0.7";
  k.record.port = port;
  k.record.channels = channels;
  k.record.bus = announced_bus;
  return k;
}

const ControllerConfig* find(const Config& c, const std::string& name) {
  for (const auto& x : c.controllers)
    if (x.name == name) return &x;
  return nullptr;
}

}  // namespace

TEST_CASE("TXT bus: read, optional, validated", "[discovery][txt][bus]") {
  const std::vector<std::string> base{"transport=tcp", "channels=4"};
  auto with = [&](const std::string& extra) {
    auto t = base;
    t.push_back(extra);
    return parse_controller(service("cab1", t));
  };
  const ParsedAnnouncement a = with("bus=aux");
  REQUIRE(a.announcement);
  CHECK(a.announcement->bus == "aux");
  CHECK(with("BUS=hall-2").announcement->bus == "hall-2");                   // keys are case-insensitive
  CHECK(parse_controller(service("cab1", base)).announcement->bus.empty());  // none announced
  CHECK(with("bus=").announcement->bus.empty());                             // empty: none announced
  const ParsedAnnouncement bad = with("bus=a b");
  CHECK_FALSE(bad.announcement);
  CHECK_THAT(bad.error, Catch::Contains("TXT bus='a b'") && Catch::Contains("not a bus name"));
  CHECK_THAT(with("bus=" + std::string(65, 'x')).error, Catch::Contains("TXT bus="));
  CHECK_THAT(with(std::string("bus=x\x01y", 7)).error, Catch::Contains("'x?y'"));
  // What eqsim publishes is what eqd reads; without a bus there is no key at all.
  const auto txt = controller_txt("cab1", "SN1", 1, "eqd-default", 8, "aux");
  CHECK(std::find(txt.begin(), txt.end(), "bus=aux") != txt.end());
  CHECK(parse_controller(service("cab1", txt)).announcement->bus == "aux");
  for (const std::string& t : controller_txt("cab1", "SN1", 1, "eqd-default", 8)) CHECK(t.rfind("bus=", 0) != 0);
}

TEST_CASE("choose_bus: adoption, then rule, then announcement, then the only bus", "[discovery][merge][bus]") {
  Config base = two_buses();
  base.discovery.adopt = {{"rule*", "aux"}, {"plain*", ""}};
  auto rec = [](const std::string& name, const std::string& bus) {
    ControllerRecord r;
    r.name = name;
    r.bus = bus;
    return r;
  };
  CHECK(choose_bus(base, rec("cab1", "aux")).bus == "aux");
  CHECK(choose_bus(base, rec("cab1", "aux")).note.empty());
  // Announced but not one of eqd's buses, or none announced with two buses: unknown, and said why.
  BusChoice c = choose_bus(base, rec("cab1", "hall"));
  CHECK(c.bus.empty());
  CHECK_THAT(c.note, Catch::Contains("announces bus hall") && Catch::Contains("main, aux"));
  c = choose_bus(base, rec("cab1", ""));
  CHECK(c.bus.empty());
  CHECK_THAT(c.note, Catch::Contains("announces no bus"));
  // A rule with a bus wins over the announcement (and says so); a plain rule keeps the announcement.
  c = choose_bus(base, rec("rule1", "main"));
  CHECK(c.bus == "aux");
  CHECK_THAT(c.note, Catch::Contains("announces bus main") && Catch::Contains("rule 'rule*'"));
  CHECK(choose_bus(base, rec("rule1", "")).bus == "aux");
  CHECK(choose_bus(base, rec("plain1", "main")).bus == "main");
  CHECK(choose_bus(base, rec("plain1", "")).bus.empty());
  // adopt --bus wins over both, but only once adopted; a bus the configuration lost is unknown.
  ControllerRecord r = rec("rule1", "main");
  r.adopted_bus = "main";
  CHECK(choose_bus(base, r).bus == "aux");  // not adopted: the recorded bus does not count
  r.adopted = true;
  CHECK(choose_bus(base, r).bus == "main");
  r.adopted_bus = "gone";
  CHECK(choose_bus(base, r).bus.empty());
  CHECK_THAT(choose_bus(base, r).note, Catch::Contains("adopted on bus gone") && Catch::Contains("does not have"));
  // One bus and nothing announced: it can only be on that one. An unknown announced bus stays unknown.
  Config one = two_buses();
  one.buses.pop_back();
  CHECK(choose_bus(one, rec("cab1", "")).bus == "main");
  CHECK(choose_bus(one, rec("cab1", "aux")).bus.empty());
}

TEST_CASE("merge: a controller whose bus is unknown is read-only even when adopted", "[discovery][merge][bus]") {
  Config base = two_buses();
  base.discovery.adopt = {{"u*", ""}};
  KnownController on_aux = known("a1", "aux", 1501);
  KnownController lost = known("u1", "hall", 1502);  // adopted by the plain rule, bus unknown
  KnownController adopted = known("u2", "", 1503);
  adopted.record.adopted = true;
  adopted.record.adopted_bus = "aux";
  const MergeResult m = merge_controllers(base, {on_aux, lost, adopted});
  REQUIRE(m.config.controllers.size() == 3);
  const ControllerConfig* a1 = find(m.config, "a1");
  CHECK(a1->bus == "aux");
  CHECK_FALSE(a1->bus_unknown);
  CHECK(a1->read_only);  // not adopted
  const ControllerConfig* u1 = find(m.config, "u1");
  CHECK(u1->bus_unknown);
  CHECK(u1->bus.empty());
  CHECK(u1->read_only);
  const ControllerConfig* u2 = find(m.config, "u2");
  CHECK(u2->bus == "aux");
  CHECK_FALSE(u2->read_only);
  REQUIRE(m.notes.size() == 1);
  CHECK_THAT(m.notes[0], Catch::Contains("u1 announces bus hall") && Catch::Contains("read-only") &&
                             Catch::Contains("eqctl controllers adopt u1 --bus BUS"));
}

TEST_CASE("cache round trip keeps the announced and the adopted bus", "[discovery][cache][bus]") {
  char tmpl[] = "/tmp/eqd-disc-bus-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string path = dir + "/" + kCacheFileName;
  ControllerRecord r = known("cab1", "aux", 1502).record;
  r.adopted = true;
  r.adopted_bus = "main";
  r.last_seen_s = 100;
  ControllerRecord plain = known("cab2", "", 1503).record;
  plain.last_seen_s = 100;
  REQUIRE(save_cache(path, {r, plain}).empty());
  CacheLoad l = load_cache(path);
  CHECK(l.warning.empty());
  REQUIRE(l.records.size() == 2);
  CHECK(l.records[0] == r);
  CHECK(l.records[1] == plain);
  // A cache written before buses were announced has neither field: no bus, nothing lost.
  {
    std::ofstream f(path);
    f << R"({"format":"eqd-controller-cache","version":1,"controllers":[
      {"name":"old","identity":"SN-old","host":"10.0.0.7","port":1502,"channels":2,"last_seen_s":100}]})";
  }
  l = load_cache(path);
  CHECK(l.warning.empty());
  REQUIRE(l.records.size() == 1);
  CHECK(l.records[0].bus.empty());
  CHECK(l.records[0].adopted_bus.empty());
  // A bad bus in one entry skips that entry with its reason; the others are kept.
  {
    std::ofstream f(path);
    f << R"({"format":"eqd-controller-cache","version":1,"controllers":[
      {"name":"bad","identity":"a","host":"10.0.0.7","port":1502,"channels":2,"last_seen_s":100,"bus":"a b"},
      {"name":"bad2","identity":"b","host":"10.0.0.7","port":1503,"channels":2,"last_seen_s":100,"adopted_bus":7},
      {"name":"good","identity":"c","host":"10.0.0.7","port":1504,"channels":2,"last_seen_s":100,"bus":"aux"}]})";
  }
  l = load_cache(path);
  REQUIRE(l.records.size() == 1);
  CHECK(l.records[0].bus == "aux");
  CHECK_THAT(l.warning, Catch::Contains("entry 0 skipped: \"bus\" is not a bus name") &&
                            Catch::Contains("entry 1 skipped: \"adopted_bus\" is not a string"));
  fs::remove_all(dir);
}

TEST_CASE("manager: announced bus, adopt --bus, and both remembered across restarts", "[discovery][manager][bus]") {
  char tmpl[] = "/tmp/eqd-disc-bus-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  Config base = two_buses();
  base.state_dir = dir;
  base.discovery.enabled = true;
  base.discovery.debounce_ms = 100;
  std::atomic<int> wakes{0};
  auto now = DiscoveryManager::Clock::now();
  auto settle = [&](DiscoveryManager& m, const std::vector<LinkState>& links) {
    now += milliseconds(1000);
    if (auto first = m.tick(links, now)) return *first;
    now += milliseconds(150);
    auto next = m.tick(links, now);
    REQUIRE(next);
    return *next;
  };
  auto announce = [](DiscoveryManager& m, const std::string& name, std::uint16_t port, const std::string& bus) {
    MdnsEvent ev;
    ev.service = service(name, controller_txt(name, "SN-" + name, 1, "eqd-default", 2, bus));
    ev.service.port = port;
    m.post(ev);
  };
  {
    DiscoveryManager m(
        base, [&] { ++wakes; }, [] { return std::int64_t{1'000'000}; });
    m.applied(m.initial_config());
    announce(m, "a1", 1501, "aux");
    announce(m, "h1", 1502, "hall");
    const Config next = settle(m, {});
    CHECK(find(next, "a1")->bus == "aux");
    CHECK(find(next, "h1")->bus_unknown);
    m.applied(next);

    // adopt --bus: an unknown bus is refused; a known one moves the controller there, read-write.
    ChangeResult r = m.adopt("h1", "nosuch");
    CHECK_FALSE(r.ok);
    CHECK(r.code == "unknown_bus");
    CHECK_THAT(r.message, Catch::Contains("main, aux"));
    // Adopting without a bus keeps it read-only, and says why.
    r = m.adopt("h1");
    CHECK(r.ok);
    CHECK_THAT(r.message, Catch::Contains("bus is not known") && Catch::Contains("--bus BUS"));
    r = m.adopt("h1", "main");
    CHECK(r.ok);
    CHECK_THAT(r.message, Catch::Contains("adopted on bus main"));
    const Config adopted = settle(m, {{"a1", true}, {"h1", true}});
    CHECK(find(adopted, "h1")->bus == "main");
    CHECK_FALSE(find(adopted, "h1")->bus_unknown);
    CHECK_FALSE(find(adopted, "h1")->read_only);
    m.applied(adopted);
    CHECK(m.adopt("h1", "main").message.find("already adopted, on bus main") != std::string::npos);
    m.stop();
  }
  // The cache remembers the announced bus and the adopted one: a restart without mDNS has both.
  const CacheLoad l = load_cache(dir + "/" + kCacheFileName);
  REQUIRE(l.records.size() == 2);
  for (const auto& rec : l.records) {
    if (rec.name == "a1") CHECK(rec.bus == "aux");
    if (rec.name == "h1") {
      CHECK(rec.bus == "hall");
      CHECK(rec.adopted_bus == "main");
    }
  }
  DiscoveryManager again(
      base, [&] { ++wakes; }, [] { return std::int64_t{1'000'100}; });
  const Config start = again.initial_config();
  CHECK(find(start, "a1")->bus == "aux");
  CHECK(find(start, "h1")->bus == "main");
  CHECK_FALSE(find(start, "h1")->read_only);
  again.stop();
  fs::remove_all(dir);
}

TEST_CASE("a channel of unknown bus is sampled but in no bus's balance (rig plan + core)", "[discovery][core][bus]") {
  Config base = two_buses();
  KnownController m1 = known("m1", "main", 1501, 3);
  m1.record.adopted = true;
  const MergeResult m = merge_controllers(base, {m1, known("a1", "aux", 1502), known("h1", "hall", 1503)});
  const eqd::daemon::RigPlan plan = eqd::daemon::plan_rig(m.config);
  const auto& dir = plan.directory;
  const auto h1 = *dir.find_controller("h1");
  CHECK(dir.controllers[h1].read_only);
  CHECK(dir.controllers[h1].bus_unknown);
  const core::ChannelIndex h1_1 = *dir.find_channel("h1/1");
  CHECK(dir.channels[h1_1].bus == core::kNoBus);
  CHECK(dir.channels[*dir.find_channel("a1/2")].bus == *dir.find_bus("aux"));

  core::ControlCore cc(plan.core);
  const core::BusIndex main_bus = *dir.find_bus("main"), aux_bus = *dir.find_bus("aux");
  const core::ChannelIndex buffer = *dir.find_channel("m1/3");
  std::int64_t now_ns = 1'000'000'000;
  // m1/1..2 discharge 1 kW each, a1 charges 300 W each, h1 discharges 5 kW each. h1 stops reporting
  // after the first cycles: its staleness must not hold main's law either.
  auto publish = [&](bool h1_fresh) {
    for (core::ChannelIndex i = 0; i < dir.channels.size(); ++i) {
      const std::string& n = dir.channels[i].name;
      if (n.rfind("h1/", 0) == 0 && !h1_fresh) continue;
      core::Sample s;
      s.voltage_V = 50.0;
      s.power_W = n.rfind("m1/", 0) == 0 ? (i == buffer ? 0.0 : -1000.0) : n.rfind("a1/", 0) == 0 ? 300.0 : -5000.0;
      s.current_A = s.power_W / s.voltage_V;
      s.state = i == buffer ? core::ChannelState::idle : core::ChannelState::running;
      s.valid = true;
      s.receive_time_ns = now_ns;
      cc.sample_slot(i).store(s);
    }
    cc.cycle(now_ns);
    now_ns += 100'000'000;
  };
  auto request = [&](core::RequestKind kind, core::ChannelIndex ch) {
    core::Request r;
    r.id = 7 + ch;
    r.kind = kind;
    r.channel = ch;
    r.limits.max_charge_W = r.limits.max_discharge_W = 2000.0;
    r.limits.v_min_V = 40.0;
    r.limits.v_max_V = 56.0;
    REQUIRE(cc.submit(r));
    publish(true);
    core::Response resp;
    REQUIRE(cc.poll_response(resp));
    return resp.status;
  };
  for (int k = 0; k < 3; ++k) publish(true);
  CHECK(cc.bus(main_bus).free_W == Approx(-2000.0));
  CHECK(cc.bus(aux_bus).free_W == Approx(600.0));
  CHECK(cc.bus(main_bus).channels == 3);
  CHECK(cc.bus(aux_bus).channels == 2);
  // Sampled and shown: its snapshot has a health, and no bus.
  CHECK(cc.channel(h1_1).health == core::Health::ok);
  CHECK(cc.channel(h1_1).bus == core::kNoBus);
  // Never a buffer.
  CHECK(request(core::RequestKind::assign, h1_1) == core::ResponseStatus::refused_invalid);
  CHECK(request(core::RequestKind::release, h1_1) == core::ResponseStatus::refused_invalid);
  CHECK(request(core::RequestKind::assign, buffer) == core::ResponseStatus::ok);
  for (int k = 0; k < 30; ++k) publish(false);  // h1 goes stale (max_age_ms 2000 by default)
  CHECK(cc.channel(h1_1).health == core::Health::stale);
  CHECK(cc.bus(main_bus).stale == 0);
  CHECK(cc.bus(main_bus).status != core::BusStatus::holding);
  CHECK(cc.bus(main_bus).free_W == Approx(-2000.0));
  CHECK(cc.bus(main_bus).buffers + cc.bus(main_bus).pending == 1);
}
