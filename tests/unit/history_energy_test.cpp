// The per-minute energy history (include/eqd/history/energy.hpp): minutes from the snapshots add up to
// the bus counters (peaks, flips, setpoint travel, window positions, buffer energy), a reload keeps the
// minute, minutes reach the database (a minute written twice adds up), retention, and the recorder's
// thread over a view (TSan).
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "../fakes/temp_files.hpp"
#include "eqd/history/energy.hpp"
#include "eqd/history/store.hpp"

using eqd::history::EnergyMinute;
using eqd::history::MinuteAccumulator;
using namespace std::chrono_literals;
namespace core = eqd::core;

namespace {

// Bus main (cab1/1 a test channel, cab1/4 a buffer) and bus aux (cab2/1, a test channel), set by the test.
struct FakeView final : eqd::daemon::SnapshotView {
  std::vector<core::BusSnapshot> buses = std::vector<core::BusSnapshot>(2);
  std::vector<core::ChannelSnapshot> channels = std::vector<core::ChannelSnapshot>(3);
  std::vector<core::Sample> samples = std::vector<core::Sample>(3);
  FakeView() {
    channels[1].role = core::Role::equalization;
    channels[2].bus = 1;
    for (auto& s : samples) s.valid = true;
  }
  std::size_t bus_count() const noexcept override { return buses.size(); }
  std::size_t channel_count() const noexcept override { return channels.size(); }
  core::BusSnapshot bus(core::BusIndex b) const noexcept override { return buses[b]; }
  core::ChannelSnapshot channel(core::ChannelIndex i) const noexcept override { return channels[i]; }
  core::Sample sample(core::ChannelIndex i) const noexcept override { return samples[i]; }
  core::CycleStats cycle_stats() const noexcept override { return {}; }
  eqd::daemon::StallView stall(std::int64_t) const noexcept override { return {}; }
};

eqd::daemon::Directory directory() {
  eqd::daemon::Directory d;
  d.buses = {"main", "aux"};
  d.channels = {{"cab1/1", 0, 1, 0}, {"cab1/4", 0, 4, 0}, {"cab2/1", 1, 1, 1}};
  return d;
}

// One step of 200 ms: main imports 10 J, would have exported 5 J, its buffer absorbs 2 J; the law
// moves 1 W; a flip every 10 s; aux imports 1 J.
void advance(FakeView& v, int step) {
  core::BusSnapshot& m = v.buses[0];
  m.energy.grid_import_J += 10.0;
  m.energy.free_export_J += 5.0;
  m.energy.eq_absorbed_J += 2.0;
  m.setpoint_travel_W += 1.0;
  if (step % 50 == 0) ++m.direction_flips;
  m.net_W = step == 500 ? -900.0 : 100.0;
  m.free_W = step == 501 ? 1500.0 : -300.0;
  v.buses[1].energy.grid_import_J += 1.0;
  v.samples[1].power_W = 100.0;  // the buffer charges at 100 W
  v.channels[1].window_pos = step % 2 == 0 ? 0.25 : 0.75;
}

const eqd::history::BusMinute* bus_of(const EnergyMinute& m, const std::string& name) {
  for (const auto& b : m.buses)
    if (b.bus == name) return &b;
  return nullptr;
}

constexpr std::int64_t kT0_ms = 1'796'320'800'000 + 30'000;  // 30 s into a minute

}  // namespace

TEST_CASE("energy history: minutes add up to the bus counters with peaks, flips, travel and buffer energy",
          "[history][energy]") {
  FakeView v;
  const auto dir = directory();
  MinuteAccumulator acc;
  std::vector<EnergyMinute> minutes;
  const core::EnergyCounters start = v.buses[0].energy;
  for (int step = 0; step <= 750; ++step) {  // 150 s: the rest of one minute, two whole ones, half a minute
    if (step > 0) advance(v, step);
    if (auto m = acc.sample(v, dir, kT0_ms + step * 200)) minutes.push_back(std::move(*m));
  }
  REQUIRE(minutes.size() == 3);
  if (auto m = acc.flush()) minutes.push_back(std::move(*m));
  REQUIRE(minutes.size() == 4);
  double import_J = 0.0, exported_J = 0.0, absorbed_J = 0.0, charged_J = 0.0;
  std::uint64_t flips = 0;
  for (std::size_t k = 0; k < minutes.size(); ++k) {
    INFO("minute " << k);
    CHECK(minutes[k].minute_s % 60 == 0);
    if (k > 0) CHECK(minutes[k].minute_s == minutes[k - 1].minute_s + 60);
    const auto* main = bus_of(minutes[k], "main");
    REQUIRE(main != nullptr);
    REQUIRE(bus_of(minutes[k], "aux") != nullptr);
    import_J += main->energy.grid_import_J;
    exported_J += main->energy.free_export_J;
    absorbed_J += main->energy.eq_absorbed_J;
    flips += main->flips;
    for (const auto& b : minutes[k].buffers) charged_J += b.charged_J;
  }
  // Every joule of the counters is in exactly one minute.
  CHECK(import_J == Approx(v.buses[0].energy.grid_import_J - start.grid_import_J));
  CHECK(exported_J == Approx(v.buses[0].energy.free_export_J));
  CHECK(absorbed_J == Approx(v.buses[0].energy.eq_absorbed_J));
  CHECK(flips == v.buses[0].direction_flips);
  CHECK(charged_J == Approx(100.0 * 150.0));  // 100 W for 150 s
  // The first whole minute: 300 steps.
  const EnergyMinute& whole = minutes[1];
  const auto* main = bus_of(whole, "main");
  CHECK(whole.minute_s == (kT0_ms / 60'000 + 1) * 60);
  CHECK(main->energy.grid_import_J == Approx(3000.0));
  CHECK(main->setpoint_travel_W == Approx(300.0));
  CHECK(main->flips == 6);
  CHECK(main->samples == 300);
  REQUIRE(main->window_pos.has_value());
  CHECK(*main->window_pos == Approx(0.5));
  CHECK(bus_of(whole, "aux")->energy.grid_import_J == Approx(300.0));
  CHECK_FALSE(bus_of(whole, "aux")->window_pos.has_value());
  REQUIRE(whole.buffers.size() == 1);
  CHECK(whole.buffers[0].channel == "cab1/4");
  CHECK(whole.buffers[0].bus == "main");
  CHECK(whole.buffers[0].charged_J == Approx(6000.0));
  CHECK(whole.buffers[0].discharged_J == 0.0);
  // Steps 500 and 501 (100 s after the start: the second whole minute) have the peaks, |net| and |free|.
  CHECK(bus_of(minutes[2], "main")->peak_net_W == 900.0);
  CHECK(bus_of(minutes[2], "main")->peak_free_W == 1500.0);
  // Peak import is of power drawn from the grid only: the -900 W export is no import peak, the
  // 1500 W free power is (without equalization it would have been drawn), -300 W free power is not.
  CHECK(bus_of(minutes[2], "main")->peak_import_W == 100.0);
  CHECK(bus_of(minutes[2], "main")->peak_free_import_W == 1500.0);
  CHECK(bus_of(minutes[1], "main")->peak_free_import_W == 0.0);
  CHECK(main->peak_net_W == 100.0);
  CHECK(main->peak_free_W == 300.0);
}

TEST_CASE("energy history: a reload (another view, the counters carried over) keeps the minute", "[history][energy]") {
  FakeView before;
  const auto dir = directory();
  MinuteAccumulator acc;
  std::vector<EnergyMinute> minutes;
  int step = 0;
  for (; step <= 200; ++step) {
    if (step > 0) advance(before, step);
    if (auto m = acc.sample(before, dir, kT0_ms + step * 200)) minutes.push_back(std::move(*m));
  }
  // The successor daemon carries the energy counters over; its law counts flips and travel from 0.
  FakeView after = before;
  after.buses[0].direction_flips = 0;
  after.buses[0].setpoint_travel_W = 0.0;
  const auto dir2 = directory();
  for (; step <= 600; ++step) {
    advance(after, step);
    if (auto m = acc.sample(after, dir2, kT0_ms + step * 200)) minutes.push_back(std::move(*m));
  }
  if (auto m = acc.flush()) minutes.push_back(std::move(*m));
  double import_J = 0.0, travel_W = 0.0;
  std::uint64_t flips = 0;
  for (const auto& m : minutes) {
    import_J += bus_of(m, "main")->energy.grid_import_J;
    travel_W += bus_of(m, "main")->setpoint_travel_W;
    flips += bus_of(m, "main")->flips;
  }
  CHECK(import_J == Approx(after.buses[0].energy.grid_import_J));
  CHECK(travel_W == Approx(before.buses[0].setpoint_travel_W + after.buses[0].setpoint_travel_W));
  CHECK(flips == before.buses[0].direction_flips + after.buses[0].direction_flips);
}

TEST_CASE("energy history: a bus first seen counts from 0, as its daemon's counters do", "[history][energy]") {
  FakeView v;
  v.buses[0].energy.grid_import_J = 500.0;  // counted by the control thread before the recorder's first sample
  const auto dir = directory();
  MinuteAccumulator acc;
  REQUIRE_FALSE(acc.sample(v, dir, kT0_ms).has_value());
  const auto m = acc.flush();
  REQUIRE(m.has_value());
  CHECK(bus_of(*m, "main")->energy.grid_import_J == 500.0);
}

TEST_CASE("energy history: minutes reach the database, one written twice adds up, retention deletes old ones",
          "[history][energy]") {
  static eqd::test::ProcessTempDir dir("eqd-history-energy");
  const std::string path = (dir.path() / "energy.db").string();
  eqd::history::HistoryOptions o;
  o.path = path;
  o.journal = false;
  o.retention_days = 1;
  eqd::history::HistoryStore s(o);
  s.start();
  EnergyMinute m;
  m.minute_s = eqd::history::now_utc_ms() / 60'000 * 60;
  eqd::history::BusMinute b;
  b.bus = "main";
  b.energy.grid_import_J = 1000.0;
  b.peak_net_W = 50.0;
  b.flips = 2;
  b.window_pos = 0.4;
  b.samples = 100;
  m.buses.push_back(b);
  m.buffers.push_back({"cab1/4", "main", 600.0, 0.0, 0.4});
  REQUIRE(s.record_energy(m));
  m.buses[0].peak_net_W = 80.0;  // the rest of the minute after a restart
  m.buses[0].window_pos = 0.8;
  REQUIRE(s.record_energy(m));
  EnergyMinute old = m;
  old.minute_s -= 3 * 86'400;  // older than retention_days
  REQUIRE(s.record_energy(old));
  REQUIRE(s.flush(5s));
  CHECK(s.stats()->rows_written[1].load() == 3);
  CHECK(s.stats()->rows_written[2].load() == 3);
  s.prune_now();
  REQUIRE(s.flush(5s));

  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db,
                             "SELECT count(*), sum(grid_import_J), max(peak_net_W), sum(flips), max(window_pos), "
                             "(SELECT sum(charged_J) FROM energy_buffer) FROM energy_bus",
                             -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 1);  // the old minute is gone, the twice-written one is one row
  CHECK(sqlite3_column_double(st, 1) == 2000.0);
  CHECK(sqlite3_column_double(st, 2) == 80.0);
  CHECK(sqlite3_column_int(st, 3) == 4);
  CHECK(sqlite3_column_double(st, 4) == Approx(0.6));
  CHECK(sqlite3_column_double(st, 5) == 1200.0);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_CASE("energy history: the recorder samples a view on its own thread and writes the minute at stop",
          "[history][energy][stress]") {
  static eqd::test::ProcessTempDir dir("eqd-history-recorder");
  eqd::history::HistoryOptions o;
  o.path = (dir.path() / "recorder.db").string();
  o.journal = false;
  eqd::history::HistoryStore s(o);
  s.start();
  FakeView v;
  advance(v, 1);
  const auto d = directory();
  {
    eqd::history::EnergyRecorder rec(s);
    rec.attach(v, d);
    rec.start();
    std::this_thread::sleep_for(700ms);  // three or four samples at 5 Hz
    rec.detach();
    rec.attach(v, d);
    rec.stop();
  }
  REQUIRE(s.flush(5s));
  CHECK(s.stats()->rows_written[1].load() >= 2);  // main and aux (two if the minute turned meanwhile: more)
  CHECK(s.stats()->rows_written[2].load() >= 1);  // the buffer cab1/4
  CHECK(s.stats()->write_errors.load() == 0);
}

// Not run by CTest ("[.]"): the cost of a minute's rows and their size, for docs/benchmarks.md.
TEST_CASE("energy history: insert cost and size of a minute's rows", "[.][history][energy][bench]") {
  static eqd::test::ProcessTempDir dir("eqd-history-energy-bench");
  const std::string path = (dir.path() / "bench.db").string();
  eqd::history::HistoryOptions o;
  o.path = path;
  o.journal = false;
  o.queue_capacity = 100'000;
  eqd::history::HistoryStore s(o);
  s.start();
  constexpr int kMinutes = 20'000;  // two weeks of minutes of a rig with 2 buses and 4 buffers
  const std::int64_t first = eqd::history::now_utc_ms() / 60'000 * 60 - kMinutes * 60LL;
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < kMinutes; ++k) {
    EnergyMinute m;
    m.minute_s = first + k * 60LL;
    for (const char* bus : {"main", "aux"}) {
      eqd::history::BusMinute b;
      b.bus = bus;
      b.energy = {1234.5 + k, 0.0, 2345.6, 10.0, 3456.7, 0.0};
      b.peak_net_W = 950.0;
      b.peak_free_W = 4200.0;
      b.flips = 3;
      b.setpoint_travel_W = 812.0;
      b.window_pos = 0.42;
      b.samples = 300;
      m.buses.push_back(b);
    }
    for (const char* ch : {"cab1/15", "cab1/16", "cab2/16", "aux1/16"})
      m.buffers.push_back({ch, "main", 25'000.0 + k, 0.0, 0.42});
    REQUIRE(s.record_energy(std::move(m)));
    if (k % 1000 == 999) REQUIRE(s.flush(60s));  // one transaction per minute, as in eqd
  }
  REQUIRE(s.flush(120s));
  const double per_minute_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kMinutes;
  s.stop();
  const double bytes = static_cast<double>(std::filesystem::file_size(path)) / (kMinutes * 6.0);
  WARN("energy history: " << per_minute_us << " us per minute (2 bus rows + 4 buffer rows, one transaction); " << bytes
                          << " bytes per row");
}
