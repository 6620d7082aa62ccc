/// @file can_link.cpp
/// One I/O thread per CAN controller (see can_link.hpp).

#include "eqd/io/can/can_link.hpp"

#include <linux/can/error.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "eqd/io/can/socket.hpp"

namespace eqd::io::can {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}
std::int64_t realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// At most this many frames per wake-up, so that a saturated bus cannot starve the command tick.
constexpr int kMaxFramesPerWake = 512;

}  // namespace

struct CanLink::Impl {
  /// What the link keeps per channel beyond the command engine's state.
  struct ChannelIo {
    std::int64_t last_rx_ns = 0;  ///< receive time of the last valid status
    bool late_counted = false;    ///< a missing-status timeout was counted for this gap
    core::ChannelState last_state = core::ChannelState::offline;
    float forecast_W = std::numeric_limits<float>::quiet_NaN();  ///< last forecast frame's value
    std::int64_t forecast_rx_ns = 0;                             ///< its receive time (0: none yet)
    std::uint16_t step_index = core::Sample::kNoStep;            ///< last program frame's values
    std::uint32_t cycle_index = core::Sample::kNoIndex;
    std::int64_t program_rx_ns = 0;  ///< its receive time (0: none yet)
  };

  Impl(CanLink& o, SocketFactory f)
      : owner(o), codec(o.cfg_.map, o.cfg_.node_id), factory(std::move(f)), sd(io), timer(io) {}

  CanLink& owner;
  const Codec codec;
  SocketFactory factory;
  boost::asio::io_context io;
  boost::asio::posix::stream_descriptor sd;
  boost::asio::steady_timer timer;
  std::vector<ChannelIo> ch;
  LinkStats local{};
  CanStats can{};
  std::int64_t next_open_ns = 0;
  std::int64_t last_rx_ns = 0;  ///< any status frame of this controller
  std::int64_t next_heartbeat_ns = 0;
  std::int64_t last_tick_ns = 0;
  int backoff_ms = 0;
  std::uint32_t heartbeat_value = 0;
  bool up = false;         ///< published as connected_
  bool bus_fault = false;  ///< bus-off or error-passive: down until recovery
  bool ever_up = false;
  std::atomic<bool> stopping{false};

  bool open() const noexcept { return sd.is_open(); }

  CommandEngine& engine() noexcept { return owner.engine_; }

  /// Records local.last_error with `code` and hands it to the configured error hook (channel
  /// 1-based, 0: the link).
  void report(std::size_t channel, LinkErrc code) {
    record_link_error(local, owner.cfg_.on_error, static_cast<std::uint16_t>(channel), code);
  }

  void note(LinkErrc code, const char* fmt, const char* a, const char* b) {
    std::snprintf(local.last_error, sizeof local.last_error, fmt, owner.cfg_.name.c_str(), a, b);
    report(0, code);
  }

  void set_up(bool v) {
    if (v && !up) {
      if (ever_up) ++local.reconnects;
      ever_up = true;
      // The controller may have restarted or dropped its setpoints while we could not see it.
      engine().link_up();
      next_heartbeat_ns = 0;
    }
    if (!v && up) publish_offline();
    up = v;
    owner.connected_.store(v, std::memory_order_release);
  }

  void publish_offline() {
    for (std::size_t k = 0; k < ch.size(); ++k) {
      if (owner.slots_.samples[k] == nullptr) continue;
      core::Sample s{};
      s.state = core::ChannelState::offline;
      s.valid = false;
      s.receive_time_ns = steady_ns();
      owner.slots_.samples[k]->store(s);
      engine().observe_invalid(k);
    }
  }

  void close_socket(int err, const char* what) {
    if (open()) {
      boost::system::error_code ignored;
      sd.close(ignored);
    }
    ++local.connection_errors;
    note(LinkErrc::link_lost, "%s %s: %s", what, std::strerror(err));
    set_up(false);
    const std::int64_t now = steady_ns();
    next_open_ns = now + static_cast<std::int64_t>(backoff_ms) * 1'000'000;
    backoff_ms = std::min(backoff_ms * 2, owner.cfg_.backoff_max_ms);
  }

  void try_open(std::int64_t now) {
    if (open() || now < next_open_ns) return;
    std::error_code ec;
    const int fd = factory ? factory(owner.cfg_, codec, ec)
                           : open_raw_socket(owner.cfg_.interface, codec.ids(), codec.uses_fd(), ec);
    if (fd < 0) {
      ++local.connection_errors;
      note(LinkErrc::connect_failed, "%s open %s: %s", owner.cfg_.interface.c_str(), ec.message().c_str());
      next_open_ns = now + static_cast<std::int64_t>(backoff_ms) * 1'000'000;
      backoff_ms = std::min(backoff_ms * 2, owner.cfg_.backoff_max_ms);
      return;
    }
    // Kernel receive timestamps: the frame's arrival, not our wake-up, dates the sample.
    const int on = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &on, sizeof on);
    const int rcvbuf = owner.cfg_.receive_buffer_bytes;
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    // Drops of a full receive queue are otherwise invisible: the kernel reports its running count.
    (void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
    boost::system::error_code bec;
    sd.assign(fd, bec);
    if (bec) {
      ::close(fd);
      close_socket(bec.value(), "assign");
      return;
    }
    backoff_ms = owner.cfg_.backoff_initial_ms;
    arm_read();
  }

  void arm_read() {
    sd.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
      if (ec || stopping.load(std::memory_order_relaxed)) return;
      on_readable();
      if (open()) arm_read();
    });
  }

  void on_readable() {
    alignas(canfd_frame) unsigned char buf[sizeof(canfd_frame)];
    alignas(cmsghdr) unsigned char ctrl[CMSG_SPACE(sizeof(timeval)) + CMSG_SPACE(sizeof(std::uint32_t)) + 64];
    // realtime -> steady offset, once per wake-up: SO_TIMESTAMP stamps are CLOCK_REALTIME.
    const std::int64_t now_steady = steady_ns();
    const std::int64_t offset = realtime_ns() - now_steady;
    for (int n = 0; n < kMaxFramesPerWake; ++n) {
      iovec iov{buf, sizeof buf};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = ctrl;
      msg.msg_controllen = sizeof ctrl;
      const ssize_t r = ::recvmsg(sd.native_handle(), &msg, MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        close_socket(errno, "receive");
        return;
      }
      if (r == 0) {
        close_socket(ECONNRESET, "receive");
        return;
      }
      ++can.frames_received;
      std::int64_t t = now_steady;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          std::uint32_t dropped = 0;
          std::memcpy(&dropped, CMSG_DATA(c), sizeof dropped);
          can.kernel_drops = dropped;
        }
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMP) {
          timeval tv{};
          std::memcpy(&tv, CMSG_DATA(c), sizeof tv);
          const std::int64_t k = (static_cast<std::int64_t>(tv.tv_sec) * 1'000'000 + tv.tv_usec) * 1000 - offset;
          // A step of the wall clock between stamp and now would date the frame wrongly; accept the
          // kernel's stamp only when it is plausible (within 1 s before now), else keep the read time.
          if (k <= now_steady && k > now_steady - 1'000'000'000) {
            t = k;
            ++can.kernel_timestamps;
          }
        }
      }
      Frame f;
      if (!from_wire(buf, static_cast<std::size_t>(r), f)) {
        // A datagram of the wrong size names no frame to report: counted only.
        ++can.bad_frames;
        ++local.protocol_errors;
        ++local.errors_by_code[static_cast<std::size_t>(LinkErrc::bad_response)];
        continue;
      }
      handle_frame(f, t);
    }
  }

  void handle_error_frame(const Frame& f) {
    ++can.error_frames;
    const std::uint8_t ctrl = f.len > 1 ? f.data[1] : 0;
    const bool bus_off = (f.id & CAN_ERR_BUSOFF) != 0;
    const bool passive =
        (f.id & CAN_ERR_CRTL) != 0 && (ctrl & (CAN_ERR_CRTL_RX_PASSIVE | CAN_ERR_CRTL_TX_PASSIVE)) != 0;
    const bool recovered =
        (f.id & CAN_ERR_RESTARTED) != 0 || ((f.id & CAN_ERR_CRTL) != 0 && ctrl == CAN_ERR_CRTL_ACTIVE);
    if (bus_off || passive) {
      if (bus_off) ++can.bus_off;
      if (passive) ++can.error_passive;
      ++local.connection_errors;
      note(LinkErrc::link_lost, "%s %s: %s", owner.cfg_.interface.c_str(), bus_off ? "bus-off" : "error-passive");
      bus_fault = true;
      set_up(false);
    } else if (recovered && bus_fault) {
      ++can.recoveries;
      bus_fault = false;  // up again with the next status frame
    }
    can.bus_ok = !bus_fault;
  }

  void handle_frame(const Frame& f, std::int64_t t) {
    if (f.error) {
      handle_error_frame(f);
      return;
    }
    const FrameMatch m = codec.match(f);
    if (m.kind == FrameMatch::Kind::forecast) {
      handle_forecast(f, t);
      return;
    }
    if (m.kind == FrameMatch::Kind::program) {
      handle_program(f, t);
      return;
    }
    if (m.kind != FrameMatch::Kind::status) {
      ++can.ignored_frames;
      return;
    }
    ++local.polls;
    core::Sample s{};
    std::size_t k = 0;
    const char* field = "";
    CodecStatus forecast_st = CodecStatus::ok;
    ProgramPosition program;
    const CodecStatus st = codec.decode_status(f, s, k, field, forecast_st, program);
    if (st != CodecStatus::ok) {
      ++can.bad_frames;
      ++local.protocol_errors;
      std::snprintf(local.last_error, sizeof local.last_error, "%s: status frame 0x%X: %s %s", owner.cfg_.name.c_str(),
                    f.id, field, to_string(st));
      // A frame that does not fit the map is a bad response; one that fits with a value eqd cannot
      // use (out of range, not finite, a meaningless code) is a refused value.
      const bool malformed = st == CodecStatus::short_frame || st == CodecStatus::wrong_channel;
      report(k < ch.size() ? k + 1 : 0, malformed ? LinkErrc::bad_response : LinkErrc::value_refused);
      if (st == CodecStatus::bad_value && k < ch.size() && owner.slots_.samples[k] != nullptr && !bus_fault) {
        // The channel did speak, with a value eqd cannot use: invalid, not stale.
        core::Sample bad{};
        bad.valid = false;
        bad.state = ch[k].last_state;
        bad.receive_time_ns = t;
        owner.slots_.samples[k]->store(bad);
        engine().observe_invalid(k);
        ++local.invalid_samples;
      }
      return;
    }
    if (bus_fault) return;  // down until the controller recovers: samples stay offline
    if (!up) set_up(true);
    last_rx_ns = std::max(last_rx_ns, t);
    if (k >= ch.size() || owner.slots_.samples[k] == nullptr) return;  // a channel eqd does not use
    ++local.polls_ok;
    ++can.status_frames;
    s.receive_time_ns = t;
    ChannelIo& c = ch[k];
    if (codec.forecast_in_status()) {
      if (forecast_st != CodecStatus::ok) refused_forecast(k, to_string(forecast_st));
    } else {
      // The channel's latest forecast frame, while fresh; a refused or "not available" one is NaN.
      const auto max_age = static_cast<std::int64_t>(owner.cfg_.forecast_max_age_ms) * 1'000'000;
      s.forecast_W = c.forecast_rx_ns != 0 && t - c.forecast_rx_ns <= max_age ? c.forecast_W
                                                                              : std::numeric_limits<float>::quiet_NaN();
    }
    if (codec.program_in_status()) {
      refused_program(k, program);
    } else {
      // The channel's latest program frame, while fresh.
      const auto max_age = static_cast<std::int64_t>(owner.cfg_.program_max_age_ms) * 1'000'000;
      const bool fresh = c.program_rx_ns != 0 && t - c.program_rx_ns <= max_age;
      s.step_index = fresh ? c.step_index : core::Sample::kNoStep;
      s.cycle_index = fresh ? c.cycle_index : core::Sample::kNoIndex;
    }
    c.last_rx_ns = t;
    c.late_counted = false;
    if (s.valid)
      c.last_state = s.state;
    else
      ++local.invalid_samples;
    engine().observe(k, s, t);
    owner.slots_.samples[k]->store(s);
  }

  /// A forecast_power value eqd must not use: counted and reported; the sample itself is kept.
  void refused_forecast(std::size_t k, const char* why) {
    ++local.protocol_errors;
    ++local.forecast_errors;
    std::snprintf(local.last_error, sizeof local.last_error, "%s/%zu: forecast_power %s: ignored, sample kept",
                  owner.cfg_.name.c_str(), k + 1, why);
    report(k + 1, LinkErrc::forecast_refused);
  }

  /// step_index / cycle_index values eqd must not use: counted and reported; the sample itself is kept.
  void refused_program(std::size_t k, const ProgramPosition& p) {
    const struct {
      CodecStatus st;
      const char* name;
    } fields[] = {{p.step, "step_index"}, {p.cycle, "cycle_index"}};
    for (const auto& x : fields) {
      if (x.st == CodecStatus::ok) continue;
      ++local.protocol_errors;
      ++local.program_errors;
      std::snprintf(local.last_error, sizeof local.last_error, "%s/%zu: %s %s: ignored, sample kept",
                    owner.cfg_.name.c_str(), k + 1, x.name, to_string(x.st));
      report(k + 1, LinkErrc::program_refused);
    }
  }

  void handle_program(const Frame& f, std::int64_t t) {
    ++can.program_frames;
    std::size_t k = 0;
    ProgramPosition p;
    const char* field = "";
    const CodecStatus st = codec.decode_program(f, k, p, field);
    if (st == CodecStatus::ok) {
      refused_program(k, p);
      if (k < ch.size()) {
        // A refused value replaces the previous one: not reported rather than an old position.
        ch[k].step_index = p.step_index;
        ch[k].cycle_index = p.cycle_index;
        ch[k].program_rx_ns = t;
      }
      return;
    }
    ++can.bad_frames;
    ++local.protocol_errors;
    std::snprintf(local.last_error, sizeof local.last_error, "%s: program frame 0x%X: %s %s", owner.cfg_.name.c_str(),
                  f.id, field, to_string(st));
    report(0, LinkErrc::bad_response);
  }

  void handle_forecast(const Frame& f, std::int64_t t) {
    ++can.forecast_frames;
    std::size_t k = 0;
    float w = std::numeric_limits<float>::quiet_NaN();
    const char* field = "";
    const CodecStatus st = codec.decode_forecast(f, k, w, field);
    if (st == CodecStatus::ok || st == CodecStatus::out_of_range || st == CodecStatus::not_finite) {
      if (st != CodecStatus::ok) refused_forecast(k, to_string(st));
      if (k < ch.size()) {
        // A refused announcement replaces the previous one: no forecast rather than an old one.
        ch[k].forecast_W = w;
        ch[k].forecast_rx_ns = t;
      }
      return;
    }
    ++can.bad_frames;
    ++local.protocol_errors;
    std::snprintf(local.last_error, sizeof local.last_error, "%s: forecast frame 0x%X: %s %s", owner.cfg_.name.c_str(),
                  f.id, field, to_string(st));
    report(0, LinkErrc::bad_response);
  }

  enum class SendResult : std::uint8_t { ok, retry, closed };
  // retry: the queue was full (the frame is retried next tick); closed: the socket failed and was closed.
  SendResult send(const Frame& f) {
    canfd_frame w{};
    const std::size_t n = to_wire(f, w);
    if (n == 0) {
      ++local.protocol_errors;  // the codec produced no frame: a programming error, never a partial send
      return SendResult::retry;
    }
    const ssize_t r = ::send(sd.native_handle(), &w, n, MSG_DONTWAIT);
    if (r == static_cast<ssize_t>(n)) return SendResult::ok;
    if (r < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The controller's queue (or the socket buffer) is full: never wait for room on this thread;
      // the command stays unwritten and is retried on the next tick.
      ++can.tx_queue_full;
      note(LinkErrc::write_failed, "%s %s: %s", "send", "transmit queue full");
      return SendResult::retry;
    }
    close_socket(r < 0 ? errno : EIO, "send");
    return SendResult::closed;
  }

  /// The command engine's send step for controller channel k.
  WriteResult write_command(std::size_t k, const core::Command& cmd) {
    Frame f;
    const char* field = "";
    const CodecStatus st = codec.encode_command(k, cmd, f, field);
    if (st != CodecStatus::ok) {
      // Never send a wrapped or clamped value: report and let the controller's lease expire.
      std::snprintf(local.last_error, sizeof local.last_error, "%s/%zu: command %s %s", owner.cfg_.name.c_str(), k + 1,
                    field, to_string(st));
      report(k + 1, LinkErrc::command_refused);
      return WriteResult::encode_error;
    }
    switch (send(f)) {
      case SendResult::ok:
        return WriteResult::ok;
      case SendResult::retry:
        return WriteResult::failed;
      case SendResult::closed:
        return WriteResult::link_lost;
    }
    return WriteResult::failed;
  }

  void write_commands(std::int64_t now) {
    engine().write_commands(now, open() && up, local,
                            [this](std::size_t k, const core::Command& cmd) { return write_command(k, cmd); });
  }

  void write_heartbeat(std::int64_t now) {
    // Sent whenever the bus works, also while the controller's status frames are late: the heartbeat
    // says that eqd is alive, and a slow controller must not trip its watchdog because of eqd.
    // It also proves that the control cycle is alive, not only this thread: while the control thread is
    // late the controller's watchdog must run out and take its buffers to 0 W.
    if (owner.cfg_.heartbeat_period_ms == 0 || !open() || bus_fault || now < next_heartbeat_ns) return;
    if (!engine().control_alive(now, local)) return;
    Frame f;
    const std::uint32_t next = heartbeat_value % 65535u + 1u;
    if (!codec.encode_heartbeat(next, f)) return;
    if (send(f) != SendResult::ok) {
      ++local.write_errors;
      return;  // retried next tick
    }
    heartbeat_value = next;
    ++local.heartbeats;
    next_heartbeat_ns = now + static_cast<std::int64_t>(owner.cfg_.heartbeat_period_ms) * 1'000'000;
  }

  void check_silence(std::int64_t now) {
    // Per channel: a status missing for more than 3 periods counts one timeout per gap; the core
    // judges staleness itself from receive_time_ns.
    const auto late_ns = static_cast<std::int64_t>(3e9 / owner.cfg_.status_hz);
    for (std::size_t k = 0; k < ch.size(); ++k) {
      ChannelIo& c = ch[k];
      if (owner.slots_.samples[k] == nullptr || !up || c.late_counted) continue;
      if (c.last_rx_ns != 0 && now - c.last_rx_ns > late_ns) {
        c.late_counted = true;
        ++local.timeouts;
      }
    }
    if (up && now - last_rx_ns > static_cast<std::int64_t>(owner.cfg_.timeout_ms) * 1'000'000) {
      ++local.timeouts;
      note(LinkErrc::timeout, "%s: %s%s", "no status frame within timeout_ms", "");
      set_up(false);
    }
  }

  void tick() {
    const std::int64_t now = steady_ns();
    if (last_tick_ns != 0 && now > last_tick_ns) {
      const double hz = 1e9 / static_cast<double>(now - last_tick_ns);
      local.achieved_hz = local.achieved_hz == 0.0 ? hz : 0.9 * local.achieved_hz + 0.1 * hz;
    }
    last_tick_ns = now;
    try_open(now);
    check_silence(now);
    if (open()) {
      write_commands(now);
      write_heartbeat(now);
    } else {
      engine().set_down();
    }
    publish_stats();
  }

  void publish_stats() {
    local.connected = up;
    local.all_acknowledged = engine().acknowledged();
    local.released = engine().released();
    can.bus_ok = !bus_fault;
    owner.stats_.store(local);
    owner.can_stats_.store(can);
  }

  void arm_tick() {
    timer.expires_after(std::chrono::milliseconds(owner.cfg_.tick_ms));
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping.load(std::memory_order_relaxed)) return;
      tick();
      arm_tick();
    });
  }

  void run() {
    tick();
    arm_tick();
    io.run();
    boost::system::error_code ignored;
    if (open()) sd.close(ignored);
    set_up(false);
    publish_stats();
  }
};

CanLink::CanLink(CanLinkConfig cfg, ChannelSlots slots, SocketFactory factory)
    : cfg_(std::move(cfg)),
      slots_(std::move(slots)),
      // No response tells that a command frame was lost: a stop is repeated at the status rate while the
      // channel still reads back in equalization.
      engine_(slots_,
              CommandEngine::Options{cfg_.status_hz > 0.0 ? static_cast<std::int64_t>(1e9 / cfg_.status_hz) : 0}) {
  std::vector<std::string> errs;
  auto err = [&](const std::string& m) { errs.push_back(m); };
  if (const char* e = CommandEngine::check(slots_)) err(e);
  if (slots_.samples.size() != slots_.commands.size()) err("sample and command slot counts differ");
  if (slots_.samples.empty()) err("no channels");
  if (slots_.samples.size() > cfg_.map.channel_count)
    err(std::to_string(slots_.samples.size()) + " channels used but CAN map '" + cfg_.map.name + "' has " +
        std::to_string(cfg_.map.channel_count));
  for (std::size_t k = 0; k < slots_.samples.size() && k < slots_.commands.size(); ++k)
    if ((slots_.samples[k] == nullptr) != (slots_.commands[k] == nullptr))
      err("channel " + std::to_string(k + 1) + ": sample and command slots must both be set or both be unused");
  if (!(cfg_.status_hz > 0.0 && cfg_.status_hz <= 1000.0)) err("status rate (poll_hz) must be in (0, 1000]");
  if (cfg_.timeout_ms <= 0) err("timeout_ms must be positive");
  if (cfg_.tick_ms == 0 || cfg_.tick_ms > 1000) err("tick_ms must be 1..1000");
  if (cfg_.backoff_initial_ms <= 0 || cfg_.backoff_max_ms < cfg_.backoff_initial_ms)
    err("backoff_initial_ms must be positive and <= backoff_max_ms");
  if (cfg_.interface.empty() && !factory) err("interface is empty");
  if (!errs.empty()) {
    std::string msg = "CAN controller '" + cfg_.name + "':";
    for (const auto& e : errs) msg += "\n  " + e;
    throw std::invalid_argument(msg);
  }
  try {
    impl_ = std::make_unique<Impl>(*this, std::move(factory));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("CAN controller '" + cfg_.name + "': " + e.what());
  }
  impl_->ch.resize(slots_.samples.size());
  impl_->backoff_ms = cfg_.backoff_initial_ms;
  impl_->publish_offline();
  impl_->publish_stats();
}

CanLink::~CanLink() { stop(); }

void CanLink::start() {
  if (thread_.joinable()) return;
  impl_->stopping.store(false);
  impl_->io.restart();
  thread_ = std::thread([this] { impl_->run(); });
}

void CanLink::stop() {
  if (!thread_.joinable()) return;
  impl_->stopping.store(true);
  impl_->io.stop();
  thread_.join();
}

bool CanLink::wait_released(std::chrono::milliseconds timeout) const { return engine_.wait_released(timeout); }

}  // namespace eqd::io::can
