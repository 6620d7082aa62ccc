/// @file modbus_server.cpp
/// libmodbus TCP/RTU servers for simulated controllers (see modbus_server.hpp).

#include "modbus_server.hpp"

#include <arpa/inet.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "eqd/io/modbus/codec.hpp"

namespace eqd::sim {

namespace mb = eqd::io::modbus;
using Clock = std::chrono::steady_clock;

namespace detail {

/// Register image, controller-side rules and fault injection of one served controller.
/// Thread-safety: every public method locks mutex_; handle()/tick() are called by the serving thread.
class ControllerImage {
 public:
  explicit ControllerImage(ServedController c) : cfg_(std::move(c)) {
    if (!cfg_.backend) throw std::runtime_error("modbus server '" + cfg_.name + "': no backend");
    const std::size_t n = cfg_.backend->channel_count();
    if (n == 0 || n > 0xFFFF) throw std::runtime_error("modbus server '" + cfg_.name + "': bad channel count");
    cfg_.map.channel_count = static_cast<std::uint16_t>(n);
    // The default profile's program block (a map whose program fields wait for the capability bit) is
    // laid out here from the profile's text (docs/modbus-profile.md, "Per-channel program block"), not
    // taken from default_profile(): the end-to-end tests then compare two readings of the
    // specification, and a misreading on either side shows up as a disagreement. Custom maps serve
    // their step_index / cycle_index fields as mapped.
    const bool profile_program = cfg_.map.program_capability != 0;
    cfg_.map = mb::with_capabilities(cfg_.map, cfg_.capabilities);
    if (profile_program) {
      cfg_.map.step_index.reset();
      cfg_.map.cycle_index.reset();
      spec_program_ = (cfg_.capabilities & kSpecProgramBit) != 0 && n <= kSpecProgramMaxChannels;
    }
    if (auto errs = mb::validate_map(cfg_.map); !errs.empty())
      throw std::runtime_error("modbus server '" + cfg_.name + "': " + errs.front());
    std::uint32_t in_end = 0, hold_end = 0;
    for_each_field([&](const mb::Field& f, bool per_channel) {
      const std::size_t last = per_channel ? n - 1 : 0;
      const std::uint32_t e = mb::channel_address(f, last) + mb::register_count(f.type);
      (f.table == mb::Table::input ? in_end : hold_end) = std::max(f.table == mb::Table::input ? in_end : hold_end, e);
    });
    if (spec_program_)
      in_end = std::max<std::uint32_t>(in_end, static_cast<std::uint32_t>(kSpecProgramBase + kSpecProgramStride * n));
    mapping_ = modbus_mapping_new_start_address(0, 0, 0, 0, 0, static_cast<unsigned>(hold_end), 0,
                                                static_cast<unsigned>(in_end));
    if (mapping_ == nullptr) throw std::runtime_error("modbus server '" + cfg_.name + "': out of memory");
    channels_.resize(n);
    heartbeat_ref_ = Clock::now();
  }
  ~ControllerImage() { modbus_mapping_free(mapping_); }
  ControllerImage(const ControllerImage&) = delete;
  ControllerImage& operator=(const ControllerImage&) = delete;

  [[nodiscard]] const ServedController& config() const noexcept { return cfg_; }

  /// Answer (or deliberately not answer) one received frame.
  void handle(modbus_t* ctx, const std::uint8_t* req, int len) {
    const int h = modbus_get_header_length(ctx);
    if (len <= h) return;
    const std::lock_guard<std::mutex> lock(mutex_);
    if (req[h - 1] != cfg_.unit_id) {
      ++stats_.ignored_unit;  // documented: no reply, the client times out
      return;
    }
    ++stats_.requests;
    const auto now = Clock::now();
    if (now < stall_until_) {
      ++stats_.dropped_stalled;
      return;
    }
    if (exceptions_left_ != 0) {
      if (exceptions_left_ > 0) --exceptions_left_;
      ++stats_.exceptions;
      modbus_reply_exception(ctx, req, exception_code_);
      return;
    }
    const std::uint8_t fn = req[h];
    switch (fn) {
      case MODBUS_FC_READ_INPUT_REGISTERS:
      case MODBUS_FC_READ_HOLDING_REGISTERS:
        refresh_inputs();
        reply(ctx, req, len);
        return;
      case MODBUS_FC_WRITE_SINGLE_REGISTER:
      case MODBUS_FC_WRITE_MULTIPLE_REGISTERS:
        write(ctx, req, len, h, fn, now);
        return;
      case MODBUS_FC_WRITE_AND_READ_REGISTERS:
      case MODBUS_FC_MASK_WRITE_REGISTER:
        // Not offered: every write must pass the command validation above in one piece.
        ++stats_.exceptions;
        modbus_reply_exception(ctx, req, MODBUS_EXCEPTION_ILLEGAL_FUNCTION);
        return;
      default:
        reply(ctx, req, len);  // libmodbus answers ILLEGAL_DATA_ADDRESS for the empty tables
        return;
    }
  }

  /// Lease expiry and heartbeat watchdog. Serving thread, every few ms.
  void tick(Clock::time_point now) {
    const std::lock_guard<std::mutex> lock(mutex_);
    bool any = false;
    for (std::size_t k = 0; k < channels_.size(); ++k) {
      Chan& c = channels_[k];
      if (!c.enabled) continue;
      if (c.lease_ms > 0 && now >= c.lease_deadline) {
        release(k, ReleaseReason::lease_expired);
        ++stats_.lease_releases;
        continue;
      }
      any = true;
    }
    if (any && cfg_.heartbeat_timeout_ms > 0 &&
        now - heartbeat_ref_ > std::chrono::milliseconds(cfg_.heartbeat_timeout_ms)) {
      for (std::size_t k = 0; k < channels_.size(); ++k)
        if (channels_[k].enabled) {
          release(k, ReleaseReason::heartbeat_lost);
          ++stats_.heartbeat_releases;
        }
    }
  }

  void inject_stall(std::chrono::milliseconds d) {
    const std::lock_guard<std::mutex> lock(mutex_);
    stall_until_ = Clock::now() + d;
  }
  void inject_exceptions(std::uint8_t code, int count) {
    const std::lock_guard<std::mutex> lock(mutex_);
    exception_code_ = code;
    exceptions_left_ = count;
  }
  void clear_faults() {
    const std::lock_guard<std::mutex> lock(mutex_);
    stall_until_ = {};
    exceptions_left_ = 0;
  }
  [[nodiscard]] ServerStats stats() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void count_client() {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.clients;
  }

 private:
  // The program block as docs/modbus-profile.md defines it: capability bit6, input registers from
  // 59000, 3 per channel: step_index (u16, 0xFFFF = not reported) then cycle_index (u32, high word
  // first, 0xFFFFFFFF = not reported); for controllers of at most 2048 channels.
  static constexpr std::uint16_t kSpecProgramBit = 0x40;
  static constexpr std::uint32_t kSpecProgramBase = 59000;
  static constexpr std::uint32_t kSpecProgramStride = 3;
  static constexpr std::size_t kSpecProgramMaxChannels = 2048;
  bool spec_program_ = false;

  struct Chan {
    bool enabled = false;
    std::uint32_t lease_ms = 0;
    Clock::time_point lease_deadline{};
  };

  template <class F>
  void for_each_field(F&& f) const {
    const mb::RegisterMap& m = cfg_.map;
    for (const mb::Field* x : {&m.voltage, &m.current, &m.state, &m.cmd_enable, &m.cmd_setpoint}) f(*x, true);
    for (const auto* x : {&m.power, &m.fault_code, &m.eq_flag, &m.sample_counter, &m.forecast_power, &m.step_index,
                          &m.cycle_index, &m.cmd_lease})
      if (*x) f(**x, true);
    for (const auto* x :
         {&m.heartbeat, &m.profile_version, &m.device_channel_count, &m.capabilities, &m.heartbeat_timeout})
      if (*x) f(**x, false);
  }

  std::uint16_t* regs(mb::Table t) noexcept {
    return t == mb::Table::input ? mapping_->tab_input_registers : mapping_->tab_registers;
  }

  /// Store a value; a NaN/Inf f32 is stored as such (a faulty controller does that), an integer
  /// field that cannot hold the value is stored as 0xFFFF (garbage a client must catch by range).
  void put(const mb::Field& f, std::size_t k, double v) {
    std::uint16_t* r = regs(f.table) + mb::channel_address(f, k);
    if (mb::encode_field(f, v, r) == mb::CodecStatus::ok) return;
    if (f.type == mb::DataType::f32) {
      const auto x = static_cast<float>(v);
      std::uint32_t bits;
      std::memcpy(&bits, &x, sizeof bits);
      const auto hi = static_cast<std::uint16_t>(bits >> 16), lo = static_cast<std::uint16_t>(bits & 0xFFFFU);
      r[0] = f.word_order == mb::WordOrder::big ? hi : lo;
      r[1] = f.word_order == mb::WordOrder::big ? lo : hi;
      return;
    }
    for (std::uint16_t i = 0; i < mb::register_count(f.type); ++i) r[i] = 0xFFFF;
  }

  void refresh_inputs() {
    const mb::RegisterMap& m = cfg_.map;
    if (m.profile_version) put(*m.profile_version, 0, mb::kDefaultProfileVersion);
    if (m.device_channel_count) put(*m.device_channel_count, 0, static_cast<double>(channels_.size()));
    if (m.capabilities) put(*m.capabilities, 0, cfg_.capabilities);
    if (m.heartbeat_timeout) put(*m.heartbeat_timeout, 0, cfg_.heartbeat_timeout_ms);
    for (std::size_t k = 0; k < channels_.size(); ++k) {
      const ServedReading r = cfg_.backend->read(k);
      put(m.voltage, k, r.voltage_V);
      put(m.current, k, r.current_A);
      if (m.power) put(*m.power, k, r.power_W);
      put(m.state, k, r.state_code);
      if (m.fault_code) put(*m.fault_code, k, r.fault_code);
      if (m.eq_flag) put(*m.eq_flag, k, r.equalizing ? 1.0 : 0.0);
      if (m.sample_counter) put(*m.sample_counter, k, r.sample_counter);
      if (m.forecast_power) {
        if (std::isnan(r.forecast_W))  // nothing announced: the type's "not available" value
          mb::encode_not_available(*m.forecast_power,
                                   regs(m.forecast_power->table) + mb::channel_address(*m.forecast_power, k));
        else
          put(*m.forecast_power, k, r.forecast_W);  // an infinite or huge value goes out as such
      }
      if (spec_program_) {
        std::uint16_t* p = mapping_->tab_input_registers + kSpecProgramBase + kSpecProgramStride * k;
        p[0] = r.step_index;
        p[1] = static_cast<std::uint16_t>(r.cycle_index >> 16);
        p[2] = static_cast<std::uint16_t>(r.cycle_index & 0xFFFFU);
      }
      const struct {
        const std::optional<mb::Field>& field;
        bool reported;
        double value;
      } program[] = {{m.step_index, r.step_index != 0xFFFF, static_cast<double>(r.step_index)},
                     {m.cycle_index, r.cycle_index != 0xFFFF'FFFFU, static_cast<double>(r.cycle_index)}};
      for (const auto& x : program) {
        if (!x.field) continue;
        if (x.reported)
          put(*x.field, k, x.value);
        else
          mb::encode_not_available(*x.field, regs(x.field->table) + mb::channel_address(*x.field, k));
      }
    }
  }

  void reply(modbus_t* ctx, const std::uint8_t* req, int len) {
    if (modbus_reply(ctx, req, len, mapping_) >= 0) ++stats_.replies;
  }

  void reject(modbus_t* ctx, const std::uint8_t* req) {
    ++stats_.exceptions;
    ++stats_.rejected_writes;
    modbus_reply_exception(ctx, req, MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
  }

  double field_value(const std::vector<std::uint16_t>& hold, const mb::Field& f, std::size_t k) const {
    return mb::decode_field(f, hold.data() + mb::channel_address(f, k));
  }

  void write(modbus_t* ctx, const std::uint8_t* req, int len, int h, std::uint8_t fn, Clock::time_point now) {
    const auto u16 = [&](int i) { return static_cast<std::uint16_t>((req[i] << 8) | req[i + 1]); };
    if (len < h + 5) return reply(ctx, req, len);  // malformed: libmodbus answers the exception
    const std::uint32_t addr = u16(h + 1);
    std::uint32_t count = 1;
    int data = h + 3;
    if (fn == MODBUS_FC_WRITE_MULTIPLE_REGISTERS) {
      count = u16(h + 3);
      data = h + 6;
      if (len < data + static_cast<int>(2 * count)) return reply(ctx, req, len);
    }
    const auto nb = static_cast<std::uint32_t>(mapping_->nb_registers);
    if (count == 0 || addr + count > nb) return reply(ctx, req, len);  // ILLEGAL_DATA_ADDRESS from libmodbus

    // Apply to a copy first: the write is validated as a whole and applied all or nothing.
    std::vector<std::uint16_t> cand(mapping_->tab_registers, mapping_->tab_registers + nb);
    for (std::uint32_t i = 0; i < count; ++i) cand[addr + i] = u16(data + static_cast<int>(2 * i));
    const std::uint32_t wend = addr + count;
    const mb::RegisterMap& m = cfg_.map;
    auto touches = [&](const mb::Field& f, std::size_t k) {
      const std::uint32_t a = mb::channel_address(f, k);
      return f.table == mb::Table::holding && a < wend && addr < a + mb::register_count(f.type);
    };
    struct Cmd {
      std::size_t k;
      bool enable;
      double setpoint_W;
      std::uint32_t lease_ms;
    };
    std::vector<Cmd> cmds;
    for (std::size_t k = 0; k < channels_.size(); ++k) {
      if (!touches(m.cmd_enable, k) && !touches(m.cmd_setpoint, k) && !(m.cmd_lease && touches(*m.cmd_lease, k)))
        continue;
      const double en = field_value(cand, m.cmd_enable, k);
      const double sp = field_value(cand, m.cmd_setpoint, k);
      const double lease = m.cmd_lease ? field_value(cand, *m.cmd_lease, k) : 0.0;
      if (!(en == 0.0 || en == 1.0)) return reject(ctx, req);
      if (!std::isfinite(sp) || std::fabs(sp) > m.range.power_abs_max_W) return reject(ctx, req);
      if (!std::isfinite(lease) || lease < 0 || lease > 4294967295.0) return reject(ctx, req);
      cmds.push_back({k, en == 1.0, en == 1.0 ? sp : 0.0, static_cast<std::uint32_t>(lease)});
    }
    bool hb_changed = false;
    std::uint16_t hb = 0;
    if (m.heartbeat && touches(*m.heartbeat, 0)) {
      hb = static_cast<std::uint16_t>(field_value(cand, *m.heartbeat, 0));
      hb_changed = hb != static_cast<std::uint16_t>(field_value(
                             std::vector<std::uint16_t>(mapping_->tab_registers, mapping_->tab_registers + nb),
                             *m.heartbeat, 0));
    }
    // Applied before the reply, as a device does: a client that has its answer finds the command in
    // effect (replying first let a test read the backend before the serving thread had applied it).
    std::copy(cand.begin() + addr, cand.begin() + wend, mapping_->tab_registers + addr);
    for (const Cmd& c : cmds) {
      Chan& ch = channels_[c.k];
      if (c.enable && !std::any_of(channels_.begin(), channels_.end(), [](const Chan& x) { return x.enabled; }))
        heartbeat_ref_ = now;  // the watchdog starts counting when equalization starts
      ch.enabled = c.enable;
      ch.lease_ms = c.lease_ms;
      ch.lease_deadline = now + std::chrono::milliseconds(c.lease_ms);
      ++stats_.commands;
      cfg_.backend->command(c.k, c.enable, c.setpoint_W, c.lease_ms);
    }
    if (hb_changed) {
      heartbeat_ref_ = now;
      ++stats_.heartbeats;
      cfg_.backend->heartbeat(hb);
    }
    if (modbus_reply(ctx, req, len, mapping_) < 0) return;
    ++stats_.replies;
  }

  void release(std::size_t k, ReleaseReason why) {
    Chan& c = channels_[k];
    c.enabled = false;
    // The command registers now say what the channel does, so a supervisor reading them back sees 0.
    put(cfg_.map.cmd_enable, k, 0.0);
    put(cfg_.map.cmd_setpoint, k, 0.0);
    cfg_.backend->command(k, false, 0.0, 0);
    cfg_.backend->released(k, why);
  }

  ServedController cfg_;
  mutable std::mutex mutex_;
  modbus_mapping_t* mapping_ = nullptr;
  std::vector<Chan> channels_;
  Clock::time_point heartbeat_ref_{};
  Clock::time_point stall_until_{};
  int exceptions_left_ = 0;
  std::uint8_t exception_code_ = MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE;
  ServerStats stats_{};
};

}  // namespace detail

void ServedControllerHandle::inject_stall(std::chrono::milliseconds duration) { image_->inject_stall(duration); }
void ServedControllerHandle::inject_exceptions(std::uint8_t code, int count) { image_->inject_exceptions(code, count); }
void ServedControllerHandle::clear_faults() { image_->clear_faults(); }
ServerStats ServedControllerHandle::stats() const { return image_->stats(); }

// ---------------------------------------------------------------------------------------------- TCP

struct ModbusServer::Unit {
  std::shared_ptr<detail::ControllerImage> image;
  modbus_t* ctx = nullptr;
  int listen_fd = -1;
  std::uint16_t port = 0;
  std::thread thread;
};

ModbusServer::ModbusServer(std::vector<ServedController> controllers) {
  for (ServedController& c : controllers) {
    auto u = std::make_unique<Unit>();
    const std::string name = c.name;
    const std::uint16_t want = c.port;
    const std::string host = c.host;
    u->image = std::make_shared<detail::ControllerImage>(std::move(c));
    u->ctx = modbus_new_tcp(host.c_str(), want);
    if (u->ctx == nullptr) throw std::runtime_error("modbus server '" + name + "': modbus_new_tcp failed");
    u->listen_fd = modbus_tcp_listen(u->ctx, 16);
    if (u->listen_fd < 0) {
      const std::string why = modbus_strerror(errno);
      modbus_free(u->ctx);
      throw std::runtime_error("modbus server '" + name + "': cannot listen on " + host + ":" + std::to_string(want) +
                               ": " + why);
    }
    sockaddr_in sa{};
    socklen_t sl = sizeof sa;
    getsockname(u->listen_fd, reinterpret_cast<sockaddr*>(&sa), &sl);
    u->port = ntohs(sa.sin_port);
    // A half-sent frame must not block the thread serving the other clients forever.
    modbus_set_indication_timeout(u->ctx, 0, 500000);
    units_.push_back(std::move(u));
  }
}

ModbusServer::~ModbusServer() {
  stop();
  for (auto& u : units_) {
    if (u->listen_fd >= 0) close(u->listen_fd);
    modbus_free(u->ctx);
  }
}

void ModbusServer::start() {
  if (running_.exchange(true)) return;
  for (auto& u : units_) u->thread = std::thread([this, p = u.get()] { serve(*p); });
}

void ModbusServer::stop() {
  if (!running_.exchange(false)) return;
  for (auto& u : units_)
    if (u->thread.joinable()) u->thread.join();
}

std::uint16_t ModbusServer::port(std::size_t i) const { return units_.at(i)->port; }

ServedControllerHandle ModbusServer::controller(std::size_t i) const {
  return ServedControllerHandle(units_.at(i)->image);
}

void ModbusServer::serve(Unit& u) {
  std::vector<int> clients;
  std::uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
  while (running_.load(std::memory_order_relaxed)) {
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(u.listen_fd, &rd);
    int maxfd = u.listen_fd;
    for (int c : clients) {
      FD_SET(c, &rd);
      maxfd = std::max(maxfd, c);
    }
    timeval tv{0, 5000};  // bounds stop() latency and the watchdog resolution
    const int n = select(maxfd + 1, &rd, nullptr, nullptr, &tv);
    u.image->tick(Clock::now());
    if (n <= 0) continue;
    if (FD_ISSET(u.listen_fd, &rd)) {
      const int c = accept(u.listen_fd, nullptr, nullptr);
      if (c >= 0) {
        const int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (c < FD_SETSIZE) {
          clients.push_back(c);
          u.image->count_client();
        } else {
          close(c);  // select() cannot watch it
        }
      }
    }
    for (auto it = clients.begin(); it != clients.end();) {
      if (!FD_ISSET(*it, &rd)) {
        ++it;
        continue;
      }
      modbus_set_socket(u.ctx, *it);
      const int rc = modbus_receive(u.ctx, query);
      if (rc > 0) u.image->handle(u.ctx, query, rc);
      if (rc < 0) {  // closed by the peer or garbage: drop this client only
        close(*it);
        it = clients.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (int c : clients) close(c);
  modbus_set_socket(u.ctx, -1);
}

// ---------------------------------------------------------------------------------------------- RTU

struct RtuServer::Impl {
  std::shared_ptr<detail::ControllerImage> image;
  modbus_t* ctx = nullptr;
  std::atomic<bool> running{false};
  std::thread thread;
};

RtuServer::RtuServer(const RtuServerConfig& serial, ServedController controller) : impl_(std::make_unique<Impl>()) {
  const std::uint8_t unit = controller.unit_id;
  impl_->image = std::make_shared<detail::ControllerImage>(std::move(controller));
  impl_->ctx = modbus_new_rtu(serial.device.c_str(), serial.baud, serial.parity, serial.data_bits, serial.stop_bits);
  if (impl_->ctx == nullptr)
    throw std::runtime_error("rtu server: bad serial settings for '" + serial.device + "': " + modbus_strerror(errno));
  modbus_set_slave(impl_->ctx, unit);
  if (modbus_connect(impl_->ctx) < 0) {
    const std::string why = modbus_strerror(errno);
    modbus_free(impl_->ctx);
    throw std::runtime_error("rtu server: cannot open '" + serial.device + "': " + why);
  }
  // Wake up regularly to check stop() and run the watchdogs.
  modbus_set_indication_timeout(impl_->ctx, 0, 20000);
}

RtuServer::~RtuServer() {
  stop();
  modbus_close(impl_->ctx);
  modbus_free(impl_->ctx);
}

void RtuServer::start() {
  if (impl_->running.exchange(true)) return;
  impl_->thread = std::thread([p = impl_.get()] {
    std::uint8_t query[MODBUS_RTU_MAX_ADU_LENGTH];
    while (p->running.load(std::memory_order_relaxed)) {
      const int rc = modbus_receive(p->ctx, query);
      if (rc > 0)
        p->image->handle(p->ctx, query, rc);
      else if (rc < 0 && errno != ETIMEDOUT)
        modbus_flush(p->ctx);  // resynchronise on a bad frame
      p->image->tick(Clock::now());
    }
  });
}

void RtuServer::stop() {
  if (!impl_->running.exchange(false)) return;
  if (impl_->thread.joinable()) impl_->thread.join();
}

ServedControllerHandle RtuServer::controller() const { return ServedControllerHandle(impl_->image); }

// ------------------------------------------------------------------------------------ fake backend

FakeControllerBackend::FakeControllerBackend(std::size_t channels) : channels_(channels) {}

std::size_t FakeControllerBackend::channel_count() const { return channels_.size(); }

ServedReading FakeControllerBackend::read(std::size_t channel) {
  const std::lock_guard<std::mutex> lock(mutex_);
  Channel& c = channels_.at(channel);
  ServedReading r;
  r.power_W = c.rec.equalize ? c.rec.setpoint_W : c.test_power_W;
  r.voltage_V = 50.0 + r.power_W / 1000.0;
  r.current_A = r.power_W / r.voltage_V;
  r.equalizing = c.rec.equalize;
  r.state_code = c.rec.equalize ? 4 : (c.test_power_W != 0.0 ? 1 : 0);
  r.sample_counter = ++c.counter;
  r.forecast_W = c.forecast_W;
  r.step_index = c.step_index;
  r.cycle_index = c.cycle_index;
  switch (c.fault) {
    case Fault::none:
      break;
    case Fault::nan_voltage:
      r.voltage_V = std::nan("");
      break;
    case Fault::voltage_out_of_range:
      r.voltage_V = 5000.0;
      break;
    case Fault::power_out_of_range:
      r.power_W = 5.0e7;
      break;
  }
  return r;
}

void FakeControllerBackend::command(std::size_t channel, bool equalize, double setpoint_W, std::uint32_t lease_ms) {
  const std::lock_guard<std::mutex> lock(mutex_);
  Record& r = channels_.at(channel).rec;
  r.equalize = equalize;
  r.setpoint_W = setpoint_W;
  r.lease_ms = lease_ms;
  ++r.commands;
  r.last_command = Clock::now();
}

void FakeControllerBackend::heartbeat(std::uint16_t value) {
  const std::lock_guard<std::mutex> lock(mutex_);
  ++heartbeats_;
  last_heartbeat_ = value;
}

void FakeControllerBackend::released(std::size_t channel, ReleaseReason) {
  const std::lock_guard<std::mutex> lock(mutex_);
  Record& r = channels_.at(channel).rec;
  ++r.releases;
}

void FakeControllerBackend::set_test_power(std::size_t channel, double power_W) {
  const std::lock_guard<std::mutex> lock(mutex_);
  channels_.at(channel).test_power_W = power_W;
}

void FakeControllerBackend::inject_fault(std::size_t channel, Fault f) {
  const std::lock_guard<std::mutex> lock(mutex_);
  channels_.at(channel).fault = f;
}

void FakeControllerBackend::set_forecast(std::size_t channel, double forecast_W) {
  const std::lock_guard<std::mutex> lock(mutex_);
  channels_.at(channel).forecast_W = forecast_W;
}

void FakeControllerBackend::set_program(std::size_t channel, std::uint16_t step_index, std::uint32_t cycle_index) {
  const std::lock_guard<std::mutex> lock(mutex_);
  channels_.at(channel).step_index = step_index;
  channels_.at(channel).cycle_index = cycle_index;
}

FakeControllerBackend::Record FakeControllerBackend::record(std::size_t channel) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return channels_.at(channel).rec;
}

std::uint64_t FakeControllerBackend::heartbeat_count() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return heartbeats_;
}

std::uint16_t FakeControllerBackend::last_heartbeat() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return last_heartbeat_;
}

}  // namespace eqd::sim
