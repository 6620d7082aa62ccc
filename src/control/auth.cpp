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

Authorizer::Authorizer(std::string group) : group_(std::move(group)) {
  std::vector<char> buf(16384);
  ::group gr{};
  ::group* found = nullptr;
  if (!group_.empty() && ::getgrnam_r(group_.c_str(), &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    gid_ = gr.gr_gid;
  } else {
    spdlog::warn("control API: group '{}' (api.group) does not exist; only root may assign, release or set", group_);
  }
}

bool Authorizer::may_change(const PeerCredentials& peer, const std::vector<gid_t>& groups) const noexcept {
  if (peer.uid == 0) return true;
  if (!gid_) return false;
  return peer.gid == *gid_ || std::find(groups.begin(), groups.end(), *gid_) != groups.end();
}

}  // namespace eqd::control
