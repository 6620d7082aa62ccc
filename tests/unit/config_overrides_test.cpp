// --set overrides: applied through the same key tables and validated again; errors name the override.
#include "config_test_util.hpp"
#include "../fakes/runtime_values.hpp"

#include <fstream>
#include <sstream>

using namespace eqd::config;
using eqd::config::test::kBase;
using eqd::config::test::override_error;

namespace {
Config base() {
  return parse_config(
      "buses:\n  - name: main\n  - name: aux\n"
      "controllers:\n  - {name: cab1, host: h}\n"
      "equalization:\n  - {channel: cab1/16, max_charge_W: 1000, max_discharge_W: 1000, v_min_V: 40, v_max_V: 56}\n",
      "t.yaml");
}
}  // namespace

TEST_CASE("overrides change the named values", "[config][overrides]") {
  Config cfg = base();
  apply_overrides(cfg, {"buses.main.tau_s=12", "controllers.cab1.poll_hz=5", "equalization.cab1/16.max_charge_W=250",
                        "metrics.listen=0.0.0.0:9999", "log_level=debug", "control_loop.period_ms=50",
                        "controllers.cab1.channel_bus.3=aux", "metrics.enabled=false", "api.socket=/tmp/eqd.sock"});
  CHECK(cfg.buses[0].params.tau_s == 12.0);
  CHECK(cfg.buses[1].params.tau_s == eqd::core::BusParams{}.tau_s);
  CHECK(cfg.controllers[0].poll_hz == 5.0);
  CHECK(cfg.buffers[0].limits.max_charge_W == 250.0);
  CHECK(cfg.metrics.listen == "0.0.0.0:9999");
  CHECK_FALSE(cfg.metrics.enabled);
  CHECK(cfg.log_level == "debug");
  CHECK(cfg.loop.period_ms == 50);
  CHECK(cfg.api.socket_path == "/tmp/eqd.sock");
  CHECK(cfg.controllers[0].bus_of(3) == "aux");
  CHECK(cfg.controllers[0].bus_of(4) == "main");
}

TEST_CASE("later overrides win", "[config][overrides]") {
  Config cfg = base();
  apply_overrides(cfg, {"buses.main.deadband_W=10", "buses.main.deadband_W=20"});
  CHECK(cfg.buses[0].params.deadband_W == 20.0);
}

TEST_CASE("override errors name the override", "[config][overrides]") {
  const Config cfg = base();
  SECTION("bad value") {
    const ConfigError e = override_error(cfg, "buses.main.tau_s=abc");
    CHECK(e.file == "--set buses.main.tau_s=abc");
    CHECK(e.line == 0);
    CHECK(e.key_path == "buses.main.tau_s");
    CHECK_THAT(e.message, Catch::Contains("got 'abc' (expected a number"));
    CHECK(std::string(e.what()).rfind("--set buses.main.tau_s=abc: buses.main.tau_s: got 'abc'", 0) == 0);
  }
  SECTION("value valid alone but out of the range validation checks") {
    const ConfigError e = override_error(cfg, "buses.main.tau_s=30");
    CHECK(e.key_path == "buses.main.tau_s");
    CHECK_THAT(e.message, Catch::Contains("expected 10..20 s"));
  }
  SECTION("cross-check triggered by the override") {
    const ConfigError e = override_error(cfg, "controllers.cab1.poll_hz=0.5");
    CHECK(e.file == "--set controllers.cab1.poll_hz=0.5");
    // 0.5 Hz: two poll periods are 4000 ms; the default max_age_ms (2000) is too short.
    CHECK(e.key_path == "buses.main.max_age_ms");
    CHECK_THAT(e.message, Catch::Contains("expected >= 4000 ms"));
  }
  SECTION("unknown entry, with a suggestion") {
    const ConfigError e = override_error(cfg, "buses.mian.tau_s=12");
    CHECK(e.message == "unknown bus 'mian' (did you mean 'main'?)");
  }
  SECTION("unknown key, with a suggestion") {
    const ConfigError e = override_error(cfg, "buses.main.tau=12");
    CHECK(e.message == "unknown key 'tau' (did you mean 'tau_s'?)");
  }
  SECTION("unknown top-level key") {
    const ConfigError e = override_error(cfg, "bus.main.tau_s=12");
    CHECK(e.message == "unknown key 'bus' (did you mean 'buses'?)");
  }
  SECTION("names cannot be overridden") {
    const ConfigError e = override_error(cfg, "buses.main.name=x");
    CHECK_THAT(e.message, Catch::Contains("cannot be overridden"));
  }
  SECTION("maps cannot be overridden") {
    const ConfigError e = override_error(cfg, "maps.m.channel_count=4");
    CHECK_THAT(e.message, Catch::Contains("cannot be overridden"));
  }
  SECTION("channel_bus to an unknown bus") {
    const ConfigError e = override_error(cfg, "controllers.cab1.channel_bus.2=spare");
    CHECK(e.key_path == "controllers.cab1.channel_bus.2");
    CHECK_THAT(e.message, Catch::StartsWith("no bus 'spare'"));
  }
  SECTION("buffer moved off its channel's bus") {
    const ConfigError e = override_error(cfg, "equalization.cab1/16.bus=aux");
    CHECK(e.key_path == "equalization.cab1/16.bus");
  }
  SECTION("no '='") {
    const ConfigError e = override_error(cfg, "buses.main.tau_s");
    CHECK_THAT(e.message, Catch::Contains("KEY.PATH=VALUE"));
  }
  SECTION("empty value") {
    const ConfigError e = override_error(cfg, "buses.main.tau_s=");
    CHECK_THAT(e.message, Catch::Contains("got nothing"));
  }
}

TEST_CASE("parse then override: the file stays the source of positions", "[config][overrides]") {
  // An invalid file fails at parse time, before any override could hide the problem.
  CHECK_THROWS_AS(parse_config(std::string(kBase) + "    bogus: 1\n", "t.yaml"), ConfigError);
}

// Issue #13, the run-time parameter table: each row is a configuration key of buses[] with the
// row's bounds, read through the same table (file and --set alike).
TEST_CASE("every row of the run-time parameter table is a bus key with the row's bounds",
          "[config][overrides][params]") {
  for (const eqd::core::RuntimeParam& row : eqd::core::kRuntimeParams) {
    INFO(row.name);
    Config cfg = base();
    const double now = eqd::core::runtime_value(row, cfg.buses[0].params);
    // A flag toggled, a choice (mode) moved to another name, a number moved within its bounds.
    const double value = eqd::test::other_runtime_value(row, now);
    const std::string text = row.choice != nullptr ? eqd::core::runtime_choice_name(row, value)
                             : row.flag            ? (value != 0.0 ? "true" : "false")
                                                   : std::to_string(value);
    apply_overrides(cfg, {"buses.main." + std::string(row.name) + "=" + text});
    CHECK(eqd::core::runtime_value(row, cfg.buses[0].params) == value);
    CHECK(eqd::core::runtime_value(row, cfg.buses[1].params) == now);
    // Out of the row's bounds (numbers), not a boolean (flags), not a name of the choice: refused, naming the key.
    const std::string bad = row.choice != nullptr ? "sometimes"
                            : row.flag            ? "maybe"
                                                  : std::to_string(row.min_exclusive ? row.min : row.min - 1.0);
    const ConfigError e = override_error(cfg, "buses.main." + std::string(row.name) + "=" + bad);
    CHECK(e.key_path == "buses.main." + std::string(row.name));
  }
}

// eqctl's completion offers every settable name (the scripts list them by hand: this keeps them in step).
TEST_CASE("eqctl's completion scripts offer every row of the run-time parameter table", "[config][params]") {
  for (const char* script : {"/scripts/eqctl-completion.bash", "/scripts/eqctl-completion.zsh"}) {
    std::ifstream in(std::string(EQD_SOURCE_DIR) + script);
    REQUIRE(in.good());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    for (const eqd::core::RuntimeParam& row : eqd::core::kRuntimeParams) {
      INFO(script << ": " << row.name);
      CHECK(text.find(" " + std::string(row.name) + "=") != std::string::npos);
    }
  }
}
