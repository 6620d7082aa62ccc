// bench_can: CAN status frames decoded per second, against the highest frame rate of a 1 Mbit/s bus.
//   bench_can [FRAMES]
// 1. codec only: Codec::decode_status over the 64 channels' frames of the eqd-default profile;
// 2. the whole link path: FRAMES kernel can_frames written back to back into a SEQPACKET socketpair
//    (one frame per datagram, as CAN_RAW) read by a running CanLink (recvmsg, decode, publish into
//    the seqlock slots); decoded must equal FRAMES (zero drops).
// A classic frame with an 11-bit id and 8 data bytes is 111 bits before stuffing (up to 135 with
// worst-case stuffing): at most 1e6 / 111 = 9009 frames/s on a 1 Mbit/s bus; the ratios below use
// that highest rate, so they are the conservative ones.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "eqd/io/can/can_link.hpp"
#include "eqd/io/can/codec.hpp"
#include "eqd/io/can/socket.hpp"

using namespace eqd::io::can;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const std::size_t frames = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2'000'000;
  constexpr double kBusFramesPerS = 1e6 / 111.0;
  const std::size_t channels = 64;
  const SignalMap map = default_can_profile(static_cast<std::uint16_t>(channels));
  const Codec codec(map, 1);
  std::vector<Frame> set(channels);
  for (std::size_t k = 0; k < channels; ++k) {
    StatusValues v;
    v.voltage_V = 3.2 + 0.001 * static_cast<double>(k);
    v.current_A = -10.0 + static_cast<double>(k);
    v.counter = static_cast<std::uint32_t>(k);
    const char* field = "";
    if (codec.encode_status(k, v, set[k], field) != CodecStatus::ok) return 1;
  }

  // 1. Codec only.
  {
    eqd::core::Sample s;
    std::size_t k = 0;
    const char* field = "";
    double sink = 0.0;
    const std::size_t n = frames * 5;
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) {
      if (codec.decode_status(set[i % channels], s, k, field) != CodecStatus::ok) return 1;
      sink += s.voltage_V;
    }
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    const double rate = static_cast<double>(n) / dt;
    std::printf(
        "codec decode_status: %zu frames in %.3f s = %.2f M frames/s = %.0fx a saturated 1 Mbit/s bus "
        "(%.0f frames/s)%s\n",
        n, dt, rate / 1e6, rate / kBusFramesPerS, kBusFramesPerS, sink == 0.0 ? " " : "");
  }

  // 2. The link path over a socketpair.
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, fds) != 0) return 1;
  std::vector<std::unique_ptr<eqd::core::Seqlock<eqd::core::Sample>>> samples;
  std::vector<std::unique_ptr<eqd::core::Seqlock<eqd::core::Command>>> commands;
  ChannelSlots slots;
  // No commands are written here (and no heartbeat): the control thread is never alive.
  static const std::atomic<std::int64_t> no_control_cycle{0};
  slots.cycle_clock = &no_control_cycle;
  CanLinkConfig cfg;
  cfg.name = "bench";
  cfg.interface = "socketpair";
  cfg.map = map;
  cfg.timeout_ms = 600000;
  cfg.heartbeat_period_ms = 0;
  for (std::size_t k = 0; k < channels; ++k) {
    samples.push_back(std::make_unique<eqd::core::Seqlock<eqd::core::Sample>>());
    commands.push_back(std::make_unique<eqd::core::Seqlock<eqd::core::Command>>());
    slots.samples.push_back(samples.back().get());
    slots.commands.push_back(commands.back().get());
    cfg.channel_slots.push_back(static_cast<eqd::core::ChannelIndex>(k));
  }
  const int link_fd = fds[0];
  CanLink link(cfg, slots, [link_fd](const CanLinkConfig&, const Codec&, std::error_code&) { return ::dup(link_fd); });
  link.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::vector<canfd_frame> wire(channels);
  for (std::size_t k = 0; k < channels; ++k) (void)to_wire(set[k], wire[k]);
  const auto t0 = Clock::now();
  std::size_t full = 0;
  for (std::size_t i = 0; i < frames; ++i) {
    while (::send(fds[1], &wire[i % channels], CAN_MTU, MSG_DONTWAIT) != static_cast<ssize_t>(CAN_MTU)) {
      ++full;
      std::this_thread::yield();
    }
  }
  while (link.can_stats().status_frames < frames && Clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  const CanStats cs = link.can_stats();
  link.stop();
  const double rate = static_cast<double>(cs.status_frames) / dt;
  std::printf(
      "link path (socketpair, recvmsg + decode + publish): %zu frames back to back, decoded %llu, "
      "bad %llu, in %.3f s = %.0f frames/s = %.0fx a saturated 1 Mbit/s bus; writer waited %zu times "
      "for socket room\n",
      frames, static_cast<unsigned long long>(cs.status_frames), static_cast<unsigned long long>(cs.bad_frames), dt,
      rate, rate / kBusFramesPerS, full);
  ::close(fds[1]);
  ::close(fds[0]);
  const bool ok = cs.status_frames == frames && cs.bad_frames == 0;
  std::printf("zero drops: %s\n", ok ? "yes" : "NO");
  return ok ? 0 : 1;
}
