// eqctl's blocking client of the control socket (see client.hpp).
#include "client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace eqd::cli {

namespace {
// A `channels` answer for a large rig is big, but not this big: past it the peer is not eqd.
constexpr std::size_t kMaxResponseBytes = 256u * 1024u * 1024u;
}  // namespace

Client::Client(std::string socket_path, int timeout_ms) : path_(std::move(socket_path)), timeout_ms_(timeout_ms) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) throw UnreachableError("socket path too long: " + path_);
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw UnreachableError(std::string("socket(): ") + std::strerror(errno));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    std::string hint = err == ENOENT         ? " (is eqd running? use --socket or EQD_SOCKET)"
                       : err == EACCES       ? " (no permission to open the socket)"
                       : err == ECONNREFUSED ? " (eqd is not running)"
                                             : "";
    throw UnreachableError("cannot connect to " + path_ + ": " + std::strerror(err) + hint);
  }
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
  if (passed_fd_ >= 0) ::close(passed_fd_);
}

int Client::take_passed_fd() noexcept {
  const int fd = passed_fd_;
  passed_fd_ = -1;
  return fd;
}

std::string Client::call_raw(const std::string& line) {
  const std::string out = line + "\n";
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::send(fd_, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw UnreachableError("lost connection to " + path_ + ": " + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
  for (;;) {
    if (auto nl = pending_.find('\n'); nl != std::string::npos) {
      std::string resp = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return resp;
    }
    if (pending_.size() > kMaxResponseBytes) throw UnreachableError("response from " + path_ + " too large");
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      throw UnreachableError("no response from eqd on " + path_ + " within " + std::to_string(timeout_ms_) + " ms");
    pollfd p{fd_, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) throw UnreachableError(std::string("poll(): ") + std::strerror(errno));
    if (rc == 0) continue;
    // recvmsg, not recv: a `backup` answer brings an open file with its first byte (SCM_RIGHTS),
    // which recv would drop (and close).
    char buf[65536];
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
    if (n > 0)
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
          if (passed_fd_ >= 0) ::close(passed_fd_);
          std::memcpy(&passed_fd_, CMSG_DATA(c), sizeof(int));
        }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw UnreachableError("lost connection to " + path_ + ": " + std::strerror(errno));
    if (n == 0) throw UnreachableError("eqd closed the connection on " + path_);
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

nlohmann::json Client::call(control::ApiRequest r) {
  r.id = next_id_++;
  const std::string line = call_raw(control::serialize_request(r));
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("ok"))
    throw UnreachableError("unparsable response from " + path_ + " (is it eqd's control socket?)");
  return j;
}

}  // namespace eqd::cli
