#pragma once
// Test helpers for CAN: a socketpair(AF_UNIX, SOCK_SEQPACKET) standing in for a CAN_RAW socket (one
// kernel can_frame/canfd_frame per datagram, as CAN_RAW reads and writes), slots for a link, and
// polling waits. Only the socket's creation differs from production.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "eqd/core/sample.hpp"
#include "eqd/core/seqlock.hpp"
#include "../fakes/control_thread.hpp"
#include "eqd/io/can/can_link.hpp"
#include "eqd/io/can/socket.hpp"

namespace can_test {

/// Both ends of a SEQPACKET socketpair, non-blocking; closed on destruction unless released.
struct Pair {
  int a = -1;  ///< the link's end
  int b = -1;  ///< the controller's (server's) end
  Pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
    a = fds[0];
    b = fds[1];
  }
  ~Pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
  /// Hands b to its new owner (e.g. a CanServer).
  int release_b() {
    const int x = b;
    b = -1;
    return x;
  }
};

/// A factory handing the link a duplicate of `fd` (the link owns and closes what it gets).
inline eqd::io::can::SocketFactory factory_for(int fd) {
  return [fd](const eqd::io::can::CanLinkConfig&, const eqd::io::can::Codec&, std::error_code& ec) {
    const int d = ::dup(fd);
    if (d < 0) ec = std::error_code(errno, std::generic_category());
    return d;
  };
}

/// Sample and command slots for n channels, owned by the test, with a fake control thread that keeps
/// the cycle clock ticking and re-confirms live commands (store commands through command()).
struct Slots {
  explicit Slots(std::size_t n) : samples(n), commands(n), control(make(commands)) {
    for (auto& s : samples) s = std::make_unique<eqd::core::Seqlock<eqd::core::Sample>>();
  }
  static std::vector<eqd::core::Seqlock<eqd::core::Command>*> make(
      std::vector<std::unique_ptr<eqd::core::Seqlock<eqd::core::Command>>>& v) {
    std::vector<eqd::core::Seqlock<eqd::core::Command>*> r;
    for (auto& c : v) {
      c = std::make_unique<eqd::core::Seqlock<eqd::core::Command>>();
      r.push_back(c.get());
    }
    return r;
  }
  eqd::io::can::ChannelSlots slots() const {
    eqd::io::can::ChannelSlots s;
    for (auto& x : samples) s.samples.push_back(x.get());
    for (auto& x : commands) s.commands.push_back(x.get());
    control.attach(s);
    return s;
  }
  void command(std::size_t k, const eqd::core::Command& c) { control.store(k, c); }
  std::vector<std::unique_ptr<eqd::core::Seqlock<eqd::core::Sample>>> samples;
  std::vector<std::unique_ptr<eqd::core::Seqlock<eqd::core::Command>>> commands;
  mutable eqd::test::FakeControlThread control;
};

/// Polls `pred` every 2 ms until true or `timeout`.
inline bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

inline std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Writes one frame to a socket in kernel form; false if refused.
inline bool write_frame(int fd, const eqd::io::can::Frame& f) {
  canfd_frame w{};
  const std::size_t n = eqd::io::can::to_wire(f, w);
  return n != 0 && ::send(fd, &w, n, MSG_DONTWAIT) == static_cast<ssize_t>(n);
}

}  // namespace can_test
