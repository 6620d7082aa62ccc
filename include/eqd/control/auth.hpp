#pragma once
/// @file auth.hpp
/// Who may change the daemon through the control API: root, or members of Config.api.group, judged
/// from the peer's kernel credentials (SO_PEERCRED) and its supplementary groups.

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

/// Decides whether a peer may change things. Thread-safety: immutable after construction; any thread.
class Authorizer {
 public:
  /// Looks `group` up once (getgrnam_r). A missing group is logged once as a warning: then only root
  /// may change.
  explicit Authorizer(std::string group);
  /// For tests: a known gid (nullopt = group missing), no lookup.
  Authorizer(std::string group, std::optional<gid_t> gid) : group_(std::move(group)), gid_(gid) {}

  /// True for uid 0, or when the group exists and is the peer's gid or one of `groups`.
  [[nodiscard]] bool may_change(const PeerCredentials& peer, const std::vector<gid_t>& groups) const noexcept;
  [[nodiscard]] const std::string& group() const noexcept { return group_; }
  [[nodiscard]] std::optional<gid_t> gid() const noexcept { return gid_; }

 private:
  std::string group_;
  std::optional<gid_t> gid_;
};

}  // namespace eqd::control
