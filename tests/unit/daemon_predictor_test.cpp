// The predictor thread's learned.bin: round trip by channel name, a corrupt file moved aside, a file
// from another configuration, and the thread itself learning from a live core and saving at stop.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <boost/crc.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>

#include "../fakes/core_fixture.hpp"
#include "eqd/core/control_core.hpp"
#include "eqd/core/predictor.hpp"
#include "eqd/core/stat_forecasts.hpp"
#include "eqd/daemon/clock.hpp"
#include "eqd/daemon/predictor_thread.hpp"

using namespace eqd;

namespace {
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/eqd-predictor-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

daemon::Directory directory_of(std::initializer_list<const char*> names) {
  daemon::Directory d;
  d.buses = {"main"};
  for (const char* n : names) {
    daemon::ChannelInfo c;
    c.name = n;
    d.by_name[n] = static_cast<core::ChannelIndex>(d.channels.size());
    d.channels.push_back(c);
  }
  return d;
}

// Two channels trained on a stepped program (channel 0) and a periodic load (channel 1).
void train(core::Predictor& p, int seconds) {
  core::PredictorParams pp = p.params();
  for (int t = 0; t < seconds; ++t) {
    const int u = t % 500;
    const auto step = static_cast<std::uint16_t>(u < 300 ? 0 : 1);
    (void)p.channel(0).observe(pp, t, u < 300 ? -900.0F : 400.0F, static_cast<std::uint32_t>(t / 500), step, 30);
    (void)p.channel(1).observe(pp, t, static_cast<float>(1000.0 * std::sin(t % 240 / 9.0)), core::Sample::kNoIndex,
                               core::Sample::kNoStep, 30);
  }
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
}  // namespace

TEST_CASE("learned.bin: what each channel learned comes back by name, in another order", "[daemon][predictor]") {
  core::Predictor a(2);
  train(a, 3000);
  const auto dir_a = directory_of({"cab1/1", "cab1/2"});
  const std::string bytes = daemon::encode_learned(a, dir_a);

  // The next configuration lists the channels the other way round and has one more, and one fewer.
  core::Predictor b(3);
  const auto dir_b = directory_of({"cab9/1", "cab1/2", "cab1/1"});
  const daemon::LearnedLoad r = daemon::decode_learned(bytes, b, dir_b);
  CHECK(r.error.empty());
  CHECK(r.restored == 2);
  CHECK(r.unknown == 0);
  CHECK(b.channel(2).skill() == Approx(a.channel(0).skill()));
  CHECK(b.channel(1).skill() == Approx(a.channel(1).skill()));
  CHECK(b.channel(0).memory_bytes() == 0);

  core::Predictor c(1);
  const daemon::LearnedLoad r2 = daemon::decode_learned(bytes, c, directory_of({"cab1/2"}));
  CHECK(r2.restored == 1);
  CHECK(r2.unknown == 1);
}

TEST_CASE("learned.bin: damaged files are refused whole", "[daemon][predictor]") {
  core::Predictor a(2);
  train(a, 1500);
  const auto dir = directory_of({"cab1/1", "cab1/2"});
  const std::string good = daemon::encode_learned(a, dir);
  for (std::size_t at : {std::size_t{0}, std::size_t{9}, good.size() / 2, good.size() - 1}) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x5A);
    core::Predictor b(2);
    const daemon::LearnedLoad r = daemon::decode_learned(bad, b, dir);
    INFO("byte " << at);
    CHECK_FALSE(r.error.empty());
    CHECK(r.restored == 0);
    CHECK(b.memory_bytes() == core::Predictor(2).memory_bytes());
  }
  core::Predictor b(2);
  CHECK_FALSE(daemon::decode_learned(good.substr(0, good.size() - 7), b, dir).error.empty());
  CHECK_FALSE(daemon::decode_learned("", b, dir).error.empty());
}

TEST_CASE("predictor thread: learns from a live core, saves at stop, restores at start, and moves a corrupt file aside",
          "[daemon][predictor]") {
  TempDir tmp;
  const std::string path = (tmp.path / "learned.bin").string();
  core::CoreConfig cfg;
  core::BusParams bp;
  bp.forecast_horizon_s = 5;
  cfg.buses.push_back(bp);
  cfg.channels.resize(1);
  core::ControlCore core(cfg);
  const auto dir = directory_of({"cab1/1"});
  {
    daemon::PredictorThread th(core, dir, path);
    const daemon::LearnedLoad r = th.start();
    CHECK_FALSE(r.existed);
    // Fresh samples for 2.5 s: the thread ticks once per second of the monotonic clock.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
    while (std::chrono::steady_clock::now() < until) {
      core::Sample s;
      s.valid = true;
      s.state = core::ChannelState::running;
      s.power_W = 700.0;
      s.voltage_V = 50.0;
      s.receive_time_ns = daemon::monotonic_ns();
      core.sample_slot(0).store(s);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    th.stop();
    CHECK(th.stats().ticks.load() >= 2);
    CHECK(th.stats().saves.load() == 1);
    CHECK(th.stats().save_errors.load() == 0);
  }
  REQUIRE(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  {
    daemon::PredictorThread th(core, dir, path);
    const daemon::LearnedLoad r = th.start();
    CHECK(r.existed);
    CHECK(r.error.empty());
    CHECK(r.restored == 1);
    th.stop();
  }
  // Damage it: the next start says so, keeps the evidence and starts learning anew.
  std::string bytes = read_all(path);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0xFF);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  {
    daemon::PredictorThread th(core, dir, path);
    const daemon::LearnedLoad r = th.start();
    CHECK_FALSE(r.error.empty());
    CHECK(r.restored == 0);
    REQUIRE_FALSE(r.moved_aside_to.empty());
    CHECK(std::filesystem::exists(r.moved_aside_to));
    CHECK(read_all(r.moved_aside_to) == bytes);
    th.stop();
  }
  // A state directory that cannot be written: counted, never thrown.
  {
    daemon::PredictorThread th(core, dir, "/proc/eqd-no-such-dir/learned.bin");
    (void)th.start();
    th.stop();
    CHECK(th.stats().save_errors.load() == 1);
  }
}

TEST_CASE("predictor thread: fits and publishes the statistical model of a bus with stat_forecast only",
          "[daemon][predictor][stat_forecast]") {
  TempDir tmp;
  core::CoreConfig cfg;
  core::BusParams bp;
  bp.law = core::LawKind::planned;
  bp.forecast_horizon_s = 5;
  bp.stat_forecast = true;
  cfg.buses.push_back(bp);
  bp.stat_forecast = false;  // bus 1: off
  cfg.buses.push_back(bp);
  cfg.channels.resize(1);
  core::ControlCore core(cfg);
  const auto dir = directory_of({"cab1/1"});
  daemon::PredictorThread th(core, dir, (tmp.path / "learned.bin").string());
  (void)th.start();
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
  while (std::chrono::steady_clock::now() < until) {
    core.cycle(daemon::monotonic_ns());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  th.stop();
  const core::StatModel m = core.stat_model_slot(0).load();
  // Made by the thread within the last 2 s of the core's clock, for the bus's horizon; not usable yet
  // (no warm-up in 2.5 s), and nothing for the bus without stat_forecast.
  CHECK(m.made_s >= daemon::monotonic_ns() / 1'000'000'000 - 2);
  CHECK(m.horizon_s == 5);
  CHECK_FALSE(m.usable);
  CHECK(core.stat_model_slot(1).load().made_s == -1);
}

// stat_forecast.bin: the statistical forecasts' fits and shadow-plan gates across a restart.
namespace {
std::uint32_t crc32(std::string_view bytes) {
  boost::crc_32_type crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

// A bus `main` of law planned with stat_forecast, channel 0 a test channel on an AR(1) load, channels
// 2 and 3 buffers; its StatForecasts ticked as by the predictor thread for `seconds`.
struct StatRig {
  explicit StatRig(core::BusParams p = params())
      : f(4, p), dir(directory_of({"cab1/1", "cab1/2", "cab1/3", "cab1/4"})) {
    f.state[0] = core::ChannelState::running;
    REQUIRE(f.assign(2) == core::ResponseStatus::ok);
    REQUIRE(f.assign(3) == core::ResponseStatus::ok);
  }
  static core::BusParams params() {
    core::BusParams p;
    p.law = core::LawKind::planned;
    p.stat_forecast = true;
    // The light travel weight under which the shadow plan beats the adaptive law on this AR(1) load and
    // the gate opens (with the default 8 s the calm plan does not, and the gate rightly stays shut).
    p.plan_travel_weight_s = 0.2;
    return p;
  }
  void run(core::StatForecasts& s, int seconds) {
    for (int t = 0; t < seconds; ++t) {
      x = 0.9 * x + e(rng);
      f.power[0] = x;
      for (int k = 0; k < 10; ++k) {
        f.step();
        s.tick(f.now_ns, *f.core);
      }
    }
  }
  test::CoreFixture f;
  daemon::Directory dir;
  std::mt19937 rng{17};
  std::normal_distribution<double> e{0.0, 600.0};
  double x = 0.0;
};
constexpr std::int64_t kSavedAt = 1'800'000'000;  // the wall clock's second of the save
}  // namespace

TEST_CASE("stat_forecast.bin: a bus's fit and gate come back, usable at the first tick",
          "[daemon][predictor][stat_forecast]") {
  StatRig rig;
  core::StatForecasts a(1);
  rig.run(a, 900);
  REQUIRE(rig.f.core->stat_model_slot(0).load().usable);
  const std::string bytes = daemon::encode_stat(a, *rig.f.core, rig.dir, kSavedAt);

  core::StatForecasts b(1);
  const daemon::StatLoad r = daemon::decode_stat(bytes, b, *rig.f.core, rig.dir, kSavedAt + 30);
  CHECK(r.error.empty());
  CHECK_FALSE(r.stale);
  CHECK(r.age_s == 30);
  CHECK(r.restored == 1);
  rig.run(b, 1);
  CHECK(b.restored() == 1);
  CHECK(rig.f.core->stat_model_slot(0).load().usable);
  CHECK(b.gate(0)->open());

  // Unknown bus names are dropped; the other buses' entries still load.
  daemon::Directory renamed = rig.dir;
  renamed.buses = {"aux"};
  core::StatForecasts c(1);
  const daemon::StatLoad r2 = daemon::decode_stat(bytes, c, *rig.f.core, renamed, kSavedAt);
  CHECK(r2.error.empty());
  CHECK(r2.unknown == 1);
  CHECK(r2.restored == 0);
}

TEST_CASE("stat_forecast.bin: a stale state, or one of a bus whose settings changed, is not used",
          "[daemon][predictor][stat_forecast]") {
  StatRig rig;
  core::StatForecasts a(1);
  rig.run(a, 300);
  const std::string bytes = daemon::encode_stat(a, *rig.f.core, rig.dir, kSavedAt);
  SECTION("older than kStatMaxAge_s, or from the future") {
    for (const std::int64_t now : {kSavedAt + daemon::kStatMaxAge_s + 1, kSavedAt - 120}) {
      core::StatForecasts b(1);
      const daemon::StatLoad r = daemon::decode_stat(bytes, b, *rig.f.core, rig.dir, now);
      CHECK(r.error.empty());
      CHECK(r.stale);
      CHECK(r.restored == 0);
      rig.run(b, 1);
      CHECK(b.restored() == 0);
      CHECK_FALSE(rig.f.core->stat_model_slot(0).load().usable);
    }
    core::StatForecasts b(1);
    CHECK(daemon::decode_stat(bytes, b, *rig.f.core, rig.dir, kSavedAt + daemon::kStatMaxAge_s).restored == 1);
  }
  SECTION("tau_s, the horizon, or stat_forecast itself changed") {
    for (int change = 0; change < 3; ++change) {
      core::BusParams p = StatRig::params();
      if (change == 0) p.tau_s = 12.0;
      if (change == 1) p.forecast_horizon_s = 20.0;
      if (change == 2) p.stat_forecast = false;
      StatRig other(p);
      core::StatForecasts b(1);
      const daemon::StatLoad r = daemon::decode_stat(bytes, b, *other.f.core, other.dir, kSavedAt);
      INFO("change " << change);
      CHECK(r.error.empty());
      CHECK(r.changed == 1);
      CHECK(r.restored == 0);
    }
  }
  SECTION("the bus's channels changed") {
    daemon::Directory dir = rig.dir;
    dir.channels[1].name = "cab2/2";
    core::StatForecasts b(1);
    const daemon::StatLoad r = daemon::decode_stat(bytes, b, *rig.f.core, dir, kSavedAt);
    CHECK(r.changed == 1);
    CHECK(r.restored == 0);
  }
}

TEST_CASE("stat_forecast.bin: damaged files and other versions are refused whole",
          "[daemon][predictor][stat_forecast]") {
  StatRig rig;
  core::StatForecasts a(1);
  rig.run(a, 200);
  const std::string good = daemon::encode_stat(a, *rig.f.core, rig.dir, kSavedAt);
  for (std::size_t at : {std::size_t{0}, std::size_t{9}, good.size() / 2, good.size() - 1}) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x5A);
    core::StatForecasts b(1);
    INFO("byte " << at);
    const daemon::StatLoad r = daemon::decode_stat(bad, b, *rig.f.core, rig.dir, kSavedAt);
    CHECK_FALSE(r.error.empty());
    CHECK(r.restored == 0);
  }
  core::StatForecasts b(1);
  CHECK_FALSE(daemon::decode_stat(good.substr(0, good.size() - 7), b, *rig.f.core, rig.dir, kSavedAt).error.empty());
  CHECK_FALSE(daemon::decode_stat("", b, *rig.f.core, rig.dir, kSavedAt).error.empty());
  // Version 2 with a valid CRC: refused for its version (learned.bin is another file, untouched).
  std::string v2 = good.substr(0, good.size() - 4);
  const std::uint32_t version = 2;
  std::memcpy(v2.data() + 8, &version, sizeof version);
  const std::uint32_t crc = crc32(v2);
  v2.append(reinterpret_cast<const char*>(&crc), sizeof crc);
  const daemon::StatLoad r = daemon::decode_stat(v2, b, *rig.f.core, rig.dir, kSavedAt);
  CHECK(r.error.find("version 2") != std::string::npos);
  CHECK(r.restored == 0);
  core::StatForecasts c(1);
  CHECK(daemon::decode_stat(good, c, *rig.f.core, rig.dir, kSavedAt).restored == 1);
}

TEST_CASE("predictor thread: saves the statistical state at stop, restores it at start, moves a corrupt file aside",
          "[daemon][predictor][stat_forecast]") {
  TempDir tmp;
  const std::string learned = (tmp.path / "learned.bin").string();
  const std::string stat = (tmp.path / "stat_forecast.bin").string();
  core::CoreConfig cfg;
  core::BusParams bp;
  bp.law = core::LawKind::planned;
  bp.forecast_horizon_s = 5;
  bp.stat_forecast = true;
  cfg.buses.push_back(bp);
  cfg.channels.resize(1);
  core::ControlCore core(cfg);
  const auto dir = directory_of({"cab1/1"});
  const auto run_for = [&core](int ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      core.cycle(daemon::monotonic_ns());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
  {
    daemon::PredictorThread th(core, dir, learned);
    (void)th.start();
    CHECK_FALSE(th.stat_load().existed);
    run_for(2500);
    th.stop();
  }
  REQUIRE(std::filesystem::exists(stat));
  {
    daemon::PredictorThread th(core, dir, learned);
    (void)th.start();
    const daemon::StatLoad& r = th.stat_load();
    CHECK(r.existed);
    CHECK(r.error.empty());
    CHECK(r.age_s <= 5);
    CHECK(r.restored == 1);
    run_for(1500);
    th.stop();
    CHECK(th.stat_forecasts().restored() == 1);
  }
  std::string bytes = read_all(stat);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0xFF);
  std::ofstream(stat, std::ios::binary | std::ios::trunc) << bytes;
  {
    daemon::PredictorThread th(core, dir, learned);
    const daemon::LearnedLoad lr = th.start();
    const daemon::StatLoad& r = th.stat_load();
    CHECK_FALSE(r.error.empty());
    CHECK(r.restored == 0);
    REQUIRE_FALSE(r.moved_aside_to.empty());
    CHECK(read_all(r.moved_aside_to) == bytes);
    CHECK(lr.error.empty());  // learned.bin is another file: untouched
    th.stop();
  }
  // A bus that turns it off leaves no state behind at the next save.
  core::Request req;
  req.kind = core::RequestKind::set_params;
  req.bus = 0;
  req.params = bp;
  req.params.stat_forecast = false;
  REQUIRE(core.submit(req));
  {
    daemon::PredictorThread th(core, dir, learned);
    (void)th.start();
    run_for(1500);
    th.stop();
  }
  CHECK_FALSE(std::filesystem::exists(stat));
}
