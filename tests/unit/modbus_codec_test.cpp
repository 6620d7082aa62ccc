// Unit tests of the Modbus codec, read planner, map validation and command encoding (no I/O).

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <string>

#include "eqd/io/modbus/codec.hpp"
#include "eqd/io/modbus/register_map.hpp"

using namespace eqd::io::modbus;

namespace {

Field make(DataType t, WordOrder w = WordOrder::big, double scale = 1.0, double offset = 0.0) {
  Field f;
  f.type = t;
  f.word_order = w;
  f.scale = scale;
  f.offset = offset;
  return f;
}

bool contains(const std::vector<std::string>& errs, const std::string& a, const std::string& b = "") {
  for (const auto& e : errs)
    if (e.find(a) != std::string::npos && (b.empty() || e.find(b) != std::string::npos)) return true;
  return false;
}

/// Blocks holding the registers of `map` as a server would fill them, from per-channel values.
struct Image {
  std::vector<std::uint16_t> input = std::vector<std::uint16_t>(4096);
  std::vector<std::uint16_t> holding = std::vector<std::uint16_t>(4096);
  void put(const Field& f, std::size_t k, double v) {
    auto& t = f.table == Table::input ? input : holding;
    REQUIRE(encode_field(f, v, t.data() + channel_address(f, k)) == CodecStatus::ok);
  }
  std::vector<ReadBlock> blocks(const std::vector<ReadRequest>& plan) const {
    std::vector<ReadBlock> out;
    for (const auto& r : plan) {
      const auto& t = r.table == Table::input ? input : holding;
      out.push_back({r, std::vector<std::uint16_t>(t.begin() + r.address, t.begin() + r.address + r.count), true});
    }
    return out;
  }
};

}  // namespace

TEST_CASE("codec round-trips every type, word order, scale and offset", "[modbus][codec]") {
  struct Case {
    DataType type;
    double value;
  };
  const Case cases[] = {
      {DataType::u16, 0},
      {DataType::u16, 65535},
      {DataType::u16, 1234},
      {DataType::i16, -32768},
      {DataType::i16, 32767},
      {DataType::i16, -5},
      {DataType::u32, 0},
      {DataType::u32, 4294967295.0},
      {DataType::u32, 70000},
      {DataType::i32, -2147483648.0},
      {DataType::i32, 2147483647.0},
      {DataType::i32, -70000},
      {DataType::f32, 0.0},
      {DataType::f32, -1234.5},
      {DataType::f32, 3.25e6},
  };
  for (const WordOrder w : {WordOrder::big, WordOrder::little}) {
    for (const auto& c : cases) {
      for (const auto& [scale, offset] :
           {std::pair{1.0, 0.0}, std::pair{0.1, 0.0}, std::pair{0.01, -100.0}, std::pair{-2.0, 5.0}}) {
        const Field f = make(c.type, w, scale, offset);
        const double value = c.value * scale + offset;  // engineering value whose raw is c.value
        std::uint16_t regs[2] = {0xDEAD, 0xBEEF};
        INFO(to_string(c.type) << " " << to_string(w) << " raw " << c.value << " scale " << scale << " offset "
                               << offset);
        REQUIRE(encode_field(f, value, regs) == CodecStatus::ok);
        const double back = decode_field(f, regs);
        CHECK(back == Approx(value).epsilon(1e-6).margin(1e-9));
      }
    }
  }
}

TEST_CASE("codec register layout follows the word order", "[modbus][codec]") {
  std::uint16_t r[2];
  REQUIRE(encode_field(make(DataType::f32, WordOrder::big), 1.0, r) == CodecStatus::ok);
  CHECK(r[0] == 0x3F80);
  CHECK(r[1] == 0x0000);
  REQUIRE(encode_field(make(DataType::f32, WordOrder::little), 1.0, r) == CodecStatus::ok);
  CHECK(r[0] == 0x0000);
  CHECK(r[1] == 0x3F80);
  REQUIRE(encode_field(make(DataType::u32, WordOrder::big), 0x12345678, r) == CodecStatus::ok);
  CHECK(r[0] == 0x1234);
  CHECK(r[1] == 0x5678);
  REQUIRE(encode_field(make(DataType::i32, WordOrder::little), -2, r) == CodecStatus::ok);
  CHECK(r[0] == 0xFFFE);
  CHECK(r[1] == 0xFFFF);
  const std::uint16_t neg[1] = {0xFFFF};
  CHECK(decode_field(make(DataType::i16), neg) == -1.0);
  CHECK(decode_field(make(DataType::u16), neg) == 65535.0);
  // Scale rounds to nearest, so 0.1 W steps survive binary floating point.
  REQUIRE(encode_field(make(DataType::i16, WordOrder::big, 0.1), 123.4, r) == CodecStatus::ok);
  CHECK(r[0] == 1234);
}

TEST_CASE("codec refuses values that do not fit instead of wrapping", "[modbus][codec]") {
  std::uint16_t r[2] = {7, 7};
  CHECK(encode_field(make(DataType::i16, WordOrder::big, 0.1), 3276.8, r) == CodecStatus::out_of_range);
  CHECK(encode_field(make(DataType::i16, WordOrder::big, 0.1), -3276.9, r) == CodecStatus::out_of_range);
  CHECK(encode_field(make(DataType::i16, WordOrder::big, 0.1), 3276.7, r) == CodecStatus::ok);
  r[0] = r[1] = 7;
  CHECK(encode_field(make(DataType::u16), -1.0, r) == CodecStatus::out_of_range);
  CHECK(encode_field(make(DataType::u16), 65536.0, r) == CodecStatus::out_of_range);
  CHECK(encode_field(make(DataType::u32), 4294967296.0, r) == CodecStatus::out_of_range);
  CHECK(encode_field(make(DataType::i32), 2147483648.0, r) == CodecStatus::out_of_range);
  CHECK(encode_field(make(DataType::f32), 1e39, r) == CodecStatus::out_of_range);
  CHECK(encode_field(make(DataType::f32), std::nan(""), r) == CodecStatus::not_finite);
  CHECK(encode_field(make(DataType::i16), std::numeric_limits<double>::infinity(), r) == CodecStatus::not_finite);
  CHECK(encode_field(make(DataType::i16, WordOrder::big, 0.0), 1.0, r) == CodecStatus::bad_scale);
  CHECK(encode_field(make(DataType::i16, WordOrder::big, 1e-300), 1e10, r) == CodecStatus::not_finite);
  // Failed encodes leave the output untouched.
  CHECK(r[0] == 7);
  CHECK(r[1] == 7);
}

TEST_CASE("default profile is valid and its 16-channel status block takes 2 requests", "[modbus][planner]") {
  const RegisterMap m = default_profile(16);
  const auto errs = validate_map(m);
  INFO((errs.empty() ? std::string() : errs.front()));
  CHECK(errs.empty());
  const auto plan = plan_status_reads(m);
  REQUIRE(plan.size() == 2);
  std::set<std::uint32_t> covered;
  for (const auto& r : plan) {
    CHECK(r.table == Table::input);
    CHECK(r.count <= kMaxReadRegisters);
    for (std::uint32_t a = r.address; a < r.address + r.count; ++a) covered.insert(a);
  }
  // Every register of every status field of every channel is read, and never split over two requests.
  for (std::size_t k = 0; k < 16; ++k)
    for (const Field* f :
         {&m.voltage, &m.current, &*m.power, &m.state, &*m.fault_code, &*m.eq_flag, &*m.sample_counter}) {
      const auto a = channel_address(*f, k);
      const auto n = register_count(f->type);
      CHECK(find_registers({}, f->table, static_cast<std::uint16_t>(a), n) == nullptr);
      int holders = 0;
      for (const auto& r : plan)
        if (a >= r.address && a + n <= static_cast<std::uint32_t>(r.address) + r.count) ++holders;
      CHECK(holders == 1);
    }
  const auto dev = plan_device_reads(m);
  REQUIRE(dev.size() == 1);
  CHECK(dev[0] == ReadRequest{Table::input, 0, 4});
}

TEST_CASE("planner merges small gaps, splits large ones, both tables, max 125", "[modbus][planner]") {
  RegisterMap m = default_profile(1);
  m.power.reset();
  m.fault_code.reset();
  m.eq_flag.reset();
  m.sample_counter.reset();
  m.voltage = make(DataType::f32);
  m.voltage.address = 10;
  m.current = make(DataType::f32);
  m.current.address = 22;  // gap of 10 after voltage (10..11)
  m.state = make(DataType::u16);
  m.state.table = Table::holding;
  m.state.address = 10;
  PlanOptions narrow;
  narrow.max_gap = 8;
  auto plan = plan_status_reads(m, narrow);
  REQUIRE(plan.size() == 3);
  CHECK(plan[0] == ReadRequest{Table::input, 10, 2});
  CHECK(plan[1] == ReadRequest{Table::input, 22, 2});
  CHECK(plan[2] == ReadRequest{Table::holding, 10, 1});
  PlanOptions wide;
  wide.max_gap = 10;
  plan = plan_status_reads(m, wide);
  REQUIRE(plan.size() == 2);
  CHECK(plan[0] == ReadRequest{Table::input, 10, 14});
  CHECK(plan[1] == ReadRequest{Table::holding, 10, 1});

  // 200 contiguous channels: every request full-size except the last, none above 125.
  RegisterMap big = default_profile(200);
  big.cmd_enable.stride = 5;
  big.cmd_setpoint.stride = 5;
  big.cmd_lease->stride = 5;
  REQUIRE(validate_map(big).empty());
  plan = plan_status_reads(big);
  REQUIRE(plan.size() >= 2);
  for (std::size_t i = 0; i < plan.size(); ++i) {
    CHECK(plan[i].count <= kMaxReadRegisters);
    // Splits fall on field boundaries: a full request wastes at most one register (f32 straddling).
    if (i + 1 < plan.size()) CHECK(plan[i].count >= kMaxReadRegisters - 1);
    if (i > 0) CHECK(plan[i].address >= plan[i - 1].address + plan[i - 1].count);
  }
  CHECK(plan.size() == 20);  // ceil(2399 / 125)
}

TEST_CASE("validate_map rejects overlapping fields naming both", "[modbus][validate]") {
  RegisterMap m = default_profile(4);
  m.current.address = static_cast<std::uint16_t>(m.voltage.address + 1);  // f32 voltage covers 100..101
  const auto errs = validate_map(m);
  REQUIRE_FALSE(errs.empty());
  CHECK(contains(errs, "current (channel 1, input 101..102)", "voltage (channel 1, input 100..101)"));

  RegisterMap s = default_profile(4);
  s.voltage.stride = 1;  // channel 2's voltage lands on channel 1's (channels from 1, issue #18 item 15)
  CHECK(contains(validate_map(s), "voltage (channel 2", "voltage (channel 1"));

  RegisterMap h = default_profile(4);
  h.heartbeat->address = h.cmd_enable.address;
  CHECK(contains(validate_map(h), "heartbeat", "cmd_enable"));
  // The same address in the other table is no overlap.
  RegisterMap t = default_profile(4);
  t.heartbeat->address = 1;  // input 1 is device_channel_count; holding 1 is free
  CHECK(validate_map(t).empty());
}

TEST_CASE("validate_map catches overflow, bad scale, commands in the input table", "[modbus][validate]") {
  RegisterMap m = default_profile(16);
  m.channel_count = 6000;  // 100 + 5999 * 12 > 65535
  CHECK(contains(validate_map(m), "voltage", "passes 65535"));
  RegisterMap s = default_profile(2);
  s.current.scale = 0.0;
  CHECK(contains(validate_map(s), "current: scale"));
  RegisterMap c = default_profile(2);
  c.cmd_setpoint.table = Table::input;
  c.cmd_setpoint.address = 1000;
  CHECK(contains(validate_map(c), "cmd_setpoint: must be in the holding table"));
  RegisterMap d = default_profile(2);
  d.state_codes = {0, 9};
  CHECK(contains(validate_map(d), "state_codes[1]"));
  RegisterMap r = default_profile(2);
  r.range.voltage_min_V = 100;
  r.range.voltage_max_V = 10;
  CHECK(contains(validate_map(r), "voltage_min_V"));
}

TEST_CASE("decode_sample reads a channel and marks NaN, out-of-range and missing invalid", "[modbus][codec]") {
  const RegisterMap m = default_profile(3);
  Image img;
  for (std::size_t k = 0; k < 3; ++k) {
    img.put(m.voltage, k, 48.5 + static_cast<double>(k));
    img.put(m.current, k, -2.0 * static_cast<double>(k));
    img.put(*m.power, k, -97.0 * static_cast<double>(k));
    img.put(m.state, k, k == 2 ? 4 : 1);
    img.put(*m.fault_code, k, 0);
    img.put(*m.eq_flag, k, k == 2 ? 1 : 0);
    img.put(*m.sample_counter, k, 100000.0 + static_cast<double>(k));
  }
  const auto plan = plan_status_reads(m);
  auto blocks = img.blocks(plan);
  auto d = decode_sample(m, 2, blocks);
  REQUIRE(d.error == SampleError::none);
  CHECK(d.sample.valid);
  CHECK(d.sample.voltage_V == Approx(50.5));
  CHECK(d.sample.current_A == Approx(-4.0));
  CHECK(d.sample.power_W == Approx(-194.0));
  CHECK(d.sample.state == eqd::core::ChannelState::equalizing);
  CHECK(d.sample.equalization_mode);
  CHECK(d.sample.sequence == 100002);

  // NaN voltage on channel 1 (raw f32 NaN bits): invalid, channel 0 unaffected.
  const auto a = channel_address(m.voltage, 1);
  img.input[a] = 0x7FC0;
  img.input[a + 1] = 0;
  blocks = img.blocks(plan);
  d = decode_sample(m, 1, blocks);
  CHECK_FALSE(d.sample.valid);
  CHECK(d.error == SampleError::not_finite);
  CHECK(std::string(d.field) == "voltage");
  CHECK(decode_sample(m, 0, blocks).sample.valid);

  img.put(m.voltage, 1, 5000.0);  // above range.voltage_max_V
  d = decode_sample(m, 1, img.blocks(plan));
  CHECK(d.error == SampleError::out_of_range);
  img.put(m.voltage, 1, 49.0);
  img.put(*m.eq_flag, 1, 7);  // flag must be 0 or 1
  d = decode_sample(m, 1, img.blocks(plan));
  CHECK(d.error == SampleError::out_of_range);
  CHECK(std::string(d.field) == "eq_flag");

  blocks = img.blocks(plan);
  blocks[0].ok = false;  // failed read (exception/timeout)
  d = decode_sample(m, 0, blocks);
  CHECK_FALSE(d.sample.valid);
  CHECK(d.error == SampleError::missing);

  // Unknown state codes decode as fault, never as idle.
  img.put(*m.eq_flag, 1, 0);
  img.put(m.state, 1, 42);
  d = decode_sample(m, 1, img.blocks(plan));
  CHECK(d.sample.valid);
  CHECK(d.sample.state == eqd::core::ChannelState::fault);
}

TEST_CASE("encode_command writes the default command block in one request", "[modbus][codec]") {
  const RegisterMap m = default_profile(16);
  eqd::core::Command c;
  c.equalize = true;
  c.setpoint_W = -1500.25;
  c.lease_ms = 5000;
  c.sequence = 3;
  const auto e = encode_command(m, 5, c);
  REQUIRE(e.status == CodecStatus::ok);
  REQUIRE(e.writes.size() == 1);
  CHECK(e.writes[0].address == 100 + 5 * 8);
  REQUIRE(e.writes[0].values.size() == 5);
  CHECK(e.writes[0].values[0] == 1);
  CHECK(decode_field(m.cmd_setpoint, &e.writes[0].values[1]) == Approx(-1500.25));
  CHECK(decode_field(*m.cmd_lease, &e.writes[0].values[3]) == 5000.0);

  c.equalize = false;  // a stop carries 0 W whatever the setpoint says
  const auto s = encode_command(m, 0, c);
  REQUIRE(s.status == CodecStatus::ok);
  CHECK(s.writes[0].values[0] == 0);
  CHECK(decode_field(m.cmd_setpoint, &s.writes[0].values[1]) == 0.0);
}

TEST_CASE("encode_command splits non-contiguous fields and refuses overflow", "[modbus][codec]") {
  RegisterMap m = default_profile(4);
  m.cmd_setpoint = make(DataType::i16, WordOrder::big, 1.0);
  m.cmd_setpoint.table = Table::holding;
  m.cmd_setpoint.address = 300;
  m.cmd_setpoint.stride = 1;
  m.cmd_lease.reset();
  REQUIRE(validate_map(m).empty());
  eqd::core::Command c;
  c.equalize = true;
  c.setpoint_W = 2000;
  auto e = encode_command(m, 2, c);
  REQUIRE(e.status == CodecStatus::ok);
  REQUIRE(e.writes.size() == 2);
  CHECK(e.writes[0].address == 100 + 2 * 8);
  CHECK(e.writes[1].address == 302);
  CHECK(e.writes[1].values[0] == 2000);

  c.setpoint_W = 40000;  // beyond i16
  e = encode_command(m, 2, c);
  CHECK(e.status == CodecStatus::out_of_range);
  CHECK(std::string(e.field) == "cmd_setpoint");
  CHECK(e.writes.empty());
  c.setpoint_W = std::nan("");
  CHECK(encode_command(m, 2, c).status == CodecStatus::not_finite);
}

// ------------------------------------------------------------------------------ announced forecasts

TEST_CASE("forecast_power: the default profile's block is gated by capability bit 5", "[modbus][forecast][planner]") {
  const RegisterMap m = default_profile(16);
  REQUIRE(m.forecast_power);
  CHECK(m.forecast_power->table == Table::input);
  CHECK(m.forecast_power->address == kDefaultForecastBase);
  CHECK(m.forecast_power->type == DataType::f32);
  CHECK(m.forecast_power->stride == 2);
  CHECK(m.forecast_capability == capability::kForecast);
  CHECK(capability::kForecast == 0x20);
  // Not read (not planned) until the controller says it offers it.
  CHECK(plan_status_reads(m).size() == 2);
  CHECK(plan_status_reads(with_capabilities(m, std::nullopt)).size() == 2);
  const RegisterMap old_device = with_capabilities(m, std::uint16_t{0x1F});
  CHECK_FALSE(old_device.forecast_power);
  CHECK(plan_status_reads(old_device).size() == 2);

  const RegisterMap with = with_capabilities(m, std::uint16_t{0x3F});
  REQUIRE(with.forecast_power);
  CHECK(with.forecast_capability == 0);
  const auto plan = plan_status_reads(with);
  REQUIRE(plan.size() == 3);
  CHECK(plan[0].address == 100);
  CHECK(plan[2] == ReadRequest{Table::input, kDefaultForecastBase, 32});
  for (const auto& r : plan) CHECK(r.count <= kMaxReadRegisters);
}

TEST_CASE("forecast_power: coalesced reads stay <= 125 registers up to the largest controller",
          "[modbus][forecast][planner]") {
  for (const std::uint16_t n :
       {std::uint16_t{1}, std::uint16_t{62}, std::uint16_t{63}, std::uint16_t{1024}, kDefaultForecastMaxChannels}) {
    INFO("channels " << n);
    const RegisterMap m = with_capabilities(default_profile(n), capability::kForecast);
    REQUIRE(m.forecast_power);
    REQUIRE(validate_map(m).empty());
    const auto plan = plan_status_reads(m);
    std::size_t forecast_requests = 0;
    for (const auto& r : plan) {
      CHECK(r.count <= kMaxReadRegisters);
      CHECK(r.count >= 1);
      if (r.address >= kDefaultForecastBase)
        ++forecast_requests;
      else
        CHECK(static_cast<std::uint32_t>(r.address) + r.count <= kDefaultForecastBase);  // never mixed
    }
    // 62 forecasts (124 registers) per request: no f32 is ever split, none is left out.
    CHECK(forecast_requests == (n + 61u) / 62u);
    for (std::size_t k = 0; k < n; k += (n > 100 ? 97 : 1)) {
      const auto a = channel_address(*m.forecast_power, k);
      int holders = 0;
      for (const auto& r : plan)
        if (a >= r.address && a + 2 <= static_cast<std::uint32_t>(r.address) + r.count) ++holders;
      CHECK(holders == 1);
    }
  }
  // Beyond that size the block would collide with the status block: the profile has no forecast.
  CHECK_FALSE(default_profile(kDefaultForecastMaxChannels + 1).forecast_power);
  CHECK(validate_map(default_profile(kDefaultForecastMaxChannels + 1)).empty());
  // Forced onto a larger controller, validation catches the collision.
  RegisterMap big = default_profile(16);
  big.channel_count = 5000;
  CHECK(contains(validate_map(big), "forecast_power", "overlaps"));
}

TEST_CASE("forecast_power: map validation", "[modbus][forecast][validate]") {
  SECTION("overlap with another status field is named") {
    RegisterMap m = default_profile(4);
    m.forecast_capability = 0;
    m.forecast_power->address = static_cast<std::uint16_t>(m.power->address + 1);  // power is 104..105
    m.forecast_power->stride = m.power->stride;
    const auto errs = validate_map(m);
    CHECK(contains(errs, "forecast_power (channel 1, input 105..106)", "power (channel 1, input 104..105)"));
  }
  SECTION("a stride narrower than the f32 overlaps the next channel") {
    RegisterMap m = default_profile(4);
    m.forecast_power->stride = 1;
    CHECK(contains(validate_map(m), "forecast_power (channel 2", "forecast_power (channel 1"));
  }
  SECTION("an unsigned type cannot carry a discharge unless offset") {
    RegisterMap m = default_profile(4);
    m.forecast_power->type = DataType::u16;
    CHECK(contains(validate_map(m), "forecast_power: type u16", "negative"));
    m.forecast_power->type = DataType::u32;
    CHECK(contains(validate_map(m), "forecast_power: type u32"));
    m.forecast_power->offset = -100000.0;
    CHECK(validate_map(m).empty());
    m.forecast_power->type = DataType::i16;
    m.forecast_power->offset = 0.0;
    CHECK(validate_map(m).empty());
  }
  SECTION("gated by a capability the map cannot read") {
    RegisterMap m = default_profile(4);
    m.capabilities.reset();
    CHECK(contains(validate_map(m), "forecast_power: read only with capability 0x20"));
  }
  SECTION("scale zero") {
    RegisterMap m = default_profile(4);
    m.forecast_power->scale = 0.0;
    CHECK(contains(validate_map(m), "forecast_power: scale"));
  }
}

TEST_CASE("forecast_power: not-available values per type", "[modbus][forecast][codec]") {
  for (const DataType t : {DataType::u16, DataType::i16, DataType::u32, DataType::i32, DataType::f32})
    for (const WordOrder w : {WordOrder::big, WordOrder::little}) {
      INFO(to_string(t) << " " << to_string(w));
      const Field f = make(t, w);
      std::uint16_t regs[2] = {0, 0};
      CHECK_FALSE(is_not_available(f, regs));
      encode_not_available(f, regs);
      CHECK(is_not_available(f, regs));
      REQUIRE(encode_field(f, 1.0, regs) == CodecStatus::ok);
      CHECK_FALSE(is_not_available(f, regs));
    }
  const Field i16 = make(DataType::i16);
  const std::uint16_t sentinel[1] = {0x8000};
  const std::uint16_t min_plus_one[1] = {0x8001};
  CHECK(is_not_available(i16, sentinel));
  CHECK_FALSE(is_not_available(i16, min_plus_one));
  // Every NaN counts, not only the quiet one eqd writes; infinities do not.
  const Field f32 = make(DataType::f32);
  const std::uint16_t snan[2] = {0xFF80, 0x0001};
  const std::uint16_t inf[2] = {0x7F80, 0x0000};
  CHECK(is_not_available(f32, snan));
  CHECK_FALSE(is_not_available(f32, inf));
}

TEST_CASE("forecast_power: decode value, none, infinite and out of range, the sample stays valid",
          "[modbus][forecast][codec]") {
  const RegisterMap m = with_capabilities(default_profile(3), capability::kForecast);
  REQUIRE(m.forecast_power);
  Image img;
  img.input.resize(65536);
  for (std::size_t k = 0; k < 3; ++k) {
    img.put(m.voltage, k, 50.0);
    img.put(m.current, k, 10.0);
    img.put(*m.power, k, 500.0);
    img.put(m.state, k, 1);
    img.put(*m.fault_code, k, 0);
    img.put(*m.eq_flag, k, 0);
    img.put(*m.sample_counter, k, 7);
  }
  const auto plan = plan_status_reads(m);
  img.put(*m.forecast_power, 0, -1234.5);
  encode_not_available(*m.forecast_power, img.input.data() + channel_address(*m.forecast_power, 1));
  img.put(*m.forecast_power, 2, 250000.0);

  auto d = decode_sample(m, 0, img.blocks(plan));
  REQUIRE(d.error == SampleError::none);
  CHECK(d.sample.valid);
  CHECK(d.forecast_error == SampleError::none);
  CHECK(d.sample.forecast_W == Approx(-1234.5f));

  d = decode_sample(m, 1, img.blocks(plan));  // nothing announced
  CHECK(d.sample.valid);
  CHECK(d.forecast_error == SampleError::none);
  CHECK(std::isnan(d.sample.forecast_W));
  CHECK(decode_sample(m, 2, img.blocks(plan)).sample.forecast_W == Approx(250000.0f));

  SECTION("infinite: NaN and an error, voltage/current/power still good") {
    const auto a = channel_address(*m.forecast_power, 2);
    img.input[a] = 0xFF80;  // -inf
    img.input[a + 1] = 0x0000;
    d = decode_sample(m, 2, img.blocks(plan));
    REQUIRE(d.error == SampleError::none);
    CHECK(d.sample.valid);
    CHECK(d.sample.power_W == Approx(500.0));
    CHECK(d.sample.voltage_V == Approx(50.0));
    CHECK(d.forecast_error == SampleError::not_finite);
    CHECK(std::isnan(d.sample.forecast_W));
  }
  SECTION("beyond range.power_abs_max_W: NaN and an error, sample valid") {
    img.put(*m.forecast_power, 2, 2.0e6);  // default range: 1 MW
    d = decode_sample(m, 2, img.blocks(plan));
    CHECK(d.sample.valid);
    CHECK(d.forecast_error == SampleError::out_of_range);
    CHECK(d.forecast_raw_W == Approx(2.0e6));
    CHECK(std::isnan(d.sample.forecast_W));
    RegisterMap tight = m;
    tight.range.power_abs_max_W = 200000.0;
    img.put(*m.forecast_power, 2, 250000.0);
    d = decode_sample(tight, 2, img.blocks(plan));
    CHECK(d.sample.valid);
    CHECK(d.forecast_error == SampleError::out_of_range);
    CHECK(std::isnan(d.sample.forecast_W));
    img.put(*m.forecast_power, 2, -200000.0);  // the bound itself is plausible
    CHECK(decode_sample(tight, 2, img.blocks(plan)).sample.forecast_W == Approx(-200000.0f));
  }
  SECTION("the forecast block missing (failed read): no forecast, no error, sample valid") {
    auto blocks = img.blocks(plan);
    REQUIRE(blocks.back().request.address == kDefaultForecastBase);
    blocks.back().ok = false;
    d = decode_sample(m, 0, blocks);
    CHECK(d.sample.valid);
    CHECK(d.forecast_error == SampleError::none);
    CHECK(std::isnan(d.sample.forecast_W));
  }
  SECTION("an invalid sample carries no forecast") {
    img.put(m.voltage, 0, 5000.0);
    d = decode_sample(m, 0, img.blocks(plan));
    CHECK_FALSE(d.sample.valid);
    CHECK(std::isnan(d.sample.forecast_W));
  }
  SECTION("a gated field is ignored until the capabilities are applied") {
    const RegisterMap gated = default_profile(3);
    d = decode_sample(gated, 0, img.blocks(plan));
    CHECK(d.sample.valid);
    CHECK(std::isnan(d.sample.forecast_W));
  }
}

TEST_CASE("forecast_power: a scaled integer field in a custom map", "[modbus][forecast][codec]") {
  RegisterMap m = default_profile(2);
  m.forecast_power = make(DataType::i16, WordOrder::big, 10.0);  // 10 W steps
  m.forecast_power->address = 1000;
  m.forecast_power->stride = 1;
  m.forecast_capability = 0;  // named by the map: always read
  REQUIRE(validate_map(m).empty());
  Image img;
  for (std::size_t k = 0; k < 2; ++k) {
    img.put(m.voltage, k, 50.0);
    img.put(m.current, k, 1.0);
    img.put(*m.power, k, 50.0);
    img.put(m.state, k, 1);
  }
  img.put(*m.forecast_power, 0, -3000.0);
  img.input[1001] = 0x8000;  // channel 1: not available
  const auto plan = plan_status_reads(m);
  CHECK(plan.back() == ReadRequest{Table::input, 1000, 2});
  CHECK(decode_sample(m, 0, img.blocks(plan)).sample.forecast_W == Approx(-3000.0f));
  const auto d = decode_sample(m, 1, img.blocks(plan));
  CHECK(d.sample.valid);
  CHECK(d.forecast_error == SampleError::none);
  CHECK(std::isnan(d.sample.forecast_W));
}

// ------------------------------------------------------------------------------- program position

TEST_CASE("program block: the default profile as docs/modbus-profile.md defines it", "[modbus][program][planner]") {
  // Literals from the profile text, not the header's constants: a misreading of the spec fails here.
  const RegisterMap m = default_profile(16);
  REQUIRE(m.step_index);
  REQUIRE(m.cycle_index);
  CHECK(m.step_index->table == Table::input);
  CHECK(m.step_index->address == 59000);
  CHECK(m.step_index->type == DataType::u16);
  CHECK(m.step_index->stride == 3);
  CHECK(m.cycle_index->table == Table::input);
  CHECK(m.cycle_index->address == 59001);
  CHECK(m.cycle_index->type == DataType::u32);
  CHECK(m.cycle_index->word_order == WordOrder::big);
  CHECK(m.cycle_index->stride == 3);
  CHECK(m.program_capability == 0x40);
  CHECK(capability::kProgram == 0x40);
  CHECK(validate_map(m).empty());

  // Gated: not planned until the controller sets bit6, independently of bit5.
  CHECK(plan_status_reads(m).size() == 2);
  const RegisterMap no_prog = with_capabilities(m, std::uint16_t{0x3F});
  CHECK_FALSE(no_prog.step_index);
  CHECK_FALSE(no_prog.cycle_index);
  CHECK(no_prog.forecast_power);
  const RegisterMap prog_only = with_capabilities(m, std::uint16_t{0x5F});
  REQUIRE(prog_only.step_index);
  REQUIRE(prog_only.cycle_index);
  CHECK_FALSE(prog_only.forecast_power);
  CHECK(prog_only.program_capability == 0);
  const auto plan = plan_status_reads(prog_only);
  REQUIRE(plan.size() == 3);
  CHECK(plan[2] == ReadRequest{Table::input, 59000, 48});  // 16 channels: 59000..59047, one request
  const auto all = plan_status_reads(with_capabilities(m, std::uint16_t{0x7F}));
  REQUIRE(all.size() == 4);
  CHECK(all[2].address == 50000);
  CHECK(all[3] == ReadRequest{Table::input, 59000, 48});
}

TEST_CASE("program block: reads stay whole and apart up to 2048 channels, none beyond", "[modbus][program][planner]") {
  for (const std::uint16_t n : {std::uint16_t{1}, std::uint16_t{41}, std::uint16_t{42}, std::uint16_t{2048}}) {
    INFO("channels " << n);
    const RegisterMap m = with_capabilities(default_profile(n), std::uint16_t{0x7F});
    REQUIRE(m.step_index);
    REQUIRE(validate_map(m).empty());
    std::size_t program_requests = 0;
    for (const auto& r : plan_status_reads(m)) {
      CHECK(r.count <= kMaxReadRegisters);
      if (r.address >= 59000) {
        ++program_requests;
        CHECK((r.address - 59000) % 3 == 0);  // starts at a channel's step_index
        CHECK(r.count % 3 == 0);              // no channel split
      } else {
        CHECK(static_cast<std::uint32_t>(r.address) + r.count <= 59000);  // never mixed
      }
    }
    CHECK(program_requests == (n + 40u) / 41u);  // 41 channels (123 registers) per request
  }
  CHECK(default_profile(2048).cycle_index->address + 3u * 2047u + 1u == 65143u);  // the block's last register
  CHECK_FALSE(default_profile(2049).step_index);
  CHECK_FALSE(default_profile(2049).cycle_index);
  CHECK(default_profile(2049).forecast_power);
  CHECK(validate_map(default_profile(2049)).empty());
  RegisterMap forced = default_profile(16);
  forced.channel_count = 2200;  // 59000 + 3 * 2200 > 65536
  CHECK(contains(validate_map(forced), "cycle_index", "passes 65535"));
  forced = default_profile(4);
  forced.capabilities.reset();
  forced.forecast_power.reset();
  CHECK(contains(validate_map(forced), "step_index: read only with capability 0x40"));
}

namespace {

/// A custom map whose step_index / cycle_index are mapped as given (read from every controller).
RegisterMap program_map(Field step, Field cycle) {
  RegisterMap m = default_profile(3);
  m.forecast_power.reset();
  step.address = 2000;
  step.stride = 2;
  cycle.address = 3000;
  cycle.stride = 2;
  m.step_index = step;
  m.cycle_index = cycle;
  m.program_capability = 0;
  REQUIRE(validate_map(m).empty());
  return m;
}

Image status_image(const RegisterMap& m) {
  Image img;
  for (std::size_t k = 0; k < m.channel_count; ++k) {
    img.put(m.voltage, k, 50.0);
    img.put(m.current, k, 10.0);
    img.put(*m.power, k, 500.0);
    img.put(m.state, k, 1);
  }
  return img;
}

}  // namespace

TEST_CASE("program position: values, not reported, and refused values that leave the sample valid",
          "[modbus][program][codec]") {
  SECTION("default profile: u16 step and u32 cycle, sentinels = not reported") {
    const RegisterMap m = with_capabilities(default_profile(3), std::uint16_t{0x5F});
    Image img;
    img.input.resize(65536);
    for (std::size_t k = 0; k < 3; ++k) {
      img.put(m.voltage, k, 50.0);
      img.put(m.current, k, 10.0);
      img.put(*m.power, k, 500.0);
      img.put(m.state, k, 1);
    }
    // Channel 1: step 7 of pass 70000 (a cycle beyond 16 bits), written as the spec says: high word first.
    img.input[59000] = 7;
    img.input[59001] = 0x0001;
    img.input[59002] = 0x1170;
    // Channel 2: not reported.
    img.input[59003] = 0xFFFF;
    img.input[59004] = 0xFFFF;
    img.input[59005] = 0xFFFF;
    // Channel 3: the largest values that are reported.
    img.input[59006] = 0xFFFE;
    img.input[59007] = 0xFFFF;
    img.input[59008] = 0xFFFE;
    const auto plan = plan_status_reads(m);
    auto d = decode_sample(m, 0, img.blocks(plan));
    REQUIRE(d.sample.valid);
    CHECK(d.sample.step_index == 7);
    CHECK(d.sample.cycle_index == 70000u);
    CHECK(d.step_error == SampleError::none);
    CHECK(d.cycle_error == SampleError::none);
    d = decode_sample(m, 1, img.blocks(plan));
    CHECK(d.sample.valid);
    CHECK(d.sample.step_index == eqd::core::Sample::kNoStep);
    CHECK(d.sample.cycle_index == eqd::core::Sample::kNoIndex);
    CHECK(d.step_error == SampleError::none);
    CHECK(d.cycle_error == SampleError::none);
    d = decode_sample(m, 2, img.blocks(plan));
    CHECK(d.sample.step_index == 65534);
    CHECK(d.sample.cycle_index == 4294967294u);

    // The block missing (failed read): not reported, no error, sample valid.
    auto blocks = img.blocks(plan);
    REQUIRE(blocks.back().request.address == 59000);
    blocks.back().ok = false;
    d = decode_sample(m, 0, blocks);
    CHECK(d.sample.valid);
    CHECK(d.sample.step_index == eqd::core::Sample::kNoStep);
    CHECK(d.step_error == SampleError::none);
    // Gated and not yet applied: ignored.
    d = decode_sample(default_profile(3), 0, img.blocks(plan));
    CHECK(d.sample.valid);
    CHECK(d.sample.cycle_index == eqd::core::Sample::kNoIndex);
    // An invalid sample carries no position.
    img.put(m.voltage, 0, 5000.0);
    d = decode_sample(m, 0, img.blocks(plan));
    CHECK_FALSE(d.sample.valid);
    CHECK(d.sample.step_index == eqd::core::Sample::kNoStep);
  }
  SECTION("custom map: a negative step is refused, the cycle beside it still reported") {
    const RegisterMap m = program_map(make(DataType::i16), make(DataType::i32));
    Image img = status_image(m);
    img.put(*m.step_index, 0, -3);
    img.put(*m.cycle_index, 0, 12);
    img.put(*m.step_index, 1, 4);
    img.put(*m.cycle_index, 1, -1);
    encode_not_available(*m.step_index, img.input.data() + channel_address(*m.step_index, 2));  // 0x8000
    encode_not_available(*m.cycle_index, img.input.data() + channel_address(*m.cycle_index, 2));
    const auto plan = plan_status_reads(m);
    auto d = decode_sample(m, 0, img.blocks(plan));
    REQUIRE(d.error == SampleError::none);
    CHECK(d.sample.valid);
    CHECK(d.sample.power_W == Approx(500.0));
    CHECK(d.step_error == SampleError::out_of_range);
    CHECK(d.step_raw == Approx(-3.0));
    CHECK(d.sample.step_index == eqd::core::Sample::kNoStep);
    CHECK(d.cycle_error == SampleError::none);
    CHECK(d.sample.cycle_index == 12u);
    d = decode_sample(m, 1, img.blocks(plan));
    CHECK(d.sample.valid);
    CHECK(d.sample.step_index == 4);
    CHECK(d.cycle_error == SampleError::out_of_range);
    CHECK(d.sample.cycle_index == eqd::core::Sample::kNoIndex);
    d = decode_sample(m, 2, img.blocks(plan));  // the sentinels: not reported, no error
    CHECK(d.sample.valid);
    CHECK(d.step_error == SampleError::none);
    CHECK(d.cycle_error == SampleError::none);
    CHECK(d.sample.step_index == eqd::core::Sample::kNoStep);
    CHECK(d.sample.cycle_index == eqd::core::Sample::kNoIndex);
  }
  SECTION("custom map: a step beyond 65534, a fractional or infinite value are refused") {
    const RegisterMap m = program_map(make(DataType::u32), make(DataType::f32));
    Image img = status_image(m);
    img.put(*m.step_index, 0, 65535);  // would read as the sample's own "not reported"
    img.put(*m.cycle_index, 0, 2.5);
    img.put(*m.step_index, 1, 70000);
    const auto a = channel_address(*m.cycle_index, 1);
    img.input[a] = 0x7F80;  // +inf
    img.input[a + 1] = 0;
    img.put(*m.step_index, 2, 65534);
    img.put(*m.cycle_index, 2, 3);
    const auto plan = plan_status_reads(m);
    auto d = decode_sample(m, 0, img.blocks(plan));
    CHECK(d.sample.valid);
    CHECK(d.step_error == SampleError::out_of_range);
    CHECK(d.cycle_error == SampleError::out_of_range);
    CHECK(d.sample.step_index == eqd::core::Sample::kNoStep);
    CHECK(d.sample.cycle_index == eqd::core::Sample::kNoIndex);
    d = decode_sample(m, 1, img.blocks(plan));
    CHECK(d.sample.valid);
    CHECK(d.step_error == SampleError::out_of_range);
    CHECK(d.step_raw == Approx(70000.0));
    CHECK(d.cycle_error == SampleError::not_finite);
    d = decode_sample(m, 2, img.blocks(plan));
    CHECK(d.step_error == SampleError::none);
    CHECK(d.sample.step_index == 65534);
    CHECK(d.sample.cycle_index == 3u);
  }
  SECTION("custom map: scale and offset apply before the check") {
    const RegisterMap m = program_map(make(DataType::u16, WordOrder::big, 1.0, -1.0),  // device counts from 1
                                      make(DataType::u16, WordOrder::big, 1.0, -1.0));
    Image img = status_image(m);
    img.input[2000] = 1;  // step 1 on the device = 0 in eqd
    img.input[3000] = 0;  // -1: refused
    const auto d = decode_sample(m, 0, img.blocks(plan_status_reads(m)));
    CHECK(d.sample.valid);
    CHECK(d.sample.step_index == 0);
    CHECK(d.cycle_error == SampleError::out_of_range);
  }
}
