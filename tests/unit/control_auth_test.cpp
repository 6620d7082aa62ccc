// Authorization of changes: peer credentials, supplementary groups.
#include <catch2/catch.hpp>

#include <unistd.h>

#include "eqd/control/auth.hpp"

using namespace eqd::control;

TEST_CASE("control auth: Groups line of /proc/PID/status", "[control][auth]") {
  const auto g = parse_status_groups("Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 27 1000 \nNSpid:\t1\n");
  REQUIRE(g);
  CHECK(*g == std::vector<gid_t>{4, 24, 27, 1000});
  const auto empty = parse_status_groups("Groups:\t\n");
  REQUIRE(empty);
  CHECK(empty->empty());
  CHECK_FALSE(parse_status_groups("Name:\tx\n"));
  CHECK_FALSE(parse_status_groups("Groups:\t4 x5\n"));
}

TEST_CASE("control auth: root and group members may change, others may not", "[control][auth]") {
  const Authorizer a("eqd", gid_t{990});
  CHECK(a.may_change({1, 0, 0}, {}));
  CHECK(a.may_change({1, 1000, 990}, {}));          // primary group
  CHECK(a.may_change({1, 1000, 1000}, {27, 990}));  // supplementary group
  CHECK_FALSE(a.may_change({1, 1000, 1000}, {27, 100}));
  const Authorizer missing("nosuchgroup", std::nullopt);
  CHECK(missing.may_change({1, 0, 0}, {}));
  CHECK_FALSE(missing.may_change({1, 1000, 990}, {990}));
}

TEST_CASE("control auth: this process's own groups are found", "[control][auth]") {
  PeerCredentials me{getpid(), getuid(), getgid()};
  const auto groups = supplementary_groups(me);
  std::vector<gid_t> expected(static_cast<std::size_t>(getgroups(0, nullptr)));
  REQUIRE(getgroups(static_cast<int>(expected.size()), expected.data()) == static_cast<int>(expected.size()));
  CHECK(groups == expected);
}
