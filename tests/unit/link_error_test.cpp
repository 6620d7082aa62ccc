// The "eqd.link" error category (io/error.hpp) and the Modbus errno classification.
#include <catch2/catch.hpp>
#include <modbus/modbus.h>

#include <cerrno>
#include <set>
#include <string>

#include "eqd/io/error.hpp"
#include "eqd/io/link.hpp"
#include "eqd/io/modbus/transaction.hpp"

namespace io = eqd::io;

TEST_CASE("link error codes: one category, a stable unique name and a sentence for each", "[io][errors]") {
  const std::error_code ec = io::LinkErrc::timeout;  // implicit: LinkErrc is an error code enum
  CHECK(ec.category() == io::link_category());
  CHECK(std::string(ec.category().name()) == "eqd.link");
  CHECK(ec.value() == 3);  // stable numbering: docs/faults.md and dashboards depend on it
  CHECK(io::link_errc_name(ec.value()) == "timeout");
  CHECK(io::link_errc_name(0).empty());
  CHECK(io::link_errc_name(-1).empty());
  CHECK(io::link_errc_name(static_cast<int>(io::kLinkErrcCount) + 1).empty());
  std::set<std::string> names;
  for (int code = 1; code <= static_cast<int>(io::kLinkErrcCount); ++code) {
    const std::string name(io::link_errc_name(code));
    INFO("code " << code);
    CHECK_FALSE(name.empty());
    CHECK(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos);  // a metric label value
    CHECK(names.insert(name).second);
    const std::string message = io::link_category().message(code);
    CHECK(message.size() > 10);
    CHECK(message != io::link_category().message(0));
  }
  CHECK(io::link_errc_name(static_cast<int>(io::LinkErrc::device_unusable)) == "device_unusable");
  CHECK_THAT(io::link_category().message(99), Catch::Contains("unknown link error 99"));
  CHECK_FALSE(std::error_code{});  // 0 is "no error", as the hook's notices use it
}

TEST_CASE("libmodbus errors map to link error codes", "[io][errors][modbus]") {
  using io::LinkErrc;
  using io::modbus::classify_errno;
  CHECK(classify_errno(ETIMEDOUT) == LinkErrc::timeout);
  CHECK(classify_errno(EMBXILFUN) == LinkErrc::device_exception);
  CHECK(classify_errno(EMBXSBUSY) == LinkErrc::device_exception);
  CHECK(classify_errno(EMBXGTAR) == LinkErrc::device_exception);
  CHECK(classify_errno(EMBBADCRC) == LinkErrc::bad_response);
  CHECK(classify_errno(EMBBADDATA) == LinkErrc::bad_response);
  CHECK(classify_errno(EMBBADSLAVE) == LinkErrc::bad_response);
  CHECK(classify_errno(EMBMDATA) == LinkErrc::bad_response);
  CHECK(classify_errno(ECONNRESET) == LinkErrc::link_lost);
  CHECK(classify_errno(EPIPE) == LinkErrc::link_lost);
}

TEST_CASE("record_link_error keeps the last code, counts per code and calls the hook", "[io][errors]") {
  io::LinkStats st;
  std::error_code seen;
  std::uint16_t seen_channel = 99;
  std::string seen_text;
  const io::LinkErrorHook hook = [&](std::uint16_t ch, std::error_code code, const char* text) {
    seen_channel = ch;
    seen = code;
    seen_text = text;
  };
  std::snprintf(st.last_error, sizeof st.last_error, "cab1/2: power out of range");
  io::record_link_error(st, hook, 2, io::LinkErrc::value_refused);
  io::record_link_error(st, {}, 0, io::LinkErrc::timeout);  // no hook: counted only
  io::record_link_error(st, hook, 0, io::LinkErrc::timeout);
  CHECK(st.last_error_code == static_cast<std::uint8_t>(io::LinkErrc::timeout));
  CHECK(st.errors_by_code[static_cast<std::size_t>(io::LinkErrc::value_refused)] == 1);
  CHECK(st.errors_by_code[static_cast<std::size_t>(io::LinkErrc::timeout)] == 2);
  CHECK(st.errors_by_code[0] == 0);
  CHECK(seen == io::LinkErrc::timeout);
  CHECK(seen_channel == 0);
  CHECK(seen_text == "cab1/2: power out of range");
}
