// Every class of configuration error: message, key path and the exact 1-based line:column.
#include "config_test_util.hpp"

using namespace eqd::config;
using eqd::config::test::parse_error;

namespace {
// Lines of a valid config, to which each test adds or changes one thing. Line numbers in comments.
std::string base_with(const std::string& bus_extra, const std::string& ctl_extra = "",
                      const std::string& buf_extra = "") {
  return "buses:\n"          // 1
         "  - name: main\n"  // 2
         + bus_extra +       // 3..
         "controllers:\n"
         "  - name: cab1\n"
         "    host: 127.0.0.1\n" +
         ctl_extra +
         "equalization:\n"
         "  - channel: cab1/16\n"
         "    max_charge_W: 1000\n"
         "    max_discharge_W: 1000\n"
         "    v_min_V: 40\n"
         "    v_max_V: 56\n" +
         buf_extra;
}
}  // namespace

TEST_CASE("a string where a number is expected", "[config][errors]") {
  const ConfigError e = parse_error(base_with("    tau_s: fast\n"));
  CHECK(e.file == "t.yaml");
  CHECK(e.line == 3);
  CHECK(e.column == 12);
  CHECK(e.key_path == "buses[0].tau_s");
  CHECK_THAT(e.message, Catch::Contains("got 'fast'") && Catch::Contains("expected a number"));
  CHECK(std::string(e.what()).rfind("t.yaml:3:12: buses[0].tau_s: got 'fast' (expected a number", 0) == 0);
}

TEST_CASE("an empty value is reported at its key", "[config][errors]") {
  const ConfigError e = parse_error(base_with("    tau_s:\n"));
  CHECK(e.line == 3);
  CHECK(e.column == 5);
  CHECK(e.key_path == "buses[0].tau_s");
  CHECK_THAT(e.message, Catch::StartsWith("got nothing (expected a number"));
}

TEST_CASE("a mapping where a number is expected", "[config][errors]") {
  const ConfigError e = parse_error(base_with("    deadband_W: {a: 1}\n"));
  CHECK(e.line == 3);
  CHECK(e.column == 17);
  CHECK(e.key_path == "buses[0].deadband_W");
  CHECK_THAT(e.message, Catch::Contains("got a mapping (expected a number 0..1e+07 W)"));
}

TEST_CASE("ranges: tau_s, poll_hz, port, unit_id, whole numbers", "[config][errors]") {
  SECTION("tau_s outside 10..20 without allow_any_tau") {
    const ConfigError e = parse_error(base_with("    tau_s: 25\n"));
    CHECK(e.line == 3);
    CHECK(e.column == 12);
    CHECK(e.key_path == "buses[0].tau_s");
    CHECK_THAT(e.message, Catch::Contains("expected 10..20 s") && Catch::Contains("allow_any_tau"));
  }
  SECTION("tau_s 25 accepted with allow_any_tau, 0 still refused") {
    CHECK_NOTHROW(parse_config(base_with("    tau_s: 25\n    allow_any_tau: true\n"), "t.yaml"));
    const ConfigError e = parse_error(base_with("    allow_any_tau: true\n    tau_s: 0\n"));
    CHECK(e.line == 4);
    CHECK(e.key_path == "buses[0].tau_s");
    CHECK_THAT(e.message, Catch::Contains("expected > 0 s"));
  }
  SECTION("poll_hz") {
    const ConfigError e = parse_error(base_with("", "    poll_hz: 0.05\n"));
    CHECK(e.line == 6);
    CHECK(e.column == 14);
    CHECK(e.key_path == "controllers[0].poll_hz");
    CHECK(e.message == "0.05 is out of range (expected 0.1..100 Hz)");
  }
  SECTION("port") {
    const ConfigError e = parse_error(base_with("", "    port: 70000\n"));
    CHECK(e.line == 6);
    CHECK(e.column == 11);
    CHECK(e.message == "70000 is out of range (expected 1..65535)");
  }
  SECTION("unit_id 0 only for TCP") {
    CHECK_NOTHROW(parse_config(base_with("", "    unit_id: 0\n"), "t.yaml"));
    const ConfigError e =
        parse_error(base_with("", "  - name: u2\n    transport: rtu\n    device: /dev/ttyS0\n    unit_id: 0\n"));
    CHECK(e.line == 9);
    CHECK(e.column == 14);
    CHECK(e.key_path == "controllers[1].unit_id");
    CHECK_THAT(e.message, Catch::Contains("RTU broadcast"));
  }
  SECTION("a fraction where a whole number is expected") {
    const ConfigError e = parse_error(base_with("    max_age_ms: 1.5\n"));
    CHECK(e.line == 3);
    CHECK(e.column == 17);
    CHECK_THAT(e.message, Catch::Contains("expected a whole number"));
  }
  SECTION("import_limit_average_s: beyond the quarter hour, or not dividing it") {
    CHECK_NOTHROW(parse_config(base_with("    import_limit_average_s: 900\n"), "t.yaml"));
    const ConfigError range = parse_error(base_with("    import_limit_average_s: 1800\n"));
    CHECK(range.line == 3);
    CHECK(range.column == 29);
    CHECK(range.key_path == "buses[0].import_limit_average_s");
    CHECK(range.message == "1800 is out of range (expected 0..900 s)");
    const ConfigError divisor = parse_error(base_with("    import_limit_average_s: 600\n"));
    CHECK(divisor.line == 3);
    CHECK(divisor.key_path == "buses[0].import_limit_average_s");
    CHECK_THAT(divisor.message, Catch::Contains("dividing 900"));
  }
  SECTION("plan_travel_weight_s: beyond a minute") {
    CHECK(parse_config(base_with("    plan_travel_weight_s: 6\n"), "t.yaml").buses[0].params.plan_travel_weight_s ==
          6.0);
    const ConfigError e = parse_error(base_with("    plan_travel_weight_s: 90\n"));
    CHECK(e.line == 3);
    CHECK(e.column == 27);
    CHECK(e.key_path == "buses[0].plan_travel_weight_s");
    CHECK(e.message == "90 is out of range (expected 0..60 s)");
  }
  SECTION("deadband_W negative") {
    const ConfigError e = parse_error(base_with("    deadband_W: -1\n"));
    CHECK(e.message == "-1 is out of range (expected 0..1e+07 W)");
  }
}

TEST_CASE("unknown keys are errors, with a suggestion", "[config][errors]") {
  SECTION("typo") {
    const ConfigError e = parse_error(base_with("    tua_s: 12\n"));
    CHECK(e.line == 3);
    CHECK(e.column == 5);  // the key, not the value
    CHECK(e.key_path == "buses[0].tua_s");
    CHECK(e.message == "unknown key 'tua_s' (did you mean 'tau_s'?)");
  }
  SECTION("unit suffix forgotten") {
    const ConfigError e = parse_error(base_with("", "", "    hysteresis: 0.1\n"));
    CHECK(e.line == 12);
    CHECK(e.message == "unknown key 'hysteresis' (did you mean 'hysteresis_V'?)");
  }
  SECTION("nothing close: the accepted keys are listed") {
    const ConfigError e = parse_error("colour: blue\n" + base_with(""));
    CHECK(e.line == 1);
    CHECK(e.column == 1);
    CHECK(e.key_path == "colour");
    CHECK_THAT(e.message, Catch::Contains("expected one of: log_level, state_dir"));
  }
  SECTION("in a nested section") {
    const ConfigError e = parse_error("metrics:\n  enable: false\n" + base_with(""));
    CHECK(e.line == 2);
    CHECK(e.column == 3);
    CHECK(e.key_path == "metrics.enable");
    CHECK(e.message == "unknown key 'enable' (did you mean 'enabled'?)");
  }
}

TEST_CASE("required keys", "[config][errors]") {
  SECTION("buffer without v_max_V: reported at its entry") {
    const ConfigError e = parse_error(
        "buses: [{name: main}]\n"
        "controllers: [{name: cab1, host: h}]\n"
        "equalization:\n"
        "  - channel: cab1/1\n"
        "    max_charge_W: 10\n"
        "    max_discharge_W: 10\n"
        "    v_min_V: 1\n");
    CHECK(e.line == 4);
    CHECK(e.column == 5);
    CHECK(e.key_path == "equalization[0].v_max_V");
    CHECK(e.message == "missing required key 'v_max_V'");
  }
  SECTION("no buses at all") {
    const ConfigError e = parse_error("log_level: info\n");
    CHECK(e.key_path == "buses");
    CHECK_THAT(e.message, Catch::Contains("missing required key 'buses'"));
  }
  SECTION("tcp controller without host") {
    const ConfigError e = parse_error("buses: [{name: main}]\ncontrollers:\n  - name: cab1\n    port: 1502\n");
    CHECK(e.line == 3);
    CHECK(e.column == 5);
    CHECK(e.key_path == "controllers[0].host");
    CHECK(e.message == "missing required key 'host' (transport tcp)");
  }
  SECTION("empty file") {
    const ConfigError e = parse_error("");
    CHECK_THAT(e.message, Catch::Contains("empty"));
  }
}

TEST_CASE("duplicates", "[config][errors]") {
  SECTION("duplicate key in one mapping") {
    const ConfigError e = parse_error(base_with("    tau_s: 12\n    tau_s: 14\n"));
    CHECK(e.line == 4);
    CHECK(e.column == 5);
    CHECK(e.key_path == "buses[0].tau_s");
    CHECK(e.message == "duplicate key (first given at line 3)");
  }
  SECTION("duplicate bus name") {
    const ConfigError e = parse_error(base_with("  - name: main\n"));
    CHECK(e.line == 3);
    CHECK(e.column == 11);
    CHECK(e.key_path == "buses[1].name");
    CHECK(e.message == "duplicate bus name 'main' (also buses[0])");
  }
  SECTION("duplicate controller name") {
    const ConfigError e = parse_error(base_with("", "  - name: cab1\n    host: h2\n"));
    CHECK(e.line == 6);
    CHECK(e.key_path == "controllers[1].name");
  }
  SECTION("buffer channel listed twice") {
    const ConfigError e =
        parse_error(base_with("", "",
                              "  - channel: cab1/16\n"
                              "    max_charge_W: 1\n    max_discharge_W: 1\n    v_min_V: 1\n    v_max_V: 2\n"));
    CHECK(e.line == 12);
    CHECK(e.column == 14);
    CHECK(e.key_path == "equalization[1].channel");
    CHECK(e.message == "'cab1/16' is listed twice (also equalization[0])");
  }
}

TEST_CASE("references", "[config][errors]") {
  const std::string head =
      "buses: [{name: main}, {name: aux}]\n"                             // 1
      "controllers:\n"                                                   // 2
      "  - {name: cab1, host: h1, channels: 8, ignore_channels: [3]}\n"  // 3
      "  - {name: cab2, host: h2}\n"                                     // 4
      "  - {name: cab3, host: h3, bus: aux}\n"                           // 5
      "equalization:\n";                                                 // 6
  auto buffer = [](const std::string& channel, const std::string& extra = "") {
    return "  - channel: " + channel +
           "\n    max_charge_W: 1\n    max_discharge_W: 1\n    v_min_V: 1\n    v_max_V: 2\n" + extra;
  };
  SECTION("unknown controller, listing the known ones") {
    const ConfigError e = parse_error(head + buffer("cab1/1") + buffer("cab2/1") + buffer("cab9/3"));
    CHECK(e.line == 17);
    CHECK(e.column == 14);
    CHECK(e.key_path == "equalization[2].channel");
    CHECK(e.message == "'cab9/3': no controller 'cab9' (did you mean 'cab1'?) (known: cab1, cab2, cab3)");
  }
  SECTION("channel number beyond the controller's count") {
    const ConfigError e = parse_error(head + buffer("cab1/9"));
    CHECK(e.line == 7);
    CHECK(e.key_path == "equalization[0].channel");
    CHECK_THAT(e.message, Catch::Contains("has channels 1..8"));
  }
  SECTION("channel 0: numbers are 1-based") {
    const ConfigError e = parse_error(head + buffer("cab1/0"));
    CHECK_THAT(e.message, Catch::Contains("1-based"));
  }
  SECTION("an ignored channel cannot be a buffer") {
    const ConfigError e = parse_error(head + buffer("cab1/3"));
    CHECK_THAT(e.message, Catch::Contains("ignore_channels"));
  }
  SECTION("malformed channel name") {
    const ConfigError e = parse_error(head + buffer("cab1-3"));
    CHECK(e.line == 7);
    CHECK(e.column == 14);
    CHECK_THAT(e.message, Catch::Contains("expected CONTROLLER/N"));
  }
  SECTION("buffer bus must match its channel's bus") {
    const ConfigError e = parse_error(head + buffer("cab3/1", "    bus: main\n"));
    CHECK(e.line == 12);
    CHECK(e.column == 10);
    CHECK(e.key_path == "equalization[0].bus");
    CHECK_THAT(e.message, Catch::Contains("'main' does not match the bus of channel cab3/1 ('aux'"));
  }
  SECTION("controller bus unknown") {
    const ConfigError e = parse_error("buses: [{name: main}]\ncontrollers:\n  - {name: c, host: h, bus: mian}\n");
    CHECK(e.line == 3);
    CHECK(e.column == 29);
    CHECK(e.key_path == "controllers[0].bus");
    CHECK(e.message == "no bus 'mian' (did you mean 'main'?) (known: main)");
  }
  SECTION("channel_bus naming an unknown bus") {
    const ConfigError e = parse_error(
        "buses: [{name: main}]\n"
        "controllers:\n"
        "  - name: c\n"
        "    host: h\n"
        "    channel_bus:\n"
        "      4: spare\n");
    CHECK(e.line == 6);
    CHECK(e.column == 7);
    CHECK(e.key_path == "controllers[0].channel_bus.4");
    CHECK_THAT(e.message, Catch::StartsWith("no bus 'spare'"));
  }
  SECTION("unknown profile") {
    const ConfigError e =
        parse_error("buses: [{name: main}]\ncontrollers:\n  - {name: c, host: h, profile: eqd-defualt}\n");
    CHECK(e.line == 3);
    CHECK(e.column == 33);
    CHECK(e.key_path == "controllers[0].profile");
    CHECK(e.message == "unknown profile 'eqd-defualt' (did you mean 'eqd-default'?) (known: eqd-default)");
  }
}

TEST_CASE("buffer window and core limits", "[config][errors]") {
  SECTION("v_min_V not below v_max_V") {
    const ConfigError e = parse_error(
        "buses: [{name: main}]\ncontrollers: [{name: c, host: h}]\nequalization:\n"
        "  - channel: c/1\n    max_charge_W: 1\n    max_discharge_W: 1\n    v_min_V: 56\n    v_max_V: 40\n");
    CHECK(e.line == 7);
    CHECK(e.column == 14);
    CHECK(e.key_path == "equalization[0].v_min_V");
    CHECK_THAT(e.message, Catch::Contains("expected v_min_V < v_max_V"));
  }
  SECTION("eqd::core::validate's message placed at its key") {
    const ConfigError e = parse_error(
        "buses: [{name: main}]\ncontrollers: [{name: c, host: h}]\nequalization:\n"
        "  - channel: c/1\n    max_charge_W: 0\n    max_discharge_W: 0\n    v_min_V: 40\n    v_max_V: 56\n");
    CHECK(e.line == 5);
    CHECK(e.column == 19);
    CHECK(e.key_path == "equalization[0].max_charge_W");
    CHECK_THAT(e.message, Catch::Contains("at least one must be > 0"));
  }
  SECTION("hysteresis larger than half the window") {
    const ConfigError e = parse_error(
        "buses: [{name: main}]\ncontrollers: [{name: c, host: h}]\nequalization:\n"
        "  - channel: c/1\n    max_charge_W: 1\n    max_discharge_W: 1\n    v_min_V: 40\n    v_max_V: 41\n"
        "    hysteresis_V: 0.6\n");
    CHECK(e.line == 9);
    CHECK(e.key_path == "equalization[0].hysteresis_V");
  }
}

TEST_CASE("timing across controllers and buses", "[config][errors]") {
  SECTION("lease_ms shorter than two poll periods") {
    const ConfigError e = parse_error(
        "buses:\n  - name: main\n    lease_ms: 1500\n"
        "controllers:\n  - {name: slow, host: h, poll_hz: 1}\n");
    CHECK(e.line == 3);
    CHECK(e.column == 15);
    CHECK(e.key_path == "buses[0].lease_ms");
    CHECK(e.message == "1500 ms is too short: controller 'slow' polls at 1 Hz (expected >= 2000 ms, two poll periods)");
  }
  SECTION("default lease reported at the bus entry") {
    const ConfigError e =
        parse_error("buses:\n  - name: main\ncontrollers:\n  - {name: slow, host: h, poll_hz: 0.2}\n");
    CHECK(e.line == 2);
    CHECK(e.column == 5);
    CHECK(e.key_path == "buses[0].lease_ms");
  }
  SECTION("a controller on another bus does not constrain") {
    CHECK_NOTHROW(parse_config(
        "buses:\n  - {name: main, lease_ms: 300, max_age_ms: 300}\n  - name: slow\n"
        "controllers:\n  - {name: a, host: h, poll_hz: 10}\n  - {name: b, host: h, poll_hz: 1, bus: slow}\n",
        "t.yaml"));
  }
}

TEST_CASE("transport-specific keys", "[config][errors]") {
  const ConfigError e = parse_error("buses: [{name: main}]\ncontrollers:\n  - name: c\n    host: h\n    baud: 9600\n");
  CHECK(e.line == 5);
  CHECK(e.column == 11);
  CHECK(e.key_path == "controllers[0].baud");
  CHECK(e.message == "'baud' applies only to transport: rtu (this controller uses tcp)");
}

TEST_CASE("custom maps are checked", "[config][errors]") {
  const std::string head = "buses: [{name: main}]\nmaps:\n  m:\n";
  SECTION("missing required field") {
    const ConfigError e = parse_error(head + "    voltage: {address: 0}\n");
    CHECK(e.line == 4);
    CHECK(e.column == 5);
    CHECK(e.key_path == "maps.m.current");
  }
  SECTION("bad enum value") {
    const ConfigError e = parse_error(head + "    voltage: {address: 0, type: float}\n");
    CHECK(e.line == 4);
    CHECK(e.column == 33);
    CHECK(e.key_path == "maps.m.voltage.type");
    CHECK(e.message == "got 'float' (expected u16 | i16 | u32 | i32 | f32)");
  }
  SECTION("validate_map: a command in the input table") {
    const ConfigError e = parse_error(head +
                                      "    voltage: {address: 0, stride: 4}\n"
                                      "    current: {address: 1, stride: 4}\n"
                                      "    state: {address: 2, stride: 4}\n"
                                      "    cmd_enable: {address: 100, stride: 4}\n"
                                      "    cmd_setpoint: {table: holding, address: 1, stride: 4}\n");
    CHECK(e.line == 7);
    CHECK(e.column == 17);
    CHECK(e.key_path == "maps.m.cmd_enable");
    CHECK_THAT(e.message, Catch::Contains("holding"));
  }
}

TEST_CASE("YAML syntax errors carry the position", "[config][errors]") {
  const ConfigError e = parse_error("buses:\n  - name: [main\n");
  CHECK(e.line >= 2);
  CHECK(e.column >= 1);
  CHECK_THAT(e.message, Catch::StartsWith("YAML syntax error"));
}

TEST_CASE("a bus's law: a registered name is taken, another is refused with the list", "[config][errors]") {
  const ConfigError e = parse_error(base_with("    law: pid\n"));
  CHECK(e.line == 3);
  CHECK(e.column == 10);
  CHECK(e.key_path == "buses[0].law");
  CHECK_THAT(e.message, Catch::Contains("got 'pid'") && Catch::Contains("expected a control law: damped"));
}

// Issue #17: target schedules. Each error names the window's key path and its place in the file.
TEST_CASE("schedule windows: bad times, days and aims are refused at their place", "[config][errors][schedule]") {
  SECTION("a time of day out of range") {
    const ConfigError e =
        parse_error(base_with("    schedule:\n"                 // 3
                              "      - days: weekdays\n"        // 4
                              "        start: \"17:60\"\n"      // 5
                              "        end: \"20:00\"\n"        // 6
                              "        import_limit_W: 5000\n"  // 7
                              ));
    CHECK(e.line == 5);
    CHECK(e.column == 16);
    CHECK(e.key_path == "buses[0].schedule[0].start");
    CHECK_THAT(e.message, Catch::StartsWith("got '17:60' (expected HH:MM, 00:00..23:59)"));
  }
  SECTION("an end of 24:00 is midnight; 24:30 is not a time") {
    CHECK_NOTHROW(parse_config(base_with("    schedule:\n      - {start: \"22:00\", end: \"24:00\", target_W: 100}\n"),
                               "t.yaml"));
    const ConfigError e =
        parse_error(base_with("    schedule:\n      - {start: \"22:00\", end: \"24:30\", target_W: 100}\n"));
    CHECK(e.line == 4);
    CHECK(e.key_path == "buses[0].schedule[0].end");
    CHECK_THAT(e.message, Catch::Contains("expected HH:MM, 00:01..24:00"));
  }
  SECTION("an unknown day") {
    const ConfigError e =
        parse_error(base_with("    schedule:\n"                    // 3
                              "      - days: [mon, fry]\n"         // 4
                              "        start: \"17:00\"\n"         // 5
                              "        end: \"20:00\"\n"           // 6
                              "        import_limit_W: 5000\n"));  // 7
    CHECK(e.line == 4);
    CHECK(e.column == 21);
    CHECK(e.key_path == "buses[0].schedule[0].days[1]");
    CHECK_THAT(e.message, Catch::StartsWith("got 'fry' (expected mon, tue"));
  }
  SECTION("a window with both a target and a limit, or neither") {
    const ConfigError both =
        parse_error(base_with("    schedule:\n"                    // 3
                              "      - start: \"17:00\"\n"         // 4
                              "        end: \"20:00\"\n"           // 5
                              "        target_W: 0\n"              // 6
                              "        import_limit_W: 5000\n"));  // 7
    CHECK(both.line == 4);
    CHECK(both.column == 9);
    CHECK(both.key_path == "buses[0].schedule[0]");
    CHECK_THAT(both.message, Catch::StartsWith("has both target_W and a limit"));
    const ConfigError neither = parse_error(base_with("    schedule:\n      - {start: \"17:00\", end: \"20:00\"}\n"));
    CHECK(neither.line == 4);
    CHECK_THAT(neither.message, Catch::StartsWith("has neither target_W nor a limit"));
  }
  SECTION("an end equal to the start, a missing end, a negative limit, too many windows") {
    const ConfigError same =
        parse_error(base_with("    schedule:\n      - {start: \"17:00\", end: \"17:00\", target_W: 0}\n"));
    CHECK(same.line == 4);
    CHECK(same.column == 9);
    CHECK_THAT(same.message, Catch::StartsWith("end: must differ from start"));
    const ConfigError missing = parse_error(base_with("    schedule:\n      - {start: \"17:00\", target_W: 0}\n"));
    CHECK(missing.key_path == "buses[0].schedule[0].end");
    CHECK_THAT(missing.message, Catch::Contains("missing required key 'end'"));
    const ConfigError negative =
        parse_error(base_with("    schedule:\n      - {start: \"17:00\", end: \"20:00\", export_limit_W: -1}\n"));
    CHECK(negative.key_path == "buses[0].schedule[0].export_limit_W");
    std::string many = "    schedule:\n";
    for (int i = 0; i < 17; ++i)
      many += "      - {start: \"0" + std::to_string(i % 10) + ":00\", end: \"23:00\", target_W: 0}\n";
    const ConfigError too_many = parse_error(base_with(many));
    CHECK(too_many.line == 4);
    CHECK(too_many.key_path == "buses[0].schedule");
    CHECK_THAT(too_many.message, Catch::Contains("at most 16 per bus"));
  }
}
