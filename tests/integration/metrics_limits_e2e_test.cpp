// Fault catalogue, metrics endpoint (docs/faults.md): the real eqd's /metrics while clients
// misbehave (idle connections, slow-loris request heads), and eqd started while metrics.listen is
// taken (it must control anyway, say so in `eqctl status`, and bind once the port is free).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../fakes/other_uid.hpp"
#include "../fakes/process.hpp"
#include "eqd/metrics/exporter.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;
using eqd::test::Fd;

namespace {

Fd tcp_connect(std::uint16_t port) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s.fd < 0 || ::connect(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd{};
  return s;
}

/// A listening socket on 127.0.0.1 (port 0: any free one).
Fd tcp_listen(std::uint16_t port, std::uint16_t& bound) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  ::setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(s.fd, 8) == 0);
  socklen_t len = sizeof a;
  ::getsockname(s.fd, reinterpret_cast<sockaddr*>(&a), &len);
  bound = ntohs(a.sin_port);
  return s;
}

std::uint16_t free_port() {
  std::uint16_t p = 0;
  Fd s = tcp_listen(0, p);
  return p;
}

/// GET /metrics with a deadline; returns the whole response ("" on failure or timeout).
std::string scrape(std::uint16_t port, std::chrono::milliseconds timeout) {
  Fd s = tcp_connect(port);
  if (s.fd < 0) return {};
  if (!eqd::test::send_all(s.fd, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")) return {};
  std::string got;
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {};
    pollfd p{s.fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[65536];
    const ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n < 0) return {};
    if (n == 0) return got;
    got.append(buf, static_cast<std::size_t>(n));
  }
}

// Removed at scope exit, also when Eqd's constructor fails (a member's destructor still runs).
struct TempDir {
  fs::path path = eqd::test::make_temp_dir("eqd-metrics-limits");
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct Eqd {
  TempDir tmp;
  fs::path dir = tmp.path;
  std::string socket = (dir / "eqd.sock").string();
  std::unique_ptr<eqd::test::Process> proc;

  explicit Eqd(std::uint16_t metrics_port) {
    const fs::path cfg = dir / "eqd.yaml";
    std::ofstream(cfg)
        << "state_dir: " << (dir / "state").string() << "\n"
        << "api: {socket: " << socket << ", group: nosuchgroup-eqd-test}\n"
        << "metrics: {listen: 127.0.0.1:" << metrics_port << "}\n"
        << "control_loop: {period_ms: 20, shutdown_timeout_ms: 200}\n"
           "buses:\n  - name: main\n"
           "controllers:\n"
           "  - {name: cab1, host: 127.0.0.1, port: 1, channels: 4, bus: main, backoff_initial_ms: 1000}\n";
    proc = std::make_unique<eqd::test::Process>(std::vector<std::string>{EQD_BIN, "--config", cfg.string()},
                                                (dir / "eqd.log").string());
    const bool up = eqd::test::eventually(10s, [&] { return eqd::test::connect_unix(socket).fd >= 0; });
    INFO(proc->log());
    REQUIRE(up);
  }
  ~Eqd() {
    proc->signal(SIGTERM);
    proc->wait(5s);
  }
  int eqctl(const std::vector<std::string>& args, std::string& out) const {
    std::vector<std::string> argv{EQCTL_BIN, "--socket", socket};
    argv.insert(argv.end(), args.begin(), args.end());
    return eqd::test::run_as(::getuid(), argv, out);
  }
};

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("faults: /metrics answers quickly while idle and slow-loris clients hold connections", "[faults][metrics]") {
  const std::uint16_t port = free_port();
  Eqd eqd(port);
  REQUIRE(eqd::test::eventually(5s, [&] { return scrape(port, 2s).find("200 OK") != std::string::npos; }));

  // N idle connections (connected, nothing sent) and N slow-loris ones (a request head trickling a
  // byte every 100 ms, reconnecting whenever the server drops them).
  constexpr int kEach = 6;
  std::vector<Fd> idle;
  for (int i = 0; i < kEach; ++i) idle.push_back(tcp_connect(port));
  std::atomic<bool> stop{false};
  std::vector<std::thread> loris;
  for (int i = 0; i < kEach; ++i)
    loris.emplace_back([&] {
      while (!stop) {
        Fd s = tcp_connect(port);
        if (s.fd < 0) return;
        if (!eqd::test::send_all(s.fd, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")) continue;
        while (!stop && eqd::test::send_all(s.fd, "X")) std::this_thread::sleep_for(100ms);
      }
    });
  std::this_thread::sleep_for(300ms);  // let them occupy the server first

  // Scrapes over several seconds, past the server's request timeout, so that reconnecting
  // slow clients are in the way too.
  std::chrono::milliseconds worst{0};
  for (int i = 0; i < 8; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string r = scrape(port, 5s);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    worst = std::max(worst, took);
    INFO("scrape " << i << " took " << took.count() << " ms");
    CHECK(r.find("200 OK") != std::string::npos);
    CHECK(r.find("eqd_") != std::string::npos);
    CHECK(took < 2s);       // a functional bound, not a benchmark: it was 9.5 s with two idle clients
    if (took >= 2s) break;  // one failure tells it all (the old server took 10 s per scrape)
    std::this_thread::sleep_for(400ms);
  }
  stop = true;
  for (auto& t : loris) t.join();
  WARN("worst scrape with " << kEach << " idle + " << kEach << " slow-loris clients: " << worst.count() << " ms");
  std::string out;
  CHECK(eqd.eqctl({"status"}, out) == 0);  // control never noticed
}

TEST_CASE("faults: metrics.listen taken: eqd controls, reports it and binds when the port is free",
          "[faults][metrics]") {
  std::uint16_t port = 0;
  Fd blocker = tcp_listen(0, port);
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  Eqd eqd(port);  // used to exit: "cannot start: metrics: cannot listen on ..."
  CHECK_FALSE(eqd.proc->wait(500ms).has_value());

  std::string out;
  REQUIRE(eqd.eqctl({"status"}, out) == 0);
  INFO(out);
  CHECK(out.find("metrics: not listening on " + listen + " (address in use), retrying") != std::string::npos);
  REQUIRE(eqd.eqctl({"--json", "status"}, out) == 0);
  const json st = json::parse(out);
  CHECK(st["metrics"]["listening"] == false);
  CHECK(st["metrics"]["error"] == "address in use");
  CHECK(st["metrics"]["retry_ms"] == 5000);
  std::this_thread::sleep_for(5500ms);  // one retry while still taken: no second log line
  CHECK(count(eqd.proc->log(), "cannot listen on " + listen) == 1);

  blocker.reset();
  const auto t0 = std::chrono::steady_clock::now();
  const bool bound = eqd::test::eventually(8s, [&] { return scrape(port, 2s).find("200 OK") != std::string::npos; });
  INFO(eqd.proc->log());
  REQUIRE(bound);
  CHECK(std::chrono::steady_clock::now() - t0 < 7s);  // the 5 s retry period, and margin
  REQUIRE(eqd.eqctl({"status"}, out) == 0);
  CHECK(out.find("metrics: listening on " + listen) != std::string::npos);
  CHECK(count(eqd.proc->log(), "listening on " + listen + " now") == 1);
}

TEST_CASE("metrics: bind_problem names why an address cannot be bound", "[metrics]") {
  std::uint16_t port = 0;
  Fd blocker = tcp_listen(0, port);
  CHECK(eqd::metrics::bind_problem("127.0.0.1:" + std::to_string(port)) == "address in use");
  CHECK(eqd::metrics::bind_problem("192.0.2.1:9860") == "address not available on this host");
  blocker.reset();
  CHECK(eqd::metrics::bind_problem("127.0.0.1:" + std::to_string(port)).empty());
  CHECK(eqd::metrics::bind_problem("127.0.0.1:0").empty());
}
