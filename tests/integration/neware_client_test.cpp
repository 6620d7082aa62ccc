// The Neware BTS transport (io/neware) against the BTS-like server (sim/bts_server.hpp), two readings
// of the same public facts written apart. Each case runs a real server on an ephemeral 127.0.0.1 port
// with a scripted channel source, and a real NewareLink on its own thread publishing into sample slots.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bts_server.hpp"
#include "eqd/io/neware/link.hpp"

namespace bts = eqd::sim::bts;
using eqd::core::ChannelState;
using eqd::core::Sample;
using eqd::io::neware::NewareLink;
using namespace std::chrono_literals;

namespace {

template <class F>
bool eventually(F&& f, std::chrono::milliseconds within) {
  const auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

// Channel statuses set by the test; every other channel idles at 3.7 V ("stop").
class Script final : public bts::ChannelSource {
 public:
  bts::ChannelStatus status(std::size_t device, std::size_t channel) override {
    const std::lock_guard<std::mutex> lock(m_);
    if (auto it = map_.find({device, channel}); it != map_.end()) return it->second;
    bts::ChannelStatus s;
    s.voltage_V = 3.7;
    return s;
  }
  void set(std::size_t device, std::size_t channel, bts::ChannelStatus s) {
    const std::lock_guard<std::mutex> lock(m_);
    map_[{device, channel}] = std::move(s);
  }

 private:
  std::mutex m_;
  std::map<std::pair<std::size_t, std::size_t>, bts::ChannelStatus> map_;
};

bts::ChannelStatus working(double v, double i, long step, long cycle) {
  bts::ChannelStatus s;
  s.voltage_V = v;
  s.current_A = i;
  s.workstatus = "working";
  s.step_id = step;
  s.cycle_id = cycle;
  s.step_type = i >= 0 ? "cc" : "dc";
  return s;
}

struct Errors {
  std::mutex m;
  std::vector<std::string> texts;
  void add(const char* t) {
    const std::lock_guard<std::mutex> lock(m);
    texts.emplace_back(t);
  }
  bool has(const std::string& part) {
    const std::lock_guard<std::mutex> lock(m);
    for (const auto& t : texts)
      if (t.find(part) != std::string::npos) return true;
    return false;
  }
};

// One BTS server with devices (27, 21: 2 units of 8) and (24, 5: 1 unit of 4), and one link to
// device `devid` with `channels` channels.
struct Bench {
  explicit Bench(int devid = 21, int channels = 16, int timeout_ms = 300, double poll_hz = 20.0,
                 std::string password = "neware")
      : server(config(), script) {
    server.start();
    samples.resize(static_cast<std::size_t>(channels));
    eqd::io::ChannelSlots slots;
    for (auto& s : samples) {
      slots.samples.push_back(&s);
      slots.commands.push_back(nullptr);
    }
    eqd::io::neware::NewareLinkConfig c;
    c.name = "bts1";
    c.host = "127.0.0.1";
    c.port = server.port();
    c.device_id = devid;
    c.password = std::move(password);
    c.poll_hz = poll_hz;
    c.timeout_ms = timeout_ms;
    c.backoff_initial_ms = 50;
    c.backoff_max_ms = 200;
    for (int k = 0; k < channels; ++k) c.channel_slots.push_back(static_cast<eqd::core::ChannelIndex>(k));
    c.on_error = [this](std::uint16_t, std::error_code, const char* text) { errors.add(text); };
    link = std::make_unique<NewareLink>(c, slots);
  }
  ~Bench() {
    link->stop();
    server.stop();
  }
  static bts::ServerConfig config() {
    bts::ServerConfig c;
    c.devices = {{27, 21, 2, 8}, {24, 5, 1, 4}};
    return c;
  }
  Sample sample(std::size_t k) {
    Sample s;
    (void)samples.at(k).try_load(s, 100);
    return s;
  }
  // A sample received after now.
  // A sample from a poll that started after now (two new polls: the one under way may be older).
  Sample fresh(std::size_t k) {
    Sample s = sample(k);
    for (int i = 0; i < 2; ++i) {
      const std::uint32_t seq = s.sequence;
      eventually([&] { return (s = sample(k)).sequence != seq; }, 2s);
    }
    return s;
  }

  Script script;
  bts::BtsServer server;
  std::deque<eqd::core::Seqlock<Sample>> samples;  // not movable: a deque
  Errors errors;
  std::unique_ptr<NewareLink> link;
};

}  // namespace

TEST_CASE("neware: working states, voltage, current, power, step and cycle reach the samples", "[neware]") {
  Bench b;
  b.script.set(0, 0, working(3.6, -2.5, 4, 44));  // 27-21-1-1: discharging
  b.script.set(0, 9, working(4.1, 1.5, 2, 7));    // 27-21-2-2: charging
  bts::ChannelStatus paused;
  paused.workstatus = "pause";
  paused.voltage_V = 3.9;
  b.script.set(0, 2, paused);
  bts::ChannelStatus prot;
  prot.workstatus = "protect";
  prot.voltage_V = 2.0;
  b.script.set(0, 3, prot);
  bts::ChannelStatus fin;
  fin.workstatus = "finish";
  fin.voltage_V = 3.3;
  b.script.set(0, 4, fin);
  b.link->start();
  REQUIRE(eventually([&] { return b.sample(0).valid && b.sample(15).valid; }, 3s));
  CHECK(b.link->connected());
  CHECK(b.link->device_type() == 27);

  const Sample a = b.sample(0);
  CHECK(a.state == ChannelState::running);
  CHECK(a.voltage_V == Approx(3.6));
  CHECK(a.current_A == Approx(-2.5));
  CHECK(a.power_W == Approx(-9.0));
  CHECK(a.step_index == 4);
  CHECK(a.cycle_index == 44);
  CHECK_FALSE(a.equalization_mode);
  const Sample c = b.sample(9);
  CHECK(c.power_W == Approx(6.15));
  CHECK(c.step_index == 2);
  CHECK(c.cycle_index == 7);
  CHECK(b.sample(2).state == ChannelState::paused);
  CHECK(b.sample(3).state == ChannelState::fault);
  CHECK(b.sample(4).state == ChannelState::idle);
  const Sample idle = b.sample(15);  // 27-21-2-8: "stop", no test: no step, cycle 1
  CHECK(idle.state == ChannelState::idle);
  CHECK(idle.step_index == Sample::kNoStep);
  CHECK(idle.voltage_V == Approx(3.7));

  // A new step and cycle show up in the next samples.
  b.script.set(0, 0, working(3.5, 2.0, 5, 45));
  const Sample next = b.fresh(0);
  CHECK(next.step_index == 5);
  CHECK(next.cycle_index == 45);
  CHECK(next.power_W == Approx(7.0));

  const auto st = b.link->stats();
  CHECK(st.polls_ok > 0);
  CHECK(st.connected);
  // Read only: the server saw sessions, lists and inquiries, never a channel command.
  const auto ss = b.server.stats();
  CHECK(ss.inquiries > 0);
  CHECK(ss.devinfos == 1);
  CHECK(ss.channel_commands == 0);
}

TEST_CASE("neware: an unknown working state makes that channel invalid, the others stay valid", "[neware]") {
  Bench b;
  bts::ChannelStatus odd = working(3.6, 1.0, 1, 1);
  odd.workstatus = "exploded";
  b.script.set(0, 1, odd);
  b.link->start();
  REQUIRE(eventually([&] { return b.sample(0).valid; }, 3s));
  const Sample s = b.fresh(1);
  CHECK_FALSE(s.valid);
  CHECK(b.sample(0).valid);
  CHECK(b.sample(2).valid);
  CHECK(b.errors.has("bts1/2: unknown working state 'exploded'"));
  CHECK(b.link->stats().invalid_samples > 0);
  CHECK(b.link->connected());
  // Back to a known state: valid again.
  b.script.set(0, 1, working(3.6, 1.0, 1, 1));
  CHECK(eventually([&] { return b.sample(1).valid; }, 2s));
}

TEST_CASE("neware: a channel the server does not list is invalid, the rest are read", "[neware]") {
  Bench b(5, 6);  // device 5 has 4 channels: channels 5 and 6 are not on the server
  b.link->start();
  REQUIRE(eventually([&] { return b.sample(3).valid; }, 3s));
  CHECK(b.link->device_type() == 24);  // found by getdevinfo
  CHECK_FALSE(b.fresh(4).valid);
  CHECK_FALSE(b.sample(5).valid);
  CHECK(b.errors.has("bts1/5: channel 24-5-1-5 is not listed by the BTS server"));
}

TEST_CASE("neware: a device the server does not have, or a refused login, keeps the controller offline", "[neware]") {
  SECTION("no such device") {
    Bench b(99, 4);
    b.link->start();
    CHECK(eventually([&] { return b.errors.has("lists no device 99 (devices: 21, 5)"); }, 3s));
    CHECK_FALSE(b.link->connected());
    CHECK(b.sample(0).state == ChannelState::offline);
    CHECK_FALSE(b.sample(0).valid);
  }
  SECTION("wrong password") {
    Bench b(21, 4, 300, 20.0, "guess");
    b.link->start();
    CHECK(eventually([&] { return b.errors.has("connect refused: result 'fail'"); }, 3s));
    CHECK_FALSE(b.link->connected());
    CHECK(b.server.stats().logins_refused > 0);
    CHECK(b.sample(0).state == ChannelState::offline);
  }
}

TEST_CASE("neware: malformed, mislabelled, partial, silent and trickled replies", "[neware][faults]") {
  Bench b(21, 4, 300);
  b.script.set(0, 0, working(3.6, 1.0, 1, 1));
  b.link->start();
  REQUIRE(eventually([&] { return b.sample(0).valid; }, 3s));

  SECTION("malformed XML: every channel invalid for that poll, the connection kept") {
    b.server.set_fault(bts::Fault::malformed);
    REQUIRE(eventually([&] { return !b.sample(0).valid; }, 2s));
    CHECK(b.errors.has("malformed XML"));
    CHECK(b.sample(0).state != ChannelState::offline);
    CHECK(b.link->connected());
    CHECK(b.link->stats().protocol_errors > 0);
  }
  SECTION("a reply to another command") {
    b.server.set_fault(bts::Fault::wrong_cmd);
    REQUIRE(eventually([&] { return !b.sample(0).valid; }, 2s));
    CHECK(b.errors.has("reply <cmd>getdevinfo_resp</cmd> to inquire"));
  }
  SECTION("an unasked message after each reply: dropped and counted, the samples stay valid") {
    b.server.set_fault(bts::Fault::trailing);
    REQUIRE(eventually([&] { return b.errors.has("bytes from the server that answer no request, dropped"); }, 2s));
    CHECK(b.fresh(0).valid);
    CHECK(b.link->connected());
  }
  SECTION("partial reply then close: offline") {
    b.server.set_fault(bts::Fault::partial);
    REQUIRE(eventually([&] { return b.errors.has("partial reply"); }, 2s));
    CHECK(eventually([&] { return b.sample(0).state == ChannelState::offline; }, 1s));
    CHECK_FALSE(b.sample(0).valid);
  }
  SECTION("no reply: a timeout, offline") {
    b.server.set_fault(bts::Fault::silent);
    REQUIRE(eventually([&] { return b.errors.has("no whole reply within 300 ms (0 bytes"); }, 3s));
    CHECK(b.link->stats().timeouts > 0);
    CHECK(eventually([&] { return b.sample(0).state == ChannelState::offline; }, 1s));
  }
  SECTION("slowloris: bytes keep coming, the whole reply does not within timeout_ms") {
    b.server.set_trickle_byte_ms(5);
    b.server.set_fault(bts::Fault::trickle);
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(eventually([&] { return b.errors.has("no whole reply within 300 ms"); }, 3s));
    // Cut off by the deadline, not after the whole trickled reply (~1 KB at 5 ms a byte: 5 s).
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    CHECK(eventually([&] { return b.sample(0).state == ChannelState::offline; }, 1s));
  }
  // Every fault ends; the link reconnects and reads again.
  b.server.set_fault(bts::Fault::none);
  CHECK(eventually([&] { return b.sample(0).valid && b.link->connected(); }, 4s));
  CHECK(b.sample(0).power_W == Approx(3.6));
}

TEST_CASE("neware: an oversized reply is cut off at the bound, not at the timeout", "[neware][faults]") {
  // A long timeout (3 s), so that only the 1 MiB bound can end the reply (also under TSan).
  Bench b(21, 4, 3000);
  b.link->start();
  REQUIRE(eventually([&] { return b.sample(0).valid; }, 3s));
  b.server.set_fault(bts::Fault::oversized);
  REQUIRE(eventually([&] { return b.errors.has("reply longer than 1048576 bytes"); }, 5s));
  CHECK(eventually([&] { return b.sample(0).state == ChannelState::offline; }, 1s));
  CHECK_FALSE(b.errors.has("no whole reply"));
  b.server.set_fault(bts::Fault::none);
  CHECK(eventually([&] { return b.sample(0).valid && b.link->connected(); }, 4s));
}

TEST_CASE("neware: a slowloris controller does not hold up a healthy one beside it", "[neware][faults]") {
  Bench bad(21, 2, 200, 10.0);
  Bench good(21, 2, 200, 10.0);
  good.script.set(0, 0, working(3.6, 1.0, 1, 1));
  bad.server.set_trickle_byte_ms(20);
  bad.server.set_fault(bts::Fault::trickle);
  bad.link->start();
  good.link->start();
  REQUIRE(eventually([&] { return good.sample(0).valid; }, 3s));
  for (int i = 0; i < 5; ++i) CHECK(good.fresh(0).valid);
  CHECK_FALSE(bad.sample(0).valid);
}

TEST_CASE("neware: a lost connection is reconnected and counted", "[neware][faults]") {
  Bench b(21, 2);
  b.link->start();
  REQUIRE(eventually([&] { return b.sample(0).valid; }, 3s));
  b.server.drop_connections();
  CHECK(eventually([&] { return b.link->stats().reconnects >= 1 && b.sample(0).valid; }, 4s));
  CHECK(b.server.stats().connections >= 2);
  CHECK(b.server.stats().channel_commands == 0);
}
