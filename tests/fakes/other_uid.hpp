#pragma once
// Connections to a Unix socket made by other users, for tests of per-uid limits and reserved slots.
// A forked child drops to the given uid (needs root), connects, and hands the connected sockets back
// over SCM_RIGHTS: the server's SO_PEERCRED then reports that uid for each of them. Also: raw
// line I/O with a deadline, and running a program as another uid.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace eqd::test {

/// A connected socket, closed at scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd = o.fd;
      o.fd = -1;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

/// Connects `n` (at most 64) sockets to the Unix socket `path` as `uid` (group 65534). Returns the
/// sockets that connected. The caller must be root; the socket and its directory must let `uid` in.
inline std::vector<Fd> connect_as(uid_t uid, const std::string& path, int n) {
  if (n > 64) throw std::invalid_argument("connect_as: at most 64 sockets");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) throw std::runtime_error("socketpair");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    // Child of a threaded process: async-signal-safe calls only, no allocation.
    ::close(pair[0]);
    if (::setgid(65534) != 0 || ::setuid(uid) != 0) ::_exit(2);
    int fds[64];
    int got = 0;
    for (int i = 0; i < n; ++i) {
      const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
      if (s < 0) break;
      if (::connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(s);
        break;
      }
      fds[got++] = s;
    }
    // One message per socket keeps the control buffer small and fixed.
    for (int i = 0; i < got; ++i) {
      char byte = 'x';
      iovec iov{&byte, 1};
      alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = ctrl;
      msg.msg_controllen = sizeof ctrl;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fds[i], sizeof(int));
      if (::sendmsg(pair[1], &msg, 0) != 1) ::_exit(3);
    }
    ::_exit(0);
  }
  ::close(pair[1]);
  std::vector<Fd> out;
  for (;;) {
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    const ssize_t r = ::recvmsg(pair[0], &msg, MSG_CMSG_CLOEXEC);
    if (r <= 0) break;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (c == nullptr || c->cmsg_type != SCM_RIGHTS) break;
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
    out.emplace_back(fd);
  }
  ::close(pair[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return out;
}

/// Connects one socket to `path` as the calling process.
inline Fd connect_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.fd < 0 || ::connect(s.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) return Fd{};
  return s;
}

/// Sends `text` as is (MSG_NOSIGNAL); false if the send failed.
inline bool send_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

/// Reads one line (without '\n') within `timeout`; nullopt on timeout, EOF or error. Bytes after
/// the line are dropped (tests send one request at a time).
inline std::optional<std::string> read_line(int fd, std::chrono::milliseconds timeout) {
  std::string got;
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (const auto nl = got.find('\n'); nl != std::string::npos) return got.substr(0, nl);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    got.append(buf, static_cast<std::size_t>(n));
  }
}

/// True if the peer closed `fd` (EOF or reset) within `timeout`; unread data is skipped.
inline bool closed_within(int fd, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
}

/// Runs `argv` as `uid` (group 65534), its stdout and stderr into `out`; returns its exit code
/// (128 + signal if killed, -1 if it did not end within `timeout`, then it is killed).
inline int run_as(uid_t uid, const std::vector<std::string>& argv, std::string& out,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(15000)) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    if (uid != ::getuid() && (::setgid(65534) != 0 || ::setuid(uid) != 0)) ::_exit(126);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  out.clear();
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{pipefd[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipefd[0]);
  int st = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (std::chrono::steady_clock::now() >= end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      return -1;
    }
    ::usleep(20000);
  }
}

}  // namespace eqd::test
