// The metrics collector: turns the core's published snapshots into Prometheus metric families at
// scrape time (see collector.hpp). Reads only seqlocks and atomics, so a scrape never waits for, nor
// delays, the control thread.
#include "eqd/metrics/collector.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <utility>

#include "bus_aim.hpp"
#include "eqd/daemon/clock.hpp"

namespace eqd::metrics {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Index of each family in kCatalogue; the order of both must match (a unit test checks every family
// carries its own value, which a swap would break).
enum Id : std::size_t {
  kBuildInfo,
  kCycleDuration,
  kCycleLateness,
  kCycles,
  kOverruns,
  kLastCycleAge,
  kStalled,
  kStalls,
  kTornReads,
  kRequests,
  kRequestsRefused,
  kApiRequests,
  kPredictorTick,
  kPredictorMemory,
  kPredictorSaveErrors,
  kPredictorTickErrors,
  kHistoryRows,
  kHistoryErrors,
  kHistoryAge,
  kBusNet,
  kBusFree,
  kBusFreeForecast,
  kBusForecastSkill,
  kBusEqCommanded,
  kBusEqMeasured,
  kBusResidual,
  kBusTarget,
  kBusMode,
  kBusActiveWindow,
  kBusDemandQuarter,
  kBusDemandMax,  // issue #17
  kBusCapacity,
  kBusStatus,
  kBusChannels,
  kBusEqChannels,
  kBusPendingChannels,
  kBusStaleChannels,
  kBusFaultedChannels,
  kBusOfflineChannels,
  kBusAtWindowLimit,
  kGridImport,
  kGridExport,
  kFreeImport,
  kFreeExport,
  kEqAbsorbed,
  kEqDelivered,
  kPlansApplied,
  kCtlUp,
  kCtlPolls,
  kCtlErrors,
  kCtlLatency,
  kCtlSampleAge,
  kCtlPollRate,
  kCtlReconnects,
  kCtlWrites,
  kCtlHeartbeats,
  kCtlRefusedFields,
  kCtlLinkErrors,
  kChVoltage,
  kChCurrent,
  kChPower,
  kChForecast,
  kChLearned,
  kChSkill,
  kChState,
  kChRole,
  kChHealth,
  kChSetpoint,
  kChWindow,
  kCount
};

constexpr MetricKind kG = MetricKind::gauge;  // short: the table below names one per row
constexpr MetricKind kC = MetricKind::counter;
constexpr MetricKind kH = MetricKind::histogram;
constexpr MetricScope kCtl = MetricScope::control;
constexpr MetricScope kBus = MetricScope::bus;
constexpr MetricScope kCon = MetricScope::controller;
constexpr MetricScope kCh = MetricScope::channel;

const MetricInfo kCatalogue[] = {
    {"eqd_build_info", kG, kCtl, "", "version", "Always 1; the label says which eqd is running."},
    {"eqd_control_cycle_duration_seconds", kH, kCtl, "seconds", "",
     "Duration of a control cycle, recorded by the control thread."},
    {"eqd_control_cycle_lateness_seconds", kH, kCtl, "seconds", "",
     "How late a control cycle started after its absolute deadline."},
    {"eqd_control_cycles_total", kC, kCtl, "", "", "Control cycles run."},
    {"eqd_control_overruns_total", kC, kCtl, "", "",
     "Control periods skipped because a cycle or the scheduler ran a whole period late."},
    {"eqd_control_last_cycle_age_seconds", kG, kCtl, "seconds", "",
     "Time since the last control cycle started (grows if the control thread stalls)."},
    {"eqd_control_stalled", kG, kCtl, "", "",
     "1 while the last control cycle is older than control_loop.liveness_timeout_ms (links then hold heartbeat and "
     "commands)."},
    {"eqd_control_stalls_total", kC, kCtl, "", "",
     "Stalls of the control thread: gaps between cycles longer than the liveness bound (the one going on included)."},
    {"eqd_control_torn_reads_total", kC, kCtl, "", "",
     "Samples the control thread skipped because their writer was mid-store."},
    {"eqd_control_requests_total", kC, kCtl, "", "", "Requests (assign, release, parameters) handled."},
    {"eqd_control_requests_refused_total", kC, kCtl, "", "", "Change requests the control thread refused."},
    {"eqd_control_api_requests_total", kC, kCtl, "", "operation,result",
     "Control API requests answered, by operation (hello|status|channels|controllers|assign|release|set|adopt|"
     "forget|audit|unparsed) and result (ok or the error code), whoever decided them; only pairs seen so far."},
    {"eqd_predictor_tick_seconds", kG, kCtl, "seconds", "",
     "Duration of the predictor thread's last pass over all channels (once per second; learned forecasts)."},
    {"eqd_predictor_memory_bytes", kG, kCtl, "bytes", "",
     "Heap held by the learned-forecast predictors of all channels."},
    {"eqd_predictor_save_errors_total", kC, kCtl, "", "",
     "Failed writes of state_dir/learned.bin (learning goes on in memory; the next save tries again)."},
    {"eqd_predictor_tick_errors_total", kC, kCtl, "", "",
     "Predictor passes that failed (e.g. out of memory): forecasts pause, control is unaffected."},
    {"eqd_history_rows_written_total", kC, kCtl, "", "table",
     "Rows committed to the history database, by table (audit, energy_bus, energy_buffer)."},
    {"eqd_history_write_errors_total", kC, kCtl, "", "reason",
     "History records lost: reason database (the database failed or is unusable) or queue_full (the writer's "
     "queue was full); control is never held up by either."},
    {"eqd_history_last_write_age_seconds", kG, kCtl, "seconds", "",
     "Time since the history database last committed a write (absent before the first one)."},
    {"eqd_bus_net_power_watts", kG, kBus, "watts", "bus",
     "Net power of the bus: free plus measured equalization power (what the grid sees); positive = drawn."},
    {"eqd_bus_free_power_watts", kG, kBus, "watts", "bus",
     "Free power: sum of the test channels' bus-side power (what the grid would see without equalization)."},
    {"eqd_bus_free_forecast_watts", kG, kBus, "watts", "bus",
     "Free power the law steers by from the controllers' announcements (centred median of the measured and announced "
     "path); equals the free power when nothing is announced or use_forecast is off."},
    {"eqd_bus_forecast_skill_ratio", kG, kBus, "ratio", "bus",
     "Skill of the bus's learned path: 1 - its MAE / persistence's, forecasting the bus's free power half a horizon "
     "ahead (1 = exact, 0 = no better than persistence; used above 0.2; absent until scored)."},
    {"eqd_bus_equalization_commanded_power_watts", kG, kBus, "watts", "bus",
     "Sum of the setpoints sent to the bus's equalization channels."},
    {"eqd_bus_equalization_measured_power_watts", kG, kBus, "watts", "bus",
     "Sum of the equalization channels' measured bus-side power."},
    {"eqd_bus_residual_power_watts", kG, kBus, "watts", "bus", "Residual: net power minus target."},
    {"eqd_bus_target_power_watts", kG, kBus, "watts", "bus", "Net power the bus aims for."},
    {"eqd_bus_mode", kG, kBus, "", "bus,mode", "1 for the mode in force, 0 for the other; mode=balance|caps."},
    {"eqd_bus_schedule_window", kG, kBus, "", "bus", "Target-schedule window in force (from 0); -1: none."},
    {"eqd_bus_import_quarter_hour_average_watts", kG, kBus, "watts", "bus", "Import, last quarter-hour average."},
    {"eqd_bus_import_quarter_hour_max_watts", kG, kBus, "watts", "bus,period", "Highest of them; period=day|month."},
    {"eqd_bus_equalization_capacity_watts", kG, kBus, "watts", "bus,direction",
     "Headroom of the bus's usable equalization channels; direction=charge|discharge."},
    {"eqd_bus_status", kG, kBus, "", "bus,status",
     "1 for the bus's current control status, 0 for the others; status=ok|idle|holding|ramp_down|saturated."},
    {"eqd_bus_channels", kG, kBus, "", "bus", "Channels on the bus."},
    {"eqd_bus_equalization_channels", kG, kBus, "", "bus",
     "Equalization channels (buffers) on the bus, any role but test."},
    {"eqd_bus_pending_channels", kG, kBus, "", "bus", "Assigned channels not yet in equalization mode."},
    {"eqd_bus_stale_channels", kG, kBus, "", "bus", "Channels whose latest sample is stale or invalid."},
    {"eqd_bus_faulted_channels", kG, kBus, "", "bus", "Channels in fault."},
    {"eqd_bus_offline_channels", kG, kBus, "", "bus", "Channels without a link (or never sampled)."},
    {"eqd_bus_buffers_at_window_limit", kG, kBus, "", "bus,limit",
     "Equalization channels with no headroom left at a window limit; limit=high (full) or low (empty)."},
    {"eqd_bus_grid_import_joules_total", kC, kBus, "joules", "bus", "Energy drawn from the grid (net power > 0)."},
    {"eqd_bus_grid_export_joules_total", kC, kBus, "joules", "bus", "Energy fed back to the grid (net power < 0)."},
    {"eqd_bus_without_equalization_import_joules_total", kC, kBus, "joules", "bus",
     "Energy the grid would have supplied without equalization (free power > 0)."},
    {"eqd_bus_without_equalization_export_joules_total", kC, kBus, "joules", "bus",
     "Energy the grid would have taken back without equalization (free power < 0)."},
    {"eqd_bus_equalization_absorbed_joules_total", kC, kBus, "joules", "bus", "Energy absorbed by buffers charging."},
    {"eqd_bus_equalization_delivered_joules_total", kC, kBus, "joules", "bus",
     "Energy delivered by buffers discharging."},
    {"eqd_bus_plans_applied_total", kC, kBus, "", "bus",
     "Commands taken from a receding-horizon plan (law planned; stays 0 while it falls back or for other laws)."},
    {"eqd_controller_up", kG, kCon, "", "controller", "1 when the controller's link is connected, else 0."},
    {"eqd_controller_polls_total", kC, kCon, "", "controller", "Poll cycles run (connected or not)."},
    {"eqd_controller_errors_total", kC, kCon, "", "controller,kind",
     "Errors by kind: timeout|exception|connection|invalid|protocol|write."},
    {"eqd_controller_poll_latency_seconds", kH, kCon, "seconds", "controller", "Duration of the read phase of a poll."},
    {"eqd_controller_sample_age_seconds", kG, kCon, "seconds", "controller",
     "Age of the oldest valid latest sample among the controller's channels (absent until one is valid)."},
    {"eqd_controller_poll_rate_hertz", kG, kCon, "hertz", "controller", "Achieved poll rate (smoothed)."},
    {"eqd_controller_reconnects_total", kC, kCon, "", "controller", "Successful connects after the first."},
    {"eqd_controller_command_writes_total", kC, kCon, "", "controller", "Command writes sent successfully."},
    {"eqd_controller_heartbeats_total", kC, kCon, "", "controller", "Heartbeat writes sent successfully."},
    {"eqd_controller_refused_fields_total", kC, kCon, "", "controller,field",
     "Optional sample fields refused (field: forecast|program): published as not reported, the sample kept; also in "
     "errors_total{kind=protocol}."},
    {"eqd_controller_link_errors_total", kC, kCon, "", "controller,code",
     "Link errors by code (connect_failed|link_lost|timeout|device_exception|bad_response|value_refused|"
     "forecast_refused|program_refused|command_refused|write_failed|device_unusable; docs/faults.md): each error "
     "counted once; only codes seen so far."},
    {"eqd_channel_voltage_volts", kG, kCh, "volts", "bus,channel", "Latest sampled voltage."},
    {"eqd_channel_current_amperes", kG, kCh, "amperes", "bus,channel", "Latest sampled current; positive = charging."},
    {"eqd_channel_power_watts", kG, kCh, "watts", "bus,channel", "Latest sampled power; positive = charging."},
    {"eqd_channel_forecast_watts", kG, kCh, "watts", "bus,channel",
     "Power the controller announces the channel will draw a forecast horizon ahead; positive = charging (only test "
     "channels that announce one)."},
    {"eqd_channel_learned_forecast_watts", kG, kCh, "watts", "bus,channel",
     "Learned forecast of a test channel's power a forecast horizon ahead, while its skill gate is open (the law "
     "counts it like an announcement); positive = charging."},
    {"eqd_channel_forecast_skill_ratio", kG, kCh, "ratio", "bus,channel",
     "Skill of a test channel's learned forecast: 1 - MAE(forecast) / MAE(persistence) over the last ~20 minutes."},
    {"eqd_channel_state", kG, kCh, "", "bus,channel,state",
     "1 for the channel's working state, 0 for the others; state=idle|running|paused|fault|equalizing|offline."},
    {"eqd_channel_role", kG, kCh, "", "bus,channel,role",
     "1 for the channel's role, 0 for the others; role=test|pending|equalization|releasing."},
    {"eqd_channel_health", kG, kCh, "", "bus,channel,health",
     "1 for the health of the channel's latest sample, 0 for the others; health=ok|stale|invalid|fault|offline."},
    {"eqd_channel_setpoint_watts", kG, kCh, "watts", "bus,channel",
     "Power setpoint of an equalization channel (only channels whose role is not test)."},
    {"eqd_channel_window_position_ratio", kG, kCh, "ratio", "bus,channel",
     "Position in the voltage window, 0 = v_min, 1 = v_max (only channels whose role is not test)."},
};
static_assert(std::size(kCatalogue) == kCount, "one catalogue entry per Id");

// Every value of the channel enums, for their state sets (one series per value, 1 for the current one).
constexpr std::array<core::ChannelState, 6> kChannelStates = {
    core::ChannelState::idle,  core::ChannelState::running,    core::ChannelState::paused,
    core::ChannelState::fault, core::ChannelState::equalizing, core::ChannelState::offline};
constexpr std::array<core::Role, 4> kRoles = {core::Role::test, core::Role::pending, core::Role::equalization,
                                              core::Role::releasing};
constexpr std::array<core::Health, 5> kHealths = {core::Health::ok, core::Health::stale, core::Health::invalid,
                                                  core::Health::fault, core::Health::offline};

constexpr std::array<core::BusStatus, 5> kStatuses = {core::BusStatus::ok, core::BusStatus::idle,
                                                      core::BusStatus::holding, core::BusStatus::ramp_down,
                                                      core::BusStatus::saturated};

MetricType type_of(MetricKind k) {
  switch (k) {
    case MetricKind::counter:
      return MetricType::Counter;
    case MetricKind::histogram:
      return MetricType::Histogram;
    case MetricKind::gauge:
      break;
  }
  return MetricType::Gauge;
}

MetricFamily& family(std::vector<MetricFamily>& out, Id id, std::size_t reserve) {
  const MetricInfo& m = kCatalogue[id];
  MetricFamily& f = out.emplace_back();
  f.name = m.name;
  f.help = m.help;
  f.type = type_of(m.kind);
  f.metric.reserve(reserve);
  return f;
}

ClientMetric& add(MetricFamily& f, const std::vector<ClientMetric::Label>& labels) {
  ClientMetric& m = f.metric.emplace_back();
  m.label = labels;
  return m;
}

ClientMetric& add(MetricFamily& f, const std::vector<ClientMetric::Label>& labels, const char* name,
                  const char* value) {
  ClientMetric& m = add(f, labels);
  m.label.push_back({name, value});
  return m;
}

void gauge(MetricFamily& f, const std::vector<ClientMetric::Label>& labels, double v) {
  add(f, labels).gauge.value = v;
}
void counter(MetricFamily& f, const std::vector<ClientMetric::Label>& labels, double v) {
  add(f, labels).counter.value = v;
}

// core::Histogram keeps per-bucket counts; Prometheus wants cumulative ones ending with +Inf.
void histogram(MetricFamily& f, const std::vector<ClientMetric::Label>& labels, const core::Histogram& h) {
  ClientMetric& m = add(f, labels);
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = h.sum_s;
  m.histogram.bucket.resize(h.counts.size());
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.counts.size(); ++i) {
    cumulative += h.counts[i];
    m.histogram.bucket[i].cumulative_count = cumulative;
    m.histogram.bucket[i].upper_bound =
        i < core::Histogram::kBounds_s.size() ? core::Histogram::kBounds_s[i] : std::numeric_limits<double>::infinity();
  }
}

double seconds(std::int64_t ns) { return static_cast<double>(ns) * 1e-9; }

}  // namespace

const std::vector<MetricInfo>& metric_catalogue() {
  static const std::vector<MetricInfo> v(std::begin(kCatalogue), std::end(kCatalogue));
  return v;
}

Sources sources_from(const daemon::RigView& rig) {
  Sources s;
  // Not owned: the rig outlives the collector (documented), as the Daemon outlives its services.
  s.snapshots = std::shared_ptr<const daemon::SnapshotView>(std::shared_ptr<const void>(), &rig);
  s.directory = &rig.directory();
  s.controller_stats = [&rig](std::size_t c, io::LinkStats& out) { return rig.link_stats(c, out); };
  s.control_overruns = [&rig] { return rig.control_overruns(); };
  s.now_ns = [&rig] { return rig.now_ns(); };
  return s;
}

Collector::Collector(Sources src, CollectorOptions opt) : src_(std::move(src)), opt_(opt) {
  if (src_.snapshots == nullptr || src_.directory == nullptr)
    throw std::invalid_argument("metrics collector: snapshots and directory are required");
  if (!src_.now_ns) src_.now_ns = daemon::monotonic_ns;
  const daemon::Directory& dir = *src_.directory;
  // Label values come from the configuration only (bounded): precomputed here so that a scrape
  // copies short strings instead of formatting them.
  auto bus_name = [&](std::size_t b) { return b < dir.buses.size() ? dir.buses[b] : std::to_string(b); };
  for (std::size_t b = 0; b < src_.snapshots->bus_count(); ++b) bus_labels_.push_back({{"bus", bus_name(b)}});
  for (const auto& c : dir.controllers) controller_labels_.push_back({{"controller", c.name}});
  const std::size_t n = std::min(dir.channels.size(), src_.snapshots->channel_count());
  channel_labels_.reserve(n);
  // A channel of no known bus (core::kNoBus: discovered, bus unknown) gets bus="", i.e. no bus label.
  for (std::size_t i = 0; i < n; ++i)
    channel_labels_.push_back(
        {{"bus", dir.channels[i].bus == core::kNoBus ? std::string() : bus_name(dir.channels[i].bus)},
         {"channel", dir.channels[i].name}});
}

std::vector<MetricFamily> Collector::Collect() const {
  std::vector<MetricFamily> out;
  out.reserve(kCount);
  const std::int64_t now_ns = src_.now_ns();
  collect_control(out, now_ns);
  collect_buses(out);
  collect_controllers(out, now_ns);
  if (opt_.per_channel) collect_channels(out);
  return out;
}

void Collector::collect_control(std::vector<MetricFamily>& out, std::int64_t now_ns) const {
  const core::CycleStats st = src_.snapshots->cycle_stats();
  const std::vector<ClientMetric::Label> none;
  gauge(family(out, kBuildInfo, 1), {{"version", EQD_VERSION}}, 1.0);
  histogram(family(out, kCycleDuration, 1), none, st.duration);
  histogram(family(out, kCycleLateness, 1), none, st.lateness);
  counter(family(out, kCycles, 1), none, static_cast<double>(st.cycles));
  if (src_.control_overruns) counter(family(out, kOverruns, 1), none, static_cast<double>(src_.control_overruns()));
  // Before the first cycle there is no age to report; an absent series is clearer than a fake one.
  if (st.cycles > 0) gauge(family(out, kLastCycleAge, 1), none, seconds(now_ns - st.last_cycle_ns));
  const bool stalled = src_.snapshots->stall(now_ns).stalled;
  gauge(family(out, kStalled, 1), none, stalled ? 1.0 : 0.0);
  // The core counts a stall when it cycles again; the one going on now is counted here already.
  counter(family(out, kStalls, 1), none, static_cast<double>(st.stalls + (stalled ? 1 : 0)));
  counter(family(out, kTornReads, 1), none, static_cast<double>(st.torn_reads));
  counter(family(out, kRequests, 1), none, static_cast<double>(st.requests));
  counter(family(out, kRequestsRefused, 1), none, static_cast<double>(st.requests_refused));
  if (src_.api_requests) {
    using Stats = daemon::ApiRequestStats;
    MetricFamily& f = family(out, kApiRequests, 8);
    for (std::size_t o = 0; o < Stats::kOperations.size(); ++o)
      for (std::size_t r = 0; r < Stats::kResults.size(); ++r)
        if (const std::uint64_t n = src_.api_requests->value(o, r); n > 0)
          counter(f, {{"operation", std::string(Stats::kOperations[o])}, {"result", std::string(Stats::kResults[r])}},
                  static_cast<double>(n));
  }
  if (src_.history) collect_history(out);
  const daemon::PredictorView pv = src_.snapshots->predictor();
  if (pv.running) {
    if (pv.ticks > 0) gauge(family(out, kPredictorTick, 1), none, pv.last_tick_s);
    gauge(family(out, kPredictorMemory, 1), none, static_cast<double>(pv.memory_bytes));
    counter(family(out, kPredictorSaveErrors, 1), none, static_cast<double>(pv.save_errors));
    counter(family(out, kPredictorTickErrors, 1), none, static_cast<double>(pv.tick_errors));
  }
}

void Collector::collect_history(std::vector<MetricFamily>& out) const {
  const history::HistoryStats& h = *src_.history;
  MetricFamily& rows = family(out, kHistoryRows, h.kTables.size());
  for (std::size_t t = 0; t < h.kTables.size(); ++t)
    counter(rows, {{"table", std::string(h.kTables[t])}},
            static_cast<double>(h.rows_written[t].load(std::memory_order_relaxed)));
  MetricFamily& errors = family(out, kHistoryErrors, 2);
  counter(errors, {{"reason", "database"}}, static_cast<double>(h.write_errors.load(std::memory_order_relaxed)));
  counter(errors, {{"reason", "queue_full"}},
          static_cast<double>(h.dropped_queue_full.load(std::memory_order_relaxed)));
  // Wall-clock age: the writer stamps commits in UTC ms (history::now_utc_ms).
  if (const std::int64_t last = h.last_write_ms.load(std::memory_order_relaxed); last > 0)
    gauge(family(out, kHistoryAge, 1), {}, std::max(0.0, static_cast<double>(history::now_utc_ms() - last) / 1000.0));
}

void Collector::collect_buses(std::vector<MetricFamily>& out) const {
  const std::size_t nb = bus_labels_.size();
  std::vector<core::BusSnapshot> s(nb);
  for (std::size_t b = 0; b < nb; ++b) s[b] = src_.snapshots->bus(static_cast<core::BusIndex>(b));

  // Buffers at a window limit: derived from the channel snapshots, which the bus snapshot does not
  // summarise. Headroom is 0 in a direction only at (or blocked by hysteresis near) that window limit.
  std::vector<std::array<std::uint32_t, 2>> at_limit(nb, {0, 0});
  for (std::size_t i = 0; i < channel_labels_.size(); ++i) {
    const core::ChannelSnapshot c = src_.snapshots->channel(static_cast<core::ChannelIndex>(i));
    if (c.role != core::Role::equalization || c.bus >= nb) continue;
    if (c.limits.max_charge_W > 0.0 && c.headroom_charge_W <= 0.0) ++at_limit[c.bus][0];
    if (c.limits.max_discharge_W > 0.0 && c.headroom_discharge_W <= 0.0) ++at_limit[c.bus][1];
  }

  auto per_bus = [&](Id id, auto value) {
    MetricFamily& f = family(out, id, nb);
    for (std::size_t b = 0; b < nb; ++b) {
      if (kCatalogue[id].kind == MetricKind::counter)
        counter(f, bus_labels_[b], value(s[b]));
      else
        gauge(f, bus_labels_[b], value(s[b]));
    }
  };
  using BS = const core::BusSnapshot&;
  per_bus(kBusNet, [](BS x) { return x.net_W; });
  per_bus(kBusFree, [](BS x) { return x.free_W; });
  per_bus(kBusFreeForecast, [](BS x) { return x.free_forecast_W; });
  {
    MetricFamily& f = family(out, kBusForecastSkill, nb);
    for (std::size_t b = 0; b < nb; ++b) {
      const float k = src_.snapshots->bus_forecast_skill(static_cast<core::BusIndex>(b));
      if (std::isfinite(k)) gauge(f, bus_labels_[b], static_cast<double>(k));
    }
  }
  per_bus(kBusEqCommanded, [](BS x) { return x.eq_commanded_W; });
  per_bus(kBusEqMeasured, [](BS x) { return x.eq_measured_W; });
  per_bus(kBusResidual, [](BS x) { return x.residual_W; });
  per_bus(kBusTarget, [](BS x) { return x.active_target_W; });
  per_bus(kBusActiveWindow, [](BS x) { return static_cast<double>(x.active_window); });
  {
    const std::size_t at = out.size();  // three families, then the buses' series (bus_aim.cpp)
    for (const Id id : {kBusMode, kBusDemandQuarter, kBusDemandMax}) family(out, id, 2 * nb);
    for (std::size_t b = 0; b < nb; ++b)
      detail::add_aim_series(out[at], out[at + 1], out[at + 2], s[b], bus_labels_[b]);
  }
  {
    MetricFamily& f = family(out, kBusCapacity, 2 * nb);
    for (std::size_t b = 0; b < nb; ++b) {
      add(f, bus_labels_[b], "direction", "charge").gauge.value = s[b].capacity_charge_W;
      add(f, bus_labels_[b], "direction", "discharge").gauge.value = s[b].capacity_discharge_W;
    }
  }
  {
    MetricFamily& f = family(out, kBusStatus, kStatuses.size() * nb);
    for (std::size_t b = 0; b < nb; ++b)
      for (core::BusStatus st : kStatuses)
        add(f, bus_labels_[b], "status", core::to_string(st)).gauge.value = s[b].status == st ? 1.0 : 0.0;
  }
  per_bus(kBusChannels, [](BS x) { return static_cast<double>(x.channels); });
  per_bus(kBusEqChannels, [](BS x) { return static_cast<double>(x.buffers); });
  per_bus(kBusPendingChannels, [](BS x) { return static_cast<double>(x.pending); });
  per_bus(kBusStaleChannels, [](BS x) { return static_cast<double>(x.stale); });
  per_bus(kBusFaultedChannels, [](BS x) { return static_cast<double>(x.faulted); });
  per_bus(kBusOfflineChannels, [](BS x) { return static_cast<double>(x.offline); });
  {
    MetricFamily& f = family(out, kBusAtWindowLimit, 2 * nb);
    for (std::size_t b = 0; b < nb; ++b) {
      add(f, bus_labels_[b], "limit", "high").gauge.value = at_limit[b][0];
      add(f, bus_labels_[b], "limit", "low").gauge.value = at_limit[b][1];
    }
  }
  per_bus(kGridImport, [](BS x) { return x.energy.grid_import_J; });
  per_bus(kGridExport, [](BS x) { return x.energy.grid_export_J; });
  per_bus(kFreeImport, [](BS x) { return x.energy.free_import_J; });
  per_bus(kFreeExport, [](BS x) { return x.energy.free_export_J; });
  per_bus(kEqAbsorbed, [](BS x) { return x.energy.eq_absorbed_J; });
  per_bus(kEqDelivered, [](BS x) { return x.energy.eq_delivered_J; });
  per_bus(kPlansApplied, [](BS x) { return static_cast<double>(x.plans_applied); });
}

void Collector::collect_controllers(std::vector<MetricFamily>& out, std::int64_t now_ns) const {
  if (!src_.controller_stats) return;
  const std::size_t nc = controller_labels_.size();
  std::vector<io::LinkStats> st(nc);
  std::vector<bool> have(nc, false);
  for (std::size_t c = 0; c < nc; ++c) have[c] = src_.controller_stats(c, st[c]);

  // Oldest valid latest sample per controller: one pass over the channels' sample slots.
  constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
  std::vector<std::int64_t> oldest(nc, kNever);
  const daemon::Directory& dir = *src_.directory;
  for (std::size_t i = 0; i < channel_labels_.size(); ++i) {
    const std::size_t c = dir.channels[i].controller;
    if (c >= nc) continue;
    const core::Sample smp = src_.snapshots->sample(static_cast<core::ChannelIndex>(i));
    if (smp.valid && smp.receive_time_ns > 0) oldest[c] = std::min(oldest[c], smp.receive_time_ns);
  }

  auto per_controller = [&](Id id, auto value) {
    MetricFamily& f = family(out, id, nc);
    for (std::size_t c = 0; c < nc; ++c) {
      if (!have[c]) continue;
      if (kCatalogue[id].kind == MetricKind::counter)
        counter(f, controller_labels_[c], value(st[c]));
      else
        gauge(f, controller_labels_[c], value(st[c]));
    }
  };
  using PS = const io::LinkStats&;
  auto num = [](std::uint64_t v) { return static_cast<double>(v); };
  per_controller(kCtlUp, [](PS x) { return x.connected ? 1.0 : 0.0; });
  per_controller(kCtlPolls, [&](PS x) { return num(x.polls); });
  // A counter family with one series per controller and value of `label`, each read from one counter.
  using Counter = std::uint64_t io::LinkStats::*;
  auto per_controller_by = [&](Id id, const char* label,
                               std::initializer_list<std::pair<const char*, Counter>> series) {
    MetricFamily& f = family(out, id, series.size() * nc);
    for (std::size_t c = 0; c < nc; ++c) {
      if (!have[c]) continue;
      for (const auto& [value, counter_of] : series)
        add(f, controller_labels_[c], label, value).counter.value = num(st[c].*counter_of);
    }
  };
  per_controller_by(kCtlErrors, "kind",
                    {{"timeout", &io::LinkStats::timeouts},
                     {"exception", &io::LinkStats::exceptions},
                     {"connection", &io::LinkStats::connection_errors},
                     {"invalid", &io::LinkStats::invalid_samples},
                     {"protocol", &io::LinkStats::protocol_errors},
                     {"write", &io::LinkStats::write_errors}});
  {
    MetricFamily& f = family(out, kCtlLatency, nc);
    for (std::size_t c = 0; c < nc; ++c)
      if (have[c]) histogram(f, controller_labels_[c], st[c].latency);
  }
  {
    MetricFamily& f = family(out, kCtlSampleAge, nc);
    for (std::size_t c = 0; c < nc; ++c)
      if (have[c] && oldest[c] != kNever)
        gauge(f, controller_labels_[c], seconds(std::max<std::int64_t>(now_ns - oldest[c], 0)));
  }
  per_controller(kCtlPollRate, [](PS x) { return x.achieved_hz; });
  per_controller(kCtlReconnects, [&](PS x) { return num(x.reconnects); });
  per_controller(kCtlWrites, [&](PS x) { return num(x.writes); });
  per_controller(kCtlHeartbeats, [&](PS x) { return num(x.heartbeats); });
  // Why a channel shows no announced forecast or no step numbers although its controller sends them.
  per_controller_by(kCtlRefusedFields, "field",
                    {{"forecast", &io::LinkStats::forecast_errors}, {"program", &io::LinkStats::program_errors}});
  collect_link_errors(out, st, have);
}

void Collector::collect_link_errors(std::vector<MetricFamily>& out, const std::vector<io::LinkStats>& st,
                                    const std::vector<bool>& have) const {
  // One series per code a controller has met (a dashboard sums them; absent codes cost nothing).
  MetricFamily& f = family(out, kCtlLinkErrors, 0);
  for (std::size_t c = 0; c < st.size(); ++c) {
    if (!have[c]) continue;
    for (std::size_t code = 1; code < st[c].errors_by_code.size(); ++code)
      if (st[c].errors_by_code[code] != 0)
        // The names are string literals, so their data() is NUL-terminated.
        add(f, controller_labels_[c], "code", io::link_errc_name(static_cast<int>(code)).data()).counter.value =
            static_cast<double>(st[c].errors_by_code[code]);
  }
}

void Collector::collect_channels(std::vector<MetricFamily>& out) const {
  const std::size_t n = channel_labels_.size();
  MetricFamily& voltage = family(out, kChVoltage, n);
  MetricFamily& current = family(out, kChCurrent, n);
  MetricFamily& power = family(out, kChPower, n);
  MetricFamily& forecast = family(out, kChForecast, 0);
  MetricFamily& learned = family(out, kChLearned, 0);
  MetricFamily& skill = family(out, kChSkill, 0);
  MetricFamily& state = family(out, kChState, n * kChannelStates.size());
  MetricFamily& role = family(out, kChRole, n * kRoles.size());
  MetricFamily& health = family(out, kChHealth, n * kHealths.size());
  MetricFamily& setpoint = family(out, kChSetpoint, 0);
  MetricFamily& window = family(out, kChWindow, 0);
  // `out` was reserved for every family above, so these references stay valid while we append.
  for (std::size_t i = 0; i < n; ++i) {
    const auto idx = static_cast<core::ChannelIndex>(i);
    const core::Sample smp = src_.snapshots->sample(idx);
    const core::ChannelSnapshot c = src_.snapshots->channel(idx);
    const auto& l = channel_labels_[i];
    gauge(voltage, l, smp.voltage_V);
    gauge(current, l, smp.current_A);
    gauge(power, l, smp.power_W);
    // Only what the law can use: a test channel's announcement (NaN = none announced: no sample).
    if (c.role == core::Role::test && std::isfinite(smp.forecast_W))
      gauge(forecast, l, static_cast<double>(smp.forecast_W));
    if (c.role == core::Role::test) {
      const daemon::LearnedView lv = src_.snapshots->learned(idx);
      if (std::isfinite(lv.skill)) gauge(skill, l, static_cast<double>(lv.skill));
      if (lv.in_use && std::isfinite(lv.forecast_W)) gauge(learned, l, static_cast<double>(lv.forecast_W));
    }
    // State sets, as eqd_bus_status: one series per value, 1 for the current one (Prometheus' style
    // for enums; `== 1` selects, `sum by (state)` counts).
    for (core::ChannelState v : kChannelStates)
      add(state, l, "state", core::to_string(v)).gauge.value = smp.state == v ? 1.0 : 0.0;
    for (core::Role v : kRoles) add(role, l, "role", core::to_string(v)).gauge.value = c.role == v ? 1.0 : 0.0;
    for (core::Health v : kHealths)
      add(health, l, "health", core::to_string(v)).gauge.value = c.health == v ? 1.0 : 0.0;
    if (c.role != core::Role::test) {
      gauge(setpoint, l, c.setpoint_W);
      gauge(window, l, c.window_pos);
    }
  }
}

}  // namespace eqd::metrics
