// Integration tests: Poller against eqd_modbus_server on 127.0.0.1 (port 0 = any free port).

#include <catch2/catch.hpp>
#include <modbus/modbus.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "../fakes/control_thread.hpp"
#include "eqd/io/modbus/poller.hpp"
#include "eqd/sim/rig.hpp"
#include "modbus_server.hpp"
#include "rig_backend.hpp"

using namespace eqd::io::modbus;
namespace io = eqd::io;
using eqd::core::Command;
using eqd::core::Sample;
using eqd::core::Seqlock;
using eqd::sim::FakeControllerBackend;
using eqd::sim::ModbusServer;
using eqd::sim::ServedController;
using namespace std::chrono_literals;

namespace {

/// Stand-in for the core's slots: one sample and one command seqlock per channel, and a fake control
/// thread that keeps the cycle clock ticking and re-confirms live commands.
struct Slots {
  explicit Slots(std::size_t n) : commands(make(n)), control(raw(commands)) {
    for (std::size_t i = 0; i < n; ++i) samples.push_back(std::make_unique<Seqlock<Sample>>());
  }
  static std::vector<std::unique_ptr<Seqlock<Command>>> make(std::size_t n) {
    std::vector<std::unique_ptr<Seqlock<Command>>> v;
    for (std::size_t i = 0; i < n; ++i) v.push_back(std::make_unique<Seqlock<Command>>());
    return v;
  }
  static std::vector<Seqlock<Command>*> raw(const std::vector<std::unique_ptr<Seqlock<Command>>>& v) {
    std::vector<Seqlock<Command>*> r;
    for (const auto& c : v) r.push_back(c.get());
    return r;
  }
  ChannelSlots view() {
    ChannelSlots v;
    for (auto& s : samples) v.samples.push_back(s.get());
    for (auto& c : commands) v.commands.push_back(c.get());
    control.attach(v);
    return v;
  }
  void command(std::size_t k, bool eq, double sp, std::uint32_t lease_ms) {
    Command c;
    c.equalize = eq;
    c.setpoint_W = sp;
    c.lease_ms = lease_ms;
    c.sequence = ++seq;
    control.store(k, c);
  }
  Sample sample(std::size_t k) const { return samples[k]->load(); }
  std::vector<std::unique_ptr<Seqlock<Sample>>> samples;
  std::vector<std::unique_ptr<Seqlock<Command>>> commands;
  eqd::test::FakeControlThread control;
  std::uint32_t seq = 0;
};

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

PollerConfig tcp_config(const std::string& name, std::uint16_t port, std::size_t channels, double hz = 20.0) {
  PollerConfig c;
  c.name = name;
  c.transport = Transport::tcp;
  c.host = "127.0.0.1";
  c.port = port;
  c.unit_id = 1;
  c.poll_hz = hz;
  c.timeout_ms = 100;
  c.map = default_profile(static_cast<std::uint16_t>(channels));
  for (std::size_t k = 0; k < channels; ++k) c.channel_slots.push_back(static_cast<eqd::core::ChannelIndex>(k));
  return c;
}

ServedController served(const std::string& name, std::shared_ptr<FakeControllerBackend> b,
                        std::uint16_t heartbeat_timeout_ms = 3000, std::uint16_t port = 0) {
  ServedController s;
  s.name = name;
  s.port = port;
  s.unit_id = 1;
  s.backend = std::move(b);
  s.heartbeat_timeout_ms = heartbeat_timeout_ms;
  return s;
}

std::int64_t age_ms(const Sample& s) {
  const auto now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  return (now - s.receive_time_ns) / 1'000'000;
}

}  // namespace

TEST_CASE("poller publishes samples read from the simulated controller", "[modbus][poller]") {
  auto backend = std::make_shared<FakeControllerBackend>(4);
  backend->set_test_power(0, 100.0);
  backend->set_test_power(1, -250.0);
  ModbusServer server({served("cab1", backend)});
  server.start();
  Slots slots(4);
  Poller poller(tcp_config("cab1", server.port(0), 4), slots.view());
  CHECK_FALSE(slots.sample(1).valid);
  CHECK(slots.sample(1).state == eqd::core::ChannelState::offline);
  poller.start();
  REQUIRE(wait_for([&] { return slots.sample(1).valid; }, 2s));
  const Sample s = slots.sample(1);
  CHECK(s.power_W == Approx(-250.0));
  CHECK(s.voltage_V == Approx(50.0 - 0.25));
  CHECK(s.current_A == Approx(-250.0 / 49.75));
  CHECK(s.state == eqd::core::ChannelState::running);
  CHECK_FALSE(s.equalization_mode);
  CHECK(slots.sample(0).power_W == Approx(100.0));
  CHECK(slots.sample(2).state == eqd::core::ChannelState::idle);
  // Fresh samples keep arriving with growing receive times and sample counters.
  REQUIRE(wait_for([&] { return slots.sample(1).sequence >= s.sequence + 3; }, 2s));
  CHECK(slots.sample(1).receive_time_ns > s.receive_time_ns);
  const PollerStats st = poller.stats();
  CHECK(st.connected);
  CHECK(st.polls >= 3);
  CHECK(st.latency.count >= 3);
  CHECK(st.controller_heartbeat_timeout_ms == 3000.0);
  CHECK(st.timeouts == 0);
  poller.stop();
  CHECK_FALSE(poller.connected());
}

TEST_CASE("commands are written once, on change, and refreshed before the lease expires", "[modbus][poller]") {
  auto backend = std::make_shared<FakeControllerBackend>(4);
  ModbusServer server({served("cab1", backend)});
  server.start();
  Slots slots(4);
  auto cfg = tcp_config("cab1", server.port(0), 4);
  cfg.heartbeat_period_ms = 100;
  Poller poller(cfg, slots.view());
  poller.start();
  REQUIRE(wait_for([&] { return slots.sample(0).valid; }, 2s));
  // Channels never commanded (sequence 0) are left alone.
  std::this_thread::sleep_for(200ms);
  CHECK(backend->record(0).commands == 0);

  slots.command(2, true, 500.0, 0);  // no lease: written exactly once
  REQUIRE(wait_for([&] { return backend->record(2).equalize; }, 2s));
  CHECK(backend->record(2).setpoint_W == Approx(500.0));
  REQUIRE(wait_for([&] { return poller.all_acknowledged(); }, 2s));
  // The read-back arrives with the next poll after the write: wait for it rather than race it.
  CHECK(wait_for([&] { return slots.sample(2).equalization_mode; }, 2s));
  CHECK(slots.sample(2).power_W == Approx(500.0));
  std::this_thread::sleep_for(600ms);
  CHECK(backend->record(2).commands == 1);

  slots.command(2, true, 700.0, 0);  // value changed: written again
  REQUIRE(wait_for([&] { return backend->record(2).setpoint_W == 700.0; }, 2s));
  CHECK(backend->record(2).commands == 2);

  slots.command(3, true, -300.0, 400);  // lease 400 ms: refreshed at ~200 ms, never expires
  REQUIRE(wait_for([&] { return backend->record(3).equalize; }, 2s));
  std::this_thread::sleep_for(1200ms);
  const auto r3 = backend->record(3);
  CHECK(r3.equalize);
  CHECK(r3.releases == 0);
  CHECK(server.controller(0).stats().lease_releases == 0);
  CHECK(r3.commands >= 4);  // ~1 + 1200 / 250
  CHECK(r3.commands <= 8);
  CHECK(backend->record(2).commands == 2);  // no lease: no refresh
  CHECK(backend->heartbeat_count() >= 8);   // 100 ms period over > 1.8 s
  CHECK(poller.stats().heartbeats >= 8);

  // Stop refreshing (poller gone): the controller's lease releases the channel by itself.
  poller.stop();
  REQUIRE(wait_for([&] { return !backend->record(3).equalize; }, 2s));
  CHECK(backend->record(3).releases == 1);
  CHECK(server.controller(0).stats().lease_releases >= 1);
}

TEST_CASE("NaN and out-of-range registers mark only that channel's sample invalid", "[modbus][poller]") {
  auto backend = std::make_shared<FakeControllerBackend>(3);
  ModbusServer server({served("cab1", backend)});
  server.start();
  Slots slots(3);
  Poller poller(tcp_config("cab1", server.port(0), 3), slots.view());
  poller.start();
  REQUIRE(wait_for([&] { return slots.sample(1).valid && slots.sample(2).valid; }, 2s));
  backend->inject_fault(1, FakeControllerBackend::Fault::nan_voltage);
  backend->inject_fault(2, FakeControllerBackend::Fault::power_out_of_range);
  REQUIRE(wait_for([&] { return !slots.sample(1).valid && !slots.sample(2).valid; }, 2s));
  std::this_thread::sleep_for(150ms);
  const Sample s1 = slots.sample(1);
  CHECK_FALSE(s1.valid);
  CHECK(s1.voltage_V == 0.0);  // never the NaN
  CHECK(s1.state != eqd::core::ChannelState::offline);
  CHECK(age_ms(s1) < 200);
  CHECK_FALSE(slots.sample(2).valid);
  CHECK(slots.sample(0).valid);
  CHECK(poller.stats().invalid_samples >= 2);
  // Each refused value is recorded with its code (io/error.hpp), once per error.
  {
    const auto st = poller.stats();  // one snapshot
    CHECK(st.errors_by_code[static_cast<std::size_t>(io::LinkErrc::value_refused)] >= 2);
    CHECK(st.errors_by_code[static_cast<std::size_t>(io::LinkErrc::value_refused)] == st.invalid_samples);
  }
  CHECK(poller.stats().connected);
  backend->inject_fault(1, FakeControllerBackend::Fault::none);
  backend->inject_fault(2, FakeControllerBackend::Fault::none);
  CHECK(wait_for([&] { return slots.sample(1).valid && slots.sample(2).valid; }, 2s));
}

TEST_CASE("an exception response marks the samples invalid, the link stays up", "[modbus][poller]") {
  auto backend = std::make_shared<FakeControllerBackend>(2);
  ModbusServer server({served("cab1", backend)});
  server.start();
  Slots slots(2);
  Poller poller(tcp_config("cab1", server.port(0), 2), slots.view());
  poller.start();
  REQUIRE(wait_for([&] { return slots.sample(0).valid; }, 2s));
  server.controller(0).inject_exceptions(MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE, -1);
  REQUIRE(wait_for([&] { return !slots.sample(0).valid && !slots.sample(1).valid; }, 2s));
  std::this_thread::sleep_for(150ms);
  CHECK(poller.stats().exceptions >= 2);
  CHECK(poller.connected());
  CHECK_FALSE(slots.sample(0).valid);
  CHECK(age_ms(slots.sample(0)) < 200);
  {
    const auto st = poller.stats();  // one snapshot: text, code and counters of the same moment
    CHECK(std::string(st.last_error).find("read input") != std::string::npos);
    CHECK(st.last_error_code == static_cast<std::uint8_t>(io::LinkErrc::device_exception));
    CHECK(st.errors_by_code[static_cast<std::size_t>(io::LinkErrc::device_exception)] == st.exceptions);
  }
  server.controller(0).clear_faults();
  CHECK(wait_for([&] { return slots.sample(0).valid; }, 2s));
}

TEST_CASE("a stalled controller does not delay another controller's polls", "[modbus][poller]") {
  auto a = std::make_shared<FakeControllerBackend>(2);
  auto b = std::make_shared<FakeControllerBackend>(2);
  ModbusServer server({served("stall", a), served("healthy", b)});
  server.start();
  Slots sa(2), sb(2);
  Poller pa(tcp_config("stall", server.port(0), 2, 20.0), sa.view());
  Poller pb(tcp_config("healthy", server.port(1), 2, 20.0), sb.view());
  pa.start();
  pb.start();
  REQUIRE(wait_for([&] { return sa.sample(0).valid && sb.sample(0).valid; }, 2s));
  server.controller(0).inject_stall(2000ms);
  // Observe the healthy poller's publications from outside for 1.5 s.
  std::int64_t last = sb.sample(0).receive_time_ns, max_gap_ns = 0;
  int publications = 0;
  const auto end = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < end) {
    const Sample s = sb.sample(0);
    if (s.receive_time_ns != last) {
      CHECK(s.valid);
      max_gap_ns = std::max(max_gap_ns, s.receive_time_ns - last);
      last = s.receive_time_ns;
      ++publications;
    }
    std::this_thread::sleep_for(1ms);
  }
  const PollerStats st_a = pa.stats();
  INFO("healthy poller: " << publications << " publications in 1.5 s, max interval "
                          << static_cast<double>(max_gap_ns) / 1e6 << " ms");
  CHECK(max_gap_ns < 100'000'000);  // period 50 ms; a shared thread would show >= 100 ms timeouts
  CHECK(publications >= 25);
  CHECK(st_a.timeouts >= 3);
  CHECK_FALSE(sa.sample(0).valid);
  WARN("stall test: healthy poller max interval " << static_cast<double>(max_gap_ns) / 1e6 << " ms, " << publications
                                                  << " publications in 1.5 s; stalled one: " << st_a.timeouts
                                                  << " timeouts");
}

TEST_CASE("the poller reconnects with capped exponential backoff after a server restart", "[modbus][poller]") {
  auto backend = std::make_shared<FakeControllerBackend>(2);
  auto server = std::make_unique<ModbusServer>(std::vector<ServedController>{served("cab1", backend)});
  server->start();
  const std::uint16_t port = server->port(0);
  Slots slots(2);
  auto cfg = tcp_config("cab1", port, 2, 20.0);
  cfg.backoff_initial_ms = 50;
  cfg.backoff_max_ms = 400;
  Poller poller(cfg, slots.view());
  poller.start();
  REQUIRE(wait_for([&] { return slots.sample(0).valid; }, 2s));
  server.reset();  // controller gone
  REQUIRE(wait_for([&] { return slots.sample(0).state == eqd::core::ChannelState::offline; }, 2s));
  const auto errors0 = poller.stats().connection_errors;
  std::this_thread::sleep_for(1500ms);
  const auto st = poller.stats();
  // Without backoff a 20 Hz poller would try 30 times; 50,100,200,400,400.. ms gives about 6.
  const auto attempts = st.connection_errors - errors0;
  INFO("connect attempts while down: " << attempts);
  CHECK(attempts >= 3);
  CHECK(attempts <= 9);
  CHECK(st.last_error_code == static_cast<std::uint8_t>(io::LinkErrc::connect_failed));
  CHECK(st.errors_by_code[static_cast<std::size_t>(io::LinkErrc::connect_failed)] >= attempts);
  CHECK_FALSE(st.connected);
  CHECK_FALSE(slots.sample(0).valid);
  CHECK(age_ms(slots.sample(0)) < 200);  // offline samples keep being published
  server = std::make_unique<ModbusServer>(std::vector<ServedController>{served("cab1", backend, 3000, port)});
  server->start();
  REQUIRE(wait_for([&] { return slots.sample(0).valid; }, 2s));  // backoff capped at 400 ms
  CHECK(poller.stats().reconnects >= 1);
}

TEST_CASE("release_all writes stops and wait_released reports the read-back", "[modbus][poller]") {
  auto backend = std::make_shared<FakeControllerBackend>(3);
  ModbusServer server({served("cab1", backend)});
  server.start();
  Slots slots(3);
  Poller poller(tcp_config("cab1", server.port(0), 3), slots.view());
  poller.start();
  slots.command(0, true, 1000.0, 2000);
  slots.command(2, true, -800.0, 2000);
  REQUIRE(wait_for([&] { return poller.all_acknowledged() && backend->record(2).equalize; }, 2s));
  CHECK_FALSE(poller.wait_released(50ms));  // not asked yet
  poller.release_all();
  REQUIRE(poller.wait_released(2s));
  CHECK_FALSE(backend->record(0).equalize);
  CHECK_FALSE(backend->record(2).equalize);
  CHECK(backend->record(2).setpoint_W == 0.0);
  CHECK(backend->record(1).commands == 0);  // never commanded, never written
  CHECK_FALSE(slots.sample(0).equalization_mode);
  CHECK(slots.sample(0).valid);
}

TEST_CASE("a controller that loses the heartbeat releases its buffers", "[modbus][poller]") {
  auto backend = std::make_shared<FakeControllerBackend>(1);
  ModbusServer server({served("cab1", backend, 300)});
  server.start();
  Slots slots(1);
  auto cfg = tcp_config("cab1", server.port(0), 1);
  cfg.heartbeat_period_ms = 100;
  auto poller = std::make_unique<Poller>(cfg, slots.view());
  poller->start();
  slots.command(0, true, 200.0, 0);
  REQUIRE(wait_for([&] { return backend->record(0).equalize; }, 2s));
  std::this_thread::sleep_for(800ms);  // heartbeat every 100 ms: no release
  CHECK(backend->record(0).equalize);
  CHECK(server.controller(0).stats().heartbeat_releases == 0);
  poller.reset();
  cfg.heartbeat_period_ms = 0;  // a supervisor that never beats
  poller = std::make_unique<Poller>(cfg, slots.view());
  poller->start();
  REQUIRE(wait_for([&] { return !backend->record(0).equalize; }, 2s));
  CHECK(server.controller(0).stats().heartbeat_releases == 1);
  CHECK(backend->record(0).releases == 1);
}

TEST_CASE("the server rejects invalid command writes and ignores other unit ids", "[modbus][server]") {
  auto backend = std::make_shared<FakeControllerBackend>(2);
  ModbusServer server({served("cab1", backend)});
  server.start();
  modbus_t* ctx = modbus_new_tcp("127.0.0.1", server.port(0));
  REQUIRE(ctx != nullptr);
  modbus_set_slave(ctx, 1);
  modbus_set_response_timeout(ctx, 0, 200000);
  REQUIRE(modbus_connect(ctx) == 0);
  const RegisterMap m = default_profile(2);
  std::uint16_t block[5];
  eqd::core::Command c;
  c.equalize = true;
  c.setpoint_W = 100;
  c.lease_ms = 1000;
  auto enc = encode_command(m, 1, c);
  REQUIRE(enc.writes.size() == 1);
  std::copy(enc.writes[0].values.begin(), enc.writes[0].values.end(), block);

  block[0] = 2;  // enable must be 0 or 1
  CHECK(modbus_write_registers(ctx, enc.writes[0].address, 5, block) == -1);
  CHECK(errno == EMBXILVAL);
  block[0] = 1;
  block[1] = 0x7FC0;  // NaN setpoint
  block[2] = 0;
  CHECK(modbus_write_registers(ctx, enc.writes[0].address, 5, block) == -1);
  CHECK(errno == EMBXILVAL);
  CHECK(modbus_write_register(ctx, enc.writes[0].address, 5) == -1);  // single-register write, same rule
  CHECK(errno == EMBXILVAL);
  CHECK(backend->record(1).commands == 0);
  std::uint16_t back[5] = {};
  REQUIRE(modbus_read_registers(ctx, enc.writes[0].address, 5, back) == 5);
  CHECK(back[0] == 0);  // nothing applied
  CHECK(server.controller(0).stats().rejected_writes == 3);

  std::copy(enc.writes[0].values.begin(), enc.writes[0].values.end(), block);
  CHECK(modbus_write_registers(ctx, enc.writes[0].address, 5, block) == 5);
  CHECK(backend->record(1).commands == 1);
  CHECK(backend->record(1).setpoint_W == Approx(100.0));

  modbus_set_slave(ctx, 9);  // unknown unit: no reply at all
  std::uint16_t regs[4];
  CHECK(modbus_read_input_registers(ctx, 0, 4, regs) == -1);
  CHECK(errno == ETIMEDOUT);
  CHECK(server.controller(0).stats().ignored_unit >= 1);
  modbus_flush(ctx);
  modbus_set_slave(ctx, 1);
  REQUIRE(modbus_read_input_registers(ctx, 0, 4, regs) == 4);
  CHECK(regs[0] == kDefaultProfileVersion);
  CHECK(regs[1] == 2);
  modbus_close(ctx);
  modbus_free(ctx);
}

TEST_CASE("poller refuses a bad configuration with a message naming the problem", "[modbus][poller]") {
  Slots slots(2);
  auto cfg = tcp_config("bad", 1, 2);
  cfg.map.current.address = static_cast<std::uint16_t>(cfg.map.voltage.address + 1);
  try {
    Poller p(cfg, slots.view());
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    CHECK(msg.find("'bad'") != std::string::npos);
    CHECK(msg.find("overlaps") != std::string::npos);
  }
  auto cfg2 = tcp_config("bad2", 1, 2);
  cfg2.map.channel_count = 1;  // fewer channels in the map than slots
  CHECK_THROWS_AS(Poller(cfg2, slots.view()), std::invalid_argument);
}

// ------------------------------------------------------------------------------ announced forecasts

namespace {

/// Errors handed to PollerConfig::on_error (poller thread) for the test thread.
struct ErrorLog {
  struct Entry {
    std::uint16_t channel;
    std::error_code code;
    std::string message;
  };
  std::mutex mutex;
  std::vector<Entry> entries;
  io::LinkErrorHook sink() {
    return [this](std::uint16_t ch, std::error_code code, const char* msg) {
      const std::lock_guard<std::mutex> lock(mutex);
      entries.push_back({ch, code, msg});
    };
  }
  /// An error on channel `ch` whose text holds `a` and `b`, with `code`.
  bool has(std::uint16_t ch, const std::string& a, const std::string& b, io::LinkErrc code) {
    const std::lock_guard<std::mutex> lock(mutex);
    for (const Entry& e : entries)
      if (e.channel == ch && e.code == code && e.message.find(a) != std::string::npos &&
          e.message.find(b) != std::string::npos)
        return true;
    return false;
  }
};

}  // namespace

TEST_CASE("forecast_power over TCP: read when capability bit 5 is set, refused values never reach the core",
          "[modbus][poller][forecast]") {
  auto backend = std::make_shared<FakeControllerBackend>(3);
  backend->set_test_power(0, 100.0);
  backend->set_test_power(1, 200.0);
  backend->set_test_power(2, 300.0);
  backend->set_forecast(0, -750.25);
  backend->set_forecast(2, 1234.5);  // channel 1 announces nothing (NaN)
  ServedController sc = served("cab1", backend);
  sc.capabilities = 0x1F | capability::kForecast;
  ModbusServer server({sc});
  server.start();
  Slots slots(3);
  ErrorLog errors;
  auto cfg = tcp_config("cab1", server.port(0), 3);
  cfg.on_error = errors.sink();
  Poller poller(cfg, slots.view());
  poller.start();
  REQUIRE(wait_for([&] { return slots.sample(2).valid && std::isfinite(slots.sample(2).forecast_W); }, 2s));
  CHECK(slots.sample(0).forecast_W == Approx(-750.25f));
  CHECK(slots.sample(2).forecast_W == Approx(1234.5f));
  CHECK(slots.sample(1).valid);
  CHECK(std::isnan(slots.sample(1).forecast_W));
  CHECK(poller.stats().forecast_errors == 0);
  CHECK(server.controller(0).stats().exceptions == 0);

  SECTION("infinite") { backend->set_forecast(2, std::numeric_limits<double>::infinity()); }
  SECTION("beyond the map's power range (1 MW)") { backend->set_forecast(2, -5.0e6); }
  REQUIRE(wait_for([&] { return poller.stats().forecast_errors >= 2; }, 2s));
  const Sample s = slots.sample(2);
  CHECK(s.valid);  // voltage, current and power are still good
  CHECK(s.power_W == Approx(300.0));
  CHECK(std::isnan(s.forecast_W));
  CHECK(slots.sample(0).forecast_W == Approx(-750.25f));  // other channels unaffected
  const auto st = poller.stats();
  CHECK(st.invalid_samples == 0);
  CHECK(st.protocol_errors >= st.forecast_errors);
  CHECK(std::string(st.last_error).find("cab1/3: forecast_power") != std::string::npos);
  CHECK(errors.has(3, "cab1/3", "forecast_power", io::LinkErrc::forecast_refused));
  // Back to a plausible value: used again.
  backend->set_forecast(2, 42.0);
  CHECK(wait_for([&] { return slots.sample(2).forecast_W == 42.0f; }, 2s));
}

TEST_CASE("forecast_power over TCP: a controller without capability bit 5 is never asked for the block",
          "[modbus][poller][forecast]") {
  auto backend = std::make_shared<FakeControllerBackend>(2);
  backend->set_test_power(0, 100.0);
  backend->set_forecast(0, 500.0);                // what it would say, had it the feature
  ModbusServer server({served("old", backend)});  // capabilities 0x1F: no forecast block at all
  server.start();
  Slots slots(2);
  Poller poller(tcp_config("old", server.port(0), 2), slots.view());
  poller.start();
  REQUIRE(wait_for([&] { return poller.stats().polls_ok >= 5; }, 2s));
  const Sample s = slots.sample(0);
  CHECK(s.valid);
  CHECK(std::isnan(s.forecast_W));
  // Reading 50000.. from it would be an ILLEGAL_DATA_ADDRESS exception.
  CHECK(server.controller(0).stats().exceptions == 0);
  CHECK(poller.stats().exceptions == 0);
  CHECK(poller.stats().forecast_errors == 0);
}

TEST_CASE("forecast_power over TCP: a controller too large for the block that sets bit 5 anyway is not believed",
          "[modbus][poller][forecast]") {
  // 4500 channels: its status block (100..54099) covers 50000.., where the profile's forecast block
  // would be. It claims the feature all the same.
  auto backend = std::make_shared<FakeControllerBackend>(4500);
  backend->set_test_power(1, 100.0);
  ServedController sc = served("huge", backend);
  sc.map = default_profile(4500);
  REQUIRE_FALSE(sc.map.forecast_power);
  sc.capabilities = 0x3F;
  ModbusServer server({sc});
  server.start();
  Slots slots(2);
  ErrorLog errors;
  auto cfg = tcp_config("huge", server.port(0), 2);  // eqd uses 2 of them: its map has the gated block
  REQUIRE(cfg.map.forecast_power);
  cfg.on_error = errors.sink();
  Poller poller(cfg, slots.view());
  poller.start();
  REQUIRE(wait_for([&] { return poller.stats().polls_ok >= 3; }, 3s));
  CHECK(slots.sample(1).valid);
  CHECK(std::isnan(slots.sample(1).forecast_W));  // never its status registers read as forecasts
  CHECK(poller.stats().forecast_errors == 1);     // once per connect
  CHECK(std::string(poller.stats().last_error).find("forecast_power ignored (4500 channels)") != std::string::npos);
  CHECK(errors.has(0, "huge", "forecast_power ignored", io::LinkErrc::forecast_refused));
  CHECK(server.controller(0).stats().exceptions == 0);
}

TEST_CASE("forecast_power over TCP: a custom map that names it reads it without a capability bit",
          "[modbus][poller][forecast]") {
  RegisterMap m = default_profile(2);
  m.capabilities.reset();
  m.step_index.reset();  // gated by capability bit6, which this map can no longer read
  m.cycle_index.reset();
  m.forecast_power->address = 2000;
  m.forecast_power->type = DataType::i32;
  m.forecast_power->scale = 0.1;
  m.forecast_capability = 0;
  REQUIRE(validate_map(m).empty());
  auto backend = std::make_shared<FakeControllerBackend>(2);
  backend->set_forecast(1, -321.7);
  ServedController sc = served("custom", backend);
  sc.map = m;
  ModbusServer server({sc});
  server.start();
  Slots slots(2);
  auto cfg = tcp_config("custom", server.port(0), 2);
  cfg.map = m;
  Poller poller(cfg, slots.view());
  poller.start();
  REQUIRE(wait_for([&] { return std::isfinite(slots.sample(1).forecast_W); }, 2s));
  CHECK(slots.sample(1).forecast_W == Approx(-321.7f));
  CHECK(std::isnan(slots.sample(0).forecast_W));  // NaN served as the i32 "not available" 0x80000000
  CHECK(slots.sample(0).valid);
}

namespace {

// A rig with one controller that announces its programs (30 s horizon) and one that does not.
const char* kForecastRig = R"(name: forecast
seed: 3
buses:
  - {name: main}
controllers:
  - name: ann
    forecast_horizon_s: 30
    channels:
      - battery: {chemistry: nmc, cells_in_series: 14, capacity_Ah: 50}
        converter: {v_max_V: 58.8, v_min_V: 42}
        schedule: {repeat: 0, steps: [{type: cp, power_W: 600, duration_s: 20}, {type: cp, power_W: -900, duration_s: 20}]}
      - {count: 1}
  - name: quiet
    channels:
      - battery: {chemistry: nmc, cells_in_series: 14, capacity_Ah: 50}
        converter: {v_max_V: 58.8, v_min_V: 42}
        schedule: {repeat: 0, steps: [{type: cp, power_W: 600, duration_s: 60}]}
)";

}  // namespace

TEST_CASE("forecast_power end to end: the sim's announced forecast arrives in the core's sample slot",
          "[modbus][poller][forecast][sim]") {
  const std::string path = "/tmp/eqd_forecast_rig_" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(path) << kForecastRig;
  eqd::sim::Plant plant(eqd::sim::load_rig(path));
  std::remove(path.c_str());
  {
    const std::lock_guard<std::mutex> lock(plant.mutex);
    for (int i = 0; i < 50; ++i) plant.rig.step(0.1);  // 5 s into the program; then the plant holds still
  }
  std::vector<ServedController> served_ctls;
  for (std::size_t c = 0; c < plant.rig.controller_count(); ++c) {
    ServedController sc;
    sc.name = plant.rig.controller(c).params().name;
    sc.backend = std::make_shared<eqd::sim::RigBackend>(plant, c, false);
    sc.map = default_profile(static_cast<std::uint16_t>(plant.rig.controller(c).channel_count()));
    sc.capabilities = eqd::sim::served_capabilities(plant.rig.controller(c).params());
    served_ctls.push_back(std::move(sc));
  }
  CHECK(served_ctls[0].capabilities == 0x7F);  // forecast and program position
  CHECK(served_ctls[1].capabilities == 0x5F);  // program position only
  ModbusServer server(std::move(served_ctls));
  server.start();

  double sim_forecast = 0.0;
  {
    const std::lock_guard<std::mutex> lock(plant.mutex);
    sim_forecast = plant.rig.controller(0).reading(0).forecast_W;
    REQUIRE(std::isfinite(sim_forecast));
    // What the program draws 30 s after t ~ 5 s: the -900 W step (20..40 s).
    CHECK(sim_forecast == Approx(-900.0));
    CHECK(std::isnan(plant.rig.controller(0).reading(1).forecast_W));  // idle: announces nothing
    CHECK(std::isnan(plant.rig.controller(1).reading(0).forecast_W));  // horizon 0: announces nothing
  }
  Slots ann(2), quiet(1);
  Poller p_ann(tcp_config("ann", server.port(0), 2), ann.view());
  Poller p_quiet(tcp_config("quiet", server.port(1), 1), quiet.view());
  p_ann.start();
  p_quiet.start();
  REQUIRE(wait_for([&] { return ann.sample(0).valid && std::isfinite(ann.sample(0).forecast_W); }, 3s));
  REQUIRE(wait_for([&] { return quiet.sample(0).valid && p_quiet.stats().polls_ok >= 3; }, 3s));
  CHECK(ann.sample(0).forecast_W == Approx(static_cast<float>(sim_forecast)).epsilon(1e-6));
  CHECK(ann.sample(0).state == eqd::core::ChannelState::running);
  CHECK(ann.sample(1).valid);
  CHECK(std::isnan(ann.sample(1).forecast_W));
  CHECK(std::isnan(quiet.sample(0).forecast_W));
  CHECK(quiet.sample(0).state == eqd::core::ChannelState::running);
  CHECK(p_ann.stats().forecast_errors == 0);
  CHECK(server.controller(1).stats().exceptions == 0);  // the quiet one was never asked for the block
}

// ------------------------------------------------------------------------------- program position

TEST_CASE("program position over TCP: read with capability bit 6, not asked for without it",
          "[modbus][poller][program]") {
  auto backend = std::make_shared<FakeControllerBackend>(3);
  backend->set_test_power(0, 100.0);
  backend->set_program(0, 4, 70000);  // a cycle beyond 16 bits: both words of the u32 matter
  backend->set_program(2, 0, 0);      // channel 2 reports nothing
  ServedController sc = served("cab1", backend);
  sc.capabilities = 0x1F | capability::kProgram;
  ModbusServer server({sc});
  server.start();
  Slots slots(3);
  Poller poller(tcp_config("cab1", server.port(0), 3), slots.view());
  poller.start();
  REQUIRE(wait_for([&] { return slots.sample(0).valid && slots.sample(0).step_index == 4; }, 2s));
  CHECK(slots.sample(0).cycle_index == 70000u);
  CHECK(slots.sample(1).valid);
  CHECK(slots.sample(1).step_index == Sample::kNoStep);
  CHECK(slots.sample(1).cycle_index == Sample::kNoIndex);
  CHECK(slots.sample(2).step_index == 0);
  CHECK(slots.sample(2).cycle_index == 0u);
  backend->set_program(0, 5, 70001);
  CHECK(wait_for([&] { return slots.sample(0).step_index == 5 && slots.sample(0).cycle_index == 70001u; }, 2s));
  CHECK(poller.stats().program_errors == 0);
  CHECK(server.controller(0).stats().exceptions == 0);

  // The same controller without bit6: never asked (59000.. would be ILLEGAL_DATA_ADDRESS), not reported.
  auto old_backend = std::make_shared<FakeControllerBackend>(2);
  old_backend->set_program(0, 4, 2);
  ModbusServer old_server({served("old", old_backend)});
  old_server.start();
  Slots old_slots(2);
  Poller old_poller(tcp_config("old", old_server.port(0), 2), old_slots.view());
  old_poller.start();
  REQUIRE(wait_for([&] { return old_poller.stats().polls_ok >= 5; }, 2s));
  CHECK(old_slots.sample(0).valid);
  CHECK(old_slots.sample(0).step_index == Sample::kNoStep);
  CHECK(old_slots.sample(0).cycle_index == Sample::kNoIndex);
  CHECK(old_server.controller(0).stats().exceptions == 0);
  CHECK(old_poller.stats().program_errors == 0);
}

TEST_CASE("program position over TCP: a value the sample cannot hold is counted, the sample stays valid",
          "[modbus][poller][program]") {
  // A custom map with a signed 16-bit step register: the device's step 40000 wraps in it and reads as
  // a negative number, which eqd must refuse rather than publish.
  RegisterMap m = default_profile(2);
  m.forecast_power.reset();
  Field step;
  step.table = Table::input;
  step.address = 2000;
  step.type = DataType::i16;
  step.stride = 1;
  Field cycle = step;
  cycle.address = 2010;
  cycle.type = DataType::u32;
  cycle.stride = 2;
  m.step_index = step;
  m.cycle_index = cycle;
  m.program_capability = 0;
  REQUIRE(validate_map(m).empty());
  auto backend = std::make_shared<FakeControllerBackend>(2);
  backend->set_test_power(0, 300.0);
  backend->set_program(0, 40000, 9);
  backend->set_program(1, 3, 9);
  ServedController sc = served("custom", backend);
  sc.map = m;
  ModbusServer server({sc});
  server.start();
  Slots slots(2);
  ErrorLog errors;
  auto cfg = tcp_config("custom", server.port(0), 2);
  cfg.map = m;
  cfg.on_error = errors.sink();
  Poller poller(cfg, slots.view());
  poller.start();
  REQUIRE(wait_for([&] { return poller.stats().program_errors >= 2; }, 2s));
  const Sample s = slots.sample(0);
  CHECK(s.valid);
  CHECK(s.power_W == Approx(300.0));
  CHECK(s.step_index == Sample::kNoStep);
  CHECK(s.cycle_index == 9u);  // judged on its own
  CHECK(slots.sample(1).step_index == 3);
  const auto st = poller.stats();
  CHECK(st.invalid_samples == 0);
  CHECK(st.protocol_errors >= st.program_errors);
  CHECK(std::string(st.last_error).find("custom/1: step_index out of range") != std::string::npos);
  CHECK(errors.has(1, "custom/1", "step_index out of range", io::LinkErrc::program_refused));
  backend->set_program(0, 12, 9);  // plausible again: used again
  CHECK(wait_for([&] { return slots.sample(0).step_index == 12; }, 2s));
}

TEST_CASE("program position over TCP: a controller too large for the block that sets bit 6 is not believed",
          "[modbus][poller][program]") {
  auto backend = std::make_shared<FakeControllerBackend>(2100);  // fits the registers, not the profile
  ServedController sc = served("big", backend);
  sc.map = default_profile(2100);
  sc.capabilities = 0x1F | capability::kProgram;
  ModbusServer server({sc});
  server.start();
  Slots slots(2);
  auto cfg = tcp_config("big", server.port(0), 2);
  REQUIRE(cfg.map.step_index);
  Poller poller(cfg, slots.view());
  poller.start();
  REQUIRE(wait_for([&] { return poller.stats().polls_ok >= 3; }, 3s));
  CHECK(slots.sample(0).valid);
  CHECK(slots.sample(0).step_index == Sample::kNoStep);
  CHECK(poller.stats().program_errors == 1);  // once per connect
  CHECK(std::string(poller.stats().last_error).find("step_index/cycle_index ignored (2100 channels)") !=
        std::string::npos);
  CHECK(server.controller(0).stats().exceptions == 0);
}

namespace {

// Two channels: one runs a two-step program over and over (2 s + 3 s), one has no program.
const char* kProgramRig = R"(name: program
seed: 5
buses:
  - {name: main}
controllers:
  - name: prog
    channels:
      - battery: {chemistry: nmc, cells_in_series: 14, capacity_Ah: 50}
        converter: {v_max_V: 58.8, v_min_V: 42}
        schedule: {repeat: 0, steps: [{type: cp, power_W: 500, duration_s: 2}, {type: cp, power_W: -700, duration_s: 3}]}
      - {count: 1}
)";

/// Input registers [address, address + count) of a Modbus TCP server, read with plain libmodbus.
bool read_raw(std::uint16_t port, int address, int count, std::uint16_t* out) {
  modbus_t* ctx = modbus_new_tcp("127.0.0.1", port);
  if (ctx == nullptr) return false;
  modbus_set_slave(ctx, 1);
  modbus_set_response_timeout(ctx, 0, 500000);
  const bool ok = modbus_connect(ctx) == 0 && modbus_read_input_registers(ctx, address, count, out) == count;
  modbus_close(ctx);
  modbus_free(ctx);
  return ok;
}

}  // namespace

TEST_CASE("program position end to end: the sim's schedule steps and passes arrive in the core's sample slot",
          "[modbus][poller][program][sim]") {
  const std::string path = "/tmp/eqd_program_rig_" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(path) << kProgramRig;
  eqd::sim::Plant plant(eqd::sim::load_rig(path));
  std::remove(path.c_str());
  ServedController sc;
  sc.name = "prog";
  sc.backend = std::make_shared<eqd::sim::RigBackend>(plant, 0, false);
  sc.map = default_profile(2);
  sc.capabilities = eqd::sim::served_capabilities(plant.rig.controller(0).params());
  REQUIRE((sc.capabilities & 0x40) != 0);
  ModbusServer server({sc});
  server.start();

  // The plant runs at 5x real time: a 2 s + 3 s pass takes 1 s.
  std::atomic<bool> run{true};
  std::thread plant_thread([&] {
    while (run.load()) {
      {
        const std::lock_guard<std::mutex> lock(plant.mutex);
        plant.rig.step(0.1);
      }
      std::this_thread::sleep_for(20ms);
    }
  });
  struct Stop {
    std::atomic<bool>& run;
    std::thread& t;
    ~Stop() {
      run.store(false);
      if (t.joinable()) t.join();
    }
  } stop{run, plant_thread};

  // What the server says, read at the profile's literal addresses (not through default_profile()).
  std::uint16_t raw[6] = {};
  REQUIRE(read_raw(server.port(0), 59000, 6, raw));
  CHECK(raw[0] <= 1);                                     // channel 1: step 0 or 1
  CHECK(((std::uint32_t{raw[1]} << 16) | raw[2]) < 100);  // its pass, high word first
  CHECK(raw[3] == 0xFFFF);                                // channel 2: no program, not reported
  CHECK(raw[4] == 0xFFFF);
  CHECK(raw[5] == 0xFFFF);

  Slots slots(2);
  Poller poller(tcp_config("prog", server.port(0), 2), slots.view());
  poller.start();
  // Follow channel 1 for a few passes: the step alternates 0, 1, 0, ... and the pass grows by one at
  // each return to step 0.
  std::vector<std::pair<std::uint32_t, std::uint16_t>> seen;  // (cycle, step), each change once
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < end && seen.size() < 7) {
    const Sample s = slots.sample(0);
    if (s.valid && s.step_index != Sample::kNoStep &&
        (seen.empty() || seen.back() != std::make_pair(s.cycle_index, s.step_index)))
      seen.emplace_back(s.cycle_index, s.step_index);
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE(seen.size() >= 5);
  for (std::size_t i = 1; i < seen.size(); ++i) {
    INFO("change " << i << ": (" << seen[i - 1].first << ", " << seen[i - 1].second << ") -> (" << seen[i].first << ", "
                   << seen[i].second << ")");
    CHECK(seen[i].second <= 1);
    if (seen[i - 1].second == 0) {  // step 0 -> step 1 within the pass
      CHECK(seen[i].second == 1);
      CHECK(seen[i].first == seen[i - 1].first);
    } else {  // step 1 -> the next pass's step 0
      CHECK(seen[i].second == 0);
      CHECK(seen[i].first == seen[i - 1].first + 1);
    }
  }
  CHECK(seen.back().first >= seen.front().first + 2);
  const Sample idle = slots.sample(1);
  CHECK(idle.valid);
  CHECK(idle.state == eqd::core::ChannelState::idle);
  CHECK(idle.step_index == Sample::kNoStep);
  CHECK(idle.cycle_index == Sample::kNoIndex);
  CHECK(poller.stats().program_errors == 0);
  CHECK(server.controller(0).stats().exceptions == 0);
}

// The safety rules of the command engine (docs/faults.md): a link proves that the control cycle is
// alive, not that its own thread is.
TEST_CASE("a frozen control thread stops the heartbeat and the refreshes: the controller releases its buffer",
          "[modbus][poller][liveness]") {
  auto backend = std::make_shared<FakeControllerBackend>(1);
  ModbusServer server({served("cab1", backend, 600)});  // heartbeat watchdog 600 ms
  server.start();
  Slots slots(1);
  auto cfg = tcp_config("cab1", server.port(0), 1);
  cfg.heartbeat_period_ms = 100;
  Poller poller(cfg, slots.view());
  poller.start();
  slots.command(0, true, 250.0, 1000);  // lease 1 s: refreshed every 500 ms while the control thread lives
  REQUIRE(wait_for([&] { return backend->record(0).equalize && poller.all_acknowledged(); }, 2s));
  std::this_thread::sleep_for(1200ms);  // alive: heartbeats and refreshes keep the buffer in equalization
  REQUIRE(backend->record(0).equalize);
  CHECK(backend->record(0).commands >= 2);  // written, then refreshed
  CHECK(server.controller(0).stats().heartbeat_releases == 0);

  slots.control.freeze();  // the link thread goes on; the control cycle does not
  const auto frozen_at = std::chrono::steady_clock::now();
  // Within the liveness bound (400 ms) the link may still refresh; after it, nothing more is written.
  std::this_thread::sleep_for(std::chrono::nanoseconds(eqd::test::FakeControlThread::kLiveness_ns) + 50ms);
  const auto commands_before = backend->record(0).commands;
  REQUIRE(wait_for([&] { return !backend->record(0).equalize; }, 3s));
  const auto released_after = std::chrono::steady_clock::now() - frozen_at;
  // Liveness bound 400 ms + the controller's 600 ms watchdog, with margin for a loaded machine.
  CHECK(released_after < 2500ms);
  // Whichever of the controller's watchdogs runs out first (heartbeat 600 ms, lease 1 s) released it.
  const auto ss = server.controller(0).stats();
  CHECK(ss.heartbeat_releases + ss.lease_releases == 1);
  std::this_thread::sleep_for(700ms);
  // Nothing was written after the freeze: no refresh, and no re-entry into equalization.
  CHECK(backend->record(0).commands == commands_before + 1);  // + the controller's own release
  CHECK_FALSE(backend->record(0).equalize);
  const auto st = poller.stats();
  CHECK(st.control_stalls == 1);
  CHECK(st.commands_held > 0);
  CHECK_FALSE(poller.all_acknowledged());

  // A live control thread that computes a new command brings the buffer back.
  slots.control.thaw();
  slots.command(0, true, 0.0, 1000);
  REQUIRE(wait_for([&] { return backend->record(0).equalize; }, 2s));
  CHECK(backend->record(0).setpoint_W == 0.0);
}

TEST_CASE("a command older than the liveness bound is never sent, even with a live control thread",
          "[modbus][poller][liveness]") {
  auto backend = std::make_shared<FakeControllerBackend>(1);
  ModbusServer server({served("cab1", backend)});
  server.start();
  Slots slots(1);
  Poller poller(tcp_config("cab1", server.port(0), 1), slots.view());
  poller.start();
  REQUIRE(wait_for([&] { return slots.sample(0).valid; }, 2s));
  // The control thread cycles but, as the core after a stall, does not re-confirm what it has not
  // heard from since: the command from before the stall (issued 8 s ago) stays old.
  slots.control.set_confirming(false);
  Command c;
  c.equalize = true;
  c.setpoint_W = 751.0;
  c.lease_ms = 5000;
  c.sequence = 7;
  slots.control.store_issued(0, c, eqd::test::FakeControlThread::now_ns() - 8'000'000'000);
  std::this_thread::sleep_for(600ms);  // six polls at 10 Hz
  CHECK(backend->record(0).commands == 0);
  CHECK_FALSE(backend->record(0).equalize);
  CHECK(poller.stats().commands_held >= 3);
  CHECK(poller.stats().control_stalls == 0);  // the control thread itself was alive

  // A stop is always allowed, whatever its age.
  c.equalize = false;
  c.setpoint_W = 0.0;
  c.sequence = 8;
  slots.control.store_issued(0, c, eqd::test::FakeControlThread::now_ns() - 8'000'000'000);
  REQUIRE(wait_for([&] { return backend->record(0).commands == 1; }, 2s));
  CHECK_FALSE(backend->record(0).equalize);

  // A command computed now is sent at once.
  slots.command(0, true, 120.0, 5000);
  REQUIRE(wait_for([&] { return backend->record(0).equalize; }, 2s));
  CHECK(backend->record(0).setpoint_W == Approx(120.0));
}

namespace {

/// A TCP proxy in front of a Modbus TCP server that can rewrite the response header the way a
/// misbehaving gateway would: the unit identifier (byte 6 of the MBAP header) or the protocol
/// identifier (bytes 2-3). Frames are cut by the MBAP length field (Modbus Messaging on TCP/IP
/// Implementation Guide). One client at a time; test thread safety by atomics only.
class HeaderRewritingProxy {
 public:
  explicit HeaderRewritingProxy(std::uint16_t upstream_port) : upstream_(upstream_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listen_fd_, 4) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~HeaderRewritingProxy() {
    stop_.store(true);
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  std::atomic<int> unit_offset{0};  ///< added to the unit id of every response
  std::atomic<int> protocol_id{0};  ///< written into every response's protocol id
  std::atomic<int> trickle_ms{0};   ///< > 0: every response is sent a byte at a time, this far apart

 private:
  static bool read_n(int fd, unsigned char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t r = ::recv(fd, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  }
  static bool write_n(int fd, const unsigned char* p, std::size_t n) {
    return ::send(fd, p, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
  }
  /// Forwards one request and its response; false when either side closed.
  bool relay(int client, int server) {
    unsigned char h[7];
    if (!read_n(client, h, 7)) return false;
    const std::size_t len = (static_cast<std::size_t>(h[4]) << 8) | h[5];
    if (len < 1 || len > 254) return false;
    std::vector<unsigned char> body(len - 1);
    if (!read_n(client, body.data(), body.size()) || !write_n(server, h, 7) ||
        !write_n(server, body.data(), body.size()))
      return false;
    if (!read_n(server, h, 7)) return false;
    const std::size_t rlen = (static_cast<std::size_t>(h[4]) << 8) | h[5];
    if (rlen < 1 || rlen > 254) return false;
    body.resize(rlen - 1);
    if (!read_n(server, body.data(), body.size())) return false;
    h[6] = static_cast<unsigned char>(h[6] + unit_offset.load());
    h[2] = static_cast<unsigned char>(protocol_id.load() >> 8);
    h[3] = static_cast<unsigned char>(protocol_id.load() & 0xFF);
    if (const int ms = trickle_ms.load(); ms > 0) {
      std::vector<unsigned char> frame(h, h + 7);
      frame.insert(frame.end(), body.begin(), body.end());
      for (const unsigned char byte : frame) {
        if (stop_.load() || !write_n(client, &byte, 1)) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      }
      return true;
    }
    return write_n(client, h, 7) && write_n(client, body.data(), body.size());
  }
  void run() {
    while (!stop_.load()) {
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) return;
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(upstream_);
      timeval tv{0, 200000};
      ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        while (!stop_.load()) {
          if (relay(client, server)) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) continue;  // idle client: look at stop_ again
          break;
        }
      }
      ::close(server);
      ::close(client);
    }
  }

  std::uint16_t upstream_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// Controller cab1 (2 channels, channel 1 at 400 W) served by ModbusServer and read by a running poller
/// through a HeaderRewritingProxy. Members are destroyed in reverse: the poller stops first.
struct ProxiedPoller {
  static std::shared_ptr<FakeControllerBackend> backend_at_400W() {
    auto b = std::make_shared<FakeControllerBackend>(2);
    b->set_test_power(0, 400.0);
    return b;
  }
  static std::uint16_t started_port(ModbusServer& s) {
    s.start();
    return s.port(0);
  }
  ProxiedPoller()
      : server({served("cab1", backend)}),
        proxy(started_port(server)),
        poller(tcp_config("cab1", proxy.port(), 2), slots.view()) {
    poller.start();
  }

  std::shared_ptr<FakeControllerBackend> backend = backend_at_400W();
  ModbusServer server;
  HeaderRewritingProxy proxy;
  Slots slots{2};
  Poller poller;
};

}  // namespace

TEST_CASE("a response from another unit id or protocol is refused as a protocol error, never decoded",
          "[modbus][poller][hostile]") {
  ProxiedPoller p;
  auto& [backend, server, proxy, slots, poller] = p;
  REQUIRE(wait_for([&] { return slots.sample(0).valid; }, 3s));
  CHECK(slots.sample(0).power_W == Approx(400.0));

  const auto before = poller.stats().protocol_errors;
  proxy.unit_offset.store(1);  // a gateway answering for unit 2
  REQUIRE(wait_for([&] { return poller.stats().protocol_errors >= before + 3; }, 3s));
  REQUIRE(wait_for([&] { return !slots.sample(0).valid; }, 2s));
  CHECK(poller.stats().polls_ok > 0);
  const auto ok_during = poller.stats().polls_ok;
  std::this_thread::sleep_for(300ms);
  CHECK(poller.stats().polls_ok == ok_during);  // no cycle read this controller's data
  {
    // One snapshot: under load a timeout may follow, and the text and code must be read together.
    const auto st = poller.stats();
    CHECK(std::string(st.last_error).find("slave") != std::string::npos);
    CHECK(st.errors_by_code[static_cast<std::size_t>(io::LinkErrc::bad_response)] >= 3);
  }

  proxy.unit_offset.store(0);
  proxy.protocol_id.store(0x0001);  // only one byte non-zero: libmodbus 3.1.6 alone would accept it
  const auto before_proto = poller.stats().protocol_errors;
  REQUIRE(wait_for([&] { return poller.stats().protocol_errors >= before_proto + 3; }, 3s));
  CHECK_FALSE(slots.sample(0).valid);

  proxy.protocol_id.store(0);
  REQUIRE(wait_for([&] { return slots.sample(0).valid; }, 3s));
  CHECK(slots.sample(0).power_W == Approx(400.0));
}

TEST_CASE("a response trickled a byte at a time is a timeout at timeout_ms, and stop() does not wait for it",
          "[modbus][poller][hostile]") {
  ProxiedPoller p;
  auto& [backend, server, proxy, slots, poller] = p;
  REQUIRE(wait_for([&] { return slots.sample(0).valid; }, 3s));

  // 100 ms between bytes passes libmodbus's 0.5 s byte timeout; a status reply (about 60 bytes) would
  // take 6 s in all. eqd bounds the whole reply by timeout_ms.
  const auto before = poller.stats().timeouts;
  proxy.trickle_ms.store(100);
  CHECK(wait_for([&] { return poller.stats().timeouts > before; }, 2s));
  CHECK(wait_for([&] { return !slots.sample(0).valid; }, 3s));
  const auto t0 = std::chrono::steady_clock::now();
  poller.stop();
  // The request in flight ends at timeout_ms (100 ms here); waiting for the reply would take seconds.
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}
