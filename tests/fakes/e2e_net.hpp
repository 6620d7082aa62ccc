#pragma once
// Loopback helpers of the end-to-end tests that run eqsim and eqd as processes: the port eqsim printed
// for a server, a free TCP port for eqd's metrics, and one scrape of them. Thread-safety: stateless.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <regex>
#include <string>

namespace eqd::test {

/// The port eqsim printed on the line containing `what` ("... on 127.0.0.1:PORT"), or 0.
inline int port_of(const std::string& log, const std::string& what) {
  std::smatch m;
  const std::regex re(what + "[^\\n]* on 127\\.0\\.0\\.1:([0-9]+)");
  return std::regex_search(log, m, re) ? std::stoi(m[1]) : 0;
}

/// A TCP port of 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed).
inline std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// GET /metrics from 127.0.0.1:port (HTTP/1.0, 2 s receive timeout): the whole response, "" on failure.
inline std::string scrape(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string resp;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
      char buf[65536];
      for (ssize_t r; (r = ::recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<std::size_t>(r));
    }
  }
  ::close(fd);
  return resp;
}

}  // namespace eqd::test
