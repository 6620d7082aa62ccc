// Peer credentials and group membership for the control API's authorization.
#include "eqd/control/auth.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

namespace eqd::control {

std::optional<PeerCredentials> peer_credentials(int fd) noexcept {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) return std::nullopt;
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

std::optional<std::vector<gid_t>> parse_status_groups(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.substr(0, 7) != "Groups:") continue;
    line.remove_prefix(7);
    std::vector<gid_t> groups;
    while (!line.empty()) {
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
      if (line.empty()) break;
      unsigned long v = 0;
      auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
      if (ec != std::errc{} || v > 0xffffffffUL) return std::nullopt;
      if (p != line.data() + line.size() && *p != ' ' && *p != '\t') return std::nullopt;
      groups.push_back(static_cast<gid_t>(v));
      line.remove_prefix(static_cast<std::size_t>(p - line.data()));
    }
    return groups;
  }
  return std::nullopt;
}

std::vector<gid_t> supplementary_groups(const PeerCredentials& peer) {
  if (peer.pid > 0) {
    std::ifstream in("/proc/" + std::to_string(peer.pid) + "/status");
    if (in) {
      std::stringstream s;
      s << in.rdbuf();
      if (auto g = parse_status_groups(s.str())) return *g;
    }
  }
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(peer.uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return {};
  int n = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  if (::getgrouplist(pw.pw_name, peer.gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<std::size_t>(n));
    if (::getgrouplist(pw.pw_name, peer.gid, groups.data(), &n) < 0) return {};
  }
  groups.resize(static_cast<std::size_t>(n));
  return groups;
}

namespace {
std::optional<gid_t> lookup_group(const std::string& name) {
  std::vector<char> buf(16384);
  ::group gr{};
  ::group* found = nullptr;
  if (!name.empty() && ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr)
    return gr.gr_gid;
  return std::nullopt;
}

bool member(const PeerCredentials& peer, const std::vector<gid_t>& groups, std::optional<gid_t> gid) {
  return gid && (peer.gid == *gid || std::find(groups.begin(), groups.end(), *gid) != groups.end());
}
}  // namespace

Authorizer::Authorizer(std::string group, std::string admin_group)
    : group_(std::move(group)),
      gid_(lookup_group(group_)),
      admin_group_(std::move(admin_group)),
      admin_gid_(lookup_group(admin_group_)) {
  if (!gid_)
    spdlog::warn("control API: group '{}' (api.group) does not exist; only {} may assign or release", group_,
                 admin_gid_ ? "root and group '" + admin_group_ + "'" : std::string("root"));
  if (!admin_gid_)
    spdlog::info("control API: group '{}' (api.admin_group) does not exist; only root may set, adopt or forget",
                 admin_group_);
}

Role Authorizer::role_of(const PeerCredentials& peer, const std::vector<gid_t>& groups) const noexcept {
  if (peer.uid == 0 || member(peer, groups, admin_gid_)) return Role::admin;
  if (member(peer, groups, gid_)) return Role::operator_;
  return Role::viewer;
}

std::string Authorizer::holders(Role role) const {
  if (role == Role::viewer) return "anyone who can open the socket";
  std::string h = "root";
  const auto add = [&](const std::string& name, std::optional<gid_t> gid, const char* key) {
    h += gid ? " or group '" + name + "'" : " (group '" + name + "' of " + key + " does not exist)";
  };
  add(admin_group_, admin_gid_, "api.admin_group");
  if (role == Role::operator_) add(group_, gid_, "api.group");
  return h;
}

}  // namespace eqd::control
