// TXT records of controller announcements: what is accepted, and that bad input gives a clear error.
#include <catch2/catch.hpp>

#include "eqd/discovery/txt.hpp"

using namespace eqd::discovery;

namespace {

ResolvedService service(std::vector<std::string> txt) {
  ResolvedService s;
  s.instance = "Cab 3 (hall B)";
  s.type = kControllerServiceType;
  s.domain = "local";
  s.host_name = "cycler3.local";
  s.address = "10.0.0.3";
  s.port = 1502;
  s.txt = std::move(txt);
  return s;
}

std::string error_of(std::vector<std::string> txt) { return parse_controller(service(std::move(txt))).error; }

}  // namespace

TEST_CASE("a complete announcement is read field by field", "[discovery][txt]") {
  const auto p = parse_controller(service(
      {"txtvers=1", "name=cab3", "serial=SN-0042", "transport=tcp", "unit=7", "profile=vendor-x", "channels=24"}));
  REQUIRE(p.error.empty());
  REQUIRE(p.announcement);
  const ControllerAnnouncement& a = *p.announcement;
  CHECK(a.name == "cab3");
  CHECK(a.identity == "SN-0042");
  CHECK(a.host == "10.0.0.3");
  CHECK(a.port == 1502);
  CHECK(a.unit_id == 7);
  CHECK(a.profile == "vendor-x");
  CHECK(a.channels == 24);
}

TEST_CASE("defaults: name from the instance and identity from the instance", "[discovery][txt]") {
  const auto p = parse_controller(service({"transport=tcp", "channels=16"}));
  REQUIRE(p.announcement);
  CHECK(p.announcement->name == "Cab-3-hall-B");
  CHECK(p.announcement->identity == "Cab 3 (hall B)");
  CHECK(p.announcement->unit_id == 1);
  CHECK(p.announcement->profile == "eqd-default");
}

TEST_CASE("keys are case-insensitive and the first occurrence wins", "[discovery][txt]") {
  const auto m = txt_map({"Channels=8", "channels=9", "=junk", "flag"});
  CHECK(m.at("channels") == "8");
  CHECK(m.at("flag").empty());
  CHECK(m.count("") == 0);
}

TEST_CASE("bad TXT records are refused with the key named", "[discovery][txt]") {
  CHECK_THAT(error_of({"channels=16"}), Catch::Contains("TXT transport is missing"));
  CHECK_THAT(error_of({"transport=rtu", "channels=16"}), Catch::Contains("not supported over discovery"));
  CHECK_THAT(error_of({"transport=tcp"}), Catch::Contains("TXT channels is missing"));
  CHECK_THAT(error_of({"transport=tcp", "channels=0"}), Catch::Contains("expected 1..1024"));
  CHECK_THAT(error_of({"transport=tcp", "channels=16x"}), Catch::Contains("channels='16x'"));
  CHECK_THAT(error_of({"transport=tcp", "channels=99999999999"}), Catch::Contains("expected 1..1024"));
  CHECK_THAT(error_of({"transport=tcp", "channels=16", "unit=300"}), Catch::Contains("unit id 0..247"));
  CHECK_THAT(error_of({"transport=tcp", "channels=16", "unit=-1"}), Catch::Contains("unit id"));
  CHECK_THAT(error_of({"transport=tcp", "channels=16", "name=cab/3"}), Catch::Contains("not a controller name"));
  CHECK_THAT(error_of({"transport=tcp", "channels=16", "profile=a b"}), Catch::Contains("not a profile name"));
  CHECK_THAT(error_of({"txtvers=2", "transport=tcp", "channels=16"}), Catch::Contains("newer than this eqd"));
  CHECK_THAT(error_of({"txtvers=x", "transport=tcp", "channels=16"}), Catch::Contains("not a version number"));
  CHECK_THAT(error_of({"transport=tcp", "channels=16", "serial=" + std::string(200, 's')}),
             Catch::Contains("128 bytes"));
}

TEST_CASE("binary garbage in TXT values is shown escaped and never crashes", "[discovery][txt]") {
  const std::string garbage("\x01\xff\x00zz", 5);
  const auto p = parse_controller(service({"transport=tcp", "channels=" + garbage}));
  CHECK_FALSE(p.announcement);
  CHECK_THAT(p.error, Catch::Contains("channels='???zz'"));
  CHECK(p.error.find('\0') == std::string::npos);
}

TEST_CASE("no address resolved is refused", "[discovery][txt]") {
  ResolvedService s = service({"transport=tcp", "channels=16"});
  s.address.clear();
  CHECK_THAT(parse_controller(s).error, Catch::Contains("no IPv4 address"));
}

TEST_CASE("an instance name without usable characters and no TXT name is refused", "[discovery][txt]") {
  ResolvedService s = service({"transport=tcp", "channels=16"});
  s.instance = "( )";
  CHECK_THAT(parse_controller(s).error, Catch::Contains("no usable characters"));
}

TEST_CASE("what eqsim publishes is what eqd reads", "[discovery][txt]") {
  ResolvedService s = service(controller_txt("cab9", "SN-9", 3, "eqd-default", 12));
  const auto p = parse_controller(s);
  REQUIRE(p.announcement);
  CHECK(p.announcement->name == "cab9");
  CHECK(p.announcement->identity == "SN-9");
  CHECK(p.announcement->unit_id == 3);
  CHECK(p.announcement->channels == 12);
}

TEST_CASE("eqd's own TXT fits DNS-SD limits", "[discovery][txt]") {
  std::vector<std::string> buses;
  for (int i = 0; i < 60; ++i) buses.push_back("bus_number_" + std::to_string(i));
  const auto txt = eqd_txt("0.1.0", buses, 9860, "/run/eqd/eqd.sock");
  for (const auto& t : txt) CHECK(t.size() <= 255);
  const auto m = txt_map(txt);
  CHECK(m.at("version") == "0.1.0");
  CHECK(m.at("metrics_port") == "9860");
  CHECK(m.at("buses_truncated") == "1");
  CHECK(m.at("control") == "unix:/run/eqd/eqd.sock");
  CHECK(m.at("buses").rfind("bus_number_0,bus_number_1,", 0) == 0);
  CHECK(txt_map(eqd_txt("0.1.0", {"main", "aux"}, 0, "/s")).at("buses") == "main,aux");
}
