/// @file link.cpp
/// SunSpecLink: connect, discover, poll, command (one storage device, one I/O thread). The reconnect,
/// backoff and statistics follow io::modbus::Poller; every request goes through eqd's own Modbus TCP
/// framing with every response field checked (modbus/transaction.cpp).

#include "eqd/io/sunspec/link.hpp"

#include <modbus/modbus.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <stdexcept>

namespace eqd::io::sunspec {

namespace {

modbus_t* mb(void* p) { return static_cast<modbus_t*>(p); }

}  // namespace

SunSpecLink::SunSpecLink(SunSpecLinkConfig cfg, ChannelSlots slots)
    : cfg_(std::move(cfg)), slots_(std::move(slots)), engine_(slots_, {}) {
  std::string errs;
  if (slots_.samples.size() != 1) errs += " one channel (the storage) expected;";
  if (!(cfg_.poll_hz > 0.0 && cfg_.poll_hz <= 1000.0)) errs += " poll_hz must be in (0, 1000];";
  if (cfg_.timeout_ms <= 0) errs += " timeout_ms must be positive;";
  if (cfg_.backoff_initial_ms <= 0 || cfg_.backoff_max_ms < cfg_.backoff_initial_ms)
    errs += " backoff_initial_ms must be positive and <= backoff_max_ms;";
  if (const char* e = CommandEngine::check(slots_)) errs += std::string(" ") + e + ";";
  if (!errs.empty()) throw std::invalid_argument("controller '" + cfg_.name + "':" + errs);
  backoff_ms_ = cfg_.backoff_initial_ms;
  for (auto* s : slots_.samples) {
    if (s == nullptr) continue;
    core::Sample off{};
    off.state = core::ChannelState::offline;
    s->store(off);
  }
  // Not reported until the first poll reads them (published_limits_ starts there too).
  for (auto* l : slots_.device_limits)
    if (l != nullptr) l->store(core::DeviceLimits{});
}

SunSpecLink::~SunSpecLink() { stop(); }

void SunSpecLink::start() {
  thread_.start([this] { run(); });
}

void SunSpecLink::stop() {
  thread_.stop();
  // Joined: the thread is gone, so its state is ours now.
  close_link();
}

bool SunSpecLink::wait_released(std::chrono::milliseconds timeout) const {
  if (cfg_.read_only) return true;
  return engine_.wait_released(timeout);
}

std::string SunSpecLink::identity() const {
  const std::lock_guard<std::mutex> lock(identity_mutex_);
  return identity_;
}

void SunSpecLink::report(const char* message, LinkErrc code) {
  std::snprintf(local_.last_error, sizeof local_.last_error, "%s", message);
  // The journal gets the whole text; last_error holds what fits.
  record_link_error(local_, cfg_.on_error, 0, code, message);
}

bool SunSpecLink::note_error(int err, const char* what, std::uint32_t address, bool write) {
  char msg[160];
  std::snprintf(msg, sizeof msg, "%s %s @%u: %s", cfg_.name.c_str(), what, address, modbus_strerror(err));
  // One classification of the errno for the code and for the handling, as the Modbus poller does
  // (modbus::classify_errno; a bad CRC, which TCP never gives, counts as a bad response here too).
  const LinkErrc kind = modbus::classify_errno(err);
  report(msg, write ? LinkErrc::write_failed : kind);
  return modbus::handle_failure(kind, local_, ctx_, consecutive_timeouts_, 3);
}

int SunSpecLink::read(std::uint32_t address, int count, std::uint16_t* dest) {
  // The whole reply within timeout_ms (a trickling device is a timeout): modbus::read_registers.
  return modbus::read_registers(tx_, false, static_cast<int>(address), count, dest);
}

bool SunSpecLink::connect_link(std::int64_t t_ns) {
  if (t_ns < next_connect_ns_) return false;
  modbus_t* ctx = modbus_new_tcp(cfg_.host.c_str(), cfg_.port);
  auto fail = [&](const std::string& what, bool discovery, int err = 0) {
    report((cfg_.name + " " + what).c_str(), err == ETIMEDOUT ? LinkErrc::timeout
                                             : discovery      ? LinkErrc::device_unusable
                                                              : LinkErrc::connect_failed);
    if (err == ETIMEDOUT) {
      ++local_.timeouts;
    } else if (discovery) {
      discovery_errors_.fetch_add(1);
      ++local_.protocol_errors;
    } else {
      ++local_.connection_errors;
    }
    if (ctx != nullptr) {
      modbus_close(ctx);
      modbus_free(ctx);
    }
    ctx_ = nullptr;
    tx_.ctx = nullptr;
    next_connect_ns_ = t_ns + static_cast<std::int64_t>(backoff_ms_) * 1'000'000;
    backoff_ms_ = std::min(backoff_ms_ * 2, cfg_.backoff_max_ms);
    return false;
  };
  if (ctx == nullptr) return fail(std::string("create: ") + modbus_strerror(errno), false);
  modbus_set_slave(ctx, cfg_.unit_id);
  const auto to_s = static_cast<std::uint32_t>(cfg_.timeout_ms / 1000);
  const auto to_us = static_cast<std::uint32_t>((cfg_.timeout_ms % 1000) * 1000);
  modbus_set_response_timeout(ctx, to_s, to_us);  // the connect's; replies are bounded by tx_.timeout_ms
  if (modbus_connect(ctx) < 0) return fail(std::string("connect: ") + modbus_strerror(errno), false, errno);
  tx_ = modbus::Transactor{ctx, true, cfg_.unit_id, tx_.next_tid, cfg_.timeout_ms};
  ctx_ = ctx;

  const ReadFn read_fn = [this](std::uint32_t address, int count, std::uint16_t* dest) {
    return this->read(address, count, dest) == count;
  };
  dev_ = discover(cfg_.base_address, read_fn);
  if (!dev_.error.empty()) {
    const bool io_failure =
        dev_.error_errno != 0 && !(dev_.error_errno > MODBUS_ENOBASE && dev_.error_errno <= EMBXGTAR);
    return fail("SunSpec discovery: " + dev_.error, !io_failure, dev_.error_errno);
  }
  if (!identity_logged_ && dev_.common) {
    std::vector<std::uint16_t> c(dev_.common->length > 66 ? 66 : dev_.common->length);
    if (read(dev_.common->address, static_cast<int>(c.size()), c.data()) == static_cast<int>(c.size())) {
      const std::string id = decode_string(&c[m1::kMn], 16) + " " + decode_string(&c[m1::kMd], 16) + " SN " +
                             decode_string(&c[m1::kSN], 16);
      {
        const std::lock_guard<std::mutex> lock(identity_mutex_);
        identity_ = id;
      }
      identity_logged_ = true;
      // The journal's only way in from a link is its error hook: the identity goes there once, as a
      // notice (no error code).
      if (cfg_.on_error) cfg_.on_error(0, std::error_code{}, (cfg_.name + " SunSpec device " + id).c_str());
    }
  }
  inverter_regs_.assign(is_float_inverter(dev_.inverter->id) ? m113::kLength : m103::kLength, 0);
  storage_regs_.assign(m124::kLength, 0);
  battery_regs_.assign(dev_.battery ? m802::kMinLength : 0, 0);
  if (ever_connected_) ++local_.reconnects;
  ever_connected_ = true;
  backoff_ms_ = cfg_.backoff_initial_ms;
  consecutive_timeouts_ = 0;
  engine_.link_up();
  connected_.store(true, std::memory_order_release);
  return true;
}

void SunSpecLink::close_link() {
  if (ctx_ != nullptr) {
    modbus_close(mb(ctx_));
    modbus_free(mb(ctx_));
    ctx_ = nullptr;
    tx_.ctx = nullptr;
  }
  connected_.store(false, std::memory_order_release);
  next_connect_ns_ = steady_now_ns() + static_cast<std::int64_t>(backoff_ms_) * 1'000'000;
  backoff_ms_ = std::min(backoff_ms_ * 2, cfg_.backoff_max_ms);
}

bool SunSpecLink::poll_once() {
  storage_fresh_ = false;
  struct Block {
    const ModelRef* model;
    std::vector<std::uint16_t>* regs;
    const char* what;
  };
  const Block blocks[] = {{&*dev_.inverter, &inverter_regs_, "read inverter model"},
                          {&*dev_.storage, &storage_regs_, "read model 124"},
                          {dev_.battery ? &*dev_.battery : nullptr, &battery_regs_, "read model 802"}};
  for (const Block& b : blocks) {
    if (b.model == nullptr) continue;
    // One request per model: a value and its scale factor come from the same reply.
    const int n = static_cast<int>(b.regs->size());
    const int rc = read(b.model->address, n, b.regs->data());
    if (rc == n) {
      consecutive_timeouts_ = 0;
      continue;
    }
    if (note_error(rc < 0 ? errno : EMBMDATA, b.what, b.model->address)) close_link();
    return false;
  }
  storage_fresh_ = true;
  return true;
}

void SunSpecLink::publish(std::int64_t t_ns, bool read_ok) {
  core::Sample s{};
  s.receive_time_ns = t_ns;
  s.sequence = ++sequence_;
  s.state = ctx_ != nullptr ? core::ChannelState::idle : core::ChannelState::offline;
  if (read_ok) {
    const PollRegisters r{dev_.inverter->id, inverter_regs_.data(), storage_regs_.data(),
                          dev_.battery ? battery_regs_.data() : nullptr};
    const SampleProblem p = decode_sample(r, s);
    if (p != SampleProblem::none) {
      ++local_.invalid_samples;
      if (p == SampleProblem::bad_scale_factor || p == SampleProblem::bad_state_of_charge) ++local_.protocol_errors;
      if (p != last_problem_)
        report((cfg_.name + ": sample invalid: " + to_string(p)).c_str(), LinkErrc::value_refused);
    } else {
      ++local_.polls_ok;
    }
    last_problem_ = p;
  } else if (ctx_ != nullptr) {
    ++local_.invalid_samples;
  }
  if (read_ok) publish_limits();
  if (slots_.samples[0] != nullptr) slots_.samples[0]->store(s);
  if (s.valid)
    engine_.observe(0, s, t_ns);
  else
    engine_.observe_invalid(0);
}

void SunSpecLink::publish_limits() {
  if (slots_.device_limits.empty() || slots_.device_limits[0] == nullptr) return;
  // Battery-side magnitudes, as the configured max_charge_W / max_discharge_W: the setpoint eqd writes
  // is the storage's power. A limit the device does not give (+infinity here) is published as NaN.
  const DeviceLimits lim = device_limits(storage_regs_.data(), dev_.battery ? battery_regs_.data() : nullptr);
  const core::DeviceLimits out{core::device_limit_float(lim.charge_W), core::device_limit_float(lim.discharge_W)};
  // Only on a change: the control thread reads the word every cycle, and an unchanged store would
  // still take its cache line away from it.
  const std::uint64_t bits = core::DeviceLimitsSlot::pack(out);
  if (bits == published_limits_) return;
  published_limits_ = bits;
  slots_.device_limits[0]->store(out);
}

WriteResult SunSpecLink::send(const core::Command& c) {
  if (!storage_fresh_) return WriteResult::failed;  // encode only from this cycle's model 124
  StorageWrite w;
  if (const std::string why = encode_command(c.equalize, c.setpoint_W, c.lease_ms, storage_regs_.data(), w,
                                             dev_.battery ? battery_regs_.data() : nullptr);
      !why.empty()) {
    report((cfg_.name + ": command refused: " + why).c_str(), LinkErrc::command_refused);
    return WriteResult::encode_error;
  }
  if (w.limited) {
    // The last safety: the allocator already asks within the limits publish_limits() hands it, so this
    // clamps only a command computed before it saw them (the first poll, a limit just lowered). A
    // notice (no error code), once per limit.
    if (w.setpoint_W != last_limit_W_ && cfg_.on_error) {
      char msg[200];
      std::snprintf(msg, sizeof msg, "%s: setpoint %.0f W limited to the device's %.0f W (124 WChaMax%s)",
                    cfg_.name.c_str(), c.setpoint_W, w.setpoint_W,
                    !dev_.battery        ? ""
                    : c.setpoint_W > 0.0 ? ", 802 WChaRteMax"
                                         : ", 802 WDisChaRteMax");
      cfg_.on_error(0, std::error_code{}, msg);
    }
    last_limit_W_ = w.setpoint_W;
  }
  const std::uint32_t base = dev_.storage->address;
  auto write = [&](int offset, int count, const std::uint16_t* v) {
    if (modbus::write_registers(tx_, static_cast<int>(base) + offset, count, v) == count) return WriteResult::ok;
    if (note_error(errno, "write model 124", base + offset, true)) {
      close_link();
      return WriteResult::link_lost;
    }
    return WriteResult::failed;
  };
  const std::uint16_t rates[2] = {w.out_w_rte, w.in_w_rte};  // OutWRte, InWRte: adjacent
  WriteResult r = WriteResult::ok;
  if (c.equalize) {
    // Limits and the revert timeout first, then the mode: the device never runs on stale rates.
    if ((r = write(m124::kOutWRte, 2, rates)) != WriteResult::ok) return r;
    if ((r = write(m124::kRvrtTms, 1, &w.rvrt_tms)) != WriteResult::ok) return r;
    return write(m124::kStorCtl_Mod, 1, &w.storctl_mod);
  }
  // Stop: the device's own mode first (that alone ends eqd's control), then the rates back to 0.
  if ((r = write(m124::kStorCtl_Mod, 1, &w.storctl_mod)) != WriteResult::ok) return r;
  return write(m124::kOutWRte, 2, rates);
}

void SunSpecLink::run() {
  Pace pace(cfg_.poll_hz, steady_now_ns());
  while (!thread_.stopping()) {
    const std::int64_t start = steady_now_ns();
    ++local_.polls;
    pace.begin(start, local_.achieved_hz);
    if (ctx_ == nullptr) connect_link(start);
    bool read_ok = false;
    if (ctx_ != nullptr) {
      read_ok = poll_once();
      local_.latency.observe(static_cast<double>(steady_now_ns() - start) * 1e-9);
    }
    publish(steady_now_ns(), read_ok);
    if (cfg_.read_only) {
      // never writes
    } else if (ctx_ != nullptr) {
      engine_.write_commands(steady_now_ns(), true, local_,
                             [this](std::size_t, const core::Command& c) { return send(c); });
    } else {
      engine_.set_down();
    }
    local_.connected = ctx_ != nullptr;
    local_.all_acknowledged = engine_.acknowledged();
    local_.released = engine_.released();
    stats_.store(local_);

    local_.overruns += pace.end(steady_now_ns());
    thread_.wait_until_ns(pace.next_ns());
  }
}

}  // namespace eqd::io::sunspec
