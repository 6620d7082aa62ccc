#include <catch2/catch.hpp>

#include "eqd/sim/battery.hpp"

TEST_CASE("placeholder compile", "[sim]") { REQUIRE(eqd::sim::OcvTable::lfp(1).voltage_V(0.5) > 3.0); }
