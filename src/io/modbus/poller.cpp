/// @file poller.cpp
/// One thread per Modbus controller connection (see poller.hpp).

#include "eqd/io/modbus/poller.hpp"

#include <modbus/modbus.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace eqd::io::modbus {

namespace {

modbus_t* mb(void* p) noexcept { return static_cast<modbus_t*>(p); }

}  // namespace

Poller::Poller(PollerConfig cfg, ChannelSlots slots)
    : cfg_(std::move(cfg)), slots_(std::move(slots)), engine_(slots_, CommandEngine::Options{}) {
  std::vector<std::string> errs = validate_map(cfg_.map);
  auto err = [&](const std::string& m) { errs.push_back(m); };
  if (const char* e = CommandEngine::check(slots_)) err(e);
  if (slots_.samples.size() != slots_.commands.size()) err("sample and command slot counts differ");
  if (slots_.samples.empty()) err("no channels");
  if (slots_.samples.size() > cfg_.map.channel_count)
    err(std::to_string(slots_.samples.size()) + " channels used but map '" + cfg_.map.name + "' has " +
        std::to_string(cfg_.map.channel_count));
  // A null pair marks a channel eqd does not use; a half-null pair is a programming error.
  for (std::size_t k = 0; k < slots_.samples.size() && k < slots_.commands.size(); ++k)
    if ((slots_.samples[k] == nullptr) != (slots_.commands[k] == nullptr))
      err("channel " + std::to_string(k) + ": sample and command slots must both be set or both be unused");
  // The configuration allows at most 100 Hz; benchmarks run the poller near free-running.
  if (!(cfg_.poll_hz > 0.0 && cfg_.poll_hz <= 100000.0)) err("poll_hz must be in (0, 100000]");
  if (cfg_.timeout_ms <= 0) err("timeout_ms must be positive");
  if (cfg_.backoff_initial_ms <= 0 || cfg_.backoff_max_ms < cfg_.backoff_initial_ms)
    err("backoff_initial_ms must be positive and <= backoff_max_ms");
  if (cfg_.unit_id < 0 || cfg_.unit_id > 247) err("unit_id must be 0..247");
  if (cfg_.max_consecutive_timeouts < 1) err("max_consecutive_timeouts must be at least 1");
  if (cfg_.transport == Transport::rtu && cfg_.device.empty()) err("rtu: device is empty");
  if (!errs.empty()) {
    std::string msg = "modbus controller '" + cfg_.name + "':";
    for (const auto& e : errs) msg += "\n  " + e;
    throw std::invalid_argument(msg);
  }
  // Only the channels eqd uses are read; a capability-gated field only once the controller has
  // said that it offers it (apply_device_capabilities on every connect).
  RegisterMap used = cfg_.map;
  used.channel_count = static_cast<std::uint16_t>(slots_.samples.size());
  set_read_map(with_capabilities(used, std::nullopt));
  last_state_.assign(slots_.samples.size(), core::ChannelState::offline);
  backoff_ms_ = cfg_.backoff_initial_ms;
  // Offline until the first successful read.
  for (auto* s : slots_.samples) {
    core::Sample off{};
    off.state = core::ChannelState::offline;
    off.valid = false;
    s->store(off);
  }
}

Poller::~Poller() { stop(); }

void Poller::set_read_map(RegisterMap m) {
  const bool replan = plan_.empty() || m.forecast_power.has_value() != read_map_.forecast_power.has_value() ||
                      m.step_index.has_value() != read_map_.step_index.has_value() ||
                      m.cycle_index.has_value() != read_map_.cycle_index.has_value();
  read_map_ = std::move(m);
  if (!replan) return;
  plan_ = plan_status_reads(read_map_, cfg_.plan);
  blocks_.clear();
  for (const ReadRequest& r : plan_) blocks_.push_back({r, std::vector<std::uint16_t>(r.count), false});
}

void Poller::apply_device_capabilities(std::optional<std::uint16_t> capabilities,
                                       std::optional<double> device_channels) {
  RegisterMap used = cfg_.map;
  used.channel_count = static_cast<std::uint16_t>(slots_.samples.size());
  RegisterMap m = with_capabilities(used, capabilities);
  if (m.forecast_power && cfg_.map.forecast_capability != 0 && device_channels &&
      *device_channels > static_cast<double>(used.channel_count)) {
    // The gated block's place is fixed for controllers up to a size (default profile: 4096 channels);
    // one with more channels that sets the bit anyway would have us read its status registers as
    // forecasts. Check the map at the device's own size; refuse the forecast, keep the link.
    RegisterMap dev = with_capabilities(cfg_.map, capabilities);
    dev.channel_count = static_cast<std::uint16_t>(std::min(*device_channels, 65535.0));
    const std::vector<std::string> errs = validate_map(dev);
    if (!errs.empty()) {
      m.forecast_power.reset();
      ++local_.protocol_errors;
      ++local_.forecast_errors;
      std::snprintf(local_.last_error, sizeof local_.last_error, "%s: forecast_power ignored (%g channels): %s",
                    cfg_.name.c_str(), *device_channels, errs.front().c_str());
      report_error(0, LinkErrc::forecast_refused);
    }
  }
  if ((m.step_index || m.cycle_index) && cfg_.map.program_capability != 0 && device_channels &&
      *device_channels > static_cast<double>(used.channel_count)) {
    // The same for the program block (default profile: up to 2048 channels).
    RegisterMap dev = with_capabilities(cfg_.map, capabilities);
    dev.forecast_power.reset();  // judged above
    dev.channel_count = static_cast<std::uint16_t>(std::min(*device_channels, 65535.0));
    std::vector<std::string> errs = validate_map(dev);
    // The profile defines the block up to its channel limit, not up to the end of the register space.
    if (errs.empty() && *device_channels > static_cast<double>(kDefaultProgramMaxChannels))
      errs.push_back("the profile defines the program block for at most " + std::to_string(kDefaultProgramMaxChannels) +
                     " channels");
    if (!errs.empty()) {
      m.step_index.reset();
      m.cycle_index.reset();
      ++local_.protocol_errors;
      ++local_.program_errors;
      std::snprintf(local_.last_error, sizeof local_.last_error, "%s: step_index/cycle_index ignored (%g channels): %s",
                    cfg_.name.c_str(), *device_channels, errs.front().c_str());
      report_error(0, LinkErrc::program_refused);
    }
  }
  set_read_map(std::move(m));
}

void Poller::start() {
  thread_.start([this] { run(); });
}

void Poller::stop() { thread_.stop(); }

bool Poller::wait_released(std::chrono::milliseconds timeout) const {
  if (cfg_.read_only) return true;  // it never commanded anything, so there is nothing to release
  return engine_.wait_released(timeout);
}

bool Poller::note_error(int err, const char* what, std::uint32_t address, bool write) {
  std::snprintf(local_.last_error, sizeof local_.last_error, "%s %s @%u: %s", cfg_.name.c_str(), what, address,
                modbus_strerror(err));
  // One classification (classify_errno) decides both the code and what the link does about it.
  const LinkErrc kind = classify_errno(err);
  report_error(0, write ? LinkErrc::write_failed : kind);
  // After several timeouts in a row the link is presumed dead and reopened.
  return handle_failure(kind, local_, ctx_, consecutive_timeouts_, cfg_.max_consecutive_timeouts);
}

void Poller::report_error(std::uint16_t channel, LinkErrc code) {
  record_link_error(local_, cfg_.on_error, channel, code);
}

// Reads the device block (profile version, channel count, capabilities, heartbeat timeout) and checks
// it against the map. Returns what is wrong (with `err` the errno to report), or an empty string.
// The link's own thread, while connecting.
std::string Poller::identify_device(int& err, LinkErrc& code) {
  const auto dev = plan_device_reads(cfg_.map, cfg_.plan);
  std::vector<ReadBlock> dblocks;
  for (const ReadRequest& r : dev) {
    ReadBlock b{r, std::vector<std::uint16_t>(r.count), false};
    const int rc = read_registers(tx_, r.table == Table::input, r.address, r.count, b.registers.data());
    if (rc != r.count) {
      err = rc < 0 ? errno : EMBMDATA;
      code = LinkErrc::connect_failed;
      return "device block read";
    }
    b.ok = true;
    dblocks.push_back(std::move(b));
  }
  auto value = [&](const std::optional<Field>& f, double& out) {
    if (!f) return false;
    const std::uint16_t* r = find_registers(dblocks, f->table, f->address, register_count(f->type));
    if (r == nullptr) return false;
    out = decode_field(*f, r);
    return true;
  };
  double v = 0;
  char what[64];
  if (cfg_.expected_profile_version != 0 && value(cfg_.map.profile_version, v) && v != cfg_.expected_profile_version) {
    ++local_.protocol_errors;
    err = EMBBADDATA;
    code = LinkErrc::device_unusable;
    std::snprintf(what, sizeof what, "profile version %g, expected %u", v, cfg_.expected_profile_version);
    return what;
  }
  if (value(cfg_.map.device_channel_count, v) && v < static_cast<double>(slots_.samples.size())) {
    ++local_.protocol_errors;
    err = EMBBADDATA;
    code = LinkErrc::device_unusable;
    std::snprintf(what, sizeof what, "device has %g channels, %zu configured", v, slots_.samples.size());
    return what;
  }
  if (value(cfg_.map.heartbeat_timeout, v)) local_.controller_heartbeat_timeout_ms = v;
  // What this controller offers may change across reconnects (a firmware update, another device).
  std::optional<std::uint16_t> caps;
  if (value(cfg_.map.capabilities, v) && v >= 0.0 && v <= 65535.0 && v == std::floor(v))
    caps = static_cast<std::uint16_t>(v);
  std::optional<double> device_channels;
  if (value(cfg_.map.device_channel_count, v)) device_channels = v;
  apply_device_capabilities(caps, device_channels);
  return {};
}

bool Poller::connect_link(std::int64_t t_ns) {
  if (t_ns < next_connect_ns_) return false;
  modbus_t* ctx = cfg_.transport == Transport::tcp
                      ? modbus_new_tcp(cfg_.host.c_str(), cfg_.port)
                      : modbus_new_rtu(cfg_.device.c_str(), cfg_.baud, cfg_.parity, cfg_.data_bits, cfg_.stop_bits);
  auto fail = [&](int err, const char* what, LinkErrc code = LinkErrc::connect_failed) {
    std::snprintf(local_.last_error, sizeof local_.last_error, "%s %s: %s", cfg_.name.c_str(), what,
                  modbus_strerror(err));
    report_error(0, code);
    ++local_.connection_errors;
    if (ctx != nullptr) {
      modbus_close(ctx);
      modbus_free(ctx);
    }
    next_connect_ns_ = t_ns + static_cast<std::int64_t>(backoff_ms_) * 1'000'000;
    backoff_ms_ = std::min(backoff_ms_ * 2, cfg_.backoff_max_ms);
    return false;
  };
  if (ctx == nullptr) return fail(errno, "create");
  modbus_set_slave(ctx, cfg_.unit_id);
  tx_ = Transactor{nullptr, cfg_.transport == Transport::tcp, cfg_.unit_id, tx_.next_tid, cfg_.timeout_ms};
  const auto to_s = static_cast<std::uint32_t>(cfg_.timeout_ms / 1000);
  const auto to_us = static_cast<std::uint32_t>((cfg_.timeout_ms % 1000) * 1000);
  modbus_set_response_timeout(ctx, to_s, to_us);
  if (modbus_connect(ctx) < 0) return fail(errno, "connect");
  ctx_ = ctx;
  tx_.ctx = ctx;

  // Device block: catches a wrong unit, port or map before any command is sent.
  int err = 0;
  LinkErrc code = LinkErrc::connect_failed;
  if (const std::string why = identify_device(err, code); !why.empty()) {
    ctx_ = nullptr;
    return fail(err, why.c_str(), code);
  }

  if (ever_connected_) ++local_.reconnects;
  ever_connected_ = true;
  backoff_ms_ = cfg_.backoff_initial_ms;
  consecutive_timeouts_ = 0;
  next_heartbeat_ns_ = t_ns;  // first heartbeat right away
  engine_.link_up();
  connected_.store(true, std::memory_order_release);
  return true;
}

void Poller::close_link() {
  if (ctx_ != nullptr) {
    modbus_close(mb(ctx_));
    modbus_free(mb(ctx_));
    ctx_ = nullptr;
  }
  connected_.store(false, std::memory_order_release);
  next_connect_ns_ = steady_now_ns() + static_cast<std::int64_t>(backoff_ms_) * 1'000'000;
  backoff_ms_ = std::min(backoff_ms_ * 2, cfg_.backoff_max_ms);
}

bool Poller::read_blocks(std::vector<ReadBlock>& blocks, std::int64_t& first_error) {
  bool all_ok = true;
  for (ReadBlock& b : blocks) b.ok = false;
  for (ReadBlock& b : blocks) {
    const ReadRequest& r = b.request;
    const int rc = read_registers(tx_, r.table == Table::input, r.address, r.count, b.registers.data());
    if (rc == r.count) {
      b.ok = true;
      consecutive_timeouts_ = 0;
      continue;
    }
    all_ok = false;
    const int e = rc < 0 ? errno : EMBMDATA;
    first_error = e;
    const bool fatal = note_error(e, r.table == Table::input ? "read input" : "read holding", r.address);
    if (fatal) {
      close_link();
      return false;
    }
    // One timeout per cycle at most: the remaining blocks wait for the next period rather than
    // stretching this cycle to n * timeout_ms.
    if (e == ETIMEDOUT) return false;
  }
  return all_ok;
}

void Poller::publish_samples(std::int64_t t_ns, bool link_up) {
  for (std::size_t k = 0; k < slots_.samples.size(); ++k) {
    if (slots_.samples[k] == nullptr) continue;  // channel not used by eqd (ignore_channels)
    core::Sample s{};
    if (link_up || ctx_ != nullptr) {
      const DecodedSample d = decode_sample(read_map_, k, blocks_);
      s = d.sample;
      if (d.error == SampleError::none && d.forecast_error != SampleError::none) {
        // A refused forecast: published as NaN (never a wrong number), the sample itself is good.
        ++local_.protocol_errors;
        ++local_.forecast_errors;
        std::snprintf(local_.last_error, sizeof local_.last_error,
                      "%s/%zu: forecast_power %s (%g W): ignored, sample kept", cfg_.name.c_str(), k + 1,
                      to_string(d.forecast_error), d.forecast_raw_W);
        report_error(static_cast<std::uint16_t>(k + 1), LinkErrc::forecast_refused);
      }
      if (d.error == SampleError::none) {
        // A refused program position: published as not reported, the sample itself is good.
        const struct {
          SampleError e;
          const char* name;
          double raw;
        } refused[] = {{d.step_error, "step_index", d.step_raw}, {d.cycle_error, "cycle_index", d.cycle_raw}};
        for (const auto& r : refused) {
          if (r.e == SampleError::none) continue;
          ++local_.protocol_errors;
          ++local_.program_errors;
          std::snprintf(local_.last_error, sizeof local_.last_error, "%s/%zu: %s %s (%g): ignored, sample kept",
                        cfg_.name.c_str(), k + 1, r.name, to_string(r.e), r.raw);
          report_error(static_cast<std::uint16_t>(k + 1), LinkErrc::program_refused);
        }
      }
      if (d.error != SampleError::none) {
        s = core::Sample{};
        s.valid = false;
        s.state = last_state_[k];  // still connected: the state is old but not "offline"
        if (d.error != SampleError::missing) {
          ++local_.invalid_samples;
          std::snprintf(local_.last_error, sizeof local_.last_error, "%s/%zu: %s %s", cfg_.name.c_str(), k + 1, d.field,
                        to_string(d.error));
          report_error(static_cast<std::uint16_t>(k + 1), LinkErrc::value_refused);
        }
      }
    } else {
      s.state = core::ChannelState::offline;
      s.valid = false;
    }
    s.receive_time_ns = t_ns;
    if (s.valid) last_state_[k] = s.state;
    // A sample counts for the command engine only from a cycle whose reads all succeeded.
    if (link_up)
      engine_.observe(k, s, t_ns);
    else
      engine_.observe_invalid(k);
    slots_.samples[k]->store(s);
  }
}

WriteResult Poller::write_command(std::size_t k, const core::Command& cmd) {
  const EncodedCommand enc = encode_command(cfg_.map, k, cmd);
  if (enc.status != CodecStatus::ok) {
    // Never send a wrapped or clamped value: report and leave the controller's lease to expire.
    std::snprintf(local_.last_error, sizeof local_.last_error, "%s/%zu: command %s %s", cfg_.name.c_str(), k + 1,
                  enc.field, to_string(enc.status));
    report_error(static_cast<std::uint16_t>(k + 1), LinkErrc::command_refused);
    return WriteResult::encode_error;
  }
  for (const WriteRequest& w : enc.writes) {
    const int n = static_cast<int>(w.values.size());
    const int rc = write_registers(tx_, w.address, n, w.values.data());
    if (rc == n) continue;
    if (note_error(rc < 0 ? errno : EMBMDATA, "write", w.address, true)) {
      close_link();
      return WriteResult::link_lost;
    }
    return WriteResult::failed;
  }
  return WriteResult::ok;
}

void Poller::write_commands(std::int64_t t_ns) {
  engine_.write_commands(t_ns, ctx_ != nullptr, local_,
                         [this](std::size_t k, const core::Command& cmd) { return write_command(k, cmd); });
}

void Poller::write_heartbeat(std::int64_t t_ns) {
  if (!cfg_.map.heartbeat || cfg_.heartbeat_period_ms == 0 || ctx_ == nullptr || t_ns < next_heartbeat_ns_) return;
  // The heartbeat proves that the control cycle is alive, not only this thread: while the control
  // thread is late the controller's watchdog must run out and take its buffers to 0 W.
  if (!engine_.control_alive(t_ns, local_)) return;
  next_heartbeat_ns_ = t_ns + static_cast<std::int64_t>(cfg_.heartbeat_period_ms) * 1'000'000;
  // 1..32767 then wraps: fits an i16 heartbeat too; the controller looks for a change, not a value.
  heartbeat_value_ = static_cast<std::uint16_t>(heartbeat_value_ % 32767 + 1);
  std::uint16_t regs[2] = {};
  if (encode_field(*cfg_.map.heartbeat, heartbeat_value_, regs) != CodecStatus::ok) return;
  const int n = register_count(cfg_.map.heartbeat->type);
  const int rc = write_registers(tx_, cfg_.map.heartbeat->address, n, regs);
  if (rc == n) {
    ++local_.heartbeats;
    return;
  }
  ++local_.write_errors;
  if (note_error(rc < 0 ? errno : EMBMDATA, "heartbeat", cfg_.map.heartbeat->address, true)) close_link();
}

void Poller::publish_stats() {
  local_.connected = ctx_ != nullptr;
  local_.all_acknowledged = engine_.acknowledged();
  local_.released = engine_.released();
  stats_.store(local_);
}

void Poller::run() {
  Pace pace(cfg_.poll_hz, steady_now_ns());
  while (!thread_.stopping()) {
    const std::int64_t start = steady_now_ns();
    ++local_.polls;
    pace.begin(start, local_.achieved_hz);

    if (ctx_ == nullptr) connect_link(start);
    bool link_up = false;
    if (ctx_ != nullptr) {
      std::int64_t first_error = 0;
      const bool all_ok = read_blocks(blocks_, first_error);
      link_up = ctx_ != nullptr;
      if (all_ok) ++local_.polls_ok;
      local_.latency.observe(static_cast<double>(steady_now_ns() - start) * 1e-9);
    }
    publish_samples(steady_now_ns(), link_up);
    // A read-only link (discovered, not adopted) must never write: not even a stop or a heartbeat,
    // since another supervisor may own that controller.
    if (cfg_.read_only) {
      // nothing to acknowledge
    } else if (ctx_ != nullptr) {
      write_commands(steady_now_ns());
    } else {
      engine_.set_down();
    }
    if (ctx_ != nullptr && !cfg_.read_only) write_heartbeat(steady_now_ns());
    publish_stats();

    local_.overruns += pace.end(steady_now_ns());
    thread_.wait_until_ns(pace.next_ns());
  }
  close_link();
  publish_stats();
}

}  // namespace eqd::io::modbus
