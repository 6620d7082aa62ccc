// Valley filling's window needs survive a restart (state_dir/window_needs.json): the file's round
// trip, windows matched by their definition, a corrupt file moved aside, and the schedule thread
// saving what the core recorded.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../fakes/temp_files.hpp"
#include "eqd/core/control_core.hpp"
#include "eqd/daemon/schedule_thread.hpp"
#include "eqd/daemon/demand_file.hpp"
#include "eqd/daemon/window_needs_file.hpp"
#include "eqd/util/local_time.hpp"

using namespace eqd;

namespace {

core::ScheduleWindow evening(double cap_W) {
  core::ScheduleWindow w;
  w.days = 0x1f;  // weekdays
  w.start_min = 17 * 60;
  w.end_min = 20 * 60;
  w.mode = core::BusMode::caps;
  w.import_limit_W = cap_W;
  return w;
}

core::ScheduleWindow night() {
  core::ScheduleWindow w;
  w.start_min = 22 * 60;
  w.end_min = 6 * 60;
  w.target_W = 6000.0;
  return w;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("window needs: the file round-trips by bus name and window definition", "[daemon][valley_fill]") {
  const std::vector<std::string> names{"main", "aux"};
  const std::vector<std::vector<core::ScheduleWindow>> windows{{night(), evening(20000.0)}, {evening(5000.0)}};
  std::vector<core::WindowNeeds> needs(2);
  core::WindowNeeds::Profile ramp{};
  for (std::size_t j = 0; j < ramp.size(); ++j) ramp[j] = 1000.0F + 250.5F * static_cast<float>(j);
  for (int d = 0; d < 9; ++d)  // 9 evenings: the last 7 kept; every other one with its profile
    needs[0].record(1, 1.0e6 * (d + 1), d % 2 == 0 ? &ramp : nullptr);
  needs[1].record(0, 42.0);
  const std::string text = daemon::window_needs_text(names, windows, needs);
  CHECK(text.find(daemon::window_key(evening(20000.0))) != std::string::npos);
  CHECK(daemon::window_key(evening(20000.0)) ==
        "days=0x1f start=17:00 end=20:00 mode=caps import_limit_W=20000 export_limit_W=-");

  const auto back = daemon::parse_window_needs(text, names, windows);
  REQUIRE(back.size() == 2);
  CHECK(back[0].seen(0) == 0);  // the night window has no need
  REQUIRE(back[0].seen(1) == 7);
  CHECK(back[0].kept_J(1, 0) == 3.0e6);  // oldest kept first
  CHECK(back[0].kept_J(1, 6) == 9.0e6);
  CHECK(back[0].largest_J(1) == 9.0e6);
  CHECK(back[1].largest_J(0) == 42.0);
  // Level shaving's profiles: kept with their need, exactly (float values survive the text); a need
  // recorded without one has none after the round trip too.
  REQUIRE(back[0].kept_profile(1, 0) != nullptr);
  CHECK(*back[0].kept_profile(1, 0) == ramp);  // the third evening (d = 2)
  CHECK(std::isnan((*back[0].kept_profile(1, 1))[0]));
  CHECK(*back[0].kept_profile(1, 6) == ramp);
  // An older file (no profiles_W) still reads.
  const std::string old_text = R"({"format": 1, "buses": {"aux": [{"window": ")" + daemon::window_key(evening(5000.0)) +
                               R"(", "needs_J": [7.0]}]}})";
  const auto old = daemon::parse_window_needs(old_text, names, windows);
  CHECK(old[1].largest_J(0) == 7.0);
  CHECK(std::isnan((*old[1].kept_profile(0, 0))[5]));

  // The schedule changed: the evening window moved to index 0 (found by its definition), aux's cap
  // changed (a new window: nothing restored), a bus was renamed (nothing).
  const auto moved = daemon::parse_window_needs(text, {"main", "aux"}, {{evening(20000.0)}, {evening(6000.0)}});
  CHECK(moved[0].largest_J(0) == 9.0e6);
  CHECK(moved[1].seen(0) == 0);
  CHECK(daemon::parse_window_needs(text, {"other"}, {{evening(20000.0)}})[0].seen(0) == 0);
}

TEST_CASE("window needs: a corrupt file is moved aside and the needs start empty", "[daemon][valley_fill]") {
  test::ProcessTempDir dir("eqd-window-needs");
  const std::vector<std::vector<core::ScheduleWindow>> windows{{evening(20000.0)}};
  CHECK(daemon::load_window_needs((dir.path() / "none.json").string(), {"main"}, windows)[0].seen(0) == 0);
  for (const char* bad :
       {"{not json", R"({"format": 2, "buses": {}})",
        R"({"format": 1, "buses": {"main": [{"window": "x", "needs_J": [-5]}]}})",
        R"({"format": 1, "buses": {"main": 3}})",
        // profiles: not one per need, a bin short, a value that is not a power
        R"({"format": 1, "buses": {"main": [{"window": "x", "needs_J": [5], "profiles_W": []}]}})",
        R"({"format": 1, "buses": {"main": [{"window": "x", "needs_J": [5], "profiles_W": [[1, 2]]}]}})",
        R"({"format": 1, "buses": {"main": [{"window": "x", "needs_J": [5], "profiles_W": ["a"]}]}})"}) {
    INFO(bad);
    const std::string path = dir.write("window_needs.json", bad);
    CHECK_THROWS(daemon::parse_window_needs(bad, {"main"}, windows));
    CHECK(daemon::load_window_needs(path, {"main"}, windows)[0].seen(0) == 0);
    CHECK_FALSE(std::filesystem::exists(path));  // moved aside, kept as evidence
  }
  std::size_t aside = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    if (e.path().filename().string().find("window_needs.json.corrupt") == 0) ++aside;
  CHECK(aside == 7);  // one per bad file above
}

TEST_CASE("window needs: restored into the core, and saved by the schedule thread when one is recorded",
          "[daemon][valley_fill]") {
  test::ProcessTempDir dir("eqd-window-needs-thread");
  const std::string path = (dir.path() / "window_needs.json").string();
  const std::vector<std::vector<core::ScheduleWindow>> windows{{evening(20000.0)}};
  core::CoreConfig cfg;
  cfg.buses.resize(1);
  cfg.channels.resize(1);
  cfg.initial_window_needs.resize(1);
  cfg.initial_window_needs[0].record(0, 5.0e6);
  core::ControlCore c(cfg);
  CHECK(c.window_needs(0).largest_J(0) == 5.0e6);  // restored before the first cycle
  daemon::ScheduleThread t(c, windows, path, {"main"});
  t.refresh(0, 0);
  CHECK_FALSE(std::filesystem::exists(path));  // nothing new since the restore: no write
  // A need recorded by the control thread (a whole occurrence of the window) is saved at the next refresh.
  core::BusSchedule s;
  s.window_count = 1;
  s.windows[0] = evening(20000.0);
  s.occurrence_count = 1;
  s.occurrences[0] = {2'000'000'000, 12'000'000'000, 0};
  s.valid_until_ns = 100'000'000'000;
  c.set_schedule(0, s);
  for (std::int64_t ns = 1'000'000'000; ns <= 13'000'000'000; ns += 100'000'000) c.cycle(ns);
  REQUIRE(c.window_needs(0).seen(0) == 2);
  t.refresh(0, 0);
  REQUIRE(std::filesystem::exists(path));
  const auto back = daemon::load_window_needs(path, {"main"}, windows);
  CHECK(back[0].seen(0) == 2);
  CHECK(back[0].kept_J(0, 0) == 5.0e6);
}

// ---- The demand maxima across restarts (state_dir/demand.json, issue #17) ----

namespace {
std::int64_t cet(std::int64_t) { return 3600; }    // UTC+1 all year: enough for the day and month labels
constexpr std::int64_t kMar10_12h_s = 1773144000;  // 2026-03-10 12:00 UTC, 13:00 local
}  // namespace

TEST_CASE("demand file: round trip, and only today's and this month's maxima come back", "[daemon][demand]") {
  test::ProcessTempDir dir("eqd-demand-file");
  const std::string path = (dir.path() / "demand.json").string();
  CHECK(daemon::local_day(kMar10_12h_s, &cet) == "2026-03-10");
  CHECK(daemon::local_month(kMar10_12h_s, &cet) == "2026-03");
  CHECK(daemon::local_day(kMar10_12h_s + 11 * 3600 - 1, &cet) == "2026-03-10");  // 23:59:59 local
  CHECK(daemon::local_day(kMar10_12h_s + 11 * 3600, &cet) == "2026-03-11");
  const std::vector<std::string> names{"main", "aux", "other"};
  std::vector<daemon::SavedDemand> saved(3);
  saved[0] = {"2026-03-10", "2026-03", {7000.0, 9000.0}};
  saved[1] = {"2026-03-09", "2026-03", {5000.0, 6000.0}};  // yesterday: the month's only
  saved[2] = {"2026-02-28", "2026-02", {4000.0, 4000.0}};  // last month: nothing
  { std::ofstream(path) << daemon::demand_text(names, saved); }
  const auto back = daemon::parse_demand(read(path), names);
  CHECK(back[0].day == "2026-03-10");
  CHECK(back[0].max.max_day_W == 7000.0);
  CHECK(back[1].max.max_month_W == 6000.0);
  const auto seeds = daemon::load_demand(path, {"main", "aux", "other", "new"}, kMar10_12h_s, &cet);
  REQUIRE(seeds.size() == 4);
  CHECK(seeds[0].max_day_W == 7000.0);
  CHECK(seeds[0].max_month_W == 9000.0);
  CHECK(std::isnan(seeds[1].max_day_W));
  CHECK(seeds[1].max_month_W == 6000.0);
  CHECK(std::isnan(seeds[2].max_day_W));
  CHECK(std::isnan(seeds[2].max_month_W));
  CHECK(std::isnan(seeds[3].max_month_W));  // a bus the file does not know
  // Within a minute of the local midnight that ends the day, the day's maximum is not taken back (the
  // core's first calendar may already be the next day's); the month's is.
  const auto late = daemon::load_demand(path, names, kMar10_12h_s + 11 * 3600 - 30, &cet);
  CHECK(std::isnan(late[0].max_day_W));
  CHECK(late[0].max_month_W == 9000.0);
  // NaN maxima (none yet) round-trip as none.
  saved[0].max = {};
  const auto none = daemon::parse_demand(daemon::demand_text(names, saved), names);
  CHECK(std::isnan(none[0].max.max_day_W));
  CHECK(std::isnan(none[0].max.max_month_W));
}

TEST_CASE("demand file: a corrupt file is moved aside and the maxima start empty", "[daemon][demand]") {
  test::ProcessTempDir dir("eqd-demand-corrupt");
  const std::string path = (dir.path() / "demand.json").string();
  const std::vector<std::string> names{"main"};
  for (const char* bad :
       {"{", "[]", R"({"format": 2, "buses": {}})", R"({"format": 1})",
        R"({"format": 1, "buses": {"main": {"day": 3, "month": "2026-03"}}})",
        R"({"format": 1, "buses": {"main": {"day": "2026-03-10", "month": "2026-03", "max_day_W": -5}}})",
        R"({"format": 1, "buses": {"main": {"day": "2026-03-10", "month": "2026-03", "max_month_W": "x"}}})"}) {
    INFO(bad);
    CHECK_THROWS_AS(daemon::parse_demand(bad, names), std::runtime_error);
    std::ofstream(path) << bad;
    const auto seeds = daemon::load_demand(path, names, kMar10_12h_s, &cet);
    CHECK(std::isnan(seeds[0].max_month_W));
    CHECK_FALSE(std::filesystem::exists(path));
  }
  int aside = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    if (e.path().filename().string().find("demand.json.corrupt") == 0) ++aside;
  CHECK(aside == 7);
}

TEST_CASE("demand file: seeds reach the core, and the schedule thread saves what the core holds", "[daemon][demand]") {
  test::ProcessTempDir dir("eqd-demand-thread");
  const std::string path = (dir.path() / "demand.json").string();
  core::CoreConfig cfg;
  cfg.buses.resize(1);
  cfg.channels.resize(1);
  cfg.initial_demand = {{7000.0, 9000.0}};
  core::ControlCore c(cfg);
  for (std::int64_t ns = 100'000'000; ns <= 1'000'000'000; ns += 100'000'000) c.cycle(ns);
  CHECK(c.bus(0).demand_max_day_W == 7000.0);
  CHECK(c.bus(0).demand_max_month_W == 9000.0);
  daemon::ScheduleThread t(c, {{}}, "", {"main"}, path);
  t.refresh(kMar10_12h_s * 1'000'000'000, 1'000'000'000);  // labelled with the system zone's day
  REQUIRE(std::filesystem::exists(path));
  const auto seeds = daemon::load_demand(path, {"main"}, kMar10_12h_s, &util::local_utc_offset_s);
  CHECK(seeds[0].max_day_W == 7000.0);
  CHECK(seeds[0].max_month_W == 9000.0);
  // Unchanged figures are not written again.
  std::filesystem::remove(path);
  t.refresh(kMar10_12h_s * 1'000'000'000, 1'000'000'000);
  CHECK_FALSE(std::filesystem::exists(path));
}
