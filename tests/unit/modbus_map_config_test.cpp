// forecast_power in a custom Modbus map (`maps:` in the YAML configuration): it parses into the map
// (read from every controller of that map, no capability bit), and a bad type, an unsigned type or an
// overlap with another field stops the load with file:line and the key path.
#include <catch2/catch.hpp>

#include <string>

#include "config_test_util.hpp"
#include "eqd/io/modbus/codec.hpp"

using namespace eqd::config;
using eqd::config::test::parse_error;
namespace mb = eqd::io::modbus;

namespace {

// Line 15 is the forecast_power field.
std::string with_forecast(const std::string& field) {
  return "buses:\n"                                                      // 1
         "  - name: main\n"                                              // 2
         "controllers:\n"                                                // 3
         "  - name: cab1\n"                                              // 4
         "    host: 127.0.0.1\n"                                         // 5
         "    profile: mine\n"                                           // 6
         "maps:\n"                                                       // 7
         "  mine:\n"                                                     // 8
         "    channel_count: 2\n"                                        // 9
         "    voltage: {address: 0, type: f32, stride: 10}\n"            // 10
         "    current: {address: 2, type: f32, stride: 10}\n"            // 11
         "    state: {address: 4, stride: 10}\n"                         // 12
         "    cmd_enable: {table: holding, address: 0, stride: 4}\n"     // 13
         "    cmd_setpoint: {table: holding, address: 1, type: f32, stride: 4}\n"  // 14
         "    forecast_power: " + field + "\n";                          // 15
}

}  // namespace

TEST_CASE("modbus map config: forecast_power parses and is read without a capability bit", "[modbus][config][forecast]") {
  const Config cfg = parse_config(with_forecast("{address: 6, type: i32, scale: 0.1, stride: 10}"), "t.yaml");
  const mb::RegisterMap& m = cfg.controllers.at(0).map;
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
  const Config none = parse_config(with_forecast("{address: 6, type: i32, stride: 10}").substr(0, with_forecast("").rfind("    forecast_power")), "t.yaml");
  CHECK_FALSE(none.controllers.at(0).map.forecast_power);
}

TEST_CASE("modbus map config: forecast_power overlapping another field is refused at its line", "[modbus][config][forecast]") {
  const ConfigError e = parse_error(with_forecast("{address: 3, type: f32, stride: 10}"));
  INFO(e.what());
  CHECK(e.file == "t.yaml");
  CHECK(e.line == 15);
  CHECK(e.key_path == "maps.mine.forecast_power");
  CHECK_THAT(e.message, Catch::Contains("forecast_power (channel 0, input 3..4) overlaps current (channel 0, input 2..3)"));
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
    CHECK(cfg.controllers.at(0).map.forecast_power->offset == -30000.0);
  }
}
