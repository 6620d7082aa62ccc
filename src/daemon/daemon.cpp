#include "eqd/daemon/daemon.hpp"

#include <spdlog/spdlog.h>

#include "eqd/daemon/logging.hpp"
#include "eqd/daemon/demand_file.hpp"
#include "eqd/daemon/window_needs_file.hpp"
#include "eqd/util/local_time.hpp"
#include "realtime.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <thread>

namespace eqd::daemon {

namespace {
// Settings that are legal but do nothing with the bus's law: said once at start.
void warn_law_settings(const RigPlan& plan) {
  // Law planned plans over the announced or learned path; without use_forecast there is none, and it
  // is the adaptive law. Legal (use_forecast is settable at run time), but rarely what was meant.
  for (std::size_t b = 0; b < plan.core.buses.size() && b < plan.directory.buses.size(); ++b) {
    const core::BusParams& p = plan.core.buses[b];
    if (p.law == core::LawKind::planned && !p.use_forecast)
      spdlog::warn(
          "bus {}: law planned with use_forecast off plans nothing (it runs as the adaptive law until "
          "`eqctl set --bus {} use_forecast=on`)",
          plan.directory.buses[b], plan.directory.buses[b]);
    // stat_forecast (on by default) is a path for law planned only: with another law it does nothing,
    // by design, and a start-up warning would fire on every bus that merely chose another law. Turning it
    // on at run time where it does nothing is answered with a warning (inert_setting_warning).
  }
}
}  // namespace

Daemon::Daemon(const config::Config& cfg, const PlanHook& adjust_plan,
               const std::map<std::string, core::EnergyCounters>& initial_energy,
               const std::map<std::string, core::DemandSeed>& initial_demand)
    : cfg_(cfg), plan_(plan_rig(cfg)) {
  if (adjust_plan) adjust_plan(plan_);
  // A persisted assignment may name a channel of a controller that is now read-only (discovered, not
  // adopted, e.g. after `eqctl controllers forget`): eqd must not command it.
  for (std::size_t i = 0; i < plan_.directory.channels.size(); ++i) {
    const ChannelInfo& ch = plan_.directory.channels[i];
    if (!plan_.core.channels[i].assigned) continue;
    const ControllerInfo& ctl = plan_.directory.controllers[ch.controller];
    if (!ctl.commands) {
      plan_.core.channels[i].assigned = false;
      spdlog::warn("{}: not taken into equalization: controller {} uses transport {}, which eqd cannot command",
                   ch.name, ctl.name, ctl.transport);
      continue;
    }
    if (!ctl.read_only) continue;
    plan_.core.channels[i].assigned = false;
    spdlog::warn(
        "{}: not taken into equalization: controller {} {} (read-only); adopt it with "
        "`eqctl controllers adopt {}{}`",
        ch.name, ctl.name, ctl.bus_unknown ? "has no known bus" : "is not adopted", ctl.name,
        ctl.bus_unknown ? " --bus BUS" : "");
  }
  warn_law_settings(plan_);
  if (!initial_energy.empty()) {
    plan_.core.initial_energy.resize(plan_.directory.buses.size());
    for (std::size_t b = 0; b < plan_.directory.buses.size(); ++b) {
      auto it = initial_energy.find(plan_.directory.buses[b]);
      if (it != initial_energy.end()) plan_.core.initial_energy[b] = it->second;
    }
  }
  // Target schedules, by the core's bus index (the directory's order), and valley filling's needs of
  // their windows as learned before this start (state_dir/window_needs.json).
  std::vector<std::vector<core::ScheduleWindow>> windows(plan_.directory.buses.size());
  for (const config::BusConfig& bc : cfg_.buses)
    for (std::size_t b = 0; b < windows.size(); ++b)
      if (plan_.directory.buses[b] == bc.name) windows[b] = bc.schedule;
  const std::string needs_path = cfg_.state_dir + "/window_needs.json";
  plan_.core.initial_window_needs = load_window_needs(needs_path, plan_.directory.buses, windows);
  // The demand maxima of today and this month as saved before this start (state_dir/demand.json).
  const std::string demand_path = cfg_.state_dir + "/demand.json";
  plan_.core.initial_demand = load_demand(
      demand_path, plan_.directory.buses,
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count(),
      &util::local_utc_offset_s);
  for (std::size_t b = 0; b < plan_.directory.buses.size(); ++b) {
    auto it = initial_demand.find(plan_.directory.buses[b]);
    if (it != initial_demand.end()) plan_.core.initial_demand[b] = it->second;  // a reload: the live figures
  }
  core_ = std::make_unique<core::ControlCore>(plan_.core);
  loop_ = std::make_unique<ControlLoop>(*core_, std::chrono::milliseconds(cfg_.loop.period_ms));
  // Learned forecasts live beside the state file; a successor of a reload restores what this one saved
  // when it detached (start() reads the file, detach() and shutdown() write it).
  predictor_ = std::make_unique<PredictorThread>(*core_, plan_.directory, cfg_.state_dir + "/learned.bin");
  planner_ = std::make_unique<PlannerThread>(*core_);
  schedule_ =
      std::make_unique<ScheduleThread>(*core_, std::move(windows), needs_path, plan_.directory.buses, demand_path);
  // Every transport's link reports its errors to the journal through the same hook.
  for (const LinkPlan& lp : plan_.links) {
    io::LinkSpec spec = lp.spec;
    spec.on_error = logging::controller_error_reporter(cfg_, spec.name);
    links_.push_back(lp.transport->make_link(*lp.settings.get(), spec, *core_));
  }
  make_meters();
  // The control thread names itself and takes its optional real-time settings before its first cycle.
  loop_->set_thread_start_hook([prio = cfg_.loop.realtime_priority, lock = cfg_.loop.lock_memory] {
    log_realtime(apply_realtime("eqd-control", prio, lock));
  });
}

Daemon::~Daemon() {
  if (started_ && !stopped_) shutdown(std::chrono::milliseconds(cfg_.loop.shutdown_timeout_ms));
}

void Daemon::make_meters() {
  meters_.resize(plan_.directory.buses.size());
  for (const config::BusConfig& bc : cfg_.buses) {
    if (!bc.meter) continue;
    const auto b = plan_.directory.find_bus(bc.name);
    if (!b) continue;
    const config::MeterConfig& m = *bc.meter;
    io::meter::MeterLinkConfig mc;
    mc.bus = bc.name;
    mc.source = m.transport == "modbus" ? io::meter::MeterSource::modbus : io::meter::MeterSource::sunspec;
    mc.host = m.host;
    mc.port = m.port;
    mc.unit_id = m.unit_id;
    mc.base_address = m.base_address;
    if (m.power) mc.power = *m.power;
    mc.sign = m.export_positive ? io::meter::MeterSign::export_positive : io::meter::MeterSign::import_positive;
    mc.poll_hz = m.poll_hz;
    mc.timeout_ms = m.timeout_ms;
    mc.check = core::MeterCheckParams{m.tolerance_W, m.persistence_s};
    // The meter trim (opt-in): it holds as long as a reading counts as fresh (max_age_ms), and the
    // control thread drops it when it is older than twice that (the meter's thread stalled).
    mc.trim = m.trim;
    mc.trim_params = core::MeterTrimParams{m.trim_tau_s, m.trim_max_W, m.max_age_ms / 1000.0};
    mc.trim_valid_ns = 2 * static_cast<std::int64_t>(m.max_age_ms) * 1'000'000;
    mc.publish_trim = [core = core_.get(), bus = *b](const core::MeterTrimValue& v) {
      core->meter_trim_slot(bus).store(v);
    };
    // The net power the control thread published last (a seqlock read on the meter's thread).
    mc.computed = [core = core_.get(), bus = *b](double& net_W, std::int64_t& cycle_ns) {
      cycle_ns = core->cycle_clock().load(std::memory_order_acquire);
      if (cycle_ns <= 0) return false;  // no cycle yet
      net_W = core->bus(bus).net_W;
      return true;
    };
    mc.on_notice = [bus = bc.name](io::meter::MeterNotice kind, const char* message) {
      // A disagreement (once per episode) and an error (once per change) are warnings; the identity and
      // the end of an episode are notices. Journal fields BUS= and METER= (what it is about).
      const bool warning = kind == io::meter::MeterNotice::disagreement || kind == io::meter::MeterNotice::error;
      const char* what = kind == io::meter::MeterNotice::disagreement ? "disagreement"
                         : kind == io::meter::MeterNotice::agreement  ? "agreement"
                         : kind == io::meter::MeterNotice::error      ? "error"
                                                                      : "identity";
      logging::log_with(warning ? spdlog::level::warn : spdlog::level::info, {{"BUS", bus}, {"METER", what}}, "{}",
                        message);
    };
    meters_[*b] = std::make_unique<io::meter::MeterLink>(std::move(mc));
  }
}

MeterView Daemon::meter(core::BusIndex b) const noexcept {
  MeterView v;
  if (b >= meters_.size() || !meters_[b]) return v;
  const io::meter::MeterLink& m = *meters_[b];
  const io::meter::MeterLinkConfig& mc = m.config();
  v.configured = true;
  v.status = m.status();
  v.tolerance_W = mc.check.tolerance_W;
  v.persistence_s = mc.check.persistence_s;
  v.transport = io::meter::to_string(mc.source);
  v.sign = io::meter::to_string(mc.sign);
  v.trim = mc.trim;
  v.trim_tau_s = mc.trim_params.tau_s;
  v.trim_max_W = mc.trim_params.max_W;
  if (v.status.reading_ns > 0) v.age_s = static_cast<double>(monotonic_ns() - v.status.reading_ns) * 1e-9;
  int max_age_ms = 5000;
  for (const config::BusConfig& bc : cfg_.buses)
    if (bc.name == mc.bus && bc.meter) max_age_ms = bc.meter->max_age_ms;
  v.ok = v.status.connected && v.status.valid && v.age_s >= 0.0 && v.age_s * 1000.0 <= max_age_ms;
  return v;
}

void Daemon::start() {
  if (started_) return;
  started_ = true;
  loop_->start();
  (void)predictor_->start();
  planner_->start();
  schedule_->start();
  for (auto& p : links_) p->start();
  for (auto& m : meters_)
    if (m) m->start();
  // Where each equalization channel came from: the configuration, or the state file (assigned with
  // eqctl); a configured one the state file says was released is counted apart.
  std::size_t from_config = 0, from_state = 0, released_by_state = 0;
  for (std::size_t i = 0; i < plan_.core.channels.size() && i < plan_.directory.channels.size(); ++i) {
    const std::string& name = plan_.directory.channels[i].name;
    const bool configured = std::any_of(cfg_.buffers.begin(), cfg_.buffers.end(),
                                        [&](const config::BufferConfig& b) { return b.channel == name; });
    if (plan_.core.channels[i].assigned)
      ++(configured ? from_config : from_state);
    else if (configured)
      ++released_by_state;
  }
  spdlog::info(
      "eqd started: {} bus(es), {} controller(s), {} channel(s), {} equalization channel(s) ({} from config, "
      "{} from state{}), control period {} ms, liveness bound {} ms",
      plan_.directory.buses.size(), plan_.directory.controllers.size(), plan_.directory.channels.size(),
      from_config + from_state, from_config, from_state,
      released_by_state ? "; " + std::to_string(released_by_state) + " configured one(s) released by state"
                        : std::string(),
      cfg_.loop.period_ms, cfg_.loop.liveness_timeout_ms);
}

void Daemon::detach() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  for (auto& l : links_) l->stop();
  for (auto& m : meters_)
    if (m) m->stop();
  loop_->stop();
  predictor_->stop();
  planner_->stop();
  schedule_->stop();
  spdlog::info("handing over: links stopped, buffers keep their setpoints until their lease expires");
}

PredictorView Daemon::predictor() const noexcept {
  const PredictorStats& st = predictor_->stats();
  PredictorView v;
  v.running = started_ && !stopped_;
  v.ticks = st.ticks.load(std::memory_order_relaxed);
  v.saves = st.saves.load(std::memory_order_relaxed);
  v.save_errors = st.save_errors.load(std::memory_order_relaxed);
  v.tick_errors = st.tick_errors.load(std::memory_order_relaxed);
  v.memory_bytes = st.memory_bytes.load(std::memory_order_relaxed);
  v.last_tick_s = static_cast<double>(st.last_tick_ns.load(std::memory_order_relaxed)) * 1e-9;
  v.max_tick_s = static_cast<double>(st.max_tick_ns.load(std::memory_order_relaxed)) * 1e-9;
  return v;
}

bool Daemon::link_stats(std::size_t c, io::LinkStats& out) const {
  if (c >= links_.size()) return false;
  out = links_[c]->stats();
  return true;
}

std::map<std::string, core::EnergyCounters> Daemon::energy_by_bus() const {
  std::map<std::string, core::EnergyCounters> out;
  for (std::size_t b = 0; b < plan_.directory.buses.size(); ++b)
    out[plan_.directory.buses[b]] = core_->bus(static_cast<core::BusIndex>(b)).energy;
  return out;
}

std::map<std::string, core::DemandSeed> Daemon::demand_by_bus() const {
  std::map<std::string, core::DemandSeed> out;
  for (std::size_t b = 0; b < plan_.directory.buses.size(); ++b) {
    const core::BusSnapshot s = core_->bus(static_cast<core::BusIndex>(b));
    out[plan_.directory.buses[b]] = {s.demand_max_day_W, s.demand_max_month_W};
  }
  return out;
}

ShutdownReport Daemon::shutdown(std::chrono::milliseconds timeout) {
  ShutdownReport report;
  if (!started_ || stopped_) return report;
  stopped_ = true;
  spdlog::info("stopping: taking equalization channels to 0 W and out of equalization mode");
  // The core stops commanding; the pollers write stop to everything they ever told to equalize and
  // confirm by reading the channels back.
  core::Request stop;
  stop.kind = core::RequestKind::stop_all;
  (void)core_->submit(stop);
  for (auto& p : links_) p->release_all();
  // Wait for all controllers in parallel: one dead controller must not eat the others' time.
  std::vector<std::future<bool>> waits;
  for (auto& p : links_)
    waits.push_back(std::async(std::launch::async, [&p, timeout] { return p->wait_released(timeout); }));
  for (std::size_t i = 0; i < links_.size(); ++i) {
    const std::string& name = links_[i]->name();
    if (waits[i].get()) {
      report.acknowledged.push_back(name);
    } else {
      report.timed_out.push_back(name);
      spdlog::warn(
          "controller {}: stop not acknowledged within {} ms; its lease/heartbeat watchdog will release "
          "its equalization channels",
          name, timeout.count());
    }
  }
  for (auto& p : links_) p->stop();
  for (auto& m : meters_)
    if (m) m->stop();
  loop_->stop();
  predictor_->stop();
  planner_->stop();
  schedule_->stop();
  spdlog::info("stopped: {} controller(s) acknowledged, {} timed out", report.acknowledged.size(),
               report.timed_out.size());
  return report;
}

}  // namespace eqd::daemon
