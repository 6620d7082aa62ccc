// Runs every scenario file of tests/scenarios/ against the real ControlCore and checks its `expect:`.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "eqd/core/bus_law.hpp"
#include "eqd/sim/scenario.hpp"

#ifndef EQD_SCENARIO_DIR
#error "EQD_SCENARIO_DIR must name the scenario folder"
#endif

namespace {
std::vector<std::string> scenario_files() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(EQD_SCENARIO_DIR))
    if (e.path().extension() == ".yaml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// EQD_SCENARIO_LAW=NAME runs every bus with that control law instead of the file's: the scenario suite
// is the law-independent part of a law's acceptance (settling, overshoot, dead time, windows, faults).
void run_file(const std::string& path) {
  INFO("scenario file: " << path);
  eqd::sim::Scenario s = eqd::sim::load_scenario(path);
  if (const char* law = std::getenv("EQD_SCENARIO_LAW")) {
    eqd::core::LawKind kind{};
    REQUIRE(eqd::core::parse_law_kind(law, kind));
    for (eqd::sim::BusSpec& b : s.rig.buses) b.params.law = kind;
  }
  const eqd::sim::ScenarioResult r = eqd::sim::run_scenario(s);
  std::cout << r.summary << "\n";
  for (const std::string& f : r.failures) std::cout << "  FAIL " << f << "\n";
  INFO(r.summary);
  CHECK(r.failures.empty());
  for (const std::string& f : r.failures) FAIL_CHECK(f);
}
}  // namespace

// Hidden (not run by CTest): `EQD_SCENARIO_RUN=a.yaml:b.yaml sim_scenarios "[.run]"` runs any scenario
// files, e.g. the benchmark's (tests/bench/scenarios), and prints their figures and wall time.
TEST_CASE("run the files named in EQD_SCENARIO_RUN", "[.run]") {
  const char* list = std::getenv("EQD_SCENARIO_RUN");
  REQUIRE(list != nullptr);
  std::string files = list;
  for (std::size_t at = 0; at <= files.size();) {
    const std::size_t end = std::min(files.find(':', at), files.size());
    if (end > at) run_file(files.substr(at, end - at));
    at = end + 1;
  }
}

TEST_CASE("scenario folder is not empty", "[scenario]") { REQUIRE(scenario_files().size() >= 8); }

// One section per file; CTest runs each section as its own test (`-c <name>`), so a failing scenario
// is reported by name.
TEST_CASE("scenarios", "[scenario]") {
  for (const std::string& f : scenario_files()) {
    SECTION(std::filesystem::path(f).stem().string()) { run_file(f); }
  }
}
