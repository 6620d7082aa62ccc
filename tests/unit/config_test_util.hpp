#pragma once
// Helpers shared by the config unit tests.
#include <catch2/catch.hpp>

#include <string>

#include "eqd/config/config.hpp"

namespace eqd::config::test {

/// Parses `yaml` and returns the ConfigError it must raise; fails the test if it parses.
inline ConfigError parse_error(const std::string& yaml) {
  try {
    (void)parse_config(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("expected a ConfigError, the config was accepted:\n" << yaml);
  return ConfigError("", 0, 0, "", "");  // not reached: FAIL ends the test
}

/// Applies overrides and returns the ConfigError they must raise.
inline ConfigError override_error(Config cfg, const std::string& ov) {
  try {
    apply_overrides(cfg, {ov});
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("expected a ConfigError, the override was accepted: " << ov);
  return ConfigError("", 0, 0, "", "");
}

/// A small valid config: bus main, controller cab1 (default profile, 16 channels), buffer cab1/16.
inline const char* kBase =
    "buses:\n"
    "  - name: main\n"
    "controllers:\n"
    "  - name: cab1\n"
    "    host: 127.0.0.1\n"
    "equalization:\n"
    "  - channel: cab1/16\n"
    "    max_charge_W: 1000\n"
    "    max_discharge_W: 1000\n"
    "    v_min_V: 40\n"
    "    v_max_V: 56\n";

}  // namespace eqd::config::test
