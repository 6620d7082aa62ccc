// The predictor thread's learned.bin: round trip by channel name, a corrupt file moved aside, a file
// from another configuration, and the thread itself learning from a live core and saving at stop.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "eqd/core/control_core.hpp"
#include "eqd/core/predictor.hpp"
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
