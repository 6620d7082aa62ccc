// eqctl's tables.
#include <catch2/catch.hpp>

#include "render.hpp"

using namespace eqd::cli;
using nlohmann::json;

TEST_CASE("eqctl render: table columns align and numbers are right-aligned", "[control][cli]") {
  const std::string t = format_table({"NAME", "W"}, {{"cab1/1", "5"}, {"cab1/10", "-1200"}});
  CHECK(t == "NAME     W\ncab1/1       5\ncab1/10  -1200\n");
}

TEST_CASE("eqctl render: units", "[control][cli]") {
  CHECK(format_power(-450.2) == "-450 W");
  CHECK(format_power(1234.0) == "1.23 kW");
  CHECK(format_energy_kWh(3.6e6) == "1.000 kWh");
}

TEST_CASE("eqctl render: missing or mistyped fields print as a dash", "[control][cli]") {
  CHECK_NOTHROW(render_status(json::object()));
  CHECK_NOTHROW(render_status(json{{"buses", json::array({json{{"bus", 3}, {"net_W", "x"}}})}}));
  const std::string s = render_status(json{{"buses", json::array({json{{"bus", "main"}, {"net_W", 1500.0}}})}});
  CHECK(s.find("bus main") != std::string::npos);
  CHECK(s.find("1.50 kW") != std::string::npos);
  const std::string c = render_channels(json{{"channels", json::array({json{{"channel", "cab1/2"}, {"window_pos", 0.5}}})}});
  CHECK(c.find("cab1/2") != std::string::npos);
  CHECK(c.find("50%") != std::string::npos);
  CHECK_NOTHROW(render_controllers(json{{"controllers", 5}}));
}
