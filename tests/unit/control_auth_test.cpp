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

TEST_CASE("control auth: roles from uid and groups", "[control][auth]") {
  const Authorizer a("eqd", gid_t{990}, "eqd-admin", gid_t{991});
  CHECK(a.role_of({1, 0, 0}, {}) == Role::admin);                   // root
  CHECK(a.role_of({1, 1000, 990}, {}) == Role::operator_);          // primary group
  CHECK(a.role_of({1, 1000, 1000}, {27, 990}) == Role::operator_);  // supplementary group
  CHECK(a.role_of({1, 1000, 991}, {}) == Role::admin);
  CHECK(a.role_of({1, 1000, 1000}, {990, 991}) == Role::admin);  // both: the higher
  CHECK(a.role_of({1, 1000, 1000}, {27, 100}) == Role::viewer);
  const Authorizer missing("nosuchgroup", std::nullopt, "nosuchadmins", std::nullopt);
  CHECK(missing.role_of({1, 0, 0}, {}) == Role::admin);
  CHECK(missing.role_of({1, 1000, 990}, {990}) == Role::viewer);
  CHECK_THAT(missing.holders(Role::admin), Catch::Contains("'nosuchadmins' of api.admin_group does not exist"));
  CHECK_THAT(a.holders(Role::operator_),
             Catch::Contains("root") && Catch::Contains("'eqd-admin'") && Catch::Contains("'eqd'"));
  CHECK_THAT(a.holders(Role::admin), !Catch::Contains("'eqd'"));
}

TEST_CASE("control auth: the role each command needs", "[control][auth]") {
  CHECK(required_role(Command::hello) == Role::viewer);
  CHECK(required_role(Command::status) == Role::viewer);
  CHECK(required_role(Command::channels) == Role::viewer);
  CHECK(required_role(Command::controllers) == Role::viewer);
  CHECK(required_role(Command::assign) == Role::operator_);
  CHECK(required_role(Command::release) == Role::operator_);
  CHECK(required_role(Command::set) == Role::admin);
  CHECK(required_role(Command::adopt) == Role::admin);
  CHECK(required_role(Command::forget) == Role::admin);
  CHECK(std::string(to_string(Role::operator_)) == "operator");
}

TEST_CASE("control auth: this process's own groups are found", "[control][auth]") {
  PeerCredentials me{getpid(), getuid(), getgid()};
  const auto groups = supplementary_groups(me);
  std::vector<gid_t> expected(static_cast<std::size_t>(getgroups(0, nullptr)));
  REQUIRE(getgroups(static_cast<int>(expected.size()), expected.data()) == static_cast<int>(expected.size()));
  CHECK(groups == expected);
}
