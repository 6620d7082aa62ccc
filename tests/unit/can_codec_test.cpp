// CAN signal maps and codec: bit packing (Intel/Motorola, signed), map validation, the default
// profiles' round trips, and frame conversion to the kernel's structs. Pure: no sockets.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstring>
#include <random>

#include "eqd/io/can/codec.hpp"
#include "eqd/io/can/signal_map.hpp"
#include "eqd/io/can/socket.hpp"

using namespace eqd::io::can;
using eqd::core::ChannelState;

namespace {

Signal mk(std::uint16_t start, std::uint8_t len, ByteOrder o = ByteOrder::little, bool is_signed = false) {
  Signal s;
  s.name = "x";
  s.start_bit = start;
  s.length = len;
  s.order = o;
  s.is_signed = is_signed;
  return s;
}

bool has_issue(const std::vector<MapIssue>& v, const std::string& where, const std::string& text) {
  for (const auto& i : v)
    if (i.where == where && i.message.find(text) != std::string::npos) return true;
  return false;
}

std::string dump(const std::vector<MapIssue>& v) {
  std::string s;
  for (const auto& i : v) s += i.where + ": " + i.message + "\n";
  return s;
}

}  // namespace

TEST_CASE("little endian signals pack LSB first from the start bit", "[can][codec]") {
  std::uint8_t d[8] = {};
  insert_raw(mk(8, 16), 0x1234, d);
  CHECK(d[1] == 0x34);
  CHECK(d[2] == 0x12);
  CHECK(extract_raw(mk(8, 16), d) == 0x1234);
  // An unaligned 12-bit value starting at bit 4.
  std::uint8_t e[8] = {};
  insert_raw(mk(4, 12), 0xABC, e);
  CHECK(e[0] == 0xC0);
  CHECK(e[1] == 0xAB);
  CHECK(extract_raw(mk(4, 12), e) == 0xABC);
}

TEST_CASE("big endian (Motorola) signals follow DBC sawtooth numbering", "[can][codec]") {
  std::uint8_t d[8] = {};
  // 16 bits with MSB at bit 7: plain big-endian bytes 0..1.
  insert_raw(mk(7, 16, ByteOrder::big), 0x1234, d);
  CHECK(d[0] == 0x12);
  CHECK(d[1] == 0x34);
  CHECK(extract_raw(mk(7, 16, ByteOrder::big), d) == 0x1234);
  // 12 bits with MSB at bit 3 of byte 0: low nibble of byte 0, then all of byte 1.
  std::uint8_t e[8] = {};
  insert_raw(mk(3, 12, ByteOrder::big), 0xABC, e);
  CHECK(e[0] == 0x0A);
  CHECK(e[1] == 0xBC);
}

TEST_CASE("signed signals sign-extend and scale", "[can][codec]") {
  Signal s = mk(0, 16, ByteOrder::little, true);
  s.scale = 0.01;
  std::uint8_t d[8] = {};
  REQUIRE(encode_signal(s, -12.34, d) == CodecStatus::ok);
  CHECK(d[0] == 0x2E);  // -1234 = 0xFB2E
  CHECK(d[1] == 0xFB);
  CHECK(decode_signal(s, d) == Approx(-12.34));
  CHECK(encode_signal(s, 327.67, d) == CodecStatus::ok);
  CHECK(encode_signal(s, 327.68, d) == CodecStatus::out_of_range);
  CHECK(encode_signal(s, -327.69, d) == CodecStatus::out_of_range);
  CHECK(encode_signal(s, std::nan(""), d) == CodecStatus::not_finite);
  Signal u = mk(0, 8);
  CHECK(encode_signal(u, -1.0, d) == CodecStatus::out_of_range);
  CHECK(encode_signal(u, 256.0, d) == CodecStatus::out_of_range);
}

TEST_CASE("random signals round trip and leave other bits alone", "[can][codec]") {
  std::mt19937 rng(42);
  for (int n = 0; n < 5000; ++n) {
    const auto len = static_cast<std::uint8_t>(1 + rng() % 64);
    const bool big = (rng() & 1U) != 0;
    Signal s = mk(0, len, big ? ByteOrder::big : ByteOrder::little, (rng() & 1U) != 0);
    // Pick a start bit that keeps the signal inside 64 bytes.
    if (big) {
      const auto byte = static_cast<unsigned>(rng() % (64 - (len + 7) / 8));
      s.start_bit = static_cast<std::uint16_t>(byte * 8 + 7);
    } else {
      s.start_bit = static_cast<std::uint16_t>(rng() % (512 - len));
    }
    std::uint8_t d[64];
    for (auto& b : d) b = static_cast<std::uint8_t>(rng());
    std::uint8_t before[64];
    std::memcpy(before, d, sizeof d);
    const std::uint64_t mask = len == 64 ? ~0ULL : (1ULL << len) - 1;
    const std::uint64_t raw = (static_cast<std::uint64_t>(rng()) << 32 | rng()) & mask;
    insert_raw(s, raw, d);
    std::uint64_t got = extract_raw(s, d);
    if (s.is_signed) got &= mask;
    REQUIRE(got == raw);
    // Re-inserting the original bits restores the frame: nothing outside the signal was touched.
    insert_raw(s, extract_raw(s, before), d);
    REQUIRE(std::memcmp(d, before, sizeof d) == 0);
  }
}

TEST_CASE("built-in profiles are valid", "[can][map]") {
  CHECK(validate_map(default_can_profile(16)).empty());
  CHECK(validate_map(default_can_profile(255)).empty());
  CHECK(validate_map(default_can_fd_profile(64)).empty());
  CHECK(validate_ids(default_can_profile(16), 127).empty());
  // Highest identifier: the program frame, 0x500 + node id. Node ids up to 0x2FF fit in 11 bits.
  CHECK(validate_ids(default_can_profile(16), 0x2FF).empty());
  CHECK(validate_ids(default_can_fd_profile(16), 0x2FF).empty());
  CHECK_FALSE(validate_ids(default_can_profile(16), 0x300).empty());
  CHECK_FALSE(validate_ids(default_can_profile(16), 0x400).empty());
  CHECK_FALSE(validate_ids(default_can_profile(16), 0x500).empty());
}

TEST_CASE("map validation names overlapping signals and the bit", "[can][map]") {
  SignalMap m = default_can_profile(16);
  m.frames[0].signals[1].start_bit = 4;  // voltage over channel's bits
  const auto v = validate_map(m);
  INFO(dump(v));
  CHECK(has_issue(v, "frames[0].signals[1].start_bit", "overlaps signal 'channel'"));
}

TEST_CASE("map validation catches signals beyond the frame and bad lengths", "[can][map]") {
  SignalMap m = default_can_profile(16);
  m.frames[0].length = 6;  // counter (bits 56..63) and fault (48..55) no longer fit
  auto v = validate_map(m);
  INFO(dump(v));
  CHECK(has_issue(v, "frames[0].signals[5].start_bit", "beyond the frame's 6 bytes"));
  CHECK(has_issue(v, "frames[0].signals[6].start_bit", "beyond the frame's 6 bytes"));

  m = default_can_profile(16);
  m.frames[0].length = 12;  // FD length on a classic frame
  v = validate_map(m);
  CHECK(has_issue(v, "frames[0].length", "not a valid classic CAN length"));
  m.frames[0].fd = true;
  CHECK(validate_map(m).empty());
  m.frames[0].length = 13;
  CHECK(has_issue(validate_map(m), "frames[0].length", "not a valid CAN FD length"));

  m = default_can_profile(16);
  m.frames[1].signals[3].length = 0;
  CHECK(has_issue(validate_map(m), "frames[1].signals[3].length", "expected 1..64"));
  m.frames[1].signals[3].length = 65;
  CHECK(has_issue(validate_map(m), "frames[1].signals[3].length", "expected 1..64"));

  // Motorola signal running off the end of the frame.
  m = default_can_profile(16);
  m.frames[2].signals[0].order = ByteOrder::big;
  m.frames[2].signals[0].start_bit = 15;  // MSB in byte 1: the LSB would land in byte 2 of 2
  CHECK(has_issue(validate_map(m), "frames[2].signals[0].start_bit", "beyond the frame"));
  m.frames[2].signals[0].start_bit = 7;
  CHECK(validate_map(m).empty());
}

TEST_CASE("map validation catches ids out of range and shared ids", "[can][map]") {
  SignalMap m = default_can_profile(16);
  m.frames[0].id = 0x800;
  CHECK(has_issue(validate_map(m), "frames[0].id", "beyond 11 bits"));
  m.frames[0].extended = true;
  CHECK(validate_map(m).empty());
  m.frames[0].id = 0x20000000;
  CHECK(has_issue(validate_map(m), "frames[0].id", "beyond 29 bits"));

  m = default_can_profile(16);
  m.frames[1].id = 0x100;  // command on the status id
  CHECK(has_issue(validate_map(m), "frames[1].id", "share identifier"));

  // Per-channel ids that run beyond 11 bits only for a large node id.
  m = default_can_profile(16);
  m.frames[0].signals.erase(m.frames[0].signals.begin());  // no channel signal: multiplex by id
  m.frames[0].id = 0x600;
  m.frames[0].id_stride = 0x10;
  CHECK(validate_map(m).empty());
  CHECK(validate_ids(m, 1).empty());
  CHECK(has_issue(validate_ids(m, 0x200), "frames[0].id", "beyond 11 bits"));
}

TEST_CASE("map validation: multiplexing and required signals", "[can][map]") {
  SignalMap m = default_can_profile(16);
  m.frames[0].signals.erase(m.frames[0].signals.begin());  // drop channel
  CHECK(has_issue(validate_map(m), "frames[0]", "cannot be told apart"));
  m = default_can_profile(300);
  CHECK(has_issue(validate_map(m), "frames[0].signals", "cannot carry channel 300"));
  m = default_can_profile(16);
  m.frames[0].signals.erase(m.frames[0].signals.begin() + 1);  // drop voltage
  CHECK(has_issue(validate_map(m), "frames[0].signals", "missing required signal 'voltage'"));
  m = default_can_profile(16);
  m.frames[0].signals[2].name = "curent";
  CHECK(has_issue(validate_map(m), "frames[0].signals[2].name", "unknown status signal 'curent'"));
  m = default_can_profile(16);
  m.frames.erase(m.frames.begin() + 1);
  CHECK(has_issue(validate_map(m), "frames", "missing the 'command' frame"));
  m = default_can_profile(16);
  m.frames[0].signals[1].scale = 0.0;
  CHECK(has_issue(validate_map(m), "frames[0].signals[1].scale", "not 0"));
}

TEST_CASE("codec: status frames round trip through the default profile", "[can][codec]") {
  const Codec c(default_can_profile(16), 5);
  StatusValues v;
  v.voltage_V = 3.71;
  v.current_A = -20.5;
  v.state_code = static_cast<std::uint16_t>(ChannelState::equalizing);
  v.fault_code = 7;
  v.equalizing = true;
  v.counter = 300;  // wraps to 8 bits
  Frame f;
  const char* field = "";
  REQUIRE(c.encode_status(11, v, f, field) == CodecStatus::ok);
  CHECK(f.id == 0x105);
  CHECK(f.len == 8);
  CHECK_FALSE(f.fd);
  CHECK(c.match(f).kind == FrameMatch::Kind::status);
  eqd::core::Sample s;
  std::size_t k = 99;
  REQUIRE(c.decode_status(f, s, k, field) == CodecStatus::ok);
  CHECK(k == 11);
  CHECK(s.voltage_V == Approx(3.71));
  CHECK(s.current_A == Approx(-20.5));
  CHECK(s.power_W == Approx(3.71 * -20.5));
  CHECK(s.state == ChannelState::equalizing);
  CHECK(s.fault_code == 7);
  CHECK(s.equalization_mode);
  CHECK(s.sequence == 300 % 256);
  CHECK(s.valid);
}

TEST_CASE("codec: FD status frame carries power and 16-bit counters", "[can][codec]") {
  const Codec c(default_can_fd_profile(32), 1);
  CHECK(c.uses_fd());
  StatusValues v;
  v.voltage_V = 812.345;
  v.current_A = 150.25;
  v.power_W = 122000.5;
  v.fault_code = 4000;
  v.counter = 60000;
  Frame f;
  const char* field = "";
  REQUIRE(c.encode_status(31, v, f, field) == CodecStatus::ok);
  CHECK(f.fd);
  CHECK(f.len == 20);
  eqd::core::Sample s;
  std::size_t k = 0;
  REQUIRE(c.decode_status(f, s, k, field) == CodecStatus::ok);
  CHECK(k == 31);
  CHECK(s.voltage_V == Approx(812.345));
  CHECK(s.power_W == Approx(122000.5));
  CHECK(s.fault_code == 4000);
  CHECK(s.sequence == 60000);
}

TEST_CASE("codec: bad status frames are refused with the field named", "[can][codec]") {
  const Codec c(default_can_profile(16), 1);
  StatusValues v;
  Frame f;
  const char* field = "";
  REQUIRE(c.encode_status(0, v, f, field) == CodecStatus::ok);
  eqd::core::Sample s;
  std::size_t k = 0;
  Frame g = f;
  g.data[0] = 17;  // channel 17 of 16
  CHECK(c.decode_status(g, s, k, field) == CodecStatus::wrong_channel);
  CHECK(std::string(field) == "channel");
  g = f;
  g.data[0] = 0;  // channel numbers are 1-based
  CHECK(c.decode_status(g, s, k, field) == CodecStatus::wrong_channel);
  g = f;
  g.data[5] = 0x09;  // state code 9
  CHECK(c.decode_status(g, s, k, field) == CodecStatus::bad_value);
  CHECK(std::string(field) == "state");
  g = f;
  g.len = 7;
  CHECK(c.decode_status(g, s, k, field) == CodecStatus::short_frame);
  g = f;
  g.extended = true;  // same number, other identifier space
  CHECK(c.match(g).kind == FrameMatch::Kind::none);
}

TEST_CASE("codec: commands encode for the controller and never wrap", "[can][codec]") {
  const Codec c(default_can_profile(16), 3);
  eqd::core::Command cmd;
  cmd.equalize = true;
  cmd.setpoint_W = -1234.5;
  cmd.lease_ms = 5000;
  Frame f;
  const char* field = "";
  REQUIRE(c.encode_command(2, cmd, f, field) == CodecStatus::ok);
  CHECK(f.id == 0x203);
  DecodedCommand d;
  REQUIRE(c.decode_command(f, d, field) == CodecStatus::ok);
  CHECK(d.channel == 2);
  CHECK(d.equalize);
  CHECK(d.setpoint_W == Approx(-1234.5));
  CHECK(d.lease_ms == 5000);
  // A stop carries 0 W whatever the setpoint field said.
  cmd.equalize = false;
  REQUIRE(c.encode_command(2, cmd, f, field) == CodecStatus::ok);
  REQUIRE(c.decode_command(f, d, field) == CodecStatus::ok);
  CHECK_FALSE(d.equalize);
  CHECK(d.setpoint_W == 0.0);
  // Out of range: no frame, field named.
  cmd.equalize = true;
  cmd.lease_ms = 70000;  // 16-bit lease
  Frame before = f;
  CHECK(c.encode_command(2, cmd, f, field) == CodecStatus::out_of_range);
  CHECK(std::string(field) == "lease");
  CHECK(std::memcmp(&before, &f, sizeof f) == 0);
  cmd.lease_ms = 1000;
  cmd.setpoint_W = std::nan("");
  CHECK(c.encode_command(2, cmd, f, field) == CodecStatus::not_finite);
  cmd.setpoint_W = 3e8;  // beyond i32 * 0.1 W
  CHECK(c.encode_command(2, cmd, f, field) == CodecStatus::out_of_range);
  CHECK(c.encode_command(16, cmd, f, field) == CodecStatus::wrong_channel);
  // The controller side refuses an enable that is neither 0 nor 1.
  cmd.setpoint_W = 10;
  REQUIRE(c.encode_command(0, cmd, f, field) == CodecStatus::ok);
  f.data[1] = 2;
  CHECK(c.decode_command(f, d, field) == CodecStatus::bad_value);
}

TEST_CASE("codec: heartbeat counter wraps at its width", "[can][codec]") {
  const Codec c(default_can_profile(16), 9);
  Frame f;
  REQUIRE(c.encode_heartbeat(65536 + 5, f));
  CHECK(f.id == 0x309);
  std::uint32_t v = 0;
  REQUIRE(c.decode_heartbeat(f, v) == CodecStatus::ok);
  CHECK(v == 5);
}

TEST_CASE("codec: per-id multiplexing with extended identifiers", "[can][codec]") {
  SignalMap m = default_can_profile(4);
  m.frames[0].signals.erase(m.frames[0].signals.begin());
  m.frames[0].extended = true;
  m.frames[0].id = 0x18FF0000;
  m.frames[0].id_stride = 0x100;
  REQUIRE(validate_map(m).empty());
  const Codec c(m, 0x20);
  StatusValues v;
  v.voltage_V = 1.0;
  Frame f;
  const char* field = "";
  REQUIRE(c.encode_status(3, v, f, field) == CodecStatus::ok);
  CHECK(f.extended);
  CHECK(f.id == 0x18FF0320);
  eqd::core::Sample s;
  std::size_t k = 0;
  REQUIRE(c.decode_status(f, s, k, field) == CodecStatus::ok);
  CHECK(k == 3);
  f.id += 0x80;  // between two channels' ids
  CHECK(c.match(f).kind == FrameMatch::Kind::none);
}

TEST_CASE("codec construction refuses an invalid map with every problem", "[can][codec]") {
  SignalMap m = default_can_profile(16);
  m.frames[0].signals[1].start_bit = 4;
  m.frames[1].id = 0x900;
  try {
    const Codec c(m, 1);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string w = e.what();
    CHECK(w.find("overlaps") != std::string::npos);
    CHECK(w.find("frames[1].id") != std::string::npos);
  }
}

TEST_CASE("kernel frame conversion", "[can][wire]") {
  Frame f;
  f.id = 0x123;
  f.len = 3;
  f.data[0] = 1;
  f.data[2] = 3;
  canfd_frame w{};
  REQUIRE(to_wire(f, w) == CAN_MTU);
  CHECK(w.can_id == 0x123);
  Frame g;
  REQUIRE(from_wire(&w, CAN_MTU, g));
  CHECK(g.id == 0x123);
  CHECK(g.len == 3);
  CHECK(g.data[2] == 3);
  CHECK_FALSE(g.fd);
  f.extended = true;
  f.id = 0x1ABCDEF0;
  REQUIRE(to_wire(f, w) == CAN_MTU);
  CHECK(w.can_id == (0x1ABCDEF0 | CAN_EFF_FLAG));
  f.fd = true;
  f.len = 64;
  REQUIRE(to_wire(f, w) == CANFD_MTU);
  REQUIRE(from_wire(&w, CANFD_MTU, g));
  CHECK(g.fd);
  CHECK(g.len == 64);
  // Malformed input: wrong sizes and impossible lengths are refused.
  CHECK_FALSE(from_wire(&w, 15, g));
  CHECK_FALSE(from_wire(&w, 17, g));
  can_frame bad{};
  bad.len = 9;
  CHECK_FALSE(from_wire(&bad, CAN_MTU, g));
  f.fd = false;
  f.len = 12;
  CHECK(to_wire(f, w) == 0);
  // Error frames keep their class bits.
  canfd_frame e{};
  e.can_id = CAN_ERR_FLAG | 0x40;
  e.len = 8;
  REQUIRE(from_wire(&e, CAN_MTU, g));
  CHECK(g.error);
  CHECK(g.id == 0x40);
}

TEST_CASE("kernel filters match exactly the ids in use", "[can][wire]") {
  const Codec c(default_can_profile(16), 2);
  const auto f = make_filters(c.ids());
  REQUIRE(f.size() == 5);  // status, command, heartbeat, forecast, program
  CHECK(f[0].can_id == 0x102);
  CHECK((f[0].can_mask & CAN_EFF_FLAG) != 0);
  CHECK(f[3].can_id == 0x402);
  CHECK(f[4].can_id == 0x502);
}

// ------------------------------------------------------------------------------ announced forecasts

TEST_CASE("forecast: both built-in profiles have the classic forecast frame 0x400 + node id", "[can][forecast][map]") {
  for (const SignalMap& m : {default_can_profile(16), default_can_fd_profile(16)}) {
    INFO(m.name);
    const FrameLayout* f = m.frame(FrameRole::forecast);
    REQUIRE(f != nullptr);
    CHECK(f->id == 0x400);
    CHECK_FALSE(f->fd);
    CHECK(f->length == 8);
    const Signal* w = f->find("forecast_power");
    REQUIRE(w != nullptr);
    CHECK(w->start_bit == 8);
    CHECK(w->length == 32);
    CHECK(w->is_signed);
    CHECK(w->scale == 0.1);
    CHECK(f->find("channel") != nullptr);
    CHECK(m.frame(FrameRole::status)->find("forecast_power") == nullptr);
    const Codec c(m, 7);
    CHECK(c.has_forecast_frame());
    CHECK_FALSE(c.forecast_in_status());
    // The kernel filter takes the forecast frame too.
    CHECK(std::find(c.ids().begin(), c.ids().end(), FrameId{0x407, false, FrameRole::forecast}) != c.ids().end());
  }
}

TEST_CASE("forecast: not-available raw values", "[can][forecast][codec]") {
  std::uint8_t d[8] = {};
  const Signal s32 = mk(8, 32, ByteOrder::little, true);
  CHECK_FALSE(is_not_available(s32, d));
  insert_not_available(s32, d);
  CHECK(is_not_available(s32, d));
  CHECK(d[1] == 0x00);
  CHECK(d[4] == 0x80);  // 0x80000000, little endian from byte 1
  CHECK(d[0] == 0x00);  // nothing else touched
  const Signal u12 = mk(3, 12, ByteOrder::big, false);
  std::uint8_t e[8] = {};
  insert_not_available(u12, e);
  CHECK(is_not_available(u12, e));
  CHECK(extract_raw(u12, e) == 0xFFF);
  REQUIRE(encode_signal(u12, 4094.0, e) == CodecStatus::ok);
  CHECK_FALSE(is_not_available(u12, e));
}

TEST_CASE("forecast: the forecast frame round trips value, none and refuses what it cannot carry",
          "[can][forecast][codec]") {
  const Codec c(default_can_profile(16), 5);
  Frame f;
  const char* field = "";
  REQUIRE(c.encode_forecast(9, -1234.5, f, field) == CodecStatus::ok);
  CHECK(f.id == 0x405);
  CHECK(f.len == 8);
  CHECK(f.data[0] == 10);  // 1-based channel
  CHECK(c.match(f).kind == FrameMatch::Kind::forecast);
  std::size_t k = 99;
  float w = 0.0f;
  REQUIRE(c.decode_forecast(f, k, w, field) == CodecStatus::ok);
  CHECK(k == 9);
  CHECK(w == Approx(-1234.5f));

  REQUIRE(c.encode_forecast(3, std::nan(""), f, field) == CodecStatus::ok);  // nothing announced
  CHECK(f.data[4] == 0x80);
  REQUIRE(c.decode_forecast(f, k, w, field) == CodecStatus::ok);
  CHECK(k == 3);
  CHECK(std::isnan(w));

  // Beyond the signal (32 bits of 0.1 W: +-214 MW) or onto the none value: refused on the controller side.
  CHECK(c.encode_forecast(0, 3.0e8, f, field) == CodecStatus::out_of_range);
  CHECK(std::string(field) == "forecast_power");
  CHECK(c.encode_forecast(0, -214748364.8, f, field) == CodecStatus::out_of_range);
  CHECK(c.encode_forecast(0, std::numeric_limits<double>::infinity(), f, field) == CodecStatus::not_finite);
  CHECK(c.encode_forecast(16, 1.0, f, field) == CodecStatus::wrong_channel);

  SECTION("an implausible value: refused, NaN, channel still known") {
    REQUIRE(c.encode_forecast(2, 1.0e5, f, field) == CodecStatus::ok);
    const SignalMap profile = default_can_profile(16);  // the Signal below lives in it
    const Signal& sig = *profile.frame(FrameRole::forecast)->find("forecast_power");
    REQUIRE(encode_signal(sig, 2.5e6, f.data) == CodecStatus::ok);  // 2.5 MW > kForecastAbsMax_W
    w = 1.0f;
    CHECK(c.decode_forecast(f, k, w, field) == CodecStatus::out_of_range);
    CHECK(k == 2);
    CHECK(std::isnan(w));
    CHECK(std::string(field) == "forecast_power");
    REQUIRE(encode_signal(sig, -kForecastAbsMax_W, f.data) == CodecStatus::ok);  // the bound itself is fine
    CHECK(c.decode_forecast(f, k, w, field) == CodecStatus::ok);
    CHECK(w == Approx(-1.0e6f));
  }
  SECTION("malformed frames") {
    REQUIRE(c.encode_forecast(2, 10.0, f, field) == CodecStatus::ok);
    Frame g = f;
    g.data[0] = 0;
    CHECK(c.decode_forecast(g, k, w, field) == CodecStatus::wrong_channel);
    CHECK(std::string(field) == "channel");
    g = f;
    g.len = 4;
    CHECK(c.decode_forecast(g, k, w, field) == CodecStatus::short_frame);
    g = f;
    g.id = 0x105;  // a status frame's id
    CHECK(c.decode_forecast(g, k, w, field) == CodecStatus::bad_value);
  }
}

namespace {

// A custom FD map that carries forecast_power in its status frame (24 bits of 1 W).
SignalMap fd_with_forecast_in_status() {
  SignalMap m = default_can_fd_profile(8);
  m.name = "fd-fc";
  FrameLayout& st = m.frames[0];
  REQUIRE(st.role == FrameRole::status);
  Signal w;
  w.name = "forecast_power";
  w.start_bit = 136;
  w.length = 24;
  w.is_signed = true;
  st.signals.push_back(w);
  m.frames.erase(std::remove_if(m.frames.begin(), m.frames.end(),
                                [](const FrameLayout& f) { return f.role == FrameRole::forecast; }),
                 m.frames.end());
  return m;
}

}  // namespace

TEST_CASE("forecast: in the status frame of a custom map, a refused one leaves the sample valid",
          "[can][forecast][codec]") {
  const SignalMap m = fd_with_forecast_in_status();
  INFO(dump(validate_map(m)));
  REQUIRE(validate_map(m).empty());
  const Codec c(m, 2);
  CHECK(c.forecast_in_status());
  CHECK_FALSE(c.has_forecast_frame());
  StatusValues v;
  v.voltage_V = 400.0;
  v.current_A = 10.0;
  v.power_W = 4000.0;
  v.state_code = static_cast<std::uint16_t>(ChannelState::running);
  v.forecast_W = -2500.0;
  Frame f;
  const char* field = "";
  REQUIRE(c.encode_status(4, v, f, field) == CodecStatus::ok);
  eqd::core::Sample s;
  std::size_t k = 0;
  CodecStatus fst = CodecStatus::bad_value;
  REQUIRE(c.decode_status(f, s, k, field, fst) == CodecStatus::ok);
  CHECK(fst == CodecStatus::ok);
  CHECK(k == 4);
  CHECK(s.valid);
  CHECK(s.forecast_W == -2500.0f);
  CHECK(s.power_W == Approx(4000.0));

  v.forecast_W = std::nan("");
  REQUIRE(c.encode_status(4, v, f, field) == CodecStatus::ok);
  REQUIRE(c.decode_status(f, s, k, field, fst) == CodecStatus::ok);
  CHECK(fst == CodecStatus::ok);
  CHECK(std::isnan(s.forecast_W));

  // 24 bits of 1 W reach +-8.4 MW: 5 MW fits the signal but is implausible.
  v.forecast_W = 5.0e6;
  REQUIRE(c.encode_status(4, v, f, field) == CodecStatus::ok);
  REQUIRE(c.decode_status(f, s, k, field, fst) == CodecStatus::ok);
  CHECK(fst == CodecStatus::out_of_range);
  CHECK(s.valid);
  CHECK(s.voltage_V == Approx(400.0));
  CHECK(std::isnan(s.forecast_W));
  // The 4-argument form is the same, without the forecast's status.
  REQUIRE(c.decode_status(f, s, k, field) == CodecStatus::ok);
  CHECK(s.valid);
  CHECK(std::isnan(s.forecast_W));
}

TEST_CASE("forecast: map validation", "[can][forecast][map]") {
  SECTION("in both the status and the forecast frame") {
    SignalMap m = fd_with_forecast_in_status();
    SignalMap d = default_can_fd_profile(8);
    m.frames.push_back(*d.frame(FrameRole::forecast));
    const auto v = validate_map(m);
    INFO(dump(v));
    CHECK(has_issue(v, "frames[4].signals[1].name", "also in the status frame"));  // after the program frame
  }
  SECTION("unsigned without a negative offset") {
    SignalMap m = default_can_profile(16);
    Signal& w = m.frames[3].signals[1];
    REQUIRE(w.name == "forecast_power");
    w.is_signed = false;
    CHECK(has_issue(validate_map(m), "frames[3].signals[1].signed", "cannot carry a discharging"));
    w.offset = -1.0e6;
    CHECK(validate_map(m).empty());
  }
  SECTION("overlapping another signal of the forecast frame") {
    SignalMap m = default_can_profile(16);
    m.frames[3].signals[1].start_bit = 4;
    CHECK(has_issue(validate_map(m), "frames[3].signals[1].start_bit", "overlaps signal 'channel'"));
  }
  SECTION("beyond the frame") {
    SignalMap m = default_can_profile(16);
    m.frames[3].length = 4;
    CHECK(has_issue(validate_map(m), "frames[3].signals[1].start_bit", "beyond the frame's 4 bytes"));
  }
  SECTION("no way to tell channels apart") {
    SignalMap m = default_can_profile(16);
    m.frames[3].signals.erase(m.frames[3].signals.begin());  // no channel signal, no id_stride
    CHECK(has_issue(validate_map(m), "frames[3]", "channels cannot be told apart"));
  }
  SECTION("a forecast frame without forecast_power; unknown signals") {
    SignalMap m = default_can_profile(16);
    m.frames[3].signals[1].name = "voltage";
    const auto v = validate_map(m);
    CHECK(has_issue(v, "frames[3].signals[1].name", "unknown forecast signal 'voltage'"));
    CHECK(has_issue(v, "frames[3].signals", "missing required signal 'forecast_power'"));
  }
  SECTION("a second forecast frame; shared identifiers") {
    SignalMap m = default_can_profile(16);
    m.frames.push_back(m.frames[3]);
    CHECK(has_issue(validate_map(m), "frames[5].role", "a second 'forecast' frame"));  // after the program frame
    SignalMap s = default_can_profile(16);
    s.frames[3].id = 0x300;
    CHECK(has_issue(validate_ids(s, 1), "frames[3].id", "share identifier"));
  }
}

// ------------------------------------------------------------------------------- program position

TEST_CASE("program: both built-in profiles have the classic program frame 0x500 + node id", "[can][program][map]") {
  for (const SignalMap& m : {default_can_profile(16), default_can_fd_profile(16)}) {
    INFO(m.name);
    const FrameLayout* f = m.frame(FrameRole::program);
    REQUIRE(f != nullptr);
    CHECK(f->id == 0x500);
    CHECK_FALSE(f->fd);
    CHECK_FALSE(f->extended);
    CHECK(f->length == 8);
    const Codec c(m, 7);
    CHECK(c.has_program_frame());
    CHECK_FALSE(c.program_in_status());
    CHECK(std::find(c.ids().begin(), c.ids().end(), FrameId{0x507, false, FrameRole::program}) != c.ids().end());

    // The frame as docs/can-profile.md draws it, byte by byte: channel 3, step 0x0102, cycle 0x0A0B0C0D.
    Frame fr;
    fr.id = 0x507;
    fr.len = 8;
    const std::uint8_t bytes[8] = {3, 0x02, 0x01, 0x0D, 0x0C, 0x0B, 0x0A, 0};
    std::copy(std::begin(bytes), std::end(bytes), fr.data);
    CHECK(c.match(fr).kind == FrameMatch::Kind::program);
    std::size_t k = 99;
    ProgramPosition p;
    const char* field = "";
    REQUIRE(c.decode_program(fr, k, p, field) == CodecStatus::ok);
    CHECK(k == 2);
    CHECK(p.step_index == 0x0102);
    CHECK(p.cycle_index == 0x0A0B0C0Du);
    CHECK(p.step == CodecStatus::ok);
    CHECK(p.cycle == CodecStatus::ok);
    // And the controller side of the codec writes the same bytes.
    Frame out;
    REQUIRE(c.encode_program(2, 0x0102, 0x0A0B0C0D, out, field) == CodecStatus::ok);
    CHECK(out.id == 0x507);
    CHECK(out.len == 8);
    CHECK(std::equal(std::begin(bytes), std::end(bytes), out.data));
  }
}

TEST_CASE("program: not reported, refused values and malformed frames", "[can][program][codec]") {
  const Codec c(default_can_profile(4), 1);
  Frame f;
  const char* field = "";
  std::size_t k = 0;
  ProgramPosition p;
  SECTION("the sentinels: not reported, no error") {
    REQUIRE(c.encode_program(0, eqd::core::Sample::kNoStep, eqd::core::Sample::kNoIndex, f, field) == CodecStatus::ok);
    CHECK(f.data[1] == 0xFF);
    CHECK(f.data[2] == 0xFF);
    CHECK(f.data[3] == 0xFF);
    CHECK(f.data[6] == 0xFF);
    REQUIRE(c.decode_program(f, k, p, field) == CodecStatus::ok);
    CHECK(p.step_index == eqd::core::Sample::kNoStep);
    CHECK(p.cycle_index == eqd::core::Sample::kNoIndex);
    CHECK(p.step == CodecStatus::ok);
    CHECK(p.cycle == CodecStatus::ok);
  }
  SECTION("largest reported values round trip") {
    REQUIRE(c.encode_program(3, 65534, 4294967294u, f, field) == CodecStatus::ok);
    REQUIRE(c.decode_program(f, k, p, field) == CodecStatus::ok);
    CHECK(k == 3);
    CHECK(p.step_index == 65534);
    CHECK(p.cycle_index == 4294967294u);
  }
  SECTION("short frame and bad channel: the frame is unusable") {
    REQUIRE(c.encode_program(0, 1, 2, f, field) == CodecStatus::ok);
    Frame s = f;
    s.len = 7;
    CHECK(c.decode_program(s, k, p, field) == CodecStatus::short_frame);
    s = f;
    s.data[0] = 5;  // channel 5 of 4
    CHECK(c.decode_program(s, k, p, field) == CodecStatus::wrong_channel);
    CHECK(std::string(field) == "channel");
    s.data[0] = 0;
    CHECK(c.decode_program(s, k, p, field) == CodecStatus::wrong_channel);
    CHECK(c.encode_program(4, 1, 2, f, field) == CodecStatus::wrong_channel);
  }
  SECTION("a custom map whose signals can hold what the sample cannot: refused one by one") {
    SignalMap m = default_can_profile(4);
    FrameLayout& pg = m.frames.back();
    REQUIRE(pg.role == FrameRole::program);
    pg.signals[1].is_signed = true;  // step_index: signed 16 bits
    pg.signals[2].length = 32;
    pg.signals[2].scale = 0.5;  // cycle_index in half counts: odd raw values are not whole
    REQUIRE(validate_map(m).empty());
    const Codec cc(m, 1);
    Frame g;
    g.id = 0x501;
    g.len = 8;
    g.data[0] = 1;
    g.data[1] = 0xFD;  // step -3
    g.data[2] = 0xFF;
    g.data[3] = 8;  // cycle 4
    REQUIRE(cc.decode_program(g, k, p, field) == CodecStatus::ok);
    CHECK(p.step == CodecStatus::out_of_range);
    CHECK(p.step_index == eqd::core::Sample::kNoStep);
    CHECK(p.cycle == CodecStatus::ok);
    CHECK(p.cycle_index == 4u);
    g.data[1] = 5;
    g.data[2] = 0;
    g.data[3] = 9;  // cycle 4.5
    REQUIRE(cc.decode_program(g, k, p, field) == CodecStatus::ok);
    CHECK(p.step == CodecStatus::ok);
    CHECK(p.step_index == 5);
    CHECK(p.cycle == CodecStatus::out_of_range);
    CHECK(p.cycle_index == eqd::core::Sample::kNoIndex);
    g.data[1] = 0x00;  // step raw 0x8000: the signed "not available"
    g.data[2] = 0x80;
    REQUIRE(cc.decode_program(g, k, p, field) == CodecStatus::ok);
    CHECK(p.step == CodecStatus::ok);
    CHECK(p.step_index == eqd::core::Sample::kNoStep);
  }
}

TEST_CASE("program: in the status frame of a custom map, a refused value leaves the sample valid",
          "[can][program][codec]") {
  SignalMap m;
  m.name = "fd-program";
  m.channel_count = 4;
  FrameLayout st;
  st.role = FrameRole::status;
  st.id = 0x120;
  st.length = 12;
  st.fd = true;
  auto sg = [](const char* n, std::uint16_t start, std::uint8_t len, bool sgn = false, double scale = 1.0) {
    Signal s;
    s.name = n;
    s.start_bit = start;
    s.length = len;
    s.is_signed = sgn;
    s.scale = scale;
    return s;
  };
  st.signals = {sg("channel", 0, 8), sg("voltage", 8, 16, false, 0.01), sg("current", 24, 16, true, 0.01),
                sg("state", 40, 4),  sg("step_index", 48, 16, true),    sg("cycle_index", 64, 32)};
  m.frames.push_back(st);
  FrameLayout cmd;
  cmd.role = FrameRole::command;
  cmd.id = 0x220;
  cmd.signals = {sg("channel", 0, 8), sg("enable", 8, 8), sg("setpoint", 32, 32, true, 0.1)};
  m.frames.push_back(cmd);
  REQUIRE(validate_map(m).empty());
  const Codec c(m, 1);
  CHECK(c.program_in_status());
  CHECK_FALSE(c.has_program_frame());
  StatusValues v;
  v.voltage_V = 50.0;
  v.current_A = 2.0;
  v.state_code = 1;
  v.step_index = 6;
  v.cycle_index = 123456;
  Frame f;
  const char* field = "";
  REQUIRE(c.encode_status(1, v, f, field) == CodecStatus::ok);
  eqd::core::Sample s;
  std::size_t k = 0;
  CodecStatus fc = CodecStatus::ok;
  ProgramPosition p;
  REQUIRE(c.decode_status(f, s, k, field, fc, p) == CodecStatus::ok);
  CHECK(k == 1);
  CHECK(s.valid);
  CHECK(s.step_index == 6);
  CHECK(s.cycle_index == 123456u);
  // A negative step (a controller's garbage): not reported, counted by the caller, the sample good.
  Signal step = m.frames[0].signals[4];
  REQUIRE(encode_signal(step, -2.0, f.data) == CodecStatus::ok);
  REQUIRE(c.decode_status(f, s, k, field, fc, p) == CodecStatus::ok);
  CHECK(s.valid);
  CHECK(s.voltage_V == Approx(50.0));
  CHECK(p.step == CodecStatus::out_of_range);
  CHECK(s.step_index == eqd::core::Sample::kNoStep);
  CHECK(s.cycle_index == 123456u);
  // The step signal cannot carry 40000: the controller side refuses rather than wraps.
  v.step_index = 40000;
  CHECK(c.encode_status(1, v, f, field) == CodecStatus::out_of_range);
  CHECK(std::string(field) == "step_index");
}

TEST_CASE("program: map validation", "[can][program][map]") {
  SECTION("step_index in both the status and the program frame") {
    SignalMap m = default_can_fd_profile(4);
    Signal s;
    s.name = "step_index";
    s.start_bit = 136;
    s.length = 16;
    m.frames[0].length = 24;
    m.frames[0].signals.push_back(s);
    const auto v = validate_map(m);
    INFO(dump(v));
    CHECK(has_issue(v, "frames[4].signals[1].name", "step_index is also in the status frame"));
  }
  SECTION("a program frame with neither signal") {
    SignalMap m = default_can_profile(4);
    m.frames.back().signals.resize(1);  // channel only
    const auto v = validate_map(m);
    INFO(dump(v));
    CHECK(has_issue(v, "frames[4].signals", "needs step_index or cycle_index"));
  }
  SECTION("unknown signal in a program frame") {
    SignalMap m = default_can_profile(4);
    m.frames.back().signals[1].name = "step";
    CHECK(has_issue(validate_map(m), "frames[4].signals[1].name", "unknown program signal 'step'"));
  }
  SECTION("a second program frame") {
    SignalMap m = default_can_profile(4);
    m.frames.push_back(m.frames.back());
    m.frames.back().id = 0x580;
    CHECK(has_issue(validate_map(m), "frames[5].role", "a second 'program' frame"));
  }
}
