// The metric catalogue (catalogue.hpp): name, kind, scope, unit, labels and help of every family.
#include "catalogue.hpp"

#include <iterator>
#include <vector>

namespace eqd::metrics {

namespace detail {

namespace {
constexpr MetricKind kG = MetricKind::gauge;  // short: the table below names one per row
constexpr MetricKind kC = MetricKind::counter;
constexpr MetricKind kH = MetricKind::histogram;
constexpr MetricScope kCtl = MetricScope::control;
constexpr MetricScope kBus = MetricScope::bus;
constexpr MetricScope kCon = MetricScope::controller;
constexpr MetricScope kCh = MetricScope::channel;
}  // namespace

// Every Id has its entry: a missing one leaves a zero entry, which the unit test of the catalogue
// catches (every family is exported with a name).
const std::array<MetricInfo, kCount> kCatalogue = {{
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
    {"eqd_bus_valley_fill_watts", kG, kBus, "watts", "bus",
     "Charge the buffers take now ahead of the next caps window (valley filling); 0: none."},
    {"eqd_bus_buffer_stored_energy_joules", kG, kBus, "joules", "bus",
     "Estimated energy stored in the bus's buffers within their windows (buffers with a capacity_Wh)."},
    {"eqd_bus_window_energy_need_joules", kG, kBus, "joules", "bus",
     "Energy the next caps window is expected to need from the buffers, margin included (absent: not known)."},
    {"eqd_bus_valley_fill_shortfall_joules", kG, kBus, "joules", "bus",
     "Part of that need the buffers are not expected to hold when the window starts."},
    {"eqd_bus_shave_level_watts", kG, kBus, "watts", "bus",
     "Import level the buffers hold in the active caps window, at or below its cap (level shaving); absent: none."},
    {"eqd_bus_meter_up", kG, kBus, "", "bus",
     "1 while the bus's grid meter gives fresh readings (connected, valid, within meter.max_age_ms); buses with a "
     "meter only."},
    {"eqd_bus_meter_power_watts", kG, kBus, "watts", "bus",
     "Grid power measured by the bus's meter, eqd's sign (positive = drawn from the grid); absent while not up."},
    {"eqd_bus_meter_age_seconds", kG, kBus, "seconds", "bus", "Age of the meter's last valid reading."},
    {"eqd_bus_meter_difference_watts", kG, kBus, "watts", "bus",
     "Measured minus computed net power at the meter's last reading; absent while the meter is not up."},
    {"eqd_bus_meter_disagreement", kG, kBus, "", "bus",
     "1 while measured and computed net power differ by more than meter.tolerance_W (for meter.persistence_s)."},
    {"eqd_bus_meter_disagreements_total", kC, kBus, "", "bus", "Disagreement episodes of the meter check."},
    {"eqd_bus_meter_errors_total", kC, kBus, "", "bus",
     "Failed connects, SunSpec discoveries, reads and refused readings of the bus's meter."},
    {"eqd_bus_meter_trim_watts", kG, kBus, "watts", "bus",
     "The meter trim added to the bus's free power (eqd's sign, + = import the channels do not see); buses with "
     "meter.trim only."},
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
    {"eqd_bus_stat_path", kG, kBus, "", "bus",
     "1 while law planned plans over the statistical forecast (stat_forecast: nothing announced or learned, its "
     "gates open), else 0."},
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
}};

}  // namespace detail

const std::vector<MetricInfo>& metric_catalogue() {
  static const std::vector<MetricInfo> v(std::begin(detail::kCatalogue), std::end(detail::kCatalogue));
  return v;
}

}  // namespace eqd::metrics
