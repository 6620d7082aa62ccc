// transport: can controllers and can_maps in the YAML configuration: they parse into the CAN link's
// settings, and bad signal maps or CAN keys stop the load with file:line and key path.
#include <catch2/catch.hpp>

#include "eqd/config/config.hpp"
#include "eqd/daemon/rig.hpp"
#include "../fakes/transport_settings.hpp"

using namespace eqd::config;

namespace {

const std::string kHead = R"(buses:
  - name: main
controllers:
  - name: cab1
    transport: can
    interface: vcan0
    node_id: 4
)";

std::string error_of(const std::string& yaml) {
  try {
    (void)parse_config(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

// A custom map; `status_signals` replaces the status frame's signal list.
std::string custom(const std::string& status_signals, const std::string& status_extra = "") {
  return kHead + "    can_profile: mine\n" + R"(can_maps:
  mine:
    channel_count: 4
    frames:
      - role: status
        id: 0x500
        id_stride: 0x10
)" + status_extra +
         "        signals:\n" + status_signals + R"(      - role: command
        id: 0x600
        id_stride: 0x10
        signals:
          - {name: enable, start_bit: 0, length: 8}
          - {name: setpoint, start_bit: 8, length: 32, signed: true}
)";
}

const std::string kGoodSignals = R"(          - {name: voltage, start_bit: 0, length: 16, scale: 0.01}
          - {name: current, start_bit: 16, length: 16, signed: true, scale: 0.01}
          - {name: state, start_bit: 32, length: 4}
)";

}  // namespace

TEST_CASE("can config: a CAN controller with the built-in profile", "[can][config]") {
  const Config cfg = parse_config(kHead + "    channels: 8\n    poll_hz: 20\n", "t.yaml");
  const ControllerConfig& c = cfg.controllers.at(0);
  CHECK(c.transport == "can");
  CHECK(eqd::test::can_of(c).interface == "vcan0");
  CHECK(eqd::test::can_of(c).node_id == 4);
  CHECK(c.channels == 8);
  CHECK(eqd::test::can_of(c).map.name == eqd::io::can::kDefaultCanProfile);
  CHECK(eqd::test::can_of(c).map.channel_count == 8);
  // The rig plan turns it into a CAN link keyed by controller index.
  const auto plan = eqd::daemon::plan_rig(cfg);
  REQUIRE(plan.links.size() == 1);
  const auto& link = plan.links.at(0);
  REQUIRE(link.transport != nullptr);
  CHECK(std::string(link.transport->name()) == "can");
  CHECK(eqd::test::settings_of<eqd::io::can::CanSettings>(link.settings).interface == "vcan0");
  CHECK(eqd::test::settings_of<eqd::io::can::CanSettings>(link.settings).node_id == 4);
  CHECK(link.spec.poll_hz == 20.0);
  CHECK(link.spec.channel_slots.size() == 8);
  CHECK(plan.directory.controllers.at(0).transport == "can");
  CHECK(plan.directory.controllers.at(0).endpoint == "vcan0#4");
}

TEST_CASE("can config: FD profile and a custom map", "[can][config]") {
  Config cfg = parse_config(kHead + "    can_profile: eqd-default-fd\n", "t.yaml");
  CHECK(eqd::test::can_of(cfg.controllers[0]).map.frame(eqd::io::can::FrameRole::status)->fd);
  CHECK(cfg.controllers[0].channels == 16);
  cfg = parse_config(custom(kGoodSignals), "t.yaml");
  const auto& m = eqd::test::can_of(cfg.controllers[0]).map;
  CHECK(m.name == "mine");
  CHECK(cfg.controllers[0].channels == 4);
  REQUIRE(m.frame(eqd::io::can::FrameRole::status) != nullptr);
  CHECK(m.frame(eqd::io::can::FrameRole::status)->find("current")->is_signed);
}

TEST_CASE("can config: overlapping signals are refused at their line", "[can][config]") {
  const std::string e = error_of(custom(kGoodSignals + "          - {name: eq_flag, start_bit: 15, length: 1}\n"));
  INFO(e);
  CHECK(e.find("t.yaml:20:") == 0);
  CHECK(e.find("can_maps.mine.frames[0].signals[3]") != std::string::npos);
  CHECK(e.find("overlaps signal 'voltage'") != std::string::npos);
}

TEST_CASE("can config: a signal beyond its frame is refused at its line", "[can][config]") {
  const std::string e = error_of(custom(kGoodSignals + "          - {name: counter, start_bit: 60, length: 8}\n"));
  INFO(e);
  CHECK(e.find("t.yaml:20:") == 0);
  CHECK(e.find("beyond the frame's 8 bytes") != std::string::npos);
  const std::string e2 = error_of(custom(kGoodSignals, "        length: 10\n"));
  INFO(e2);
  CHECK(e2.find("frames[0].length") != std::string::npos);
  CHECK(e2.find("not a valid classic CAN length") != std::string::npos);
}

TEST_CASE("can config: identifiers out of range name the key", "[can][config]") {
  // Base id fine, but 4 channels * stride 0x100 runs past 11 bits.
  const std::string e = error_of(custom(kGoodSignals, "        id_stride: 0x100\n"));
  INFO(e);
  CHECK(e.find("duplicate key") != std::string::npos);  // id_stride given twice: the YAML check comes first
  std::string y = custom(kGoodSignals);
  y.replace(y.find("id: 0x500"), 9, "id: 0x7F0");
  const std::string e2 = error_of(y);
  INFO(e2);
  CHECK(e2.find("frames[0].id") != std::string::npos);
  CHECK(e2.find("beyond 11 bits") != std::string::npos);
  // A node id that pushes the built-in profile past 11 bits.
  const std::string e3 = error_of(R"(buses:
  - name: main
controllers:
  - name: cab1
    transport: can
    interface: vcan0
    node_id: 0x600
)");
  INFO(e3);
  CHECK(e3.find("t.yaml:7:") == 0);
  CHECK(e3.find("controllers[0].node_id") != std::string::npos);
}

TEST_CASE("can config: two controllers on one interface must not share identifiers", "[can][config]") {
  const std::string e = error_of(kHead + R"(  - name: cab2
    transport: can
    interface: vcan0
    node_id: 4
)");
  INFO(e);
  CHECK(e.find("controllers[1].node_id") != std::string::npos);
  CHECK(e.find("also used by controller 'cab1'") != std::string::npos);
  // Same node id on another interface is fine.
  CHECK_NOTHROW(parse_config(kHead + "  - {name: cab2, transport: can, interface: vcan1, node_id: 4}\n", "t.yaml"));
}

TEST_CASE("can config: keys of another transport and missing interface", "[can][config]") {
  CHECK(error_of(kHead + "    host: 10.0.0.1\n").find("'host' applies only to transport: tcp | sunspec") !=
        std::string::npos);
  CHECK(error_of(kHead + "    unit_id: 3\n").find("'unit_id' applies only to transport: tcp | rtu | sunspec") !=
        std::string::npos);
  CHECK(error_of("buses: [{name: main}]\ncontrollers:\n  - {name: c, host: h, node_id: 3}\n")
            .find("'node_id' applies only to transport: can") != std::string::npos);
  const std::string e = error_of("buses: [{name: main}]\ncontrollers:\n  - {name: c, transport: can}\n");
  CHECK(e.find("missing required key 'interface'") != std::string::npos);
  const std::string e2 = error_of(kHead + "    can_profile: eqd-defualt\n");
  CHECK(e2.find("did you mean 'eqd-default'") != std::string::npos);
  const std::string e3 =
      error_of(custom(kGoodSignals).replace(custom(kGoodSignals).find("name: state"), 11, "name: stat"));
  INFO(e3);
  CHECK(e3.find("unknown status signal 'stat'") != std::string::npos);
}

TEST_CASE("can config: overrides of CAN keys and refusal of can_maps", "[can][config]") {
  Config cfg = parse_config(kHead, "t.yaml");
  apply_overrides(cfg, {"controllers.cab1.node_id=9", "controllers.cab1.interface=can1"});
  CHECK(eqd::test::can_of(cfg.controllers[0]).node_id == 9);
  CHECK(eqd::test::can_of(cfg.controllers[0]).interface == "can1");
  CHECK_THROWS_WITH(apply_overrides(cfg, {"can_maps.x.channel_count=3"}), Catch::Contains("cannot be overridden"));
  CHECK_THROWS_WITH(apply_overrides(cfg, {"controllers.cab1.node_id=0x700"}), Catch::Contains("beyond 11 bits"));
}

namespace {

const std::string kForecastFrame = R"(      - role: forecast
        id: 0x700
        id_stride: 0x10
        signals:
)";

}  // namespace

TEST_CASE("can config: a forecast frame in a custom map", "[can][config][forecast]") {
  const Config cfg =
      parse_config(custom(kGoodSignals) + kForecastFrame +
                       "          - {name: forecast_power, start_bit: 0, length: 32, signed: true, scale: 0.1}\n",
                   "t.yaml");
  const auto& m = eqd::test::can_of(cfg.controllers.at(0)).map;
  const auto* f = m.frame(eqd::io::can::FrameRole::forecast);
  REQUIRE(f != nullptr);
  CHECK(f->id == 0x700);
  REQUIRE(f->find("forecast_power") != nullptr);
  CHECK(f->find("forecast_power")->is_signed);
  // The built-in profiles carry theirs (0x400 + node id).
  const Config def = parse_config(kHead, "t.yaml");
  CHECK(eqd::test::can_of(def.controllers.at(0)).map.frame(eqd::io::can::FrameRole::forecast)->id == 0x400);
}

TEST_CASE("can config: forecast_power errors are refused at their line", "[can][config][forecast]") {
  SECTION("an unknown role") {
    std::string y = custom(kGoodSignals) + kForecastFrame;
    y.replace(y.find("role: forecast"), 14, "role: forecasts");
    const std::string e = error_of(y + "          - {name: forecast_power, start_bit: 0, length: 32, signed: true}\n");
    INFO(e);
    CHECK(e.find("t.yaml:26:") == 0);
    CHECK(e.find("expected status | command | heartbeat | forecast") != std::string::npos);
  }
  SECTION("in both the status and the forecast frame") {
    const std::string e = error_of(
        custom(kGoodSignals + "          - {name: forecast_power, start_bit: 40, length: 24, signed: true}\n") +
        kForecastFrame + "          - {name: forecast_power, start_bit: 0, length: 32, signed: true}\n");
    INFO(e);
    CHECK(e.find("t.yaml:31:") == 0);
    CHECK(e.find("can_maps.mine.frames[2].signals[0].name") != std::string::npos);
    CHECK(e.find("also in the status frame") != std::string::npos);
  }
  SECTION("unsigned: cannot carry a discharge") {
    const std::string e = error_of(custom(kGoodSignals) + kForecastFrame +
                                   "          - {name: forecast_power, start_bit: 0, length: 32}\n");
    INFO(e);
    CHECK(e.find("t.yaml:30:") == 0);
    CHECK(e.find("cannot carry a discharging (negative) forecast") != std::string::npos);
  }
  SECTION("overlapping the status frame's other signals") {
    const std::string e = error_of(
        custom(kGoodSignals + "          - {name: forecast_power, start_bit: 30, length: 24, signed: true}\n"));
    INFO(e);
    CHECK(e.find("t.yaml:20:") == 0);
    CHECK(e.find("overlaps signal 'current'") != std::string::npos);
  }
}

TEST_CASE("can config: a program frame in a custom map", "[can][config][program]") {
  const std::string frame = R"(      - role: program
        id: 0x680
        id_stride: 0x10
        length: 6
        signals:
          - {name: step_index, start_bit: 0, length: 16}
          - {name: cycle_index, start_bit: 16, length: 32}
)";
  const Config cfg = parse_config(custom(kGoodSignals) + frame, "t.yaml");
  const auto* f = eqd::test::can_of(cfg.controllers.at(0)).map.frame(eqd::io::can::FrameRole::program);
  REQUIRE(f != nullptr);
  CHECK(f->id == 0x680);
  CHECK(f->find("step_index") != nullptr);
  CHECK(f->find("cycle_index") != nullptr);
  // The built-in profiles carry theirs (0x500 + node id).
  const Config def = parse_config(kHead, "t.yaml");
  CHECK(eqd::test::can_of(def.controllers.at(0)).map.frame(eqd::io::can::FrameRole::program)->id == 0x500);
  // step_index in the status frame too: refused, naming the second place.
  const std::string e =
      error_of(custom(kGoodSignals + "          - {name: step_index, start_bit: 48, length: 8}\n") + frame);
  INFO(e);
  CHECK(e.find("can_maps.mine.frames[2].signals[0].name") != std::string::npos);
  CHECK(e.find("step_index is also in the status frame") != std::string::npos);
}
