// The real AF_CAN path against a Linux kernel's CAN stack: CAN_RAW sockets bound to vcan, kernel
// receive filters, CAN FD on an MTU-72 interface and its refusal on a classic one, error frames,
// kernel receive timestamps, CanLink with simulated controllers, and a paced saturated-bus replay.
// Needs EQD_CAN_IFACE (vcan0 with MTU 72) and optionally EQD_CAN_CLASSIC_IFACE (a classic vcan):
// tests/vm/run_in_vm.sh sets both inside its VM; on a lab PC:
//   ip link add vcan0 type vcan && ip link set vcan0 mtu 72 up && EQD_CAN_IFACE=vcan0 ./can_kernel_test
#include <catch2/catch.hpp>

#include <linux/can/error.h>
#include <linux/can/raw.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "can_server.hpp"
#include "can_test_util.hpp"
#include "eqd/io/can/can_link.hpp"
#include "eqd/io/can/socket.hpp"

using namespace std::chrono_literals;
using namespace eqd::io::can;
using eqd::sim::CanServedController;
using eqd::sim::CanServer;
using eqd::sim::FakeControllerBackend;

namespace {

std::string iface() {
  const char* v = std::getenv("EQD_CAN_IFACE");
  if (v == nullptr || *v == '\0')
    FAIL(
        "EQD_CAN_IFACE is not set: run through tests/vm/run_in_vm.sh (ctest -L vm) or on a machine with vcan0 "
        "(see docs/can-profile.md)");
  return v;
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// A plain raw socket for playing a foreign node: no filter, FD frames on.
int raw_peer(const std::string& name) {
  std::error_code ec;
  const int fd = open_raw_socket(name, {}, true, ec);
  INFO("open " << name << ": " << ec.message());
  REQUIRE(fd >= 0);
  return fd;
}

bool read_frame(int fd, Frame& f, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  alignas(canfd_frame) unsigned char buf[sizeof(canfd_frame)];
  while (std::chrono::steady_clock::now() < end) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) return from_wire(buf, static_cast<std::size_t>(n), f);
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

}  // namespace

TEST_CASE("kernel CAN_RAW filters pass only the controller's ids", "[can][kernel]") {
  const std::string name = iface();
  const Codec codec(default_can_profile(4), 7);
  std::error_code ec;
  Fd filtered(open_raw_socket(name, codec.ids(), false, ec));
  INFO(ec.message());
  REQUIRE(filtered.fd >= 0);
  Fd peer(raw_peer(name));
  Frame f;
  f.len = 8;
  for (std::uint32_t id : {0x106u, 0x107u, 0x207u, 0x108u, 0x307u}) {
    f.id = id;
    REQUIRE(can_test::write_frame(peer.fd, f));
  }
  f.id = 0x107;
  f.extended = true;  // same number as a wanted id, but 29-bit: must not pass
  REQUIRE(can_test::write_frame(peer.fd, f));
  std::vector<std::uint32_t> got;
  Frame r;
  while (read_frame(filtered.fd, r, 200ms)) got.push_back(r.id | (r.extended ? 0x80000000u : 0));
  CHECK(got == std::vector<std::uint32_t>{0x107, 0x207, 0x307});
}

TEST_CASE("kernel CAN FD frames on an MTU 72 interface and refusal on a classic one", "[can][kernel]") {
  const std::string name = iface();
  std::error_code ec;
  CHECK(interface_supports_fd(name, ec));
  Fd a(raw_peer(name));
  Fd b(raw_peer(name));
  Frame f;
  f.id = 0x123;
  f.fd = true;
  f.len = 48;
  f.data[47] = 0xAB;
  REQUIRE(can_test::write_frame(a.fd, f));
  Frame r;
  REQUIRE(read_frame(b.fd, r, 500ms));
  CHECK(r.fd);
  CHECK(r.len == 48);
  CHECK(r.data[47] == 0xAB);
  const char* classic = std::getenv("EQD_CAN_CLASSIC_IFACE");
  if (classic != nullptr && *classic != '\0') {
    CHECK_FALSE(interface_supports_fd(classic, ec));
    Fd c(open_raw_socket(classic, {}, true, ec));
    CHECK(c.fd < 0);
    CHECK(ec.value() == EPROTONOSUPPORT);
  }
  Fd none(open_raw_socket("nosuchcan0", {}, false, ec));
  CHECK(none.fd < 0);
  CHECK(ec.value() == ENODEV);
}

namespace {

struct KernelRig {
  KernelRig(SignalMap map, std::size_t n, std::uint32_t node)
      : slots(n), backend(std::make_shared<FakeControllerBackend>(n)) {
    CanServedController sc;
    sc.name = "sim";
    sc.node_id = node;
    sc.backend = backend;
    sc.map = map;
    sc.heartbeat_timeout_ms = 500;
    server = CanServer::on_interface(iface(), {sc}, 50.0);
    cfg.name = "cab";
    cfg.interface = iface();
    cfg.node_id = node;
    cfg.map = map;
    cfg.map.channel_count = static_cast<std::uint16_t>(n);
    for (std::size_t k = 0; k < n; ++k) cfg.channel_slots.push_back(static_cast<eqd::core::ChannelIndex>(k));
    cfg.status_hz = 50.0;
    cfg.timeout_ms = 300;
    cfg.heartbeat_period_ms = 100;
    cfg.tick_ms = 5;
    cfg.backoff_initial_ms = 20;
    cfg.backoff_max_ms = 100;
  }
  void command(std::size_t k, bool eq, double w) {
    eqd::core::Command c;
    c.equalize = eq;
    c.setpoint_W = w;
    c.lease_ms = 2000;
    c.sequence = ++seq;
    slots.command(k, c);
  }
  can_test::Slots slots;
  std::shared_ptr<FakeControllerBackend> backend;
  std::unique_ptr<CanServer> server;
  CanLinkConfig cfg;
  std::uint32_t seq = 0;
};

void exercise(KernelRig& r) {
  CanLink link(r.cfg, r.slots.slots());
  r.backend->set_test_power(0, 800.0);
  r.server->start();
  link.start();
  REQUIRE(can_test::wait_for([&] { return link.connected() && r.slots.samples[0]->load().valid; }, 3s));
  const auto s = r.slots.samples[0]->load();
  CHECK(s.power_W == Approx(800.0).margin(2.0));
  const std::int64_t now = can_test::steady_ns();
  CHECK(s.receive_time_ns <= now);
  CHECK(s.receive_time_ns > now - 500'000'000);
  r.command(1, true, -300.0);
  REQUIRE(can_test::wait_for([&] { return r.slots.samples[1]->load().equalization_mode; }, 3s));
  CHECK(r.backend->record(1).setpoint_W == Approx(-300.0));
  REQUIRE(can_test::wait_for([&] { return r.backend->heartbeat_count() >= 2; }, 3s));
  REQUIRE(can_test::wait_for([&] { return link.can_stats().kernel_timestamps > 0; }, 1s));
  link.release_all();
  CHECK(link.wait_released(3s));
  CHECK_FALSE(r.backend->record(1).equalize);
  link.stop();
  r.server->stop();
}

}  // namespace

TEST_CASE("kernel CanLink with simulated controllers over vcan (classic profile)", "[can][kernel]") {
  KernelRig r(default_can_profile(8), 8, 11);
  exercise(r);
}

TEST_CASE("kernel CanLink over vcan with the CAN FD profile", "[can][kernel]") {
  KernelRig r(default_can_fd_profile(8), 8, 12);
  exercise(r);
}

TEST_CASE("kernel error frames take the link down and recovery brings it back", "[can][kernel]") {
  KernelRig r(default_can_profile(2), 2, 13);
  CanLink link(r.cfg, r.slots.slots());
  r.server->start();
  link.start();
  REQUIRE(can_test::wait_for([&] { return link.connected(); }, 3s));
  Fd peer(raw_peer(iface()));
  Frame e;
  e.error = true;
  e.len = 8;
  e.id = CAN_ERR_BUSOFF;
  REQUIRE(can_test::write_frame(peer.fd, e));
  REQUIRE(can_test::wait_for([&] { return !link.connected(); }, 2s));
  CHECK(r.slots.samples[0]->load().state == eqd::core::ChannelState::offline);
  e.id = CAN_ERR_RESTARTED;
  REQUIRE(can_test::write_frame(peer.fd, e));
  REQUIRE(can_test::wait_for([&] { return link.connected(); }, 2s));
  REQUIRE(can_test::wait_for([&] { return link.can_stats().bus_off == 1 && link.can_stats().recoveries == 1; }, 1s));
  link.stop();
  r.server->stop();
}

TEST_CASE("kernel an absent interface keeps the link down with the interface named", "[can][kernel]") {
  can_test::Slots slots(1);
  CanLinkConfig cfg;
  cfg.name = "ghost";
  cfg.interface = "nosuchcan0";
  cfg.map = default_can_profile(1);
  cfg.channel_slots = {0};
  cfg.backoff_initial_ms = 20;
  CanLink link(cfg, slots.slots());
  link.start();
  REQUIRE(can_test::wait_for([&] { return link.stats().connection_errors >= 2; }, 2s));
  CHECK_FALSE(link.connected());
  CHECK(std::string(link.stats().last_error).find("nosuchcan0") != std::string::npos);
  link.stop();
}

TEST_CASE("kernel replay of a saturated 1 Mbit/s bus loses no frame", "[can][kernel][replay]") {
  // A classic 8-byte standard frame is ~111 bits + stuffing: ~8.7k frames/s at 1 Mbit/s. Replay
  // 2 s of such a bus, paced at that rate, into a link with 64 channels.
  const std::string name = iface();
  can_test::Slots slots(64);
  CanLinkConfig cfg;
  cfg.name = "replay";
  cfg.interface = name;
  cfg.node_id = 20;
  cfg.map = default_can_profile(64);
  for (std::size_t k = 0; k < 64; ++k) cfg.channel_slots.push_back(static_cast<eqd::core::ChannelIndex>(k));
  cfg.timeout_ms = 60000;
  cfg.heartbeat_period_ms = 0;
  CanLink link(cfg, slots.slots());
  link.start();
  std::this_thread::sleep_for(100ms);  // socket open
  const Codec codec(cfg.map, cfg.node_id);
  std::vector<canfd_frame> wire(64);
  std::vector<std::size_t> sizes(64);
  for (std::size_t k = 0; k < 64; ++k) {
    StatusValues v;
    v.voltage_V = 3.0 + 0.01 * static_cast<double>(k);
    Frame f;
    const char* field = "";
    REQUIRE(codec.encode_status(k, v, f, field) == CodecStatus::ok);
    sizes[k] = to_wire(f, wire[k]);
  }
  Fd peer(raw_peer(name));
  constexpr std::size_t kFrames = 17400;
  const auto period = std::chrono::nanoseconds(115'000);  // 1 / 8.7 kHz
  auto next = std::chrono::steady_clock::now();
  std::size_t sent = 0, refused = 0;
  for (std::size_t i = 0; i < kFrames; ++i) {
    while (::send(peer.fd, &wire[i % 64], sizes[i % 64], MSG_DONTWAIT) < 0) {
      ++refused;  // the sender's own queue: retry, the bus is what is being modelled
      std::this_thread::yield();
    }
    ++sent;
    next += period;
    while (std::chrono::steady_clock::now() < next) {}
  }
  can_test::wait_for([&] { return link.can_stats().status_frames >= kFrames; }, 10s);
  const auto cs = link.can_stats();
  INFO("sent " << sent << " in " << std::chrono::duration<double>(std::chrono::steady_clock::now() - next).count()
               << " s after the last; received " << cs.frames_received << ", decoded " << cs.status_frames
               << ", kernel drops " << cs.kernel_drops);
  CHECK(cs.kernel_drops == 0);
  CHECK(cs.status_frames == kFrames);
  CHECK(cs.bad_frames == 0);
  WARN("replayed " << sent << " frames at ~8.7k frames/s: decoded " << cs.status_frames << ", sender retries "
                   << refused);
  link.stop();
}
