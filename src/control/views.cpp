// Reading views of the control API. They only read the rig's snapshots (see views.hpp).
#include "eqd/control/views.hpp"

#include <cmath>
#include <cstring>
#include <vector>

namespace eqd::control {

using nlohmann::json;

namespace {
// A float that may be NaN (not known) as JSON: null rather than a number nobody can use.
json finite_or_null(float v) { return std::isfinite(v) ? json(static_cast<double>(v)) : json(nullptr); }
json finite_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

struct HealthCounts {
  std::uint32_t total = 0, test = 0, equalization = 0, pending = 0, releasing = 0;
  std::uint32_t ok = 0, stale = 0, invalid = 0, fault = 0, offline = 0;
};

// The run-time parameters (core::kRuntimeParams) and the fixed ones eqctl shows beside them.
json bus_params_json(const core::BusParams& p, bool allow_any_tau) {
  json j = runtime_params_json(p);
  j["law"] = core::to_string(p.law);
  j["forecast_horizon_s"] = p.forecast_horizon_s;
  j["allow_any_tau"] = allow_any_tau;
  return j;
}

json to_json(const HealthCounts& c) {
  return json{{"total", c.total},     {"test", c.test},           {"equalization", c.equalization},
              {"pending", c.pending}, {"releasing", c.releasing}, {"ok", c.ok},
              {"stale", c.stale},     {"invalid", c.invalid},     {"fault", c.fault},
              {"offline", c.offline}};
}

// A bus's grid meter: what it reads (eqd's sign, + = import), how old, how far from the computed net,
// whether that difference is a disagreement now, and the meter trim (trim_W: the bias added to the bus's
// free power; 0 with trim off). null without a meter.
json meter_json(const daemon::MeterView& m) {
  if (!m.configured) return nullptr;
  const io::meter::MeterStatus& s = m.status;
  return json{{"ok", m.ok},
              {"connected", s.connected},
              {"transport", m.transport},
              {"model", s.model != 0 ? json(s.model) : json(nullptr)},
              {"sign", m.sign},
              {"power_W", m.ok ? finite_or_null(s.power_W) : json(nullptr)},
              {"frequency_Hz", m.ok ? finite_or_null(s.frequency_Hz) : json(nullptr)},
              {"age_s", m.age_s >= 0.0 ? json(m.age_s) : json(nullptr)},
              {"computed_W", finite_or_null(s.computed_W)},
              {"difference_W", m.ok ? finite_or_null(s.difference_W) : json(nullptr)},
              {"tolerance_W", m.tolerance_W},
              {"persistence_s", m.persistence_s},
              {"disagreement", s.disagreement},
              {"disagreements", s.episodes},
              {"readings", s.readings},
              {"errors", s.errors},
              {"last_error", std::string(s.last_error)},
              {"trim", m.trim},
              {"trim_W", m.trim ? finite_or_null(s.trim_W) : json(0.0)},
              {"trim_state", core::to_string(m.trim ? s.trim_state : core::MeterTrimState::off)},
              {"trim_tau_s", m.trim ? json(m.trim_tau_s) : json(nullptr)},
              {"trim_max_W", m.trim ? json(m.trim_max_W) : json(nullptr)}};
}

// One bus's channels by role and by health (the status reply's buses[].channels).
void count_channel(const core::ChannelSnapshot& s, HealthCounts& c) {
  ++c.total;
  switch (s.role) {
    case core::Role::test:
      ++c.test;
      break;
    case core::Role::equalization:
      ++c.equalization;
      break;
    case core::Role::pending:
      ++c.pending;
      break;
    case core::Role::releasing:
      ++c.releasing;
      break;
  }
  switch (s.health) {
    case core::Health::ok:
      ++c.ok;
      break;
    case core::Health::stale:
      ++c.stale;
      break;
    case core::Health::invalid:
      ++c.invalid;
      break;
    case core::Health::fault:
      ++c.fault;
      break;
    case core::Health::offline:
      ++c.offline;
      break;
  }
}

// Every bus's HealthCounts, from the channels' snapshots.
std::vector<HealthCounts> channel_counts(const daemon::RigView& rig) {
  const daemon::Directory& dir = rig.directory();
  std::vector<HealthCounts> counts(rig.bus_count());
  for (std::size_t i = 0; i < dir.channels.size() && i < rig.channel_count(); ++i) {
    const core::ChannelSnapshot s = rig.channel(static_cast<core::ChannelIndex>(i));
    const std::size_t b = dir.channels[i].bus;
    if (b >= counts.size()) continue;
    count_channel(s, counts[b]);
  }
  return counts;
}

// Controllers connected and not, on the whole rig and per bus.
struct ControllerCounts {
  std::vector<std::uint32_t> up, down;  // by bus
  std::uint32_t total_up = 0, total_down = 0;
};

// A controller counts for every bus that one of its channels belongs to.
ControllerCounts controller_counts(const daemon::RigView& rig) {
  const daemon::Directory& dir = rig.directory();
  ControllerCounts ctl{std::vector<std::uint32_t>(rig.bus_count()), std::vector<std::uint32_t>(rig.bus_count())};
  for (std::size_t c = 0; c < dir.controllers.size(); ++c) {
    const bool connected = rig.link_connected(c);
    (connected ? ctl.total_up : ctl.total_down)++;
    std::vector<bool> seen(rig.bus_count(), false);
    const auto& info = dir.controllers[c];
    // A controller's channels are contiguous from first_channel (ignored channels have no entry).
    for (std::size_t i = info.first_channel; i < dir.channels.size() && dir.channels[i].controller == c; ++i)
      if (dir.channels[i].bus < seen.size()) seen[dir.channels[i].bus] = true;
    for (std::size_t b = 0; b < seen.size(); ++b)
      if (seen[b]) (connected ? ctl.up[b] : ctl.down[b])++;
  }
  return ctl;
}

// One entry of the status reply's buses[].
json bus_status_json(const daemon::RigView& rig, std::size_t b, const daemon::StallView& stall,
                     const HealthCounts& channels, const ControllerCounts& ctl) {
  const daemon::Directory& dir = rig.directory();
  const core::BusSnapshot s = rig.bus(static_cast<core::BusIndex>(b));
  const bool allow_any_tau = b < rig.config().buses.size() && rig.config().buses[b].allow_any_tau;
  return json{
      {"bus", b < dir.buses.size() ? dir.buses[b] : std::to_string(b)},
      // A bus snapshot is only as new as the last cycle: while the control thread is stalled its status
      // says so, not the status of the last cycle before the stall.
      {"status", stall.stalled ? "stalled" : core::to_string(s.status)},
      {"net_W", s.net_W},
      {"free_W", s.free_W},
      {"free_forecast_W", s.free_forecast_W},
      // Skill of the bus's learned forecasts (null: nothing scored yet, or not learning).
      {"forecast_skill", finite_or_null(rig.bus_forecast_skill(static_cast<core::BusIndex>(b)))},
      {"eq_commanded_W", s.eq_commanded_W},
      {"eq_measured_W", s.eq_measured_W},
      {"residual_W", s.residual_W},
      {"desired_W", s.desired_W},
      {"capacity_charge_W", s.capacity_charge_W},
      {"capacity_discharge_W", s.capacity_discharge_W},
      // Commands that came from a receding-horizon plan (law planned; 0 for the other laws).
      {"plans_applied", s.plans_applied},
      // This cycle's path is the statistical forecast (stat_forecast: nothing announced or learned, its
      // skill and shadow-plan gates open).
      {"stat_path", s.stat_path},
      {"params", bus_params_json(s.params, allow_any_tau)},
      // What the bus aims for now: the active window of its target schedule (index into
      // buses[].schedule; null: none, the bus's own params) and the mode, target and limits in force.
      {"aim", json{{"window", s.active_window >= 0 ? json(s.active_window) : json(nullptr)},
                   {"mode", core::kBusModeNames[s.active_mode == core::BusMode::caps ? 1 : 0]},
                   {"target_W", s.active_target_W},
                   {"import_limit_W", s.active_import_limit_W},
                   {"export_limit_W", s.active_export_limit_W}}},
      // Quarter-hour average import and its maxima for the local day and month (null: none yet).
      {"demand", json{{"quarter_hour_W", finite_or_null(s.demand_quarter_W)},
                      {"max_day_W", finite_or_null(s.demand_max_day_W)},
                      {"max_month_W", finite_or_null(s.demand_max_month_W)}}},
      // Valley filling: the next caps window (null: none ahead), its need (null: not known yet), the
      // buffers' stored energy and capacity, the charge asked for now, the expected shortfall.
      {"valley_fill", json{{"window", s.fill.window >= 0 ? json(s.fill.window) : json(nullptr)},
                           {"starts_in_s", finite_or_null(s.fill.starts_in_s)},
                           {"need_J", finite_or_null(s.fill.need_J)},
                           {"stored_J", s.fill.stored_J},
                           {"capacity_J", s.fill.capacity_J},
                           {"fill_W", s.fill.fill_W},
                           {"shortfall_J", s.fill.shortfall_J},
                           // Level shaving: the import level held in the active caps window (null: none).
                           {"level_W", finite_or_null(s.fill.level_W)}}},
      {"energy", json{{"grid_import_J", s.energy.grid_import_J},
                      {"grid_export_J", s.energy.grid_export_J},
                      {"without_eq_import_J", s.energy.free_import_J},
                      {"without_eq_export_J", s.energy.free_export_J},
                      {"eq_absorbed_J", s.energy.eq_absorbed_J},
                      {"eq_delivered_J", s.energy.eq_delivered_J}}},
      {"channels", to_json(channels)},
      {"controllers", json{{"connected", ctl.up[b]}, {"disconnected", ctl.down[b]}}},
      // The grid meter beside the computed net (null: the bus has none; docs/control-api.md).
      {"meter", meter_json(rig.meter(static_cast<core::BusIndex>(b)))},
  };
}

}  // namespace

json status_view(const daemon::RigView& rig, std::int64_t now_ns, const MetricsEndpointState* metrics) {
  const daemon::StallView stall = rig.stall(now_ns);
  const std::vector<HealthCounts> counts = channel_counts(rig);
  const ControllerCounts ctl = controller_counts(rig);
  json buses = json::array();
  for (std::size_t b = 0; b < rig.bus_count(); ++b) buses.push_back(bus_status_json(rig, b, stall, counts[b], ctl));
  const core::CycleStats st = rig.cycle_stats();
  const std::uint32_t up = ctl.total_up, down = ctl.total_down;
  json out{
      {"buses", buses},
      {"controllers", json{{"total", up + down}, {"connected", up}, {"disconnected", down}}},
      {"control", json{{"cycles", st.cycles},
                       {"stalled", stall.stalled},
                       {"stalls", stall.stalls},
                       {"liveness_timeout_s", stall.bound_s},
                       {"last_cycle_age_s", st.cycles ? static_cast<double>(now_ns - st.last_cycle_ns) * 1e-9 : -1.0},
                       {"requests", st.requests},
                       {"requests_refused", st.requests_refused}}}};
  // Monitoring is reported, never required: control runs whether or not the endpoint is bound.
  if (metrics != nullptr)
    out["metrics"] = json{{"enabled", metrics->enabled},
                          {"listening", metrics->listening},
                          {"listen", metrics->listen},
                          {"error", metrics->error.empty() ? json(nullptr) : json(metrics->error)},
                          {"retry_ms", metrics->retry.count()}};
  return out;
}

json channels_view(const daemon::RigView& rig, std::int64_t now_ns, int bus, RoleFilter role) {
  const daemon::Directory& dir = rig.directory();
  json rows = json::array();
  for (std::size_t i = 0; i < dir.channels.size() && i < rig.channel_count(); ++i) {
    const daemon::ChannelInfo& info = dir.channels[i];
    if (bus >= 0 && info.bus != bus) continue;
    const auto idx = static_cast<core::ChannelIndex>(i);
    const core::ChannelSnapshot s = rig.channel(idx);
    const bool eq = s.role != core::Role::test;
    if ((role == RoleFilter::eq && !eq) || (role == RoleFilter::test && eq)) continue;
    const core::Sample smp = rig.sample(idx);
    // A test channel's announcement (what the law counts): its power forecast_horizon_s ahead; NaN = none.
    const bool announced = s.role == core::Role::test && std::isfinite(smp.forecast_W);
    const daemon::LearnedView learned = rig.learned(idx);
    json row{{"channel", info.name},
             // null: its controller was discovered and its bus is not known (in no bus's balance).
             {"bus", info.bus < dir.buses.size() ? json(dir.buses[info.bus]) : json(nullptr)},
             {"role", core::to_string(s.role)},
             {"health", core::to_string(s.health)},
             {"state", core::to_string(smp.state)},
             {"voltage_V", smp.voltage_V},
             {"current_A", smp.current_A},
             {"power_W", smp.power_W},
             {"forecast_W", announced ? json(static_cast<double>(smp.forecast_W)) : json(nullptr)},
             // A learned forecast the law counts (its skill gate is open; an announcement wins), and the
             // channel's forecast skill (null: not scored, or not a learning test channel).
             {"learned_forecast_W",
              !announced && s.role == core::Role::test ? finite_or_null(learned.forecast_W) : json(nullptr)},
             {"forecast_skill", s.role == core::Role::test ? finite_or_null(learned.skill) : json(nullptr)},
             // The test program's position where the controller reports it (null: not reported).
             {"step_index", smp.step_index != core::Sample::kNoStep ? json(smp.step_index) : json(nullptr)},
             {"cycle_index", smp.cycle_index != core::Sample::kNoIndex ? json(smp.cycle_index) : json(nullptr)},
             {"setpoint_W", eq ? json(s.setpoint_W) : json(nullptr)},
             {"sample_age_s",
              smp.receive_time_ns > 0 ? json(static_cast<double>(now_ns - smp.receive_time_ns) * 1e-9) : json(nullptr)},
             {"window_pos", eq ? json(s.window_pos) : json(nullptr)},
             {"equalization_mode", smp.equalization_mode},
             {"fault_code", smp.fault_code}};
    if (eq) {
      row["limits"] = limits_to_json(s.limits);
      // The device's own power limits where it reports them (SunSpec storage; null: none), and the
      // power limits the headroom and allocation honour: the lower of configured and device.
      const bool reported = !std::isnan(s.device.max_charge_W) || !std::isnan(s.device.max_discharge_W);
      row["device_limits"] = reported ? json{{"max_charge_W", finite_or_null(s.device.max_charge_W)},
                                             {"max_discharge_W", finite_or_null(s.device.max_discharge_W)}}
                                      : json(nullptr);
      const core::BufferLimits in_force = core::effective_limits(s.limits, s.device);
      row["effective_limits"] =
          json{{"max_charge_W", in_force.max_charge_W}, {"max_discharge_W", in_force.max_discharge_W}};
    }
    rows.push_back(std::move(row));
  }
  return json{{"channels", rows}};
}

json controllers_view(const daemon::RigView& rig) {
  const daemon::Directory& dir = rig.directory();
  json rows = json::array();
  for (std::size_t c = 0; c < dir.controllers.size(); ++c) {
    const daemon::ControllerInfo& info = dir.controllers[c];
    // The bus of its channels ("main", or "main,aux" when channel_bus splits them); null when it was
    // discovered and its bus is not known.
    std::string buses;
    for (std::size_t i = info.first_channel; i < dir.channels.size() && dir.channels[i].controller == c; ++i) {
      const std::size_t b = dir.channels[i].bus;
      if (b >= dir.buses.size()) continue;
      if (("," + buses + ",").find("," + dir.buses[b] + ",") == std::string::npos)
        buses += (buses.empty() ? "" : ",") + dir.buses[b];
    }
    json row{{"controller", info.name},     {"endpoint", info.endpoint},
             {"transport", info.transport}, {"source", daemon::to_string(info.source)},
             {"adopted", !info.read_only},  {"bus", info.bus_unknown || buses.empty() ? json(nullptr) : json(buses)},
             {"channels", info.channels},   {"commands", info.commands}};
    if (io::LinkStats st; rig.link_stats(c, st)) {
      // last_error is a fixed buffer filled by another thread: bound the read to its size.
      std::string last_error(st.last_error, strnlen(st.last_error, sizeof st.last_error));
      row.update(json{{"connected", st.connected},
                      {"poll_hz", rig.link_poll_hz(c)},
                      {"achieved_hz", st.achieved_hz},
                      {"polls", st.polls},
                      {"timeouts", st.timeouts},
                      {"connection_errors", st.connection_errors},
                      {"reconnects", st.reconnects},
                      {"last_error", last_error},
                      {"last_error_code", std::string(io::link_errc_name(st.last_error_code))}});
    }
    rows.push_back(std::move(row));
  }
  return json{{"controllers", rows}};
}

}  // namespace eqd::control
