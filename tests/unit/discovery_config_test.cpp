// The discovery: section of the configuration: keys, defaults, errors and --set overrides; a
// configuration without controllers is valid.
#include <catch2/catch.hpp>

#include "eqd/config/config.hpp"

using eqd::config::AdoptRule;
using eqd::config::ConfigError;
using eqd::config::parse_config;

namespace {

const std::string kBus = "buses:\n  - name: main\n";

std::string error_of(const std::string& yaml) {
  try {
    (void)parse_config(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("discovery keys are read and default sensibly", "[discovery][config]") {
  const auto def = parse_config(kBus, "t.yaml");
  CHECK_FALSE(def.discovery.enabled);
  CHECK(def.discovery.service_types == std::vector<std::string>{"_eqd-ctrl._tcp"});
  CHECK(def.discovery.adopt.empty());
  CHECK(def.discovery.cache_expiry_s == 604800);
  CHECK(def.discovery.publish);
  CHECK(def.discovery.debounce_ms == 2000);

  const auto cfg = parse_config(kBus +
                                    "discovery:\n  enabled: true\n  service_types: [_eqd-ctrl._tcp, _cycler._tcp]\n"
                                    "  adopt: [cab*, 'hall-[ab]-?']\n  cache_expiry_s: 3600\n  publish: false\n"
                                    "  debounce_ms: 500\n",
                                "t.yaml");
  CHECK(cfg.discovery.enabled);
  CHECK(cfg.discovery.service_types.size() == 2);
  CHECK(cfg.discovery.adopt == std::vector<AdoptRule>{{"cab*", ""}, {"hall-[ab]-?", ""}});
  CHECK(cfg.discovery.cache_expiry_s == 3600);
  CHECK_FALSE(cfg.discovery.publish);
  CHECK(cfg.discovery.debounce_ms == 500);
}

TEST_CASE("a configuration without controllers is valid with discovery", "[discovery][config]") {
  const auto cfg = parse_config(kBus + "discovery: {enabled: true}\n", "t.yaml");
  CHECK(cfg.controllers.empty());
}

TEST_CASE("bad discovery values are refused with position and key", "[discovery][config]") {
  CHECK_THAT(error_of(kBus + "discovery:\n  service_types: [eqd-ctrl]\n"),
             Catch::Contains("t.yaml:4:") && Catch::Contains("discovery.service_types[0]") &&
                 Catch::Contains("DNS-SD service type"));
  CHECK_THAT(error_of(kBus + "discovery:\n  service_types: []\n"), Catch::Contains("empty list"));
  CHECK_THAT(error_of(kBus + "discovery:\n  service_types: _eqd-ctrl._tcp\n"), Catch::Contains("expected a list"));
  CHECK_THAT(error_of(kBus + "discovery:\n  adopt: ['cab 1']\n"), Catch::Contains("discovery.adopt[0]"));
  CHECK_THAT(error_of(kBus + "discovery:\n  cache_expiry_s: 5\n"), Catch::Contains("discovery.cache_expiry_s"));
  CHECK_THAT(error_of(kBus + "discovery:\n  debounce_ms: -1\n"), Catch::Contains("discovery.debounce_ms"));
  CHECK_THAT(error_of(kBus + "discovery:\n  enable: true\n"), Catch::Contains("did you mean 'enabled'"));
}

TEST_CASE("discovery keys can be overridden with --set", "[discovery][config]") {
  auto cfg = parse_config(kBus, "t.yaml");
  eqd::config::apply_overrides(cfg, {"discovery.enabled=true", "discovery.adopt=[cab2]", "discovery.debounce_ms=100"});
  CHECK(cfg.discovery.enabled);
  CHECK(cfg.discovery.adopt == std::vector<AdoptRule>{{"cab2", ""}});
  CHECK(cfg.discovery.debounce_ms == 100);
  CHECK_THROWS_AS(eqd::config::apply_overrides(cfg, {"discovery.enabled.x=1"}), ConfigError);
}

TEST_CASE("adopt rules take a plain pattern or {match, bus}", "[discovery][config]") {
  const std::string two = "buses:\n  - name: main\n  - name: aux\n";
  const auto cfg = parse_config(two +
                                    "discovery:\n  adopt:\n    - cab*\n    - {match: 'unit-?', bus: aux}\n"
                                    "    - match: hall-*\n",
                                "t.yaml");
  CHECK(cfg.discovery.adopt == std::vector<AdoptRule>{{"cab*", ""}, {"unit-?", "aux"}, {"hall-*", ""}});
  // The bus must be one of the configuration, named at the rule's position.
  CHECK_THAT(error_of(two + "discovery:\n  adopt:\n    - {match: cab*, bus: hall}\n"),
             Catch::Contains("t.yaml:6:") && Catch::Contains("discovery.adopt[0].bus") &&
                 Catch::Contains("no bus 'hall'") && Catch::Contains("main, aux"));
  CHECK_THAT(error_of(two + "discovery:\n  adopt: [{bus: aux}]\n"),
             Catch::Contains("discovery.adopt[0].match") && Catch::Contains("missing required key 'match'"));
  CHECK_THAT(error_of(two + "discovery:\n  adopt: [{match: cab*, buss: aux}]\n"),
             Catch::Contains("did you mean 'bus'"));
  CHECK_THAT(error_of(two + "discovery:\n  adopt: [{match: 'cab 1'}]\n"), Catch::Contains("discovery.adopt[0].match"));
  CHECK_THAT(error_of(two + "discovery:\n  adopt: [{match: cab1, bus: 'a b'}]\n"),
             Catch::Contains("discovery.adopt[0].bus"));
  CHECK_THAT(error_of(two + "discovery:\n  adopt: cab*\n"), Catch::Contains("expected a list of glob patterns"));
  // --set takes both forms too.
  auto over = parse_config(two, "t.yaml");
  eqd::config::apply_overrides(over, {"discovery.adopt=[cab1, {match: unit1, bus: aux}]"});
  CHECK(over.discovery.adopt == std::vector<AdoptRule>{{"cab1", ""}, {"unit1", "aux"}});
  CHECK_THROWS_AS(eqd::config::apply_overrides(over, {"discovery.adopt=[{match: unit1, bus: nosuch}]"}), ConfigError);
}
