// Parsing of valid configurations: defaults, resolution of profiles, buses and channel counts.
#include "config_test_util.hpp"

#include "eqd/io/modbus/register_map.hpp"
#include "../fakes/transport_settings.hpp"

using namespace eqd::config;
using eqd::config::test::kBase;

TEST_CASE("minimal config gets safe defaults and resolved references", "[config]") {
  const Config cfg = parse_config(kBase, "t.yaml");
  CHECK(cfg.source_path == "t.yaml");
  REQUIRE(cfg.buses.size() == 1);
  CHECK(cfg.buses[0].params.tau_s == eqd::core::BusParams{}.tau_s);
  REQUIRE(cfg.controllers.size() == 1);
  const ControllerConfig& c = cfg.controllers[0];
  CHECK(c.transport == "tcp");
  CHECK(eqd::test::tcp_of(c).port == 502);
  CHECK(eqd::test::modbus_of(c).profile == eqd::io::modbus::kDefaultProfileName);
  // Default profile resolved for 16 channels; channels defaults to the map's count.
  CHECK(eqd::test::modbus_of(c).map.name == eqd::io::modbus::kDefaultProfileName);
  CHECK(eqd::test::modbus_of(c).map.channel_count == 16);
  CHECK(c.channels == 16);
  CHECK(eqd::test::modbus_of(c).map.voltage.address == eqd::io::modbus::default_profile(16).voltage.address);
  CHECK(c.bus == "main");  // the first bus
  REQUIRE(cfg.buffers.size() == 1);
  CHECK(cfg.buffers[0].bus == "main");  // the channel's bus
  CHECK(cfg.buffers[0].limits.hysteresis_V == eqd::core::BufferLimits{}.hysteresis_V);
  CHECK(cfg.buffers[0].limits.v_max_V == 56.0);
}

TEST_CASE("channel_bus moves single channels to another bus", "[config]") {
  const Config cfg = parse_config(R"(
buses:
  - name: main
  - name: aux
controllers:
  - name: cab1
    host: h
    channels: 8
    channel_bus: {7: aux, 8: aux}
equalization:
  - channel: cab1/8
    max_charge_W: 500
    max_discharge_W: 0
    v_min_V: 10
    v_max_V: 14
)",
                                  "t.yaml");
  const ControllerConfig& c = cfg.controllers[0];
  CHECK(c.channels == 8);
  CHECK(eqd::test::modbus_of(c).map.channel_count == 8);  // the default profile is built for the configured count
  CHECK(c.bus_of(1) == "main");
  CHECK(c.bus_of(7) == "aux");
  CHECK(cfg.buffers[0].bus == "aux");
}

TEST_CASE("RTU controller with a custom map, hex addresses and named state codes", "[config]") {
  const Config cfg = parse_config(R"(
buses: [{name: b1, tau_s: 30, allow_any_tau: true}]
controllers:
  - {name: u1, transport: rtu, device: /dev/ttyS0, baud: 9600, parity: E, stop_bits: 2, unit_id: 5,
     profile: m1, poll_hz: 2, channels: 2}
maps:
  m1:
    channel_count: 4
    voltage: {address: 0x10, type: f32, word_order: little, stride: 8}
    current: {address: 0x12, type: f32, stride: 8, scale: -1}
    state: {address: 0x14, stride: 8}
    cmd_enable: {table: holding, address: 0, stride: 4}
    cmd_setpoint: {table: holding, address: 1, type: i32, stride: 4, scale: 10, offset: 5}
    state_codes: [idle, 1, fault, equalizing]
    range: {voltage_max_V: 60}
)",
                                  "t.yaml");
  CHECK(cfg.buses[0].params.tau_s == 30.0);
  const ControllerConfig& c = cfg.controllers[0];
  CHECK(c.transport == "rtu");
  CHECK(eqd::test::rtu_of(c).device == "/dev/ttyS0");
  CHECK(eqd::test::rtu_of(c).baud == 9600);
  CHECK(eqd::test::rtu_of(c).parity == 'E');
  CHECK(eqd::test::rtu_of(c).stop_bits == 2);
  CHECK(eqd::test::modbus_of(c).unit_id == 5);
  CHECK(c.channels == 2);
  CHECK(eqd::test::modbus_of(c).map.name == "m1");
  CHECK(eqd::test::modbus_of(c).map.channel_count == 4);
  using eqd::io::modbus::DataType;
  using eqd::io::modbus::Table;
  using eqd::io::modbus::WordOrder;
  CHECK(eqd::test::modbus_of(c).map.voltage.address == 0x10);
  CHECK(eqd::test::modbus_of(c).map.voltage.type == DataType::f32);
  CHECK(eqd::test::modbus_of(c).map.voltage.word_order == WordOrder::little);
  CHECK(eqd::test::modbus_of(c).map.voltage.table == Table::input);
  CHECK(eqd::test::modbus_of(c).map.current.scale == -1.0);
  CHECK(eqd::test::modbus_of(c).map.cmd_setpoint.table == Table::holding);
  CHECK(eqd::test::modbus_of(c).map.cmd_setpoint.offset == 5.0);
  CHECK_FALSE(eqd::test::modbus_of(c).map.power.has_value());
  CHECK_FALSE(eqd::test::modbus_of(c).map.cmd_lease.has_value());
  CHECK(eqd::test::modbus_of(c).map.state_codes == std::vector<std::uint8_t>{0, 1, 3, 4});
  CHECK(eqd::test::modbus_of(c).map.range.voltage_max_V == 60.0);
  CHECK(eqd::test::modbus_of(c).map.range.voltage_min_V == eqd::io::modbus::PlausibleRange{}.voltage_min_V);
}

TEST_CASE("suggest finds typos and missing unit suffixes only", "[config]") {
  const std::vector<std::string> keys{"tau_s", "deadband_W", "poll_hz", "lease_ms", "max_age_ms"};
  CHECK(suggest("tua_s", keys) == "tau_s");  // transposition
  CHECK(suggest("tau", keys) == "tau_s");    // unit suffix missing
  CHECK(suggest("deadband", keys) == "deadband_W");
  CHECK(suggest("pol_hz", keys) == "poll_hz");
  CHECK(suggest("Lease_MS", keys) == "lease_ms");  // case
  CHECK(suggest("colour", keys).empty());
  CHECK(suggest("", keys).empty());
}

TEST_CASE("ConfigError formats file:line:column: path: message", "[config]") {
  const ConfigError with_pos("f.yaml", 3, 7, "buses[0].tau_s", "boom");
  CHECK(std::string(with_pos.what()) == "f.yaml:3:7: buses[0].tau_s: boom");
  const ConfigError without_pos("--set x=1", 0, 0, "x", "boom");
  CHECK(std::string(without_pos.what()) == "--set x=1: x: boom");
}

TEST_CASE("load_config reports a missing file", "[config]") {
  try {
    (void)load_config("/nonexistent/eqd.yaml");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.file == "/nonexistent/eqd.yaml");
    CHECK_THAT(e.what(), Catch::Contains("cannot open the file"));
  }
}
