// eqd's grid meter (io/meter) against the SunSpec simulator's meter (sim/sunspec_device.hpp), two
// independent readings of the SunSpec meter models: each case runs a real device on an ephemeral
// 127.0.0.1 port and a real MeterLink on its own thread, with a settable "computed net" standing in for
// the control core. Also the plain-register source and the meter configuration keys.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "eqd/config/config.hpp"
#include "eqd/io/meter/meter_link.hpp"
#include "sunspec_device.hpp"

namespace ss = eqd::sim::sunspec;
namespace mt = eqd::io::meter;
using namespace std::chrono_literals;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <class F>
bool eventually(F&& f, std::chrono::milliseconds within) {
  const auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

ss::DeviceConfig meter_device(std::uint16_t model = 203, std::uint16_t base = 40000) {
  ss::DeviceConfig c;
  c.kind = ss::DeviceKind::meter;
  c.meter.model = model;
  c.base = base;
  return c;
}

// A meter link to `port` with a computed net the test sets, and the notices it gave.
struct Meter {
  explicit Meter(std::uint16_t port, mt::MeterLinkConfig c = {}) {
    c.bus = "main";
    c.host = "127.0.0.1";
    c.port = port;
    c.poll_hz = 20;
    c.timeout_ms = 200;
    c.backoff_initial_ms = 50;
    c.backoff_max_ms = 200;
    c.computed = [this](double& net_W, std::int64_t& cycle_ns) {
      net_W = computed_W.load();
      cycle_ns = now_ns();
      return true;
    };
    c.on_notice = [this](mt::MeterNotice k, const char* m) {
      const std::lock_guard<std::mutex> lock(mutex);
      notices.emplace_back(k, m);
    };
    link = std::make_unique<mt::MeterLink>(c);
    link->start();
  }
  ~Meter() { link->stop(); }
  [[nodiscard]] mt::MeterStatus st() const { return link->status(); }
  [[nodiscard]] std::size_t count(mt::MeterNotice k) {
    const std::lock_guard<std::mutex> lock(mutex);
    std::size_t n = 0;
    for (const auto& [kind, m] : notices) n += kind == k ? 1 : 0;
    return n;
  }
  // A valid reading of `w` (eqd sign), read after the call (the device's value may have just changed).
  bool reads(double w, std::chrono::milliseconds within = 2s) {
    return eventually(
        [&] {
          const mt::MeterStatus s = st();
          return s.valid && std::abs(s.power_W - w) < 1e-6;
        },
        within);
  }
  std::atomic<double> computed_W{0.0};
  std::mutex mutex;
  std::vector<std::pair<mt::MeterNotice, std::string>> notices;
  std::unique_ptr<mt::MeterLink> link;
};

}  // namespace

TEST_CASE("meter link reads total W of models 201, 203 and 204 at each base, with W_SF", "[meter][sunspec]") {
  const std::pair<std::uint16_t, std::uint16_t> cases[] = {{201, 0}, {203, 40000}, {204, 50000}};
  for (const auto& [model, base] : cases) {
    INFO("model " << model << " at " << base);
    ss::SunSpecDevice dev(meter_device(model, base));
    dev.start();
    dev.set_meter_power_W(2345.0);
    Meter m(dev.port());
    REQUIRE(m.reads(2345.0));
    CHECK(m.st().model == model);
    CHECK(m.st().connected);
    CHECK(m.st().frequency_Hz == Approx(50.0));
    // Import and export, both through the same sign.
    dev.set_meter_power_W(-1200.0);
    CHECK(m.reads(-1200.0));
    // W_SF 1: raw 1234 -> 12340 W (12345 does not fit the register at SF 0).
    dev.set_scale_factor("W_SF", 1);
    dev.set_meter_power_W(12340.0);
    CHECK(m.reads(12340.0));
    // W_SF -1: 234.5 W exactly.
    dev.set_scale_factor("W_SF", -1);
    dev.set_meter_power_W(234.5);
    CHECK(m.reads(234.5));
    CHECK(m.st().errors == 0);
    // The identity went to the journal once, with the model and the sign.
    CHECK(m.count(mt::MeterNotice::info) == 1);
    const std::lock_guard<std::mutex> lock(m.mutex);
    CHECK_THAT(m.notices.front().second,
               Catch::Contains("SunSpec meter model " + std::to_string(model)) && Catch::Contains("import_positive"));
  }
}

TEST_CASE("meter link maps a device's export-positive sign to eqd's import-positive one", "[meter][sunspec]") {
  ss::SunSpecDevice dev(meter_device());
  dev.start();
  dev.set_meter_power_W(1500.0);  // the device's W: here > 0 means export
  mt::MeterLinkConfig c;
  c.sign = mt::MeterSign::export_positive;
  Meter m(dev.port(), c);
  CHECK(m.reads(-1500.0));
}

TEST_CASE("meter link: not implemented W and impossible W_SF are no reading, with a clear error", "[meter][sunspec]") {
  {
    ss::DeviceConfig dc = meter_device();
    dc.faults.absent_points = {"W"};
    ss::SunSpecDevice dev(dc);
    dev.start();
    Meter m(dev.port());
    REQUIRE(eventually([&] { return m.st().errors > 0; }, 2s));
    CHECK_FALSE(m.st().valid);
    CHECK(m.st().connected);
    CHECK_THAT(std::string(m.st().last_error), Catch::Contains("meter W not implemented"));
    CHECK(m.st().readings == 0);
    // Reported once, not at every poll.
    std::this_thread::sleep_for(200ms);
    CHECK(m.count(mt::MeterNotice::error) == 1);
  }
  ss::SunSpecDevice dev(meter_device());
  dev.start();
  dev.set_meter_power_W(800.0);
  Meter m(dev.port());
  REQUIRE(m.reads(800.0));
  for (const int sf : {40, -11, -32768}) {
    INFO("W_SF " << sf);
    dev.set_scale_factor("W_SF", sf);
    REQUIRE(eventually([&] { return !m.st().valid; }, 2s));
    CHECK_THAT(std::string(m.st().last_error), Catch::Contains("W_SF not implemented or outside -10..10"));
    dev.set_scale_factor("W_SF", 0);
    CHECK(m.reads(800.0));
  }
}

TEST_CASE("meter link refuses malformed devices and devices without a meter model", "[meter][sunspec]") {
  struct Fault {
    const char* what;
    void (*apply)(ss::DeviceConfig&);
    const char* error;
  };
  const Fault faults[] = {
      {"impossible model length", [](ss::DeviceConfig& c) { c.faults.bad_length_index = 1; },
       "model 203 at 40070 announces length 65534, past the end of the register space"},
      {"model shorter than W_SF",
       [](ss::DeviceConfig& c) {
         c.faults.bad_length_index = 1;
         c.faults.bad_length = 16;
       },
       "model 203 at 40070 has length 16, expected at least 21"},
      {"looping chain", [](ss::DeviceConfig& c) { c.faults.chain_end = ss::ChainEnd::loop_back; },
       "past the end of the register space"},
      {"missing marker", [](ss::DeviceConfig& c) { c.faults.omit_marker = true; },
       "no SunSpec marker 'SunS' at 0, 40000 or 50000"},
      {"a storage device", [](ss::DeviceConfig& c) { c.kind = ss::DeviceKind::storage; },
       "device lacks a meter model (201-204); it has models 1, 103, 124, 802"},
  };
  for (const Fault& f : faults) {
    INFO(f.what);
    ss::DeviceConfig dc = meter_device();
    f.apply(dc);
    ss::SunSpecDevice dev(dc);
    dev.start();
    Meter m(dev.port());
    REQUIRE(eventually([&] { return std::string(m.st().last_error).find(f.error) != std::string::npos; }, 3s));
    CHECK_FALSE(m.st().connected);
    CHECK_FALSE(m.st().valid);
    CHECK(m.count(mt::MeterNotice::error) >= 1);
  }
}

TEST_CASE("meter link: an offline meter says so and another meter is unaffected", "[meter][sunspec]") {
  std::uint16_t dead_port = 0;
  {
    ss::SunSpecDevice gone(meter_device());
    dead_port = gone.port();
  }  // closed: nothing listens there now
  ss::SunSpecDevice dev(meter_device());
  dev.start();
  dev.set_meter_power_W(700.0);
  Meter dead(dead_port);
  Meter good(dev.port());
  REQUIRE(eventually([&] { return dead.st().errors > 0; }, 2s));
  CHECK_FALSE(dead.st().connected);
  CHECK_FALSE(dead.st().valid);
  CHECK_THAT(std::string(dead.st().last_error), Catch::Contains("meter of bus main connect 127.0.0.1:"));
  CHECK(good.reads(700.0));
  // A meter that goes away mid-run: no valid reading any more, and back when it returns.
  dev.stop();
  REQUIRE(eventually([&] { return !good.st().valid; }, 3s));
  CHECK_FALSE(good.st().connected);
}

TEST_CASE("meter link reads a plain register (any register map) with scale and offset", "[meter]") {
  ss::SunSpecDevice dev(meter_device());
  dev.start();
  dev.set_scale_factor("W_SF", 1);
  dev.set_meter_power_W(-4560.0);  // raw -456 in W
  // The same device seen as a plain register: 203's W at 40070 + 2 + 16, int16, x10 (its W_SF), no SunSpec.
  mt::MeterLinkConfig c;
  c.source = mt::MeterSource::modbus;
  c.power.table = eqd::io::modbus::Table::holding;
  c.power.address = 40088;
  c.power.type = eqd::io::modbus::DataType::i16;
  c.power.scale = 10.0;
  c.power.offset = 5.0;
  {
    Meter m(dev.port(), c);
    CHECK(m.reads(-4555.0));
    CHECK(m.st().model == 0);
  }
  {
    // The device serves no input registers: an exception, reported, no reading.
    c.power.table = eqd::io::modbus::Table::input;
    Meter m(dev.port(), c);
    REQUIRE(eventually([&] { return m.st().errors > 0; }, 2s));
    CHECK_FALSE(m.st().valid);
    CHECK_THAT(std::string(m.st().last_error), Catch::Contains("read @40088"));
  }
  {
    // 'Not available' (0x8000 for i16) is no reading.
    ss::DeviceConfig dc = meter_device();
    dc.faults.absent_points = {"W"};
    ss::SunSpecDevice absent(dc);
    absent.start();
    c.power.table = eqd::io::modbus::Table::holding;
    Meter m(absent.port(), c);
    REQUIRE(eventually([&] { return m.st().errors > 0; }, 2s));
    CHECK_THAT(std::string(m.st().last_error), Catch::Contains("reads 'not available'"));
  }
}

TEST_CASE("meter link compares with the computed net: a persistent difference is one disagreement", "[meter]") {
  ss::SunSpecDevice dev(meter_device());
  dev.start();
  dev.set_meter_power_W(3000.0);
  mt::MeterLinkConfig c;
  c.check = {500.0, 0.4};
  Meter m(dev.port(), c);
  m.computed_W.store(2800.0);
  REQUIRE(m.reads(3000.0));
  std::this_thread::sleep_for(600ms);
  CHECK_FALSE(m.st().disagreement);
  CHECK(m.st().difference_W == Approx(200.0));
  CHECK(m.st().computed_W == Approx(2800.0));
  // A load nobody configured: 2 kW more at the meter than the channels account for.
  m.computed_W.store(1000.0);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return m.st().disagreement; }, 3s));
  CHECK(std::chrono::steady_clock::now() - t0 >= 350ms);  // not before the persistence time
  CHECK(m.st().difference_W == Approx(2000.0));
  CHECK(m.st().episodes == 1);
  std::this_thread::sleep_for(500ms);
  CHECK(m.count(mt::MeterNotice::disagreement) == 1);
  {
    const std::lock_guard<std::mutex> lock(m.mutex);
    for (const auto& [k, text] : m.notices)
      if (k == mt::MeterNotice::disagreement)
        CHECK_THAT(text, Catch::Contains("bus main: grid meter reads 3000 W, eqd computes 1000 W (difference 2000 W"));
  }
  m.computed_W.store(3000.0);
  REQUIRE(eventually([&] { return !m.st().disagreement; }, 3s));
  CHECK(m.count(mt::MeterNotice::agreement) == 1);
  CHECK(m.st().episodes == 1);
}

TEST_CASE("meter link's trim: import the channels do not see gives a positive bias, held then decayed", "[meter]") {
  ss::SunSpecDevice dev(meter_device());
  dev.start();
  dev.set_meter_power_W(-3000.0);  // an export-positive device: 3 kW of import
  mt::MeterLinkConfig c;
  c.sign = mt::MeterSign::export_positive;
  c.trim = true;
  c.trim_params = {0.5, 5000.0, 0.3};  // fast, for the test: tau_s 0.5, hold 0.3 s
  c.trim_valid_ns = 1'000'000'000;
  std::mutex pm;
  eqd::core::MeterTrimValue published{};
  std::size_t publishes = 0;
  c.publish_trim = [&](const eqd::core::MeterTrimValue& v) {
    const std::lock_guard<std::mutex> lock(pm);
    published = v;
    ++publishes;
  };
  auto last = [&] {
    const std::lock_guard<std::mutex> lock(pm);
    return published;
  };
  Meter m(dev.port(), c);
  m.computed_W.store(1000.0);  // the channels account for 1 kW: 2 kW they do not see
  REQUIRE(m.reads(3000.0));
  // The bias goes to +2 kW (eqd's sign: import), whatever the device's sign.
  REQUIRE(eventually([&] { return std::abs(m.st().trim_W - 2000.0) < 20.0; }, 5s));
  CHECK(m.st().trim_state == eqd::core::MeterTrimState::tracking);
  const eqd::core::MeterTrimValue v = last();
  CHECK(v.bias_W == Approx(2000.0).margin(20.0));
  CHECK(v.max_W == 5000.0);
  CHECK(v.valid_ns == 1'000'000'000);
  CHECK(std::abs(v.stamp_ns - now_ns()) < 500'000'000);
  // The meter goes away: the bias holds, then decays to 0 W; it is still published every period.
  dev.stop();
  REQUIRE(eventually([&] { return m.st().trim_state == eqd::core::MeterTrimState::holding; }, 3s));
  CHECK(m.st().trim_W == Approx(2000.0).margin(40.0));
  REQUIRE(eventually([&] { return m.st().trim_state == eqd::core::MeterTrimState::decaying; }, 3s));
  REQUIRE(eventually([&] { return m.st().trim_W == 0.0; }, 10s));
  CHECK(last().bias_W == 0.0);
  const std::lock_guard<std::mutex> lock(pm);
  CHECK(publishes > 20);
}

TEST_CASE("meter link without trim publishes no trim", "[meter]") {
  ss::SunSpecDevice dev(meter_device());
  dev.start();
  dev.set_meter_power_W(3000.0);
  mt::MeterLinkConfig c;
  std::atomic<int> publishes{0};
  c.publish_trim = [&](const eqd::core::MeterTrimValue&) { ++publishes; };
  Meter m(dev.port(), c);
  REQUIRE(m.reads(3000.0));
  std::this_thread::sleep_for(200ms);
  CHECK(publishes.load() == 0);
  CHECK(m.st().trim_W == 0.0);
  CHECK(m.st().trim_state == eqd::core::MeterTrimState::off);
}

TEST_CASE("meter configuration: keys per meter transport, errors with file:line:col, --set", "[meter][config]") {
  const std::string head = "buses:\n  - name: main\n    meter:\n";
  auto error_of = [](const std::string& yaml) {
    try {
      (void)eqd::config::parse_config(yaml, "t.yaml");
    } catch (const eqd::config::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  auto cfg = eqd::config::parse_config(head +
                                           "      transport: sunspec\n      host: 10.0.0.7\n      port: 1502\n"
                                           "      unit_id: 2\n      base_address: 0\n      sign: export_positive\n"
                                           "      tolerance_W: 300\n      persistence_s: 5\n",
                                       "t.yaml");
  REQUIRE(cfg.buses[0].meter);
  const eqd::config::MeterConfig& m = *cfg.buses[0].meter;
  CHECK(m.transport == "sunspec");
  CHECK(m.host == "10.0.0.7");
  CHECK(m.port == 1502);
  CHECK(m.unit_id == 2);
  CHECK(m.base_address == 0);
  CHECK(m.export_positive);
  CHECK(m.tolerance_W == 300.0);
  CHECK(m.persistence_s == 5.0);
  CHECK_FALSE(m.trim);  // the meter trim is opt-in
  CHECK(m.trim_tau_s == 120.0);
  CHECK(m.trim_max_W == 2000.0);
  const auto trim = eqd::config::parse_config(
      head +
          "      transport: sunspec\n      host: 10.0.0.7\n      trim: true\n      trim_tau_s: 300\n"
          "      trim_max_W: 800\n",
      "t.yaml");
  CHECK(trim.buses[0].meter->trim);
  CHECK(trim.buses[0].meter->trim_tau_s == 300.0);
  CHECK(trim.buses[0].meter->trim_max_W == 800.0);
  CHECK_FALSE(eqd::config::parse_config("buses: [{name: main}]\n", "t.yaml").buses[0].meter);
  const auto reg = eqd::config::parse_config(head +
                                                 "      transport: modbus\n      host: m1.lab.example\n"
                                                 "      power: {table: input, address: 30775, type: i32, scale: 0.1}\n",
                                             "t.yaml");
  REQUIRE(reg.buses[0].meter->power);
  CHECK(reg.buses[0].meter->power->address == 30775);
  CHECK(reg.buses[0].meter->power->type == eqd::io::modbus::DataType::i32);
  CHECK(reg.buses[0].meter->power->table == eqd::io::modbus::Table::input);
  CHECK_THAT(error_of(head + "      host: 10.0.0.7\n"),
             Catch::StartsWith("t.yaml:4:7: buses[0].meter.transport: missing required key 'transport'"));
  CHECK_THAT(error_of(head + "      transport: dlms\n      host: 10.0.0.7\n"),
             Catch::StartsWith("t.yaml:4:18: buses[0].meter.transport: got 'dlms' (expected sunspec"));
  CHECK_THAT(error_of(head + "      transport: sunspec\n      host: 10.0.0.7\n      sign: positive\n"),
             Catch::StartsWith("t.yaml:6:13: buses[0].meter.sign: ") && Catch::Contains("import_positive"));
  CHECK_THAT(error_of(head + "      transport: sunspec\n      host: 10.0.0.7\n      power: {address: 1}\n"),
             Catch::StartsWith("t.yaml:6:14: buses[0].meter.power: 'power' applies only to meter transport: modbus"));
  CHECK_THAT(error_of(head + "      transport: modbus\n      host: 10.0.0.7\n"),
             Catch::StartsWith("t.yaml:4:7: buses[0].meter.power: missing required key 'power'"));
  CHECK_THAT(error_of(head + "      transport: modbus\n      host: 10.0.0.7\n      base_address: 40000\n"
                             "      power: {address: 1}\n"),
             Catch::StartsWith("t.yaml:6:21: buses[0].meter.base_address: 'base_address' applies only to meter "
                               "transport: sunspec"));
  CHECK_THAT(error_of(head + "      transport: sunspec\n      host: 10.0.0.7\n      tolerance_W: -5\n"),
             Catch::StartsWith("t.yaml:6:20: buses[0].meter.tolerance_W: "));
  CHECK_THAT(error_of(head + "      transport: sunspec\n      host: 10.0.0.7\n      tolerence_W: 5\n"),
             Catch::StartsWith("t.yaml:6:7: buses[0].meter.tolerence_W: ") && Catch::Contains("tolerance_W"));
  CHECK_THAT(error_of(head + "      transport: modbus\n      host: 10.0.0.7\n      power: {address: 1, stride: 2}\n"),
             Catch::Contains("buses[0].meter.power.stride: a meter has no channels"));
  CHECK_THAT(
      error_of(head + "      transport: sunspec\n      host: 10.0.0.7\n      poll_hz: 0.5\n      max_age_ms: 3000\n"),
      Catch::StartsWith("t.yaml:7:19: buses[0].meter.max_age_ms: max_age_ms 3000 is shorter than two poll "
                        "periods (4000 ms at poll_hz 0.5)"));
  CHECK_THAT(error_of(head + "      transport: sunspec\n      host: 10.0.0.7\n      trim: yes please\n"),
             Catch::StartsWith("t.yaml:6:13: buses[0].meter.trim: "));
  CHECK_THAT(error_of(head + "      transport: sunspec\n      host: 10.0.0.7\n      trim_tau_s: 5\n"),
             Catch::StartsWith("t.yaml:6:19: buses[0].meter.trim_tau_s: ") && Catch::Contains("10..3600"));
  CHECK_THAT(error_of(head + "      transport: sunspec\n      host: 10.0.0.7\n      trim_tau_s: 7200\n"),
             Catch::StartsWith("t.yaml:6:19: buses[0].meter.trim_tau_s: "));
  CHECK_THAT(error_of(head + "      transport: sunspec\n      host: 10.0.0.7\n      trim_max_W: 0\n"),
             Catch::StartsWith("t.yaml:6:19: buses[0].meter.trim_max_W: ") && Catch::Contains("> 0"));
  CHECK_THAT(error_of(head + "      transport: sunspec\n      host: 10.0.0.7\n      trim_max: 500\n"),
             Catch::StartsWith("t.yaml:6:7: buses[0].meter.trim_max: ") && Catch::Contains("trim_max_W"));
  // --set: a meter's key by path; a bus without a meter says so.
  eqd::config::apply_overrides(cfg, {"buses.main.meter.tolerance_W=750", "buses.main.meter.sign=import_positive"});
  CHECK(cfg.buses[0].meter->tolerance_W == 750.0);
  eqd::config::apply_overrides(cfg, {"buses.main.meter.trim=true", "buses.main.meter.trim_max_W=1000"});
  CHECK(cfg.buses[0].meter->trim);
  CHECK(cfg.buses[0].meter->trim_max_W == 1000.0);
  CHECK_FALSE(cfg.buses[0].meter->export_positive);
  auto none = eqd::config::parse_config("buses: [{name: main}]\n", "t.yaml");
  CHECK_THROWS_WITH(eqd::config::apply_overrides(none, {"buses.main.meter.tolerance_W=1"}),
                    Catch::Contains("bus 'main' has no meter"));
  CHECK_THROWS_WITH(eqd::config::apply_overrides(cfg, {"buses.main.meter.power.address=3"}),
                    Catch::Contains("has no meter power register"));
}
