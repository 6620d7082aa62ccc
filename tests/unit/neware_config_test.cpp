// The transport `neware` in the configuration and the rig plan: its keys and their errors (with
// file:line:column), its defaults, the endpoint, the link made through the registry, and the refusal
// of any of its channels as a buffer (eqd cannot command a BTS channel).

#include <catch2/catch.hpp>

#include <string>

#include "eqd/config/config.hpp"
#include "eqd/daemon/daemon.hpp"
#include "eqd/daemon/rig.hpp"
#include "eqd/io/neware/transport.hpp"
#include "eqd/io/transport.hpp"

using eqd::config::ConfigError;
using eqd::config::parse_config;
using eqd::io::neware::NewareSettings;

namespace {

// The controller's keys start on line 4 (after "buses", "controllers:", "  - name").
std::string yaml(const std::string& keys, const std::string& tail = "") {
  return "buses: [{name: main}]\ncontrollers:\n  - name: bts1\n    transport: neware\n" + keys + tail;
}

std::string error_of(const std::string& y) {
  try {
    (void)parse_config(y, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("neware config: keys, defaults, endpoint, link", "[neware][config]") {
  const auto cfg = parse_config(yaml("    host: 192.0.2.50\n    device_id: 21\n"), "t.yaml");
  const auto& c = cfg.controllers.at(0);
  const auto* s = c.settings_as<NewareSettings>();
  REQUIRE(s != nullptr);
  CHECK(s->host == "192.0.2.50");
  CHECK(s->port == 502);
  CHECK(s->device_id == 21);
  CHECK(s->device_type == -1);
  CHECK(s->unit_channels == 8);
  CHECK(s->username == "admin");
  CHECK(c.channels == 8);  // one unit by default

  const auto full = parse_config(yaml("    host: bts-pc.lab.example\n    port: 5020\n    device_id: 3\n"
                                      "    device_type: 24\n    unit_channels: 4\n    channels: 12\n"
                                      "    username: lab\n    password: \"s&cret\"\n    poll_hz: 2\n"),
                                 "t.yaml");
  const auto* f = full.controllers.at(0).settings_as<NewareSettings>();
  CHECK(f->port == 5020);
  CHECK(f->device_type == 24);
  CHECK(f->unit_channels == 4);
  CHECK(f->password == "s&cret");
  CHECK(full.controllers.at(0).channels == 12);

  const eqd::daemon::RigPlan plan = eqd::daemon::plan_rig(full);
  REQUIRE(plan.links.size() == 1);
  CHECK(plan.links[0].transport == eqd::io::find_transport("neware"));
  CHECK(plan.links[0].spec.read_only);  // never a command, whatever discovery says
  CHECK(plan.directory.controllers[0].endpoint == "neware:bts-pc.lab.example:5020#3");
  CHECK_FALSE(plan.directory.controllers[0].commands);
  CHECK_FALSE(eqd::io::find_transport("neware")->commands());
  CHECK(eqd::io::find_transport("tcp")->commands());
  CHECK(eqd::io::transport_names().at(4) == "neware");
}

TEST_CASE("neware config: errors name the key and the place", "[neware][config]") {
  CHECK_THAT(error_of(yaml("    device_id: 21\n")),
             Catch::Contains("controllers[0].host: missing required key 'host' (transport neware)"));
  CHECK_THAT(error_of(yaml("    host: 192.0.2.50\n")),
             Catch::Contains("controllers[0].device_id: missing required key 'device_id' (transport neware)"));
  CHECK_THAT(error_of(yaml("    host: 192.0.2.50\n    device_id: x\n")),
             Catch::StartsWith("t.yaml:6:16: controllers[0].device_id: "));
  CHECK_THAT(error_of(yaml("    host: 999.1.1.1\n    device_id: 1\n")),
             Catch::StartsWith("t.yaml:5:11: controllers[0].host: ") && Catch::Contains("RFC 1123"));
  CHECK_THAT(error_of(yaml("    host: h\n    device_id: 1\n    device_type: 300\n")),
             Catch::StartsWith("t.yaml:7:18: controllers[0].device_type: "));
  CHECK_THAT(error_of(yaml("    host: h\n    device_id: 1\n    unit_channels: 0\n")),
             Catch::Contains("controllers[0].unit_channels"));
  CHECK_THAT(error_of(yaml("    host: h\n    device_id: 1\n    channels: 2000\n")),
             Catch::Contains("controllers[0].channels"));
  CHECK_THAT(error_of(yaml("    host: h\n    device_id: 1\n    password: \"a\\nb\"\n")),
             Catch::Contains("controllers[0].password") && Catch::Contains("control characters"));
  // Another transport's key, both ways.
  CHECK_THAT(error_of(yaml("    host: h\n    device_id: 1\n    unit_id: 2\n")),
             Catch::Contains("'unit_id' applies only to transport: tcp | rtu | sunspec (this controller uses neware)"));
  CHECK_THAT(error_of("buses: [{name: main}]\ncontrollers:\n  - {name: c1, host: 10.0.0.1, device_id: 3}\n"),
             Catch::Contains("'device_id' applies only to transport: neware (this controller uses tcp)"));
  CHECK_THAT(error_of(yaml("    host: h\n    device_id: 1\n    unit_chanels: 4\n")),
             Catch::Contains("did you mean 'unit_channels'"));
  // Two controllers for one device of one server.
  CHECK_THAT(
      error_of(yaml("    host: h\n    device_id: 1\n", "  - {name: bts2, transport: neware, host: h, device_id: 1}\n")),
      Catch::Contains("controllers[1].device_id: device 1 of h:502 is already controller 'bts1'"));
  CHECK(error_of(yaml("    host: h\n    device_id: 1\n",
                      "  - {name: bts2, transport: neware, host: h, device_id: 2}\n")) == "(no error)");
  // --set reaches the keys and the transport's checks run again.
  auto cfg = parse_config(yaml("    host: h\n    device_id: 1\n"), "t.yaml");
  eqd::config::apply_overrides(cfg, {"controllers.bts1.device_id=7"});
  CHECK(cfg.controllers[0].settings_as<NewareSettings>()->device_id == 7);
  CHECK_THROWS_WITH(eqd::config::apply_overrides(cfg, {"controllers.bts1.device_type=0"}),
                    Catch::Contains("device_type"));
}

TEST_CASE("neware config: a slow BTS poll needs fresh samples, not a lease", "[neware][config]") {
  // poll_hz 0.5: two poll periods are 4000 ms. max_age_ms must cover them; lease_ms need not (no lease).
  const std::string slow = "    host: h\n    device_id: 1\n    poll_hz: 0.5\n";
  CHECK(error_of("buses: [{name: main, lease_ms: 1000, max_age_ms: 4000}]\ncontrollers:\n  - name: bts1\n"
                 "    transport: neware\n" +
                 slow) == "(no error)");
  CHECK_THAT(error_of("buses: [{name: main, lease_ms: 5000, max_age_ms: 2000}]\ncontrollers:\n  - name: bts1\n"
                      "    transport: neware\n" +
                      slow),
             Catch::Contains("buses[0].max_age_ms: 2000 ms is too short: controller 'bts1' polls at 0.5 Hz"));
  // A Modbus controller at the same rate still needs the lease.
  CHECK_THAT(error_of("buses: [{name: main, lease_ms: 1000, max_age_ms: 4000}]\ncontrollers:\n"
                      "  - {name: c1, host: h, poll_hz: 0.5}\n"),
             Catch::Contains("buses[0].lease_ms: 1000 ms is too short"));
}

TEST_CASE("neware config: a channel of a neware controller cannot be a buffer", "[neware][config]") {
  const std::string y = yaml(
      "    host: h\n    device_id: 1\n",
      "equalization:\n  - {channel: bts1/3, max_charge_W: 100, max_discharge_W: 100, v_min_V: 2.5, v_max_V: 4.2}\n");
  CHECK_THAT(error_of(y), Catch::Contains("equalization[0].channel: 'bts1/3': controller 'bts1' uses transport "
                                          "neware, which eqd reads but cannot command"));
}

TEST_CASE("neware daemon: a persisted assignment of a BTS channel is dropped, a Modbus one kept",
          "[neware][config][daemon]") {
  const auto cfg = parse_config(
      "state_dir: /nonexistent-eqd-neware-test\nmetrics: {enabled: false}\nbuses: [{name: main}]\ncontrollers:\n"
      "  - {name: bts1, transport: neware, host: 127.0.0.1, port: 9, device_id: 1, channels: 2}\n"
      "  - {name: cab1, host: 127.0.0.1, port: 9, channels: 2}\n",
      "t.yaml");
  // What restoring eqd's state file does with persisted assignments: mark the channels assigned.
  auto assign_all = [](eqd::daemon::RigPlan& plan) {
    for (auto& ch : plan.core.channels) {
      ch.assigned = true;
      ch.limits.max_charge_W = ch.limits.max_discharge_W = 100.0;
      ch.limits.v_min_V = 2.5;
      ch.limits.v_max_V = 4.2;
    }
  };
  eqd::daemon::Daemon d(cfg, assign_all);
  CHECK(d.channel(0).role == eqd::core::Role::test);  // bts1/1
  CHECK(d.channel(1).role == eqd::core::Role::test);  // bts1/2
  CHECK(d.channel(2).role != eqd::core::Role::test);  // cab1/1: assigned
  CHECK(d.channel(3).role != eqd::core::Role::test);
}
