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
#include "catalogue.hpp"
#include "eqd/daemon/clock.hpp"

namespace eqd::metrics {

namespace {

using namespace detail;  // NOLINT: the catalogue's Id enumerators name every family below
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

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

// Issue #17: the families of each bus's aim, demand figures and valley filling (bus_aim.cpp).
void add_aim_families(std::vector<MetricFamily>& out, const std::vector<core::BusSnapshot>& s,
                      const std::vector<std::vector<ClientMetric::Label>>& labels) {
  const std::size_t nb = s.size();
  std::size_t at = out.size();  // three families, then the buses' series
  for (const Id id : {kBusMode, kBusDemandQuarter, kBusDemandMax}) family(out, id, 2 * nb);
  for (std::size_t b = 0; b < nb; ++b) detail::add_aim_series(out[at], out[at + 1], out[at + 2], s[b], labels[b]);
  at = out.size();  // valley filling and level shaving: five families, then the buses' series
  for (const Id id : {kBusFillPower, kBusStoredEnergy, kBusWindowNeed, kBusFillShortfall, kBusShaveLevel})
    family(out, id, nb);
  for (std::size_t b = 0; b < nb; ++b)
    detail::add_fill_series(out[at], out[at + 1], out[at + 2], out[at + 3], out[at + 4], s[b], labels[b]);
}

// Issue #19: the families of the buses' grid meters (bus_aim.cpp); nothing for a bus without one.
void add_meter_families(std::vector<MetricFamily>& out, const std::function<daemon::MeterView(core::BusIndex)>& meter,
                        const std::vector<std::vector<ClientMetric::Label>>& labels) {
  const std::size_t nb = labels.size();
  std::vector<daemon::MeterView> meters(nb);
  for (std::size_t b = 0; b < nb; ++b) meters[b] = meter(static_cast<core::BusIndex>(b));
  const std::size_t at = out.size();  // eight families, then the series of the buses with a meter
  for (const Id id : {kBusMeterUp, kBusMeterPower, kBusMeterAge, kBusMeterDifference, kBusMeterDisagreement,
                      kBusMeterDisagreements, kBusMeterErrors, kBusMeterTrim})
    family(out, id, nb);
  for (std::size_t b = 0; b < nb; ++b) detail::add_meter_series(&out[at], meters[b], labels[b]);
}

}  // namespace

Sources sources_from(const daemon::RigView& rig) {
  Sources s;
  // Not owned: the rig outlives the collector (documented), as the Daemon outlives its services.
  s.snapshots = std::shared_ptr<const daemon::SnapshotView>(std::shared_ptr<const void>(), &rig);
  s.directory = &rig.directory();
  s.controller_stats = [&rig](std::size_t c, io::LinkStats& out) { return rig.link_stats(c, out); };
  s.control_overruns = [&rig] { return rig.control_overruns(); };
  s.now_ns = [&rig] { return rig.now_ns(); };
  s.meter = [&rig](core::BusIndex b) { return rig.meter(b); };
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
  add_aim_families(out, s, bus_labels_);
  if (src_.meter) add_meter_families(out, src_.meter, bus_labels_);
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
  per_bus(kStatPath, [](BS x) { return x.stat_path ? 1.0 : 0.0; });
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
