// Custom Modbus maps (`maps:` in the YAML configuration): forecast_power parses into the map (read
// from every controller of that map, no capability bit), and a bad type, an unsigned type or an overlap
// with another field stops the load with file:line and the key path; cmd_lease must carry every lease
// exactly; profile_version is checked against expected_profile_version by the link.
#include <catch2/catch.hpp>

#include <string>

#include "config_test_util.hpp"
#include "eqd/daemon/rig.hpp"
#include "eqd/io/modbus/codec.hpp"
#include "../fakes/transport_settings.hpp"

using namespace eqd::config;
using eqd::config::test::parse_error;
namespace mb = eqd::io::modbus;

namespace {

// Line 15 is the forecast_power field.
std::string with_forecast(const std::string& field) {
  return "buses:\n"                                                                // 1
         "  - name: main\n"                                                        // 2
         "controllers:\n"                                                          // 3
         "  - name: cab1\n"                                                        // 4
         "    host: 127.0.0.1\n"                                                   // 5
         "    profile: mine\n"                                                     // 6
         "maps:\n"                                                                 // 7
         "  mine:\n"                                                               // 8
         "    channel_count: 2\n"                                                  // 9
         "    voltage: {address: 0, type: f32, stride: 10}\n"                      // 10
         "    current: {address: 2, type: f32, stride: 10}\n"                      // 11
         "    state: {address: 4, stride: 10}\n"                                   // 12
         "    cmd_enable: {table: holding, address: 0, stride: 4}\n"               // 13
         "    cmd_setpoint: {table: holding, address: 1, type: f32, stride: 4}\n"  // 14
         "    forecast_power: " +
         field + "\n";  // 15
}

}  // namespace

TEST_CASE("modbus map config: forecast_power parses and is read without a capability bit",
          "[modbus][config][forecast]") {
  const Config cfg = parse_config(with_forecast("{address: 6, type: i32, scale: 0.1, stride: 10}"), "t.yaml");
  const mb::RegisterMap& m = eqd::test::modbus_of(cfg.controllers.at(0)).map;
  REQUIRE(m.forecast_power);
  CHECK(m.forecast_power->address == 6);
  CHECK(m.forecast_power->type == mb::DataType::i32);
  CHECK(m.forecast_power->scale == 0.1);
  CHECK(m.forecast_capability == 0);
  // Planned with the status fields, in the same request (addresses 0..7, 10..17).
  const auto plan = mb::plan_status_reads(m);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0] == mb::ReadRequest{mb::Table::input, 0, 18});
  // Without the key the map has no forecast.
  const Config none = parse_config(
      with_forecast("{address: 6, type: i32, stride: 10}").substr(0, with_forecast("").rfind("    forecast_power")),
      "t.yaml");
  CHECK_FALSE(eqd::test::modbus_of(none.controllers.at(0)).map.forecast_power);
}

TEST_CASE("modbus map config: forecast_power overlapping another field is refused at its line",
          "[modbus][config][forecast]") {
  const ConfigError e = parse_error(with_forecast("{address: 3, type: f32, stride: 10}"));
  INFO(e.what());
  CHECK(e.file == "t.yaml");
  CHECK(e.line == 15);
  CHECK(e.key_path == "maps.mine.forecast_power");
  CHECK_THAT(e.message,
             Catch::Contains("forecast_power (channel 1, input 3..4) overlaps current (channel 1, input 2..3)"));
}

TEST_CASE("modbus map config: a bad forecast_power type is refused with file:line", "[modbus][config][forecast]") {
  SECTION("not a type") {
    const ConfigError e = parse_error(with_forecast("{address: 6, type: f64, stride: 10}"));
    INFO(e.what());
    CHECK(e.line == 15);
    CHECK(e.column == 40);  // the value f64
    CHECK(e.key_path == "maps.mine.forecast_power.type");
    CHECK_THAT(e.message, Catch::Contains("got 'f64'") && Catch::Contains("f32"));
  }
  SECTION("unsigned: cannot carry a discharge") {
    const ConfigError e = parse_error(with_forecast("{address: 6, type: u32, stride: 10}"));
    INFO(e.what());
    CHECK(e.line == 15);
    CHECK(e.key_path == "maps.mine.forecast_power");
    CHECK_THAT(e.message, Catch::Contains("type u32 cannot carry a discharging (negative) forecast"));
  }
  SECTION("unsigned with a negative offset is fine") {
    const Config cfg = parse_config(with_forecast("{address: 6, type: u16, offset: -30000, stride: 10}"), "t.yaml");
    CHECK(eqd::test::modbus_of(cfg.controllers.at(0)).map.forecast_power->offset == -30000.0);
  }
}

namespace {

// with_forecast's map plus `extra` map lines (no forecast field), and a bus block `bus` (lines 2..).
std::string with_map_lines(const std::string& extra, const std::string& bus = "") {
  std::string t = with_forecast("{address: 6, type: i32, stride: 10}");
  t = t.substr(0, t.rfind("    forecast_power"));
  t.insert(t.find("controllers:"), bus);
  return t + extra;
}

}  // namespace

TEST_CASE("modbus map config: cmd_lease must carry each bus's lease_ms exactly", "[modbus][config][lease]") {
  SECTION("without an explicit scale it is refused at the field") {
    const ConfigError e =
        parse_error(with_map_lines("    cmd_lease: {table: holding, address: 3, type: u16, stride: 4}\n"));
    INFO(e.what());
    CHECK(e.line == 15);
    CHECK(e.key_path == "maps.mine.cmd_lease");
    CHECK_THAT(e.message,
               Catch::Contains("give 'scale' explicitly") && Catch::Contains("1000 for one that counts seconds"));
  }
  SECTION("a device counting seconds cannot carry 2500 ms: refused naming both values") {
    const ConfigError e = parse_error(with_map_lines(
        "    cmd_lease: {table: holding, address: 3, type: u16, scale: 1000, stride: 4}\n", "    lease_ms: 2500\n"));
    INFO(e.what());
    CHECK(e.key_path == "buses[0].lease_ms");
    CHECK(e.line == 3);
    CHECK_THAT(e.message, Catch::StartsWith("2500 ms cannot be written exactly to cmd_lease of map 'mine'") &&
                              Catch::Contains("scale 1000 ms per count") && Catch::Contains("would get 2000 ms") &&
                              Catch::Contains("multiple of 1000 ms"));
  }
  SECTION("rounding up is refused as well (2600 ms would become 3000 ms)") {
    const ConfigError e = parse_error(with_map_lines(
        "    cmd_lease: {table: holding, address: 3, type: u16, scale: 1000, stride: 4}\n", "    lease_ms: 2600\n"));
    CHECK_THAT(e.message, Catch::Contains("would get 3000 ms"));
  }
  SECTION("a multiple of the step is written exactly") {
    const Config cfg =
        parse_config(with_map_lines("    cmd_lease: {table: holding, address: 3, type: u16, scale: 1000, stride: 4}\n",
                                    "    lease_ms: 5000\n"),
                     "t.yaml");
    const auto& f = *eqd::test::modbus_of(cfg.controllers.at(0)).map.cmd_lease;
    std::uint16_t regs[2] = {};
    REQUIRE(mb::encode_field(f, 5000.0, regs) == mb::CodecStatus::ok);
    CHECK(regs[0] == 5);
  }
  SECTION("a lease beyond the register is refused") {
    const ConfigError e = parse_error(with_map_lines(
        "    cmd_lease: {table: holding, address: 3, type: u16, scale: 1, stride: 4}\n", "    lease_ms: 70000\n"));
    CHECK(e.key_path == "buses[0].lease_ms");
    CHECK_THAT(e.message, Catch::Contains("70000 ms does not fit cmd_lease of map 'mine'"));
  }
  SECTION("a channel on another bus is checked against that bus's lease") {
    std::string t = with_map_lines("    cmd_lease: {table: holding, address: 3, type: u16, scale: 1000, stride: 4}\n",
                                   "  - name: aux\n    lease_ms: 1500\n");
    t.insert(t.find("    profile: mine\n"), "    channel_bus: {2: aux}\n");
    const ConfigError e = parse_error(t);
    INFO(e.what());
    CHECK(e.key_path == "buses[1].lease_ms");
    CHECK_THAT(e.message, Catch::Contains("would get 2000 ms"));
  }
  SECTION("the built-in CAN profile's 16-bit lease signal") {
    const std::string t =
        "buses:\n  - name: main\n    lease_ms: 70000\n"
        "controllers:\n  - {name: c1, transport: can, interface: vcan0}\n";
    const ConfigError e = parse_error(t);
    INFO(e.what());
    CHECK(e.key_path == "buses[0].lease_ms");
    CHECK_THAT(e.message, Catch::Contains("does not fit the lease signal of CAN profile 'eqd-default'"));
  }
}

TEST_CASE("modbus map config: profile_version is checked against expected_profile_version",
          "[modbus][config][version]") {
  SECTION("read but not checked is refused") {
    const ConfigError e = parse_error(with_map_lines("    profile_version: {address: 900}\n"));
    INFO(e.what());
    CHECK(e.line == 15);
    CHECK(e.key_path == "maps.mine.profile_version");
    CHECK_THAT(e.message, Catch::Contains("no expected_profile_version"));
  }
  SECTION("an expected version without the register to read it from is refused") {
    const ConfigError e = parse_error(with_map_lines("    expected_profile_version: 3\n"));
    INFO(e.what());
    CHECK(e.line == 15);
    CHECK(e.key_path == "maps.mine.expected_profile_version");
    CHECK_THAT(e.message, Catch::Contains("expected_profile_version 3 but the map has no profile_version field"));
  }
  SECTION("0 is not a version") {
    const ConfigError e =
        parse_error(with_map_lines("    profile_version: {address: 900}\n    expected_profile_version: 0\n"));
    CHECK(e.key_path == "maps.mine.expected_profile_version");
  }
  SECTION("the link of every controller of the map is given the version to refuse others") {
    const Config cfg = parse_config(
        with_map_lines("    profile_version: {address: 900}\n    expected_profile_version: 7\n"), "t.yaml");
    CHECK(eqd::test::modbus_of(cfg.controllers.at(0)).map.expected_profile_version == 7);
    const auto plan = eqd::daemon::plan_rig(cfg);
    REQUIRE(plan.links.size() == 1);
    CHECK(eqd::test::settings_of<mb::ModbusSettings>(plan.links[0].settings).map.expected_profile_version == 7);
    // The built-in profile keeps its own check; a custom map without the register has none.
    const Config def =
        parse_config("buses:\n  - name: main\ncontrollers:\n  - {name: c1, host: 127.0.0.1}\n", "t.yaml");
    CHECK(eqd::test::settings_of<mb::ModbusSettings>(eqd::daemon::plan_rig(def).links.at(0).settings)
              .map.expected_profile_version == mb::kDefaultProfileVersion);
    const Config none = parse_config(with_map_lines(""), "t.yaml");
    CHECK(eqd::test::settings_of<mb::ModbusSettings>(eqd::daemon::plan_rig(none).links.at(0).settings)
              .map.expected_profile_version == 0);
  }
}

TEST_CASE("modbus map config: a state_codes entry that is no state says that names are accepted", "[modbus][config]") {
  const std::string base = with_forecast("{address: 6, type: i32, stride: 10}");
  // Line 16; issue #18 item 14: the message said only "a whole number 0..5".
  SECTION("a misspelt name: the names and the nearest one") {
    const ConfigError e = parse_error(base + "    state_codes: [idle, running, equalising]\n");
    INFO(e.what());
    CHECK(e.line == 16);
    CHECK(e.key_path == "maps.mine.state_codes[2]");
    CHECK(e.message ==
          "got 'equalising' (expected a whole number 0..5 or a state name: idle, running, paused, fault, "
          "equalizing, offline; did you mean 'equalizing'?)");
  }
  SECTION("no name near") {
    const ConfigError e = parse_error(base + "    state_codes: [idle, charging]\n");
    INFO(e.what());
    CHECK(e.message ==
          "got 'charging' (expected a whole number 0..5 or a state name: idle, running, paused, fault, "
          "equalizing, offline)");
  }
  SECTION("a number out of range") {
    const ConfigError e = parse_error(base + "    state_codes: [0, 7]\n");
    INFO(e.what());
    CHECK(e.message ==
          "7 is out of range (expected 0..5 or a state name: idle, running, paused, fault, equalizing, "
          "offline)");
  }
  SECTION("names and numbers mix") {
    const Config cfg = parse_config(base + "    state_codes: [idle, 1, offline, 3]\n", "t.yaml");
    CHECK(eqd::test::modbus_of(cfg.controllers.at(0)).map.state_codes == std::vector<std::uint8_t>{0, 1, 5, 3});
  }
}

TEST_CASE("modbus map config: step_index and cycle_index parse and are read without a capability bit",
          "[modbus][config][program]") {
  // with_forecast() puts the given text on line 15: a forecast field, then the two program fields.
  const Config cfg = parse_config(with_forecast("{address: 6, type: i16, stride: 10}\n"
                                                "    step_index: {address: 7, type: u16, offset: -1, stride: 10}\n"
                                                "    cycle_index: {address: 8, type: u32, stride: 10}"),
                                  "t.yaml");
  const mb::RegisterMap& m = eqd::test::modbus_of(cfg.controllers.at(0)).map;
  REQUIRE(m.step_index);
  REQUIRE(m.cycle_index);
  CHECK(m.step_index->address == 7);
  CHECK(m.step_index->offset == -1.0);
  CHECK(m.cycle_index->type == mb::DataType::u32);
  CHECK(m.program_capability == 0);
  // Planned with the status fields, in the same request (addresses 0..9, 10..19).
  const auto plan = mb::plan_status_reads(m);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0] == mb::ReadRequest{mb::Table::input, 0, 20});
}

TEST_CASE("modbus map config: a program field overlapping another field is refused at its line",
          "[modbus][config][program]") {
  const ConfigError e =
      parse_error(with_forecast("{address: 6, type: i16, stride: 10}\n"
                                "    step_index: {address: 1, type: u16, stride: 10}"));  // in voltage
  INFO(e.what());
  CHECK(e.file == "t.yaml");
  CHECK(e.line == 16);
  CHECK(e.key_path == "maps.mine.step_index");
  CHECK_THAT(e.message, Catch::Contains("step_index (channel 1, input 1..1) overlaps voltage (channel 1, input 0..1)"));
}
