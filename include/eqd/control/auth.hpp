#pragma once
/// @file auth.hpp
/// Who may change the daemon through the control API: the peer's role (protocol.hpp: viewer, operator,
/// admin), judged from its kernel credentials (SO_PEERCRED) and its groups against Config.api.group
/// (operators) and Config.api.admin_group (admins; root is always admin).

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eqd/control/protocol.hpp"

namespace eqd::control {

/// Kernel credentials of a socket peer at connect time. Plain data.
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

/// Credentials of the peer of a connected Unix socket (SO_PEERCRED); nullopt on error. Any thread.
[[nodiscard]] std::optional<PeerCredentials> peer_credentials(int fd) noexcept;

/// Group ids of the "Groups:" line of a /proc/PID/status text; nullopt if there is no such line or it
/// is malformed. Pure; any thread.
[[nodiscard]] std::optional<std::vector<gid_t>> parse_status_groups(std::string_view status_text);

/// Supplementary groups of a process: /proc/PID/status (the groups the process really has), else
/// getgrouplist() of the uid's user name (what it would get at login). Any thread.
[[nodiscard]] std::vector<gid_t> supplementary_groups(const PeerCredentials& peer);

/// Decides a peer's role. Thread-safety: immutable after construction; any thread.
class Authorizer {
 public:
  /// Looks both groups up once (getgrnam_r). A missing operator group is logged once as a warning
  /// (then only root may change anything), a missing admin group at info level (then only root
  /// administers: a lab that wants no other admins simply has no such group).
  Authorizer(std::string group, std::string admin_group);
  /// For tests: known gids (nullopt = group missing), no lookup.
  Authorizer(std::string group, std::optional<gid_t> gid, std::string admin_group, std::optional<gid_t> admin_gid)
      : group_(std::move(group)), gid_(gid), admin_group_(std::move(admin_group)), admin_gid_(admin_gid) {}

  /// admin for uid 0 and members of the admin group, operator for members of the operator group (the
  /// peer's gid or one of `groups`), else viewer.
  [[nodiscard]] Role role_of(const PeerCredentials& peer, const std::vector<gid_t>& groups) const noexcept;
  /// Operator group (api.group) and its gid, if it exists.
  [[nodiscard]] const std::string& group() const noexcept { return group_; }
  [[nodiscard]] std::optional<gid_t> gid() const noexcept { return gid_; }
  /// Admin group (api.admin_group) and its gid, if it exists.
  [[nodiscard]] const std::string& admin_group() const noexcept { return admin_group_; }
  [[nodiscard]] std::optional<gid_t> admin_gid() const noexcept { return admin_gid_; }
  /// Who holds `role`, for messages: "root or group 'eqd-admin'" (a missing group is said so).
  [[nodiscard]] std::string holders(Role role) const;

 private:
  std::string group_;
  std::optional<gid_t> gid_;
  std::string admin_group_;
  std::optional<gid_t> admin_gid_;
};

}  // namespace eqd::control
