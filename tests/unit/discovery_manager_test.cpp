// The discovery manager without avahi-daemon: browse events are posted as Avahi's thread would post
// them; time is injected. Debounce, adoption (eqctl and rules), the cache across restarts, address
// changes, forget, expiry, conflicts with the configuration; and merge_controllers() itself.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "eqd/discovery/manager.hpp"
#include "eqd/discovery/merge.hpp"
#include "../fakes/transport_settings.hpp"

using namespace eqd::discovery;
using eqd::config::Config;
using eqd::config::ControllerConfig;
using eqd::config::ControllerOrigin;
namespace fs = std::filesystem;
using Clock = DiscoveryManager::Clock;
using std::chrono::milliseconds;

namespace {

struct Fixture {
  Fixture() {
    char tmpl[] = "/tmp/eqd-disc-mgr-XXXXXX";
    dir = ::mkdtemp(tmpl);
    base.state_dir = dir;
    eqd::config::BusConfig bus;
    bus.name = "main";
    base.buses.push_back(bus);
    base.discovery.enabled = true;
    base.discovery.debounce_ms = 100;
    base.discovery.cache_expiry_s = 3600;
  }
  ~Fixture() { fs::remove_all(dir); }

  std::unique_ptr<DiscoveryManager> make() {
    return std::make_unique<DiscoveryManager>(
        base, [this] { ++wakes; }, [this] { return unix_s.load(); });
  }

  static MdnsEvent resolved(const std::string& name, std::uint16_t port, std::uint16_t channels = 4) {
    MdnsEvent ev;
    ev.kind = MdnsEvent::Kind::resolved;
    ev.service.instance = name;
    ev.service.type = kControllerServiceType;
    ev.service.address = "127.0.0.1";
    ev.service.port = port;
    ev.service.txt = controller_txt(name, "SN-" + name, 1, "eqd-default", channels);
    return ev;
  }

  std::string dir;
  Config base;
  std::atomic<int> wakes{0};
  std::atomic<std::int64_t> unix_s{1'000'000};
  Clock::time_point t0 = Clock::now();
  Clock::time_point now = t0;  ///< advanced by settle()
};

// Ticks past the debounce (the first tick only notices the change); returns the handover, which the
// caller requires.
Config settle(DiscoveryManager& m, const std::vector<LinkState>& links, Fixture& f) {
  f.now += milliseconds(1000);
  if (auto first = m.tick(links, f.now)) return *first;
  f.now += milliseconds(150);
  auto next = m.tick(links, f.now);
  REQUIRE(next);
  return *next;
}

const ControllerConfig* find(const Config& c, const std::string& name) {
  for (const auto& x : c.controllers)
    if (x.name == name) return &x;
  return nullptr;
}

}  // namespace

TEST_CASE("a discovered controller joins read-only after the debounce", "[discovery][manager]") {
  Fixture f;
  auto m = f.make();
  m->applied(m->initial_config());
  m->post(Fixture::resolved("cab1", 1502));
  CHECK(f.wakes == 1);
  CHECK_FALSE(m->tick({}, f.t0));  // found, but the burst may go on
  REQUIRE(m->due());
  CHECK(*m->due() == f.t0 + milliseconds(100));
  CHECK_FALSE(m->tick({}, f.t0 + milliseconds(50)));
  const auto next = m->tick({}, f.t0 + milliseconds(100));
  REQUIRE(next);
  const ControllerConfig* c = find(*next, "cab1");
  REQUIRE(c);
  CHECK(c->read_only);
  CHECK(c->origin == ControllerOrigin::discovery);
  CHECK(eqd::test::tcp_of(*c).host == "127.0.0.1");
  CHECK(eqd::test::tcp_of(*c).port == 1502);
  CHECK(c->channels == 4);
  CHECK(eqd::test::tcp_of(*c).map.channel_count == 4);
  CHECK(c->identity == "SN-cab1");
  m->applied(*next);
  CHECK_FALSE(m->tick({}, f.t0 + milliseconds(500)));
  CHECK_FALSE(m->due());
}

TEST_CASE("a burst of announcements is applied once when it has been quiet", "[discovery][manager]") {
  Fixture f;
  auto m = f.make();
  m->applied(m->initial_config());
  m->post(Fixture::resolved("cab1", 1502));
  CHECK_FALSE(m->tick({}, f.t0));
  m->post(Fixture::resolved("cab2", 1503));
  CHECK_FALSE(m->tick({}, f.t0 + milliseconds(80)));
  CHECK_FALSE(m->tick({}, f.t0 + milliseconds(150)));  // quiet since 80 ms only
  const auto next = m->tick({}, f.t0 + milliseconds(180));
  REQUIRE(next);
  CHECK(find(*next, "cab1"));
  CHECK(find(*next, "cab2"));
}

TEST_CASE("eqctl adoption makes a controller commandable and is cached", "[discovery][manager]") {
  Fixture f;
  auto m = f.make();
  m->applied(m->initial_config());
  m->post(Fixture::resolved("cab1", 1502));
  m->applied(settle(*m, {}, f));

  const ChangeResult unknown = m->adopt("cab9");
  CHECK_FALSE(unknown.ok);
  CHECK(unknown.code == "unknown_controller");
  CHECK_THAT(unknown.message, Catch::Contains("known: cab1"));
  const ChangeResult ok = m->adopt("cab1");
  CHECK(ok.ok);
  CHECK(m->adopt("cab1").message.find("already adopted") != std::string::npos);
  (void)m->tick({{"cab1", true}}, f.now + milliseconds(300));
  const auto next = m->tick({{"cab1", true}}, f.now + milliseconds(500));
  REQUIRE(next);
  CHECK_FALSE(find(*next, "cab1")->read_only);
  m->applied(*next);
  m->stop();

  // The next start connects from the cache at once, still adopted.
  auto again = f.make();
  const Config start = again->initial_config();
  const ControllerConfig* c = find(start, "cab1");
  REQUIRE(c);
  CHECK(c->origin == ControllerOrigin::cache);
  CHECK_FALSE(c->read_only);
  CHECK(eqd::test::tcp_of(*c).port == 1502);
}

TEST_CASE("a controller that never connected is not cached", "[discovery][manager]") {
  Fixture f;
  auto m = f.make();
  m->applied(m->initial_config());
  m->post(Fixture::resolved("cab1", 1502));
  m->post(Fixture::resolved("cab2", 1503));
  m->applied(settle(*m, {{"cab1", true}, {"cab2", false}}, f));
  (void)m->tick({{"cab1", true}, {"cab2", false}}, f.now + milliseconds(300));
  const CacheLoad l = load_cache(m->cache_path());
  REQUIRE(l.records.size() == 1);
  CHECK(l.records[0].name == "cab1");
  CHECK(l.records[0].last_connected_s == f.unix_s);
}

TEST_CASE("adopt rules of the configuration adopt by name", "[discovery][manager]") {
  Fixture f;
  f.base.discovery.adopt = {{"cab[12]", ""}, {"rig-*", ""}};
  auto m = f.make();
  m->applied(m->initial_config());
  std::uint16_t port = 1500;
  for (const char* n : {"cab1", "cab3", "rig-7"}) m->post(Fixture::resolved(n, port++));
  const std::optional<Config> next = settle(*m, {}, f);
  REQUIRE(next->controllers.size() == 3);
  CHECK_FALSE(find(*next, "cab1")->read_only);
  CHECK(find(*next, "cab3")->read_only);
  CHECK_FALSE(find(*next, "rig-7")->read_only);
}

TEST_CASE("an address change of the same controller is followed", "[discovery][manager]") {
  Fixture f;
  auto m = f.make();
  m->applied(m->initial_config());
  m->post(Fixture::resolved("cab1", 1502));
  m->applied(settle(*m, {{"cab1", true}}, f));
  (void)m->tick({{"cab1", true}}, f.now + milliseconds(250));
  m->post(Fixture::resolved("cab1", 2502));
  CHECK_FALSE(m->tick({}, f.now + milliseconds(300)));
  const auto next = m->tick({}, f.now + milliseconds(400));
  REQUIRE(next);
  CHECK(eqd::test::tcp_of(*find(*next, "cab1")).port == 2502);
  REQUIRE(load_cache(m->cache_path()).records.size() == 1);
  CHECK(load_cache(m->cache_path()).records[0].port == 2502);
  // The same announcement again changes nothing.
  m->applied(*next);
  m->post(Fixture::resolved("cab1", 2502));
  CHECK_FALSE(m->tick({}, f.now + milliseconds(900)));
}

TEST_CASE("forget removes a controller from the configuration and the cache", "[discovery][manager]") {
  Fixture f;
  ControllerConfig configured;
  configured.name = "fixed";
  configured.settings_as<eqd::io::modbus::TcpSettings>()->host = "10.1.1.1";
  f.base.controllers.push_back(configured);
  auto m = f.make();
  m->applied(m->initial_config());
  m->post(Fixture::resolved("cab1", 1502));
  m->applied(settle(*m, {{"cab1", true}}, f));
  (void)m->tick({{"cab1", true}}, f.now + milliseconds(250));
  REQUIRE(load_cache(m->cache_path()).records.size() == 1);

  const ChangeResult fixed = m->forget("fixed");
  CHECK_FALSE(fixed.ok);
  CHECK_THAT(fixed.message, Catch::Contains("in the configuration file"));
  CHECK(m->adopt("fixed").code == "invalid");
  CHECK(m->forget("nope").code == "unknown_controller");
  CHECK(m->forget("cab1").ok);
  CHECK(m->forget("cab1").code == "unknown_controller");  // already gone for the API
  (void)m->tick({}, f.now + milliseconds(300));
  const auto next = m->tick({}, f.now + milliseconds(500));
  REQUIRE(next);
  CHECK_FALSE(find(*next, "cab1"));
  CHECK(find(*next, "fixed"));
  CHECK(load_cache(m->cache_path()).records.empty());
}

TEST_CASE("entries not seen for longer than cache_expiry_s expire", "[discovery][manager]") {
  Fixture f;
  {
    auto m = f.make();
    m->applied(m->initial_config());
    m->post(Fixture::resolved("cab1", 1502));
    m->applied(settle(*m, {{"cab1", true}}, f));
    (void)m->tick({{"cab1", true}}, f.now + milliseconds(250));
  }
  f.unix_s += 3601;
  auto m = f.make();  // at start: dropped, and the file rewritten without it
  CHECK_FALSE(find(m->initial_config(), "cab1"));
  CHECK(load_cache(m->cache_path()).records.empty());
}

TEST_CASE("a cached controller that stays away expires while eqd runs", "[discovery][manager]") {
  Fixture f;
  {
    auto m = f.make();
    m->applied(m->initial_config());
    m->post(Fixture::resolved("cab1", 1502));
    m->applied(settle(*m, {{"cab1", true}}, f));
    (void)m->tick({{"cab1", true}}, f.now + milliseconds(250));
  }
  auto m = f.make();
  const Config start = m->initial_config();
  REQUIRE(find(start, "cab1"));
  m->applied(start);
  CHECK_FALSE(m->tick({{"cab1", false}}, f.now));
  f.unix_s += 3601;
  (void)m->tick({{"cab1", false}}, f.now + milliseconds(10));
  const auto next = m->tick({{"cab1", false}}, f.now + milliseconds(200));
  REQUIRE(next);
  CHECK_FALSE(find(*next, "cab1"));
}

TEST_CASE("bad announcements and name clashes change nothing", "[discovery][manager]") {
  Fixture f;
  ControllerConfig configured;
  configured.name = "cab1";
  configured.settings_as<eqd::io::modbus::TcpSettings>()->host = "10.1.1.1";
  f.base.controllers.push_back(configured);
  auto m = f.make();
  m->applied(m->initial_config());
  MdnsEvent bad = Fixture::resolved("cab2", 1502);
  bad.service.txt = {"transport=tcp", "channels=lots"};
  m->post(bad);
  m->post(Fixture::resolved("cab1", 1502));  // configured: the configuration wins
  MdnsEvent twin = Fixture::resolved("cab3", 1504);
  m->post(twin);
  twin.service.instance = "other";
  twin.service.txt = controller_txt("cab3", "SN-other", 1, "eqd-default", 4);  // same name, other identity
  m->post(twin);
  MdnsEvent gone;
  gone.kind = MdnsEvent::Kind::removed;
  gone.service.instance = "nobody";
  m->post(gone);
  const std::optional<Config> next = settle(*m, {}, f);
  REQUIRE(next);
  REQUIRE(next->controllers.size() == 2);
  CHECK(find(*next, "cab1")->origin == ControllerOrigin::config);
  CHECK(eqd::test::tcp_of(*find(*next, "cab1")).host == "10.1.1.1");
  CHECK(find(*next, "cab3")->identity == "SN-cab3");
}

TEST_CASE("a corrupt cache does not keep the manager from starting", "[discovery][manager]") {
  Fixture f;
  std::ofstream(f.dir + "/" + kCacheFileName) << "{ not json";
  auto m = f.make();
  CHECK(m->initial_config().controllers.empty());
  bool moved = false;
  for (const auto& e : fs::directory_iterator(f.dir))
    moved = moved || e.path().filename().string().find(".corrupt-") != std::string::npos;
  CHECK(moved);
}

TEST_CASE("merge: configured controllers win by name and by endpoint", "[discovery][merge]") {
  Config base;
  eqd::config::BusConfig bus;
  bus.name = "main";
  base.buses.push_back(bus);
  ControllerConfig c;
  c.name = "cab1";
  c.settings_as<eqd::io::modbus::TcpSettings>()->host = "10.0.0.1";
  c.settings_as<eqd::io::modbus::TcpSettings>()->port = 502;
  base.controllers.push_back(c);
  auto known = [](const std::string& name, const std::string& host, std::uint16_t port, const std::string& profile) {
    KnownController k;
    k.record.name = name;
    k.record.identity = name;
    k.record.host = host;
    k.record.port = port;
    k.record.profile = profile;
    k.record.channels = 8;
    return k;
  };
  const MergeResult m = merge_controllers(
      base, {known("cab1", "10.0.0.9", 502, "eqd-default"), known("alias", "10.0.0.1", 502, "eqd-default"),
             known("custom", "10.0.0.3", 502, "vendor-x"), known("ok", "10.0.0.4", 502, "eqd-default")});
  REQUIRE(m.config.controllers.size() == 2);
  CHECK(m.config.controllers[1].name == "ok");
  CHECK(m.config.controllers[1].bus == "main");
  REQUIRE(m.skipped.size() == 3);
  CHECK_THAT(m.skipped[0], Catch::Contains("already configured"));
  CHECK_THAT(m.skipped[1], Catch::Contains("belongs to controller cab1"));
  CHECK_THAT(m.skipped[2], Catch::Contains("unknown profile 'vendor-x'"));
}

TEST_CASE("merge: adopt rules are globs", "[discovery][merge]") {
  using Rules = std::vector<eqd::config::AdoptRule>;
  CHECK(matches_adopt_rule("cab12", Rules{{"cab*", ""}}));
  CHECK(matches_adopt_rule("cab1", Rules{{"x", ""}, {"cab?", ""}}));
  CHECK_FALSE(matches_adopt_rule("cab12", Rules{{"cab?", ""}}));
  CHECK_FALSE(matches_adopt_rule("cab1", Rules{}));
  CHECK(matches_adopt_rule("hall-b-3", Rules{{"hall-[ab]-*", ""}}));
  // The first matching rule is the one that counts (its bus).
  const Rules rules{{"cab1", "aux"}, {"cab*", "main"}};
  REQUIRE(find_adopt_rule("cab1", rules) != nullptr);
  CHECK(find_adopt_rule("cab1", rules)->bus == "aux");
  CHECK(find_adopt_rule("cab2", rules)->bus == "main");
  CHECK(find_adopt_rule("unit", rules) == nullptr);
}
