/// @file can_server.cpp
/// Simulated CAN controllers (see can_server.hpp).

#include "can_server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "eqd/io/can/socket.hpp"

namespace eqd::sim {

using Clock = std::chrono::steady_clock;
namespace can = eqd::io::can;

struct CanServer::Unit {
  struct Chan {
    bool enabled = false;
    std::uint32_t lease_ms = 0;
    Clock::time_point lease_deadline{};
    std::uint32_t counter = 0;
    std::uint16_t sent_step = 0xFFFF;  ///< program position last sent (program frame)
    std::uint32_t sent_cycle = 0xFFFF'FFFF;
    bool program_sent = false;
  };
  Unit(CanServedController c) : cfg(std::move(c)), codec(fixed_map(cfg), cfg.node_id) {
    chans.resize(cfg.backend->channel_count());
  }
  static can::SignalMap fixed_map(const CanServedController& c) {
    if (!c.backend) throw std::invalid_argument("CAN controller '" + c.name + "': no backend");
    can::SignalMap m = c.map;
    m.channel_count = static_cast<std::uint16_t>(c.backend->channel_count());
    return m;
  }
  CanServedController cfg;
  can::Codec codec;
  std::vector<Chan> chans;
  CanServerStats stats;
  Clock::time_point heartbeat_ref{};
  std::uint32_t last_heartbeat = 0;
  bool heartbeat_seen = false;
  Clock::time_point stall_until{};
  Clock::time_point next_forecast{};
  Clock::time_point next_program{};
  /// The map is a built-in profile: its program frame is spec_program_frame().
  [[nodiscard]] bool builtin() const {
    return cfg.map.name == can::kDefaultCanProfile || cfg.map.name == can::kDefaultCanFdProfile;
  }

  void release(std::size_t k, ReleaseReason why) {
    chans[k].enabled = false;
    cfg.backend->command(k, false, 0.0, 0);
    cfg.backend->released(k, why);
  }
};

can::Frame spec_program_frame(std::uint32_t node_id, std::size_t k, std::uint16_t step_index,
                              std::uint32_t cycle_index) {
  can::Frame f;
  f.id = 0x500 + node_id;
  f.len = 8;
  f.data[0] = static_cast<std::uint8_t>(k + 1);
  f.data[1] = static_cast<std::uint8_t>(step_index & 0xFFU);
  f.data[2] = static_cast<std::uint8_t>(step_index >> 8);
  for (int b = 0; b < 4; ++b) f.data[3 + b] = static_cast<std::uint8_t>((cycle_index >> (8 * b)) & 0xFFU);
  f.data[7] = 0;
  return f;
}

CanServer::CanServer(std::vector<CanServedController> controllers, int fd, double status_hz)
    : fd_(fd), status_hz_(status_hz) {
  if (!(status_hz > 0.0 && status_hz <= 1000.0)) {
    ::close(fd);
    throw std::invalid_argument("CAN server: status rate must be in (0, 1000] Hz");
  }
  std::vector<can::FrameId> all;
  for (auto& c : controllers) {
    std::unique_ptr<Unit> u;
    try {
      u = std::make_unique<Unit>(std::move(c));
    } catch (const std::invalid_argument&) {
      ::close(fd);
      throw;
    }
    for (const can::FrameId& id : u->codec.ids())
      if (std::find(all.begin(), all.end(), id) != all.end()) {
        ::close(fd);
        throw std::invalid_argument("CAN controller '" + u->cfg.name + "': identifier " + std::to_string(id.id) +
                                    " is used by another controller on this bus");
      }
    all.insert(all.end(), u->codec.ids().begin(), u->codec.ids().end());
    units_.push_back(std::move(u));
  }
}

std::unique_ptr<CanServer> CanServer::on_interface(const std::string& interface,
                                                   std::vector<CanServedController> controllers, double status_hz) {
  bool fd_frames = false;
  for (const auto& c : controllers)
    for (const auto& f : c.map.frames) fd_frames = fd_frames || f.fd;
  std::error_code ec;
  // No receive filter: the server serves every controller on the bus from one socket.
  const int fd = can::open_raw_socket(interface, {}, fd_frames, ec);
  if (fd < 0) throw std::runtime_error("CAN interface '" + interface + "': " + ec.message());
  return std::make_unique<CanServer>(std::move(controllers), fd, status_hz);
}

CanServer::~CanServer() {
  stop();
  if (fd_ >= 0) ::close(fd_);
}

void CanServer::start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] { serve(); });
}

void CanServer::stop() {
  running_.store(false);
  if (thread_.joinable()) thread_.join();
}

CanServerStats CanServer::stats(std::size_t i) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return units_.at(i)->stats;
}

void CanServer::inject_stall(std::size_t i, std::chrono::milliseconds duration) {
  const std::lock_guard<std::mutex> lock(mutex_);
  units_.at(i)->stall_until = Clock::now() + duration;
}

bool CanServer::send_frame(const can::Frame& f) {
  canfd_frame w{};
  const std::size_t n = can::to_wire(f, w);
  return n != 0 && ::send(fd_, &w, n, MSG_DONTWAIT) == static_cast<ssize_t>(n);
}

void CanServer::receive() {
  alignas(canfd_frame) unsigned char buf[sizeof(canfd_frame)];
  for (;;) {
    const ssize_t r = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (r <= 0) return;
    can::Frame f;
    if (!can::from_wire(buf, static_cast<std::size_t>(r), f) || f.error) continue;
    const auto now = Clock::now();
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto& up : units_) {
      Unit& u = *up;
      const can::FrameMatch m = u.codec.match(f);
      if (m.kind == can::FrameMatch::Kind::none) continue;
      if (now < u.stall_until) break;
      if (m.kind == can::FrameMatch::Kind::command) {
        can::DecodedCommand c;
        const char* field = "";
        if (u.codec.decode_command(f, c, field) != can::CodecStatus::ok || c.channel >= u.chans.size()) {
          ++u.stats.rejected;
          break;
        }
        auto& ch = u.chans[c.channel];
        if (c.equalize && std::none_of(u.chans.begin(), u.chans.end(), [](const Unit::Chan& x) { return x.enabled; }))
          u.heartbeat_ref = now;  // the watchdog starts counting when equalization starts
        ch.enabled = c.equalize;
        ch.lease_ms = c.lease_ms;
        ch.lease_deadline = now + std::chrono::milliseconds(c.lease_ms);
        ++u.stats.commands;
        u.cfg.backend->command(c.channel, c.equalize, c.setpoint_W, c.lease_ms);
      } else if (m.kind == can::FrameMatch::Kind::heartbeat) {
        std::uint32_t v = 0;
        if (u.codec.decode_heartbeat(f, v) != can::CodecStatus::ok) {
          ++u.stats.rejected;
          break;
        }
        // Only a change of value counts as life.
        if (!u.heartbeat_seen || v != u.last_heartbeat) {
          u.heartbeat_seen = true;
          u.last_heartbeat = v;
          u.heartbeat_ref = now;
          ++u.stats.heartbeats;
          u.cfg.backend->heartbeat(static_cast<std::uint16_t>(v));
        }
      }
      break;
    }
  }
}

void CanServer::tick(Clock::time_point now) {
  const std::lock_guard<std::mutex> lock(mutex_);
  for (auto& up : units_) {
    Unit& u = *up;
    bool any = false;
    for (std::size_t k = 0; k < u.chans.size(); ++k) {
      auto& c = u.chans[k];
      if (!c.enabled) continue;
      if (c.lease_ms > 0 && now >= c.lease_deadline) {
        u.release(k, ReleaseReason::lease_expired);
        ++u.stats.lease_releases;
        continue;
      }
      any = true;
    }
    if (any && u.cfg.heartbeat_timeout_ms > 0 &&
        now - u.heartbeat_ref > std::chrono::milliseconds(u.cfg.heartbeat_timeout_ms)) {
      for (std::size_t k = 0; k < u.chans.size(); ++k)
        if (u.chans[k].enabled) {
          u.release(k, ReleaseReason::heartbeat_lost);
          ++u.stats.heartbeat_releases;
        }
    }
  }
}

void CanServer::serve() {
  const auto period = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / status_hz_));
  auto next_status = Clock::now();
  while (running_.load()) {
    const auto now = Clock::now();
    tick(now);
    if (now >= next_status) {
      next_status += period;
      if (next_status < now) next_status = now + period;
      const std::lock_guard<std::mutex> lock(mutex_);
      for (auto& up : units_) {
        Unit& u = *up;
        if (now < u.stall_until) continue;
        const bool forecast_due = u.cfg.send_forecast && u.codec.has_forecast_frame() && now >= u.next_forecast;
        if (forecast_due) u.next_forecast = now + std::chrono::milliseconds(u.cfg.forecast_period_ms);
        const bool program_frames = u.cfg.send_program && (u.builtin() || u.codec.has_program_frame());
        const bool program_due = program_frames && now >= u.next_program;
        if (program_due) u.next_program = now + std::chrono::milliseconds(u.cfg.program_period_ms);
        for (std::size_t k = 0; k < u.chans.size(); ++k) {
          const ServedReading r = u.cfg.backend->read(k);
          can::StatusValues v;
          v.voltage_V = r.voltage_V;
          v.current_A = r.current_A;
          v.power_W = r.power_W;
          v.state_code = r.state_code;
          v.fault_code = r.fault_code;
          v.equalizing = r.equalizing;
          v.counter = r.sample_counter;
          v.forecast_W = r.forecast_W;
          v.step_index = r.step_index;
          v.cycle_index = r.cycle_index;
          Unit::Chan& ch = u.chans[k];
          if (program_frames &&
              (program_due || !ch.program_sent || r.step_index != ch.sent_step || r.cycle_index != ch.sent_cycle)) {
            // Before the status frame: the first sample of a new step already carries its number.
            can::Frame pf;
            const char* pfield = "";
            bool built = true;
            if (u.builtin())
              pf = spec_program_frame(u.cfg.node_id, k, r.step_index, r.cycle_index);
            else if (u.codec.encode_program(k, r.step_index, r.cycle_index, pf, pfield) != can::CodecStatus::ok)
              // A position the map cannot carry goes out as "not reported" (controller side).
              built = u.codec.encode_program(k, 0xFFFF, 0xFFFF'FFFFU, pf, pfield) == can::CodecStatus::ok;
            canfd_frame pw{};
            const std::size_t pn = built ? can::to_wire(pf, pw) : 0;
            if (pn != 0 && ::send(fd_, &pw, pn, MSG_DONTWAIT) == static_cast<ssize_t>(pn)) {
              ++u.stats.program_sent;
              ch.sent_step = r.step_index;
              ch.sent_cycle = r.cycle_index;
              ch.program_sent = true;
            }
          }
          can::Frame f;
          const char* field = "";
          // A value the profile cannot carry (e.g. a fault code beyond 8 bits) is saturated here on
          // the controller side; eqd's side never clamps.
          if (u.codec.encode_status(k, v, f, field) != can::CodecStatus::ok) {
            v.fault_code = std::min<std::uint16_t>(v.fault_code, 255);
            if (std::string(field) == "forecast_power") v.forecast_W = std::nan("");
            if (std::string(field) == "step_index") v.step_index = 0xFFFF;
            if (std::string(field) == "cycle_index") v.cycle_index = 0xFFFF'FFFFU;
            if (u.codec.encode_status(k, v, f, field) != can::CodecStatus::ok) {
              ++u.stats.status_dropped;
              continue;
            }
          }
          canfd_frame w{};
          const std::size_t n = can::to_wire(f, w);
          if (::send(fd_, &w, n, MSG_DONTWAIT) == static_cast<ssize_t>(n))
            ++u.stats.status_sent;
          else
            ++u.stats.status_dropped;
          if (forecast_due) {
            can::Frame ff;
            // A forecast the signal cannot carry goes out as "not available" (controller side).
            if (u.codec.encode_forecast(k, r.forecast_W, ff, field) != can::CodecStatus::ok &&
                u.codec.encode_forecast(k, std::nan(""), ff, field) != can::CodecStatus::ok)
              continue;
            canfd_frame fw{};
            const std::size_t fn = can::to_wire(ff, fw);
            if (::send(fd_, &fw, fn, MSG_DONTWAIT) == static_cast<ssize_t>(fn)) ++u.stats.forecast_sent;
          }
        }
      }
    }
    pollfd p{fd_, POLLIN, 0};
    const auto wait = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(next_status - Clock::now()),
                               std::chrono::milliseconds(5));
    const int rc = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, wait.count())));
    if (rc > 0 && (p.revents & POLLIN) != 0) receive();
  }
}

}  // namespace eqd::sim
