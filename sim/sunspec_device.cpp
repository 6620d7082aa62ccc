/// @file sunspec_device.cpp
/// Modbus TCP serving of a simulated SunSpec device (see sunspec_device.hpp): one thread per device,
/// select() over its clients, holding registers only.

#include "sunspec_device.hpp"

#include <arpa/inet.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

#include "sunspec_image.hpp"

namespace eqd::sim::sunspec {

namespace {

modbus_t* mb(void* p) { return static_cast<modbus_t*>(p); }

std::uint16_t u16(const std::uint8_t* b) { return static_cast<std::uint16_t>((b[0] << 8) | b[1]); }

/// Send a read's normal reply one byte at a time, `byte_ms` apart (Modbus TCP framing: MBAP header with
/// the request's transaction id, unit, function 3, byte count, registers big-endian). Gives up when
/// `running` goes false or the peer is gone.
void trickle_read_reply(modbus_t* ctx, const std::uint8_t* req, const std::uint16_t* regs, std::uint32_t count,
                        std::uint32_t byte_ms, const std::atomic<bool>& running) {
  std::vector<std::uint8_t> f = {req[0],
                                 req[1],
                                 0,
                                 0,
                                 static_cast<std::uint8_t>((3 + 2 * count) >> 8),
                                 static_cast<std::uint8_t>((3 + 2 * count) & 0xFF),
                                 req[6],
                                 MODBUS_FC_READ_HOLDING_REGISTERS,
                                 static_cast<std::uint8_t>(2 * count)};
  for (std::uint32_t i = 0; i < count; ++i) {
    f.push_back(static_cast<std::uint8_t>(regs[i] >> 8));
    f.push_back(static_cast<std::uint8_t>(regs[i] & 0xFF));
  }
  const int fd = modbus_get_socket(ctx);
  for (const std::uint8_t b : f) {
    if (!running.load(std::memory_order_relaxed) || send(fd, &b, 1, MSG_NOSIGNAL) != 1) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(byte_ms));
  }
}

/// Answer one frame. The image is the truth; `scratch` is a libmodbus mapping over the served range
/// into which a read's registers are copied so that libmodbus frames the reply (and answers
/// ILLEGAL_DATA_ADDRESS / ILLEGAL_DATA_VALUE for ranges and counts it refuses).
void handle(detail::DeviceImage& image, modbus_t* ctx, modbus_mapping_t* scratch, const std::uint8_t* req, int len,
            const std::atomic<bool>& running) {
  const int h = modbus_get_header_length(ctx);
  if (len <= h) return;
  if (req[h - 1] != image.config().unit_id) return;  // another unit: no reply, like common gateways
  image.count_request();
  const auto now = detail::Clock::now();
  const std::uint8_t fn = req[h];
  const std::uint32_t first = image.first_address(), end = image.end_address();
  switch (fn) {
    case MODBUS_FC_READ_HOLDING_REGISTERS: {
      if (len < h + 5) break;
      const std::uint32_t addr = u16(req + h + 1), count = u16(req + h + 3);
      if (count >= 1 && count <= MODBUS_MAX_READ_REGISTERS && addr >= first && addr + count <= end) {
        std::uint16_t* regs = scratch->tab_registers + (addr - first);
        image.read(now, addr, count, regs);
        if (const std::uint32_t ms = image.config().faults.trickle_byte_ms; ms > 0)
          return trickle_read_reply(ctx, req, regs, count, ms, running);
      }
      break;  // out of range: modbus_reply below answers the exception
    }
    case MODBUS_FC_WRITE_SINGLE_REGISTER:
    case MODBUS_FC_WRITE_MULTIPLE_REGISTERS: {
      // A malformed write is refused here, never passed to modbus_reply (which would store it).
      const auto malformed = [&] { modbus_reply_exception(ctx, req, MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE); };
      if (len < h + 5) return malformed();
      const std::uint32_t addr = u16(req + h + 1);
      std::vector<std::uint16_t> values;
      if (fn == MODBUS_FC_WRITE_SINGLE_REGISTER) {
        values.push_back(u16(req + h + 3));
      } else {
        const std::uint32_t count = u16(req + h + 3);
        if (count < 1 || count > MODBUS_MAX_WRITE_REGISTERS || len < h + 6 + static_cast<int>(2 * count) ||
            req[h + 5] != 2 * count)
          return malformed();
        for (std::uint32_t i = 0; i < count; ++i) values.push_back(u16(req + h + 6 + 2 * i));
      }
      const detail::WriteResult w = image.write(now, addr, values);
      if (w != detail::WriteResult::ok) {
        modbus_reply_exception(ctx, req, static_cast<unsigned>(w));
        return;
      }
      break;  // applied; modbus_reply frames the echo (its copy into the scratch mapping is unused)
    }
    case MODBUS_FC_WRITE_AND_READ_REGISTERS:
    case MODBUS_FC_MASK_WRITE_REGISTER:
      // Not offered: every write goes through the validation above.
      modbus_reply_exception(ctx, req, MODBUS_EXCEPTION_ILLEGAL_FUNCTION);
      return;
    default:
      break;  // input registers, coils: empty tables, libmodbus answers ILLEGAL_DATA_ADDRESS
  }
  modbus_reply(ctx, req, len, scratch);
}

}  // namespace

SunSpecDevice::SunSpecDevice(DeviceConfig config) {
  const std::string name = config.name, host = config.host;
  const std::uint16_t want = config.port;
  reply_delay_ms_ = config.faults.reply_delay_ms;
  image_ = std::make_shared<detail::DeviceImage>(std::move(config));
  ctx_ = modbus_new_tcp(host.c_str(), want);
  if (ctx_ == nullptr) throw std::runtime_error("sunspec device '" + name + "': modbus_new_tcp failed");
  listen_fd_ = modbus_tcp_listen(mb(ctx_), 16);
  if (listen_fd_ < 0) {
    const std::string why = modbus_strerror(errno);
    modbus_free(mb(ctx_));
    throw std::runtime_error("sunspec device '" + name + "': cannot listen on " + host + ":" + std::to_string(want) +
                             ": " + why);
  }
  sockaddr_in sa{};
  socklen_t sl = sizeof sa;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &sl);
  port_ = ntohs(sa.sin_port);
  // A half-sent frame must not hold the thread that serves the other clients.
  modbus_set_indication_timeout(mb(ctx_), 0, 500000);
}

SunSpecDevice::~SunSpecDevice() {
  stop();
  if (listen_fd_ >= 0) close(listen_fd_);
  modbus_free(mb(ctx_));
}

void SunSpecDevice::start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] { serve(); });
}

void SunSpecDevice::stop() {
  if (!running_.exchange(false)) return;
  if (thread_.joinable()) thread_.join();
}

void SunSpecDevice::set_meter_power_W(double power_W) { image_->set_meter_power_W(power_W); }
void SunSpecDevice::set_soc_pct(double soc_pct) { image_->set_soc_pct(soc_pct); }
void SunSpecDevice::set_scale_factor(const std::string& point, int value) { image_->set_scale_factor(point, value); }
DeviceState SunSpecDevice::state() const { return image_->state(); }
std::vector<std::uint16_t> SunSpecDevice::model_addresses() const { return image_->model_addresses(); }

void SunSpecDevice::serve() {
  const std::uint32_t first = image_->first_address();
  modbus_mapping_t* scratch = modbus_mapping_new_start_address(0, 0, 0, 0, first, image_->end_address() - first, 0, 0);
  if (scratch == nullptr) return;
  std::vector<int> clients;
  std::uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
  while (running_.load(std::memory_order_relaxed)) {
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(listen_fd_, &rd);
    int maxfd = listen_fd_;
    for (int c : clients) {
      FD_SET(c, &rd);
      maxfd = std::max(maxfd, c);
    }
    timeval tv{0, 5000};  // bounds stop() latency and the resolution of ramps and revert timeouts
    const int n = select(maxfd + 1, &rd, nullptr, nullptr, &tv);
    image_->tick(detail::Clock::now());
    if (n <= 0) continue;
    if (FD_ISSET(listen_fd_, &rd)) {
      const int c = accept(listen_fd_, nullptr, nullptr);
      if (c >= 0 && c < FD_SETSIZE) {
        const int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        clients.push_back(c);
      } else if (c >= 0) {
        close(c);  // select() cannot watch it
      }
    }
    for (auto it = clients.begin(); it != clients.end();) {
      if (!FD_ISSET(*it, &rd)) {
        ++it;
        continue;
      }
      modbus_set_socket(mb(ctx_), *it);
      const int rc = modbus_receive(mb(ctx_), query);
      if (rc > 0) {
        // A slow device: the reply leaves late (and every other client of this device waits too).
        if (reply_delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(reply_delay_ms_));
        handle(*image_, mb(ctx_), scratch, query, rc, running_);
      }
      if (rc < 0) {  // closed by the peer or garbage: drop this client only
        close(*it);
        it = clients.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (int c : clients) close(c);
  modbus_set_socket(mb(ctx_), -1);
  modbus_mapping_free(scratch);
}

}  // namespace eqd::sim::sunspec
