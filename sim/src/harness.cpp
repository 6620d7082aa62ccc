#include "eqd/sim/harness.hpp"

#include <algorithm>
#include <cmath>

namespace eqd::sim {
namespace {
constexpr double kNsPerS = 1e9;
std::int64_t to_ns(double s) { return static_cast<std::int64_t>(std::llround(s * kNsPerS)); }
std::int64_t periods(double period_s, double dt_s) {
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::llround(period_s / dt_s)));
}
constexpr std::int64_t kQuarter_ns = 900'000'000'000;
constexpr std::int64_t kExpandEvery_ns = 3600'000'000'000;  // expand_schedule covers 3 days ahead
constexpr double kJPerKWh = 3.6e6;
std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
// The scenario's fixed zone for core::UtcOffsetFn (a plain function pointer): set by the harness's
// thread just before it expands; thread_local so that harnesses in parallel threads do not meet.
thread_local std::int64_t t_fixed_offset_s = 0;
std::int64_t fixed_offset(std::int64_t /*utc_s*/) { return t_fixed_offset_s; }
}  // namespace

core::CoreConfig make_core_config(const Rig& rig) {
  core::CoreConfig cfg;
  for (const BusSpec& b : rig.spec().buses) cfg.buses.push_back(b.params);
  for (std::size_t i = 0; i < rig.channel_count(); ++i) {
    const ChannelSpec& s = rig.channel_spec(i);
    core::ChannelConfig c;
    c.bus = static_cast<core::BusIndex>(s.bus);
    c.assigned = s.buffer;
    c.limits = s.limits;
    c.efficiency = s.converter.efficiency;  // eqd told the truth about the converters
    cfg.channels.push_back(c);
  }
  return cfg;
}

bool Harness::DelayLine::push(const Timed& t) noexcept {
  if (size == ring.size()) return false;
  ring[(head + size) % ring.size()] = t;
  ++size;
  return true;
}

bool Harness::DelayLine::pop_due(std::int64_t now_ns, Timed& out) noexcept {
  if (size == 0 || ring[head].due_ns > now_ns) return false;
  out = ring[head];
  head = (head + 1) % ring.size();
  --size;
  return true;
}

Harness::Harness(Rig& rig, RigLaw& law, const HarnessConfig& cfg, std::vector<Event> events)
    : rig_(rig), law_(law), cfg_(cfg), events_(std::move(events)) {
  std::stable_sort(events_.begin(), events_.end(), [](const Event& a, const Event& b) { return a.at_s < b.at_s; });
  const std::size_t n = rig.channel_count();
  const std::size_t nb = rig.bus_count();
  const auto line_cap = [&](double delay_s) {
    return static_cast<std::size_t>(std::ceil(delay_s / cfg_.sample_period_s)) + 2;
  };
  sample_lines_.resize(n);
  command_lines_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    sample_lines_[i].ring.resize(line_cap(cfg_.link_delay_s));
    command_lines_[i].ring.resize(line_cap(cfg_.command_delay_s));
  }
  last_sequence_.assign(n, 0);
  delivered_any_.assign(n, 0);
  applied_.assign(n, core::Command{});
  traces_.resize(nb);
  const std::size_t records =
      static_cast<std::size_t>(
          cfg_.duration_s / (static_cast<double>(periods(cfg_.record_period_s, cfg_.plant_dt_s)) * cfg_.plant_dt_s)) +
      2;
  for (std::size_t b = 0; b < nb; ++b) {
    BusTrace& t = traces_[b];
    for (std::size_t i = 0; i < n; ++i)
      if (rig.channel_spec(i).buffer && rig.channel_spec(i).bus == b) t.buffers.push_back(i);
    for (auto* v :
         {&t.t_s, &t.free_W, &t.eq_commanded_W, &t.eq_measured_W, &t.residual_W, &t.grid_net_W, &t.grid_free_W})
      v->reserve(records);
    for (auto* v : {&t.setpoint_W, &t.buffer_power_W, &t.buffer_voltage_V}) v->reserve(records * t.buffers.size());
    t.buffer_equalizing.reserve(records * t.buffers.size());
  }
  prev_total_cmd_W_.assign(nb, 0.0);
  travel_W_.assign(nb, 0.0);
  flips_.assign(nb, 0.0);
  last_dir_.assign(nb, 0);
  res_sq_sum_.assign(nb, 0.0);
  res_peak_.assign(nb, 0.0);
  res_n_.assign(nb, 0);
  vmin_.assign(nb, 1e300);
  vmax_.assign(nb, -1e300);
  margin_.assign(nb, 1e300);
  for (std::size_t b = 0; b < nb; ++b) rated_W_.push_back(rig.rated_eq_W(b));
  meter_at_from_.resize(nb);
  for (std::size_t i = 0; i < n; ++i) bus_of_.push_back(rig.channel_spec(i).bus);
  schedules_.resize(nb);
  start_utc_ns_ = (cfg_.start_local_s - cfg_.utc_offset_min * 60) * 1'000'000'000;
  for (auto* v : {&q_import0_J_, &q_free0_J_, &peak_q_W_, &free_peak_q_W_, &cost_, &free_cost_, &throughput_J_,
                  &stored_change_J_})
    v->assign(nb, 0.0);
}

void Harness::expand_calendar(std::int64_t now_ns) noexcept {
  t_fixed_offset_s = cfg_.utc_offset_min * 60;
  const std::int64_t utc_ns = start_utc_ns_ + now_ns;
  for (std::size_t b = 0; b < rig_.bus_count(); ++b) {
    const std::vector<core::ScheduleWindow>& w = rig_.spec().buses[b].schedule;
    // Buses without windows too: the law's demand figures need the calendar marks.
    schedules_[b] = core::expand_schedule(w.data(), w.size(), utc_ns, &fixed_offset);
    core::shift_schedule(schedules_[b], -start_utc_ns_);
    law_.set_schedule(b, schedules_[b]);
  }
  if (cfg_.tariff.defined) {
    tariff_periods_ = core::expand_schedule(&cfg_.tariff.peak, 1, utc_ns, &fixed_offset);
    core::shift_schedule(tariff_periods_, -start_utc_ns_);
  }
  next_expand_ns_ = now_ns + kExpandEvery_ns;
}

double Harness::price_per_kWh(std::int64_t at_ns) const noexcept {
  const Tariff& t = cfg_.tariff;
  return core::active_window(tariff_periods_, at_ns) >= 0 ? t.peak_price_per_kWh : t.offpeak_price_per_kWh;
}

void Harness::track_quarters(std::int64_t now_ns) noexcept {
  const std::int64_t q = floor_div(cfg_.start_local_s * 1'000'000'000 + now_ns, kQuarter_ns);
  if (quarter_open_ && q == quarter_) return;
  const std::size_t nb = rig_.bus_count();
  const double metrics_from_ns = cfg_.metrics_from_s * 1e9;
  if (quarter_open_) {
    // Demand: only whole blocks (entered at their start, after metrics_from_s); cost: every block
    // that began after metrics_from_s.
    const double span_s = static_cast<double>(now_ns - quarter_start_ns_) / 1e9;
    const bool counted = static_cast<double>(quarter_start_ns_) >= metrics_from_ns - 1.0;
    const double price = cfg_.tariff.defined ? price_per_kWh(quarter_start_ns_) : 0.0;
    for (std::size_t b = 0; b < nb; ++b) {
      const BusMeter& m = rig_.bus_meter(b);
      const double import_J = m.grid_import_J - q_import0_J_[b];
      const double free_J = m.free_import_J - q_free0_J_[b];
      if (quarter_whole_ && counted && span_s > 0.0) {
        peak_q_W_[b] = std::max(peak_q_W_[b], import_J / span_s);
        free_peak_q_W_[b] = std::max(free_peak_q_W_[b], free_J / span_s);
      }
      if (counted) {
        cost_[b] += import_J / kJPerKWh * price;
        free_cost_[b] += free_J / kJPerKWh * price;
      }
    }
  }
  // A block is whole when the run crossed into it (the first one is whole only if the run began on its
  // boundary).
  quarter_whole_ = quarter_open_ || floor_div(cfg_.start_local_s * 1'000'000'000 + now_ns - 1, kQuarter_ns) != q;
  quarter_ = q;
  quarter_open_ = true;
  quarter_start_ns_ = now_ns;
  for (std::size_t b = 0; b < nb; ++b) {
    q_import0_J_[b] = rig_.bus_meter(b).grid_import_J;
    q_free0_J_[b] = rig_.bus_meter(b).free_import_J;
  }
}

void Harness::apply_event(const Event& e) noexcept {
  switch (e.kind) {
    case Event::Kind::inject_fault:
      rig_.inject_fault(e.channel, e.code);
      break;
    case Event::Kind::clear_fault:
      rig_.clear_fault(e.channel);
      break;
    case Event::Kind::stall:
      rig_.set_stalled(e.channel, true);
      break;
    case Event::Kind::unstall:
      rig_.set_stalled(e.channel, false);
      break;
    case Event::Kind::offline:
      rig_.set_offline(e.controller, true);
      break;
    case Event::Kind::online:
      rig_.set_offline(e.controller, false);
      break;
    case Event::Kind::kill_eqd:
      alive_ = false;
      break;
    case Event::Kind::restart_eqd:
      alive_ = true;
      break;
  }
}

void Harness::run(double until_s) noexcept {
  const double end_s = until_s > 0.0 ? std::min(until_s, cfg_.duration_s) : cfg_.duration_s;
  const double dt = cfg_.plant_dt_s;
  const std::int64_t sp = periods(cfg_.sample_period_s, dt);
  const std::int64_t rp = periods(cfg_.record_period_s, dt);
  const std::int64_t hp = periods(cfg_.heartbeat_period_s, dt);
  const std::size_t n = rig_.channel_count();
  const std::size_t nb = rig_.bus_count();
  while (now_s_ < end_s - 1e-9) {
    // Virtual time is an integer step count so that long runs do not accumulate rounding drift.
    now_s_ = static_cast<double>(step_) * dt;
    const std::int64_t now_ns = to_ns(now_s_);
    while (next_event_ < events_.size() && events_[next_event_].at_s <= now_s_ + 1e-9)
      apply_event(events_[next_event_++]);
    if (cfg_.calendar && now_ns >= next_expand_ns_) expand_calendar(now_ns);
    if (!quarter_open_) track_quarters(now_ns);

    if (step_ % sp == 0) {
      // Samples: an I/O thread publishes a reading only when the controller's counter moved.
      for (std::size_t i = 0; i < n; ++i) {
        const ChannelRef& ref = rig_.channel_ref(i);
        const ControllerModel& ctl = rig_.controller(ref.controller);
        if (ctl.offline()) continue;
        const ChannelReading& r = ctl.reading(ref.index);
        if (delivered_any_[i] && r.sequence == last_sequence_[i]) continue;
        delivered_any_[i] = 1;
        last_sequence_[i] = r.sequence;
        const std::int64_t due = now_ns + to_ns(cfg_.link_delay_s);
        Timed t;
        t.due_ns = due;
        t.sample = ctl.sample(ref.index, due);
        (void)sample_lines_[i].push(t);
      }
      Timed t;
      for (std::size_t i = 0; i < n; ++i)
        while (sample_lines_[i].pop_due(now_ns, t)) law_.on_sample(i, t.sample);

      if (alive_) {
        law_.cycle(now_ns);
        for (std::size_t i = 0; i < n; ++i) {
          const core::Command c = law_.command(i);
          // Sequence 0 = never commanded: nothing for the I/O thread to send.
          if (c.sequence == 0 && !c.equalize) continue;
          Timed ct;
          ct.due_ns = now_ns + to_ns(cfg_.command_delay_s);
          ct.command = c;
          (void)command_lines_[i].push(ct);
        }
      }
      for (std::size_t i = 0; i < n; ++i) {
        const ChannelRef& ref = rig_.channel_ref(i);
        ControllerModel& ctl = rig_.controller(ref.controller);
        while (command_lines_[i].pop_due(now_ns, t)) {
          if (ctl.offline()) continue;  // the link is down: the write is lost
          (void)ctl.set_command(ref.index, t.command.equalize, t.command.setpoint_W, t.command.lease_ms, now_s_);
          applied_[i] = t.command;
        }
      }
    }
    if (alive_ && step_ % hp == 0) {
      ++heartbeat_;
      for (std::size_t c = 0; c < rig_.controller_count(); ++c)
        if (!rig_.controller(c).offline()) rig_.controller(c).heartbeat(heartbeat_, now_s_);
    }

    if (!meters_taken_ && now_s_ >= cfg_.metrics_from_s - 1e-9) {
      // Exchange energy is counted from here, like every other figure (zero when metrics_from_s is 0).
      for (std::size_t b = 0; b < nb; ++b) meter_at_from_[b] = rig_.bus_meter(b);
      meters_taken_ = true;
    }
    rig_.step(dt);
    if (now_s_ >= cfg_.metrics_from_s - 1e-9)
      for (std::size_t b = 0; b < nb; ++b)
        for (const std::size_t i : traces_[b].buffers) {
          throughput_J_[b] += std::abs(rig_.truth(i).power_W) * dt;
          stored_change_J_[b] += rig_.truth(i).power_W * dt;
        }
    ++step_;
    now_s_ = static_cast<double>(step_) * dt;
    track_quarters(to_ns(now_s_));

    if (step_ % sp != 0 && step_ % rp != 0) continue;
    const bool do_record = step_ % rp == 0;
    for (std::size_t b = 0; b < nb; ++b) {
      double free_W = 0.0, eq_meas_W = 0.0, eq_cmd_W = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        if (bus_of_[i] != b) continue;
        const ChannelTruth& tr = rig_.truth(i);
        // Bus side: what the grid sees, which is what eqd balances (buffer efficiency included).
        (tr.equalizing ? eq_meas_W : free_W) += tr.bus_power_W;
        if (applied_[i].equalize && tr.equalizing) eq_cmd_W += applied_[i].setpoint_W;
      }
      core::BusParams aim = rig_.spec().buses[b].params;
      if (cfg_.calendar && schedules_[b].window_count > 0) {
        // Inside a window of the target schedule the residual is against the window's aim.
        const int w = core::active_window(schedules_[b], to_ns(now_s_));
        if (w >= 0) aim = core::apply_window(aim, schedules_[b].windows[static_cast<std::size_t>(w)]);
      }
      const double residual = core::residual_of(aim, free_W + eq_meas_W);
      if (step_ % sp == 0) {
        // Travel, like every figure, from metrics_from_s (the first change counted is the one into it).
        if (now_s_ >= cfg_.metrics_from_s) travel_W_[b] += std::abs(eq_cmd_W - prev_total_cmd_W_[b]);
        prev_total_cmd_W_[b] = eq_cmd_W;
        if (now_s_ >= cfg_.metrics_from_s) {
          const double thr = cfg_.flip_threshold_W > 0.0 ? cfg_.flip_threshold_W : 0.01 * rated_W_[b];
          const int dir = eq_cmd_W > thr ? 1 : (eq_cmd_W < -thr ? -1 : 0);
          if (dir != 0) {
            if (last_dir_[b] != 0 && dir != last_dir_[b]) flips_[b] += 1.0;
            last_dir_[b] = dir;
          }
          res_sq_sum_[b] += residual * residual;
          res_peak_[b] = std::max(res_peak_[b], std::abs(residual));
          ++res_n_[b];
        }
        for (const std::size_t i : traces_[b].buffers) {
          const ChannelSpec& s = rig_.channel_spec(i);
          const double v = rig_.truth(i).voltage_V;
          vmin_[b] = std::min(vmin_[b], v);
          vmax_[b] = std::max(vmax_[b], v);
          margin_[b] = std::min(margin_[b], std::min(v - s.limits.v_min_V, s.limits.v_max_V - v));
        }
      }
      if (!do_record) continue;
      BusTrace& t = traces_[b];
      if (t.t_s.size() == t.t_s.capacity()) continue;  // never grow during a run
      const BusMeter& m = rig_.bus_meter(b);
      t.t_s.push_back(now_s_);
      t.free_W.push_back(free_W);
      t.eq_commanded_W.push_back(eq_cmd_W);
      t.eq_measured_W.push_back(eq_meas_W);
      t.residual_W.push_back(residual);
      t.grid_net_W.push_back(m.net_W);
      t.grid_free_W.push_back(m.free_W);
      for (const std::size_t i : t.buffers) {
        const ChannelTruth& tr = rig_.truth(i);
        t.setpoint_W.push_back(applied_[i].equalize ? applied_[i].setpoint_W : 0.0);
        t.buffer_power_W.push_back(tr.power_W);
        t.buffer_voltage_V.push_back(tr.voltage_V);
        t.buffer_equalizing.push_back(tr.equalizing ? 1 : 0);
      }
    }
  }
}

BusMetrics Harness::metrics(std::size_t b) const noexcept {
  BusMetrics m;
  const BusMeter& meter = rig_.bus_meter(b);
  m.rated_eq_W = rig_.rated_eq_W(b);
  const BusMeter& from = meter_at_from_[b];  // all zero until taken
  m.grid_import_J = meter.grid_import_J - from.grid_import_J;
  m.grid_export_J = meter.grid_export_J - from.grid_export_J;
  m.free_import_J = meter.free_import_J - from.free_import_J;
  m.free_export_J = meter.free_export_J - from.free_export_J;
  m.residual_rms_W = res_n_[b] > 0 ? std::sqrt(res_sq_sum_[b] / static_cast<double>(res_n_[b])) : 0.0;
  m.residual_peak_W = res_peak_[b];
  m.direction_flips = flips_[b];
  const double span_h = (now_s_ - cfg_.metrics_from_s) / 3600.0;
  m.flips_per_hour = span_h > 0.0 ? flips_[b] / span_h : 0.0;
  m.setpoint_travel_W = travel_W_[b];
  const bool any = !traces_[b].buffers.empty() && vmin_[b] < 1e299;
  m.buffer_v_min_V = any ? vmin_[b] : 0.0;
  m.buffer_v_max_V = any ? vmax_[b] : 0.0;
  m.window_margin_min_V = any ? margin_[b] : 0.0;
  m.peak_import_15min_W = peak_q_W_[b];
  m.free_peak_import_15min_W = free_peak_q_W_[b];
  m.buffer_throughput_J = throughput_J_[b];
  m.buffer_stored_change_J = stored_change_J_[b];
  if (cfg_.tariff.defined) {
    m.energy_cost = cost_[b];
    m.free_energy_cost = free_cost_[b];
    if (quarter_open_ && static_cast<double>(quarter_start_ns_) >= cfg_.metrics_from_s * 1e9 - 1.0) {
      // The block still open at the end of the run is billed for what it has drawn so far.
      const double price = price_per_kWh(quarter_start_ns_);
      m.energy_cost += (meter.grid_import_J - q_import0_J_[b]) / kJPerKWh * price;
      m.free_energy_cost += (meter.free_import_J - q_free0_J_[b]) / kJPerKWh * price;
    }
    m.demand_charge = m.peak_import_15min_W / 1000.0 * cfg_.tariff.demand_price_per_kW;
    m.free_demand_charge = m.free_peak_import_15min_W / 1000.0 * cfg_.tariff.demand_price_per_kW;
  }
  return m;
}

StepResponse step_response(const BusTrace& tr, double step_at_s, double band_W) noexcept {
  StepResponse r;
  const std::size_t n = tr.t_s.size();
  if (n < 2) return r;
  std::size_t first = 0;
  while (first < n && tr.t_s[first] < step_at_s) ++first;
  if (first == 0 || first >= n) return r;
  // Desired equalization power = -(free) relative to the target; the target cancels in the difference.
  const double before = -tr.free_W[first - 1];
  const double after = -tr.free_W[n - 1];
  r.step_W = after - before;
  std::size_t last_out = n;  // index of the last record outside the band
  for (std::size_t k = first; k < n; ++k)
    if (std::abs(tr.residual_W[k]) > band_W) last_out = k;
  if (last_out == n)
    r.settle_s = 0.0;
  else if (last_out + 1 < n)
    r.settle_s = tr.t_s[last_out + 1] - step_at_s;
  else
    r.settle_s = -1.0;
  if (std::abs(r.step_W) > 0.0) {
    const double sign = r.step_W > 0.0 ? 1.0 : -1.0;
    double worst = 0.0;
    for (std::size_t k = first; k < n; ++k) worst = std::max(worst, tr.residual_W[k] * sign);
    r.overshoot_fraction = worst / std::abs(r.step_W);
  }
  return r;
}

}  // namespace eqd::sim
