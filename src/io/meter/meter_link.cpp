/// @file meter_link.cpp
/// MeterLink: connect, find the meter (SunSpec chain walk or a configured register), poll, map the
/// sign, compare with the computed net, publish. One I/O thread per meter; the reconnect and backoff
/// follow the SunSpec storage link (io/sunspec/link.cpp), every request through eqd's checked framing.

#include "eqd/io/meter/meter_link.hpp"

#include <modbus/modbus.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "eqd/io/modbus/codec.hpp"

namespace eqd::io::meter {

namespace {

modbus_t* mb(void* p) { return static_cast<modbus_t*>(p); }

std::string watts(double w) {
  char b[32];
  std::snprintf(b, sizeof b, "%.0f W", w);
  return b;
}

}  // namespace

const char* to_string(MeterSource s) noexcept { return s == MeterSource::sunspec ? "sunspec" : "modbus"; }
const char* to_string(MeterSign s) noexcept {
  return s == MeterSign::import_positive ? "import_positive" : "export_positive";
}

MeterLink::MeterLink(MeterLinkConfig cfg) : cfg_(std::move(cfg)), check_(cfg_.check), trim_(cfg_.trim_params) {
  std::string errs;
  if (cfg_.host.empty()) errs += " host missing;";
  if (!(cfg_.poll_hz > 0.0 && cfg_.poll_hz <= 100.0)) errs += " poll_hz must be in (0, 100];";
  if (cfg_.timeout_ms <= 0) errs += " timeout_ms must be positive;";
  if (cfg_.backoff_initial_ms <= 0 || cfg_.backoff_max_ms < cfg_.backoff_initial_ms)
    errs += " backoff_initial_ms must be positive and <= backoff_max_ms;";
  if (!(cfg_.check.tolerance_W >= 0.0) || !(cfg_.check.persistence_s >= 0.0))
    errs += " tolerance_W and persistence_s must be >= 0;";
  if (cfg_.trim && (!(cfg_.trim_params.tau_s > 0.0) || !(cfg_.trim_params.max_W > 0.0) ||
                    !(cfg_.trim_params.hold_s >= 0.0) || cfg_.trim_valid_ns <= 0))
    errs += " trim_tau_s and trim_max_W must be > 0;";
  if (cfg_.source == MeterSource::modbus) {
    if (!(std::isfinite(cfg_.power.scale) && cfg_.power.scale != 0.0 && std::isfinite(cfg_.power.offset)))
      errs += " the power field's scale must be finite and not 0, its offset finite;";
    if (cfg_.power.address + modbus::register_count(cfg_.power.type) > 65536U)
      errs += " the power field runs past register 65535;";
  }
  if (!errs.empty()) throw std::invalid_argument("meter of bus '" + cfg_.bus + "':" + errs);
  backoff_ms_ = cfg_.backoff_initial_ms;
  if (cfg_.trim) local_.trim_state = core::MeterTrimState::waiting;
  status_.store(local_);
}

MeterLink::~MeterLink() { stop(); }

void MeterLink::start() {
  thread_.start([this] { run(); });
}

void MeterLink::stop() {
  thread_.stop();
  close_link();
}

void MeterLink::error(const std::string& message) {
  ++local_.errors;
  std::snprintf(local_.last_error, sizeof local_.last_error, "%s", message.c_str());
  // The journal hears an error when it changes, not on every retry of a meter that stays offline.
  if (message != last_reported_ && cfg_.on_notice) cfg_.on_notice(MeterNotice::error, message.c_str());
  last_reported_ = message;
}

int MeterLink::read(bool input, std::uint32_t address, int count, std::uint16_t* dest) {
  // The whole reply within timeout_ms (a trickling meter is a timeout): modbus::read_registers.
  return modbus::read_registers(tx_, input, static_cast<int>(address), count, dest);
}

bool MeterLink::connect_link(std::int64_t t_ns) {
  if (t_ns < next_connect_ns_) return false;
  const std::string who = "meter of bus " + cfg_.bus;
  modbus_t* ctx = modbus_new_tcp(cfg_.host.c_str(), cfg_.port);
  auto fail = [&](const std::string& what) {
    error(who + " " + what);
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
  if (ctx == nullptr) return fail(std::string("create: ") + modbus_strerror(errno));
  modbus_set_slave(ctx, cfg_.unit_id);
  const auto to_s = static_cast<std::uint32_t>(cfg_.timeout_ms / 1000);
  const auto to_us = static_cast<std::uint32_t>((cfg_.timeout_ms % 1000) * 1000);
  modbus_set_response_timeout(ctx, to_s, to_us);  // the connect's; replies are bounded by tx_.timeout_ms
  if (modbus_connect(ctx) < 0)
    return fail("connect " + cfg_.host + ":" + std::to_string(cfg_.port) + ": " + modbus_strerror(errno));
  tx_ = modbus::Transactor{ctx, true, cfg_.unit_id, tx_.next_tid, cfg_.timeout_ms};
  ctx_ = ctx;
  if (cfg_.source == MeterSource::sunspec) {
    // The storage transport's chain walk, with its limits (io/sunspec/models.hpp).
    const sunspec::ReadFn read_fn = [this](std::uint32_t address, int count, std::uint16_t* dest) {
      return this->read(false, address, count, dest) == count;
    };
    dev_ = sunspec::discover_meter(cfg_.base_address, read_fn);
    if (!dev_.error.empty()) {
      ctx = mb(ctx_);
      return fail("SunSpec discovery: " + dev_.error);
    }
    local_.model = dev_.meter->id;
    regs_.assign(sunspec::m20x::kRead, 0);
    if (!identity_logged_ && dev_.common && cfg_.on_notice) {
      std::vector<std::uint16_t> c(std::min<std::uint16_t>(dev_.common->length, 66));
      if (read(false, dev_.common->address, static_cast<int>(c.size()), c.data()) == static_cast<int>(c.size()) &&
          c.size() >= std::size_t{sunspec::m1::kSN} + 16) {
        identity_logged_ = true;
        const std::string id = sunspec::decode_string(&c[sunspec::m1::kMn], 16) + " " +
                               sunspec::decode_string(&c[sunspec::m1::kMd], 16) + " SN " +
                               sunspec::decode_string(&c[sunspec::m1::kSN], 16);
        cfg_.on_notice(MeterNotice::info, (who + ": SunSpec meter model " + std::to_string(dev_.meter->id) + ", " + id +
                                           ", sign " + to_string(cfg_.sign))
                                              .c_str());
      }
    }
  } else {
    regs_.assign(modbus::register_count(cfg_.power.type), 0);
  }
  backoff_ms_ = cfg_.backoff_initial_ms;
  consecutive_timeouts_ = 0;
  local_.connected = true;
  return true;
}

void MeterLink::close_link() {
  if (ctx_ != nullptr) {
    modbus_close(mb(ctx_));
    modbus_free(mb(ctx_));
    ctx_ = nullptr;
    tx_.ctx = nullptr;
  }
  local_.connected = false;
  next_connect_ns_ = steady_now_ns() + static_cast<std::int64_t>(backoff_ms_) * 1'000'000;
  backoff_ms_ = std::min(backoff_ms_ * 2, cfg_.backoff_max_ms);
}

void MeterLink::poll(std::int64_t t_ns) {
  local_.valid = false;
  const bool sunspec = cfg_.source == MeterSource::sunspec;
  const bool input = !sunspec && cfg_.power.table == modbus::Table::input;
  const std::uint32_t address = sunspec ? dev_.meter->address : cfg_.power.address;
  const int n = static_cast<int>(regs_.size());
  // One request: a value and its scale factor come from the same reply.
  const int rc = read(input, address, n, regs_.data());
  if (rc != n) {
    const int err = rc < 0 ? errno : EMBMDATA;
    error("meter of bus " + cfg_.bus + " read @" + std::to_string(address) + ": " + modbus_strerror(err));
    LinkStats scratch{};
    if (modbus::handle_failure(modbus::classify_errno(err), scratch, ctx_, consecutive_timeouts_, 3)) close_link();
    return;
  }
  consecutive_timeouts_ = 0;
  double device_W = 0.0;
  if (sunspec) {
    sunspec::MeterValue v;
    if (const sunspec::MeterProblem p = sunspec::decode_meter(regs_.data(), v); p != sunspec::MeterProblem::none) {
      error("meter of bus " + cfg_.bus + ": reading refused: " + sunspec::to_string(p));
      return;
    }
    device_W = v.power_W;
    local_.frequency_Hz = v.frequency_Hz;
  } else {
    if (modbus::is_not_available(cfg_.power, regs_.data())) {
      error("meter of bus " + cfg_.bus + ": power register reads 'not available'");
      return;
    }
    device_W = modbus::decode_field(cfg_.power, regs_.data());
    if (!std::isfinite(device_W)) {
      error("meter of bus " + cfg_.bus + ": power register is not a finite number");
      return;
    }
  }
  local_.power_W = cfg_.sign == MeterSign::import_positive ? device_W : -device_W;
  local_.reading_ns = t_ns;
  local_.valid = true;
  ++local_.readings;
  last_reported_.clear();  // a later error is news again
}

void MeterLink::run() {
  Pace pace(cfg_.poll_hz, steady_now_ns());
  while (!thread_.stopping()) {
    const std::int64_t start = steady_now_ns();
    if (ctx_ == nullptr) connect_link(start);
    if (ctx_ != nullptr)
      poll(steady_now_ns());
    else
      local_.valid = false;
    // Compare with the net the control thread published last; a net older than two seconds (a stalled
    // control thread) is not compared.
    double net_W = 0.0;
    std::int64_t cycle_ns = 0;
    const std::int64_t t = steady_now_ns();
    const bool computed = cfg_.computed && cfg_.computed(net_W, cycle_ns) && t - cycle_ns < 2'000'000'000;
    const bool comparable = local_.valid && computed;
    const core::MeterEvent ev = check_.update(t, comparable, local_.power_W, net_W);
    local_.computed_W = computed ? net_W : std::numeric_limits<double>::quiet_NaN();
    local_.difference_W = comparable ? local_.power_W - net_W : std::numeric_limits<double>::quiet_NaN();
    local_.disagreement = check_.disagreement();
    local_.episodes = check_.episodes();
    if (cfg_.trim) {
      // The trim integrates on exactly what the check judges (comparable), holds and decays otherwise;
      // published every period, so that its stamp proves this thread alive to the control thread.
      trim_.update(t, comparable, local_.difference_W);
      local_.trim_W = trim_.bias_W();
      local_.trim_state = trim_.state();
      if (cfg_.publish_trim)
        cfg_.publish_trim(core::MeterTrimValue{trim_.bias_W(), trim_.params().max_W, t, cfg_.trim_valid_ns});
    }
    if (ev != core::MeterEvent::none && cfg_.on_notice) {
      const auto& p = check_.params();
      const std::string m = ev == core::MeterEvent::disagreement_started
                                ? "bus " + cfg_.bus + ": grid meter reads " + watts(local_.power_W) +
                                      ", eqd computes " + watts(net_W) + " (difference " + watts(local_.difference_W) +
                                      ", beyond the tolerance " + watts(p.tolerance_W) + " for " +
                                      std::to_string(static_cast<int>(p.persistence_s)) +
                                      " s): a channel not sampled, a load not configured, or the meter's sign?"
                                : "bus " + cfg_.bus + ": grid meter agrees with the computed net again (difference " +
                                      watts(local_.difference_W) + ")";
      cfg_.on_notice(ev == core::MeterEvent::disagreement_started ? MeterNotice::disagreement : MeterNotice::agreement,
                     m.c_str());
    }
    status_.store(local_);

    (void)pace.end(steady_now_ns());  // a meter's missed periods are not counted
    thread_.wait_until_ns(pace.next_ns());
  }
}

}  // namespace eqd::io::meter
