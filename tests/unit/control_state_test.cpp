// Persisted state: format, atomic save, corrupt files moved aside, precedence over config.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "control_test_util.hpp"
#include "../fakes/runtime_values.hpp"
#include "eqd/control/state_store.hpp"

using namespace eqd::control;
using eqd::control::test::TempDir;
namespace fs = std::filesystem;

namespace {
PersistedState sample_state() {
  PersistedState s;
  PersistedChannel a;
  a.assigned = true;
  a.limits.max_charge_W = 1500;
  a.limits.max_discharge_W = 1200;
  a.limits.max_charge_A = 30;
  a.limits.v_min_V = 42;
  a.limits.v_max_V = 57.5;
  a.limits.hysteresis_V = 0.25;
  s.channels["cab1/2"] = a;
  PersistedChannel r;
  r.assigned = false;
  r.limits.max_charge_W = 1000;
  r.limits.max_discharge_W = 1000;
  r.limits.v_min_V = 44;
  r.limits.v_max_V = 56;
  s.channels["cab1/4"] = r;
  s.buses["main"].set("tau_s", 12.5);
  s.buses["aux"].set("target_W", -300);
  s.buses["aux"].set("use_forecast", false);
  return s;
}
std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST_CASE("control state: text round trip", "[control][state]") {
  const PersistedState s = sample_state();
  const PersistedState back = state_from_text(state_to_text(s));
  CHECK(back == s);
  CHECK_FALSE(back.buses.at("main").get("deadband_W").has_value());
  CHECK_FALSE(back.buses.at("main").get("use_forecast").has_value());
  REQUIRE(back.buses.at("aux").get("use_forecast").has_value());
  CHECK(*back.buses.at("aux").get("use_forecast") == false);
  // Only a changed flag is written, as a JSON boolean.
  const auto j = nlohmann::json::parse(state_to_text(s));
  CHECK(j["buses"]["aux"]["use_forecast"] == false);
  CHECK_FALSE(j["buses"]["main"].contains("use_forecast"));
  // == sees the flag.
  PersistedState other = s;
  other.buses["aux"].set("use_forecast", true);
  CHECK_FALSE(other == s);
}

TEST_CASE("control state: malformed text names the problem", "[control][state]") {
  auto msg = [](const std::string& text) {
    try {
      (void)state_from_text(text);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    FAIL("accepted: " << text);
    return std::string();
  };
  CHECK(msg("{").find("JSON") != std::string::npos);
  CHECK(msg("{\"version\":2}").find("version") != std::string::npos);
  CHECK(msg(R"({"version":1,"channels":{"cab1/1":{"assigned":"yes"}}})").find("cab1/1.assigned") != std::string::npos);
  CHECK(msg(R"({"version":1,"channels":{"cab1/1":{"assigned":true,"limits":{"v_min_V":"x"}}}})").find("v_min_V") !=
        std::string::npos);
  CHECK(msg(R"({"version":1,"buses":{"main":{"tau_s":null}}})").find("main.tau_s") != std::string::npos);
  CHECK(msg(R"({"version":1,"buses":{"main":{"use_forecast":0}}})").find("main.use_forecast") != std::string::npos);
}

TEST_CASE("control state: save is atomic and load reads it back", "[control][state]") {
  TempDir dir;
  StateStore store((dir.path / "sub").string());  // a missing directory is created
  CHECK_FALSE(store.load().existed);
  store.save(sample_state());
  CHECK_FALSE(fs::exists(dir.path / "sub" / "state.json.tmp"));
  const LoadResult r = store.load();
  CHECK(r.existed);
  CHECK(r.moved_aside_to.empty());
  CHECK(r.state == sample_state());
  // Overwrite with a different state.
  PersistedState s2;
  s2.buses["main"].set("deadband_W", 10);
  store.save(s2);
  CHECK(store.load().state == s2);
}

TEST_CASE("control state: a corrupt file is moved aside and not silently dropped", "[control][state]") {
  TempDir dir;
  StateStore store(dir.path.string());
  { std::ofstream(dir.path / "state.json") << "{\"version\":1, \"channels\": [trunc"; }
  const LoadResult r = store.load();
  CHECK(r.existed);
  CHECK(r.state == PersistedState{});
  REQUIRE_FALSE(r.moved_aside_to.empty());
  CHECK(r.moved_aside_to.find("state.json.corrupt-") != std::string::npos);
  CHECK(read(r.moved_aside_to).find("trunc") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path / "state.json"));
  // A second corruption in the same second gets its own name.
  { std::ofstream(dir.path / "state.json") << "garbage"; }
  const LoadResult r2 = store.load();
  CHECK(r2.moved_aside_to != r.moved_aside_to);
  CHECK(fs::exists(r.moved_aside_to));
  CHECK(fs::exists(r2.moved_aside_to));
}

TEST_CASE("control state: persisted entries override config at start", "[control][state]") {
  TempDir dir;
  const auto cfg = eqd::control::test::small_rig(dir.path.string(), (dir.path / "s.sock").string());
  auto plan = eqd::daemon::plan_rig(cfg);
  const auto c2 = *plan.directory.find_channel("cab1/2");
  const auto c4 = *plan.directory.find_channel("cab1/4");
  REQUIRE(plan.core.channels[c4].assigned);  // from config
  REQUIRE_FALSE(plan.core.channels[c2].assigned);

  PersistedState s = sample_state();
  s.channels["gone/1"] = PersistedChannel{true, s.channels["cab1/2"].limits};
  s.buses["nosuchbus"].set("tau_s", 12);
  const auto notes = apply_state(s, cfg, plan);
  CHECK(plan.core.channels[c2].assigned);
  CHECK(plan.core.channels[c2].limits.max_charge_W == 1500);
  CHECK(plan.core.channels[c2].limits.v_max_V == 57.5);
  CHECK_FALSE(plan.core.channels[c4].assigned);  // config buffer released at run time stays released
  CHECK(plan.core.buses[0].tau_s == 12.5);
  CHECK(plan.core.buses[0].deadband_W == cfg.buses[0].params.deadband_W);  // unset: config's
  CHECK(plan.core.buses[1].target_W == -300);
  REQUIRE(cfg.buses[1].params.use_forecast);                                   // config's default: on
  CHECK_FALSE(plan.core.buses[1].use_forecast);                                // persisted: off
  CHECK(plan.core.buses[0].use_forecast == cfg.buses[0].params.use_forecast);  // unset: config's
  std::string all;
  for (const auto& n : notes) all += n + "\n";
  CHECK(all.find("gone/1") != std::string::npos);
  CHECK(all.find("nosuchbus") != std::string::npos);
}

TEST_CASE("control state: invalid persisted values are not applied", "[control][state]") {
  TempDir dir;
  const auto cfg = eqd::control::test::small_rig(dir.path.string(), (dir.path / "s.sock").string());
  auto plan = eqd::daemon::plan_rig(cfg);
  PersistedState s;
  s.buses["main"].set("tau_s", 3);  // main does not allow tau outside 10..20 s
  s.buses["aux"].set("tau_s", 3);   // aux does (allow_any_tau)
  PersistedChannel bad;
  bad.assigned = true;  // limits all zero: invalid
  s.channels["cab1/1"] = bad;
  const auto notes = apply_state(s, cfg, plan);
  CHECK(plan.core.buses[0].tau_s == cfg.buses[0].params.tau_s);
  CHECK(plan.core.buses[1].tau_s == 3);
  CHECK_FALSE(plan.core.channels[*plan.directory.find_channel("cab1/1")].assigned);
  std::string all;
  for (const auto& n : notes) all += n + "\n";
  CHECK(all.find("tau_s") != std::string::npos);
  CHECK(all.find("cab1/1") != std::string::npos);
}

TEST_CASE("control state: one bad entry is skipped, the valid ones, an operator's release included, are kept",
          "[control][state]") {
  TempDir dir;
  const auto cfg = eqd::control::test::small_rig(dir.path.string(), (dir.path / "s.sock").string());
  StateStore store(dir.path.string());
  // cab1/4 is a configured buffer that an operator released; cab1/1 has one wrongly typed field.
  const std::string original = R"({"version":1,
    "channels":{"cab1/1":{"assigned":"yes","limits":{"max_charge_W":1000}},
                "cab1/2":{"assigned":true,"limits":{"max_charge_W":1500,"max_discharge_W":1200,"v_min_V":42,"v_max_V":57.5}},
                "cab1/4":{"assigned":false,"limits":{"max_charge_W":1000,"max_discharge_W":1000,"v_min_V":44,"v_max_V":56}}},
    "buses":{"main":{"tau_s":12.5}}})";
  { std::ofstream(dir.path / "state.json") << original; }
  const LoadResult r = store.load();
  CHECK(r.moved_aside_to.empty());
  REQUIRE(r.skipped.size() == 1);
  CHECK_THAT(r.skipped[0], Catch::Contains("channels.cab1/1.assigned") && Catch::Contains("skipped"));
  CHECK(r.state.channels.count("cab1/1") == 0);
  REQUIRE(r.state.channels.count("cab1/2") == 1);
  CHECK(r.state.channels.at("cab1/2").limits.max_charge_W == 1500);
  REQUIRE(r.state.channels.count("cab1/4") == 1);
  CHECK_FALSE(r.state.channels.at("cab1/4").assigned);
  CHECK(r.state.buses.at("main").get("tau_s") == 12.5);
  // The untouched original is kept aside under a timestamped name; state.json holds the kept entries.
  REQUIRE_FALSE(r.copied_to.empty());
  CHECK(r.copied_to.find("state.json.bad-entries-") != std::string::npos);
  CHECK(read(r.copied_to) == original);
  CHECK(state_from_text(read(dir.path / "state.json")) == r.state);
  const LoadResult again = store.load();
  CHECK(again.skipped.empty());
  CHECK(again.copied_to.empty());
  CHECK(again.state == r.state);

  // At start the release of the configured buffer holds, and the valid assignment is restored.
  auto plan = eqd::daemon::plan_rig(cfg);
  REQUIRE(plan.core.channels[*plan.directory.find_channel("cab1/4")].assigned);  // config alone
  (void)apply_state(r.state, cfg, plan);
  CHECK_FALSE(plan.core.channels[*plan.directory.find_channel("cab1/4")].assigned);
  CHECK(plan.core.channels[*plan.directory.find_channel("cab1/2")].assigned);
  CHECK(plan.core.buses[0].tau_s == 12.5);
}

TEST_CASE("control state: bad fields are skipped at the smallest unit that makes sense", "[control][state]") {
  std::vector<std::string> skipped;
  SECTION("a release with bad limits stays a release") {
    const PersistedState s =
        state_from_text(R"({"version":1,"channels":{"cab1/4":{"assigned":false,"limits":{"v_min_V":"x"}}}})", &skipped);
    REQUIRE(s.channels.count("cab1/4") == 1);
    CHECK_FALSE(s.channels.at("cab1/4").assigned);
    REQUIRE(skipped.size() == 1);
    CHECK_THAT(skipped[0], Catch::Contains("channels.cab1/4.limits.v_min_V") && Catch::Contains("release is kept"));
  }
  SECTION("an assignment with bad limits is skipped") {
    const PersistedState s = state_from_text(
        R"({"version":1,"channels":{"cab1/2":{"assigned":true,"limits":{"max_charge_W":"lots"}}}})", &skipped);
    CHECK(s.channels.empty());
    REQUIRE(skipped.size() == 1);
    CHECK_THAT(skipped[0], Catch::Contains("channels.cab1/2.limits.max_charge_W"));
  }
  SECTION("one bad bus parameter: the others of that bus are kept") {
    const PersistedState s = state_from_text(
        R"({"version":1,"buses":{"main":{"tau_s":"slow","deadband_W":40,"use_forecast":1},"aux":{"target_W":-300}}})",
        &skipped);
    CHECK_FALSE(s.buses.at("main").get("tau_s").has_value());
    CHECK(s.buses.at("main").get("deadband_W") == 40.0);
    CHECK_FALSE(s.buses.at("main").get("use_forecast").has_value());
    CHECK(s.buses.at("aux").get("target_W") == -300.0);
    REQUIRE(skipped.size() == 2);
    CHECK_THAT(skipped[0], Catch::Contains("buses.main.tau_s"));
    CHECK_THAT(skipped[1], Catch::Contains("buses.main.use_forecast"));
  }
  SECTION("a section of the wrong type loses only that section") {
    const PersistedState s =
        state_from_text(R"({"version":1,"channels":[1,2],"buses":{"main":{"tau_s":12}}})", &skipped);
    CHECK(s.channels.empty());
    CHECK(s.buses.at("main").get("tau_s") == 12.0);
    REQUIRE(skipped.size() == 1);
    CHECK_THAT(skipped[0], Catch::Contains("\"channels\" must be an object"));
  }
  SECTION("entries that are not objects") {
    const PersistedState s = state_from_text(
        R"({"version":1,"channels":{"cab1/1":true,"cab1/2":{"assigned":false}},"buses":{"x":3}})", &skipped);
    CHECK(s.channels.size() == 1);
    CHECK(s.buses.empty());
    CHECK(skipped.size() == 2);
  }
}

TEST_CASE("control state: every row of the run-time parameter table survives the state file and reaches the plan",
          "[control][state][params]") {
  TempDir dir;
  const auto cfg = eqd::control::test::small_rig(dir.path.string(), (dir.path / "s.sock").string());
  PersistedState s;
  const eqd::core::BusParams defaults = cfg.buses[1].params;
  for (const eqd::core::RuntimeParam& row : eqd::core::kRuntimeParams) {
    const double now = eqd::core::runtime_value(row, defaults);
    REQUIRE(s.buses["aux"].set(row.name, eqd::test::other_runtime_value(row, now)));
  }
  CHECK_FALSE(s.buses["aux"].set("slew_W_per_s", 5.0));  // not a run-time parameter
  const std::string text = state_to_text(s);
  const nlohmann::json j = nlohmann::json::parse(text);
  for (const eqd::core::RuntimeParam& row : eqd::core::kRuntimeParams) {
    INFO(row.name);
    // Flags are written as JSON true/false, choices by name, numbers as numbers.
    CHECK(j["buses"]["aux"][row.name].is_boolean() == row.flag);
    CHECK(j["buses"]["aux"][row.name].is_string() == (row.choice != nullptr));
  }
  const PersistedState back = state_from_text(text);
  CHECK(back == s);
  auto plan = eqd::daemon::plan_rig(cfg);
  (void)apply_state(back, cfg, plan);
  for (const eqd::core::RuntimeParam& row : eqd::core::kRuntimeParams) {
    INFO(row.name);
    CHECK(eqd::core::runtime_value(row, plan.core.buses[1]) == *back.buses.at("aux").get(row.name));
    CHECK(eqd::core::runtime_value(row, plan.core.buses[1]) != eqd::core::runtime_value(row, defaults));
  }
}
