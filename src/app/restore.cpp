// `eqd --restore FILE` (see restore.hpp).
#include "restore.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "eqd/history/backup.hpp"
#include "eqd/history/store.hpp"

namespace eqd::app {

namespace {

// True when something accepts connections on `path`: a running eqd (a stale socket file refuses them).
bool socket_answers(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return up;
}

}  // namespace

int run_restore(const config::Config& cfg, const std::string& archive) {
  // Replacing the database under a running eqd would be lost at its next write, or worse: refuse.
  if (socket_answers(cfg.api.socket_path)) {
    std::fprintf(stderr,
                 "eqd: --restore: eqd is running (its control socket %s answers): stop it first "
                 "(systemctl stop eqd); nothing was changed\n",
                 cfg.api.socket_path.c_str());
    return 1;
  }
  history::RestoreTargets to;
  to.history_db = cfg.history.path.empty() ? cfg.state_dir + "/history.db" : cfg.history.path;
  to.state_dir = cfg.state_dir;
  to.config = cfg.source_path;
  try {
    const std::vector<history::RestoredFile> done = history::restore_backup(archive, to, history::kSchemaVersion);
    for (const history::RestoredFile& f : done)
      std::printf("restored %s to %s%s%s\n", f.member.c_str(), f.path.c_str(),
                  f.moved_aside.empty() ? "" : "; the previous file is now ", f.moved_aside.c_str());
    std::printf("eqd: restored %zu file(s) from %s; start eqd (systemctl start eqd)\n", done.size(), archive.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqd: --restore: %s\n", e.what());
    return 1;
  }
}

}  // namespace eqd::app
