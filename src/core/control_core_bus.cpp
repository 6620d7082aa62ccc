// Pass 2 of the control cycle, per bus: buffers' roles and usability, the law, allocation, commands,
// energy accounting and the bus snapshot. Control thread only. See control_core.hpp.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "control_core_detail.hpp"
#include "eqd/core/allocator.hpp"
#include "eqd/core/control_core.hpp"

namespace eqd::core {

using namespace detail;  // NOLINT(google-build-using-namespace): the core's own helpers

void ControlCore::run_bus(BusIndex b, std::int64_t now_ns) noexcept {
  BusState& bus = buses_[b];
  // The meter trim (issue #19): read without waiting; a slot mid-store every attempt keeps the last
  // value read. Too old (the meter's thread stalled) or never published: 0 W.
  MeterTrimValue trim;
  if (meter_trims_[b].try_load(trim, kReadAttempts)) bus.trim = trim;
  bus.trim_W = applied_trim_W(bus.trim, now_ns);
  const BusGather g = gather_buffers(b, now_ns);
  LawInput in = law_input(b, now_ns, g);
  // The mode is the core's, the same for every law: no usable buffer, or hold / ramp down on the
  // health of the samples (bus_law.hpp).
  const Capacity cap = capacity_of(in);
  const Accum& acc = acc_[b];
  in.mode = cap.empty() ? BusStatus::idle
                        : bus_mode(acc.any_fresh, acc.any_test_stale, now_ns, bus.params, bus.hold_since_ns);
  // What the bus aims at now: its own parameters, or those of its schedule's active window. A lookup
  // among instants expanded off this thread (ScheduleThread): no time-zone database here. A window's
  // edge changes only the aim; the law's damping carries the buffers over it like an `eqctl set`.
  // Copied only when the schedule thread published a new one (a copy every cycle was a third of the
  // cycle's time at 1k channels); one mid-store every attempt keeps the last copy: never wait for it.
  if (const std::uint64_t v = schedules_[b].version();
      v != bus.schedule_version && (v & 1U) == 0 && schedules_[b].try_load(bus.schedule, kReadAttempts))
    bus.schedule_version = v;
  const BusSchedule& sched = bus.schedule;
  const int occurrence = sched.window_count > 0 ? active_occurrence(sched, now_ns) : -1;
  const int window = occurrence >= 0 ? sched.occurrences[static_cast<std::size_t>(occurrence)].window : -1;
  // Time since this bus's previous cycle (0 at the first), capped so that a paused process does not
  // book a long gap at the latest power; valley filling and the energy accounting both integrate over it.
  const double dt_s =
      bus.last_cycle_ns >= 0 ? std::min(static_cast<double>(now_ns - bus.last_cycle_ns) / kNsPerS, 10.0) : 0.0;
  // The interval's import so far (before this cycle's): for caps on the average import
  // (import_limit_average_s), and for the quarter-hour guard of an instantaneous cap (average_cap()).
  // Every cycle, whatever the bus's mode now: a caps window that begins at a quarter hour must find
  // that quarter seen from its start, or its first quarter would go unguarded.
  bus.average.update(
      now_ns, bus.energy.grid_import_J, sched.marks,
      bus.params.import_limit_average_s > 0.0 ? bus.params.import_limit_average_s : AverageCap::kGuardPeriod_s);
  const BusParams aim = average_cap(
      b,
      valley_fill(b, now_ns, dt_s, sched, occurrence,
                  window >= 0 ? apply_window(bus.params, sched.windows[static_cast<std::size_t>(window)]) : bus.params),
      window >= 0);
  LawOutput out = bus.law->step(in, aim);
  // The capacity clamp holds whatever the law answers (a law's bug must not reach a battery).
  out.command_W = std::isfinite(out.command_W) ? cap.clamp(out.command_W) : 0.0;

  // Re-allocate when the law moved, when the usable set or a headroom would be exceeded (safety
  // reductions apply at once), else keep setpoints steady so that the links are not flooded with writes.
  if (out.updated || g.lost_buffer || g.exceeded || std::abs(out.command_W - bus.command_W) > kSetpointResolution_W)
    reallocate(b, out.command_W);
  const double commanded = command_buffers(b, now_ns);
  account_energy(b, now_ns, dt_s, g.measured_W);
  bus.demand.update(now_ns, bus.energy.grid_import_J, sched.marks);
  publish_bus(b, aim, window, in, out, commanded, cap);
}

bool ControlCore::step_role(BusIndex b, ChannelIndex i, bool fresh, std::int64_t now_ns) noexcept {
  Cold& c = cold_[i];
  switch (hot_[i].role) {
    case Role::pending:
      ++acc_[b].pending;
      // Never take over a channel that is running (or pausing) a test or is in fault.
      if (fresh && c.state != ChannelState::running && c.state != ChannelState::paused && !stopping_) {
        if (c.equalization_mode) {
          // Already following a setpoint (eqd restarted, or a configuration handover): adopt it at
          // the power it runs now, so that the battery does not see a step to 0 W and back.
          c.setpoint_W = c.power_W;
          publish_command(i, true, c.setpoint_W, now_ns);
          set_role(i, Role::equalization);
        } else {
          publish_command(i, true, 0.0, now_ns);
        }
      } else if (stopping_) {
        publish_command(i, false, 0.0, now_ns);
      }
      return true;
    case Role::releasing:
      publish_command(i, false, 0.0, now_ns);
      if ((fresh && !c.equalization_mode) || c.health == Health::offline) {
        c.setpoint_W = 0.0;
        set_role(i, Role::test);
        publish_channel(i);
        return false;
      }
      return true;
    case Role::equalization:
    case Role::test:
      return true;
  }
  return true;
}

ControlCore::BusGather ControlCore::gather_buffers(BusIndex b, std::int64_t now_ns) noexcept {
  BusState& bus = buses_[b];
  Accum& acc = acc_[b];
  BusGather g;
  // Role transitions and usability of each buffer. set_role() may remove entries from bus.buffers:
  // iterate backwards so that a removal does not skip one.
  bus.usable.clear();
  for (std::size_t k = bus.buffers.size(); k-- > 0;) {
    const ChannelIndex i = bus.buffers[k];
    Cold& c = cold_[i];
    // After a stall, a buffer counts as fresh only with a sample taken since.
    const bool fresh = c.health == Health::ok && c.receive_time_ns > resume_ns_;
    if (!step_role(b, i, fresh, now_ns)) continue;  // released: a test channel again
    // The device's own limits, when its link reports them: one atomic word, decoded only on a change.
    if (const std::uint64_t bits = device_limits_[i].bits(); bits != c.device_bits) {
      c.device_bits = bits;
      c.device = DeviceLimitsSlot::unpack(bits);
      c.headroom_stale = true;
    }
    if (hot_[i].role != Role::equalization) continue;
    ++acc.buffers;
    if (c.headroom_stale || !same_bits(c.voltage_V, c.headroom_voltage_V) ||
        std::bit_cast<std::uint32_t>(c.soc_pct) != std::bit_cast<std::uint32_t>(c.headroom_soc_pct))
      refresh_headroom(c);
    // A stale buffer is excluded (its share goes to the others) unless nothing on the bus is fresh:
    // then the whole bus ramps down, stale buffers included, rather than stepping to 0 W.
    const bool ramp_candidate = !acc.any_fresh && c.health == Health::stale && c.receive_time_ns > resume_ns_;
    const bool usable = (fresh || ramp_candidate) && c.equalization_mode && !stopping_;
    if (usable) {
      // The law works in bus-side power (what the grid sees); buffers report battery-side power.
      bus.usable.push_back(i);
      g.cap_charge_W += c.headroom_bus_charge_W;
      g.cap_discharge_W += c.headroom_bus_discharge_W;
      g.rated_W += c.rated_bus_W;
      g.measured_W += to_bus_W(c.power_W, c.limits.efficiency);
      if (c.receive_time_ns <= bus.last_command_ns) g.newer_than_command = false;
      if (c.setpoint_W > c.headroom.charge_W + 1e-9 || -c.setpoint_W > c.headroom.discharge_W + 1e-9) g.exceeded = true;
    } else if (c.setpoint_W != 0.0) {
      g.lost_buffer = true;
    }
  }
  return g;
}

LawInput ControlCore::law_input(BusIndex b, std::int64_t now_ns, const BusGather& g) noexcept {
  BusState& bus = buses_[b];
  const Accum& acc = acc_[b];
  const BusParams& p = bus.params;
  LawInput in;
  in.now_ns = now_ns;
  // With a meter trim, what the channels do not see counts as free power (no announcement of its own).
  in.free_W = trimmed_free_W(b);
  if (p.use_forecast) {
    const LearnedAhead* learned = p.learn_forecast && bus.learned_read_s >= 0 ? &bus.learned : nullptr;
    // The statistical path: law `planned` only (the adaptive law steering by it was worse on every
    // drive load, docs/control-benchmark.md); ForecastPath uses it only where nothing is announced or
    // learned.
    const double* stat =
        p.stat_forecast && p.law == LawKind::planned
            ? bus.stat.update(now_ns, in.free_W, stat_models_[b], static_cast<int>(std::lround(p.forecast_horizon_s)))
            : nullptr;
    bus.path.update(now_ns, in.free_W, acc.announcing_present_W, acc.announced_W, acc.announcing, p.forecast_horizon_s,
                    p.tau_s, learned, bus.learned_present_W, stat);
    // NaN while nothing is announced: the law uses free_W. Also with a statistical path: it is for the
    // planner only, and planned's fallback (the adaptive law) does not steer by it.
    in.free_forecast_W = bus.path.statistical() ? std::numeric_limits<double>::quiet_NaN() : bus.path.steer_W();
    in.free_path_n = bus.path.ahead_n();
    in.free_path_W = in.free_path_n > 0 ? bus.path.ahead_W() : nullptr;
  }
  in.eq_measured_W = g.measured_W;
  in.capacity_charge_W = g.cap_charge_W;
  in.capacity_discharge_W = g.cap_discharge_W;
  in.rated_W = g.rated_W;
  in.any_test_stale = acc.any_test_stale;
  in.any_fresh = acc.any_fresh;
  in.samples_newer_than_command = g.newer_than_command;
  return in;
}

void ControlCore::reallocate(BusIndex b, double command_W) noexcept {
  BusState& bus = buses_[b];
  const std::size_t m = bus.usable.size();
  for (std::size_t k = 0; k < m; ++k) {
    const Cold& c = cold_[bus.usable[k]];
    // Allocate in bus-side terms.
    bus.headroom[k] = Headroom{c.headroom_bus_charge_W, c.headroom_bus_discharge_W, c.headroom.window_pos};
  }
  allocate(command_W, bus.headroom.data(), m, bus.alloc_out.data(), bus.alloc_scratch.data());
  for (ChannelIndex i : bus.buffers) cold_[i].setpoint_W = 0.0;
  for (std::size_t k = 0; k < m; ++k) {
    Cold& c = cold_[bus.usable[k]];
    // Back to battery side, and never beyond the battery-side headroom (rounding).
    c.setpoint_W =
        std::clamp(to_battery_W(bus.alloc_out[k], c.limits.efficiency), -c.headroom.discharge_W, c.headroom.charge_W);
  }
  bus.command_W = command_W;
}

double ControlCore::command_buffers(BusIndex b, std::int64_t now_ns) noexcept {
  BusState& bus = buses_[b];
  double commanded = 0.0;
  bool any_new = false;
  for (ChannelIndex i : bus.buffers) {
    const Hot& h = hot_[i];
    if (h.role != Role::equalization) {
      publish_channel(i);  // pending or releasing: published every cycle
      continue;
    }
    Cold& c = cold_[i];
    // An excluded buffer stays in equalization mode at 0 W: it can rejoin as soon as it is healthy.
    const double setpoint_W = stopping_ ? 0.0 : c.setpoint_W;
    if (!stopping_ && c.receive_time_ns <= resume_ns_) {
      // Not heard from since a stall: neither a new command nor a confirmation of the old one, so its
      // link stays silent until the buffer's state is known again.
    } else if (!command_current(c.command, !stopping_, setpoint_W, bus.params.lease_ms)) {
      publish_command(i, !stopping_, setpoint_W, now_ns);
      any_new = true;
    } else {
      confirm_command(i, now_ns);
    }
    commanded += to_bus_W(c.setpoint_W, c.limits.efficiency);
    // Readers get every change; an unchanged buffer costs no store (and no cache-line transfer).
    const ChannelSnapshot& last = c.published;
    if (last.setpoint_W != c.setpoint_W || last.headroom_charge_W != c.headroom.charge_W ||
        last.headroom_discharge_W != c.headroom.discharge_W || last.window_pos != c.headroom.window_pos ||
        last.command_sequence != c.command.sequence || last.health != h.health || last.role != h.role ||
        DeviceLimitsSlot::pack(last.device) != c.device_bits)
      publish_channel(i);
  }
  if (any_new) bus.last_command_ns = now_ns;
  return commanded;
}

void ControlCore::account_energy(BusIndex b, std::int64_t now_ns, double dt_s, double measured_W) noexcept {
  BusState& bus = buses_[b];
  const Accum& acc = acc_[b];
  const double net = acc.free_W + measured_W;
  if (dt_s > 0.0 && acc.any_fresh) {
    EnergyCounters& e = bus.energy;
    e.grid_import_J += std::max(net, 0.0) * dt_s;
    e.grid_export_J += std::max(-net, 0.0) * dt_s;
    e.free_import_J += std::max(acc.free_W, 0.0) * dt_s;
    e.free_export_J += std::max(-acc.free_W, 0.0) * dt_s;
    e.eq_absorbed_J += std::max(measured_W, 0.0) * dt_s;
    e.eq_delivered_J += std::max(-measured_W, 0.0) * dt_s;
  }
  bus.last_cycle_ns = now_ns;
}

BusParams ControlCore::valley_fill(BusIndex b, std::int64_t now_ns, double dt_s, const BusSchedule& sched,
                                   int occurrence, const BusParams& aim) noexcept {
  BusState& bus = buses_[b];
  FillBuffers fb;
  double eff_sum = 0.0;
  int with_capacity = 0;
  for (ChannelIndex i : bus.buffers) {
    Cold& c = cold_[i];
    if (hot_[i].role != Role::equalization || !(c.limits.capacity_Wh > 0.0)) {
      c.gauge.known = false;  // counted again from its window position when it returns
      continue;
    }
    // The measured power counts only while the sample is fresh (a stale one would be integrated again).
    const bool fresh = c.health == Health::ok && c.receive_time_ns > resume_ns_;
    c.gauge.update(c.limits.capacity_Wh * 3600.0, c.window, c.headroom.window_pos, fresh ? c.power_W : 0.0, dt_s,
                   std::isfinite(c.soc_pct));
    fb.stored_J += c.gauge.stored_J;
    fb.capacity_J += c.limits.capacity_Wh * 3600.0;
    fb.charge_rate_W += c.limits.max_charge_W / c.limits.efficiency;
    fb.discharge_rate_W += c.limits.max_discharge_W * c.limits.efficiency;
    eff_sum += c.limits.efficiency;
    ++with_capacity;
  }
  if (with_capacity > 0) fb.efficiency = eff_sum / with_capacity;
  // The active caps window's need: the discharge its aim asks for, before any fill.
  const WindowOccurrence* occ = occurrence >= 0 ? &sched.occurrences[static_cast<std::size_t>(occurrence)] : nullptr;
  const bool caps_window = occ != nullptr && aim.mode == BusMode::caps;
  const double free_W = trimmed_free_W(b);
  // With average caps the need is what the quarter's budget asked of the buffers: the energy above
  // the cap per quarter hour as the rule spends it (less than above the cap at every instant when a
  // quarter dips below it), plus what the law's lag overshot and paid back within the quarter.
  // With an instantaneous cap the need is what the cap asks at every instant: its quarter-hour guard
  // adds only the lag's small payback, except while the buffers fall short (the first evening, before
  // anything was charged for it), when it would ask for everything in the quarters they could not
  // hold and make the next fill larger than the window needs (measured: peak_day_b 37.6 -> 44.2 kWh).
  const BusParams& asked = aim.import_limit_average_s > 0.0 ? average_cap(b, aim, occ != nullptr) : aim;
  bus.needs.observe(occ, caps_window, now_ns, dt_s, std::max(0.0, -desired_eq_W(asked, free_W)), free_W);
  if (bus.needs.records() != bus.needs_published) {  // rare: once per window occurrence
    needs_snap_[b].store(bus.needs);
    bus.needs_published = bus.needs.records();
  }
  bus.fill = plan_fill(sched, occ != nullptr ? occ->window : -1, now_ns, bus.needs, bus.params, fb);
  if (caps_window && aim.level_shaving && with_capacity > 0) return shave(b, *occ, fb, aim, now_ns);
  if (bus.fill.fill_W <= 0.0) return aim;
  // Charging for a window must not raise the import above that window's own cap: the cap is the
  // lab's acceptable peak, and a fill above it would make a new demand peak before the window. So the
  // buffers fill the valleys below it (and take less, or nothing, while the load is near it).
  const ScheduleWindow& next = sched.windows[static_cast<std::size_t>(bus.fill.window)];
  const double next_cap_W = std::isfinite(next.import_limit_W) ? next.import_limit_W : bus.params.import_limit_W;
  // With average caps, the same cap on the quarter's average: the room its budget leaves now (a fill
  // that lags a rising load is paid back within the quarter instead of raising its average).
  // An instantaneous cap keeps its quarter-hour guard here too (average_cap()).
  double room_cap_W = next_cap_W;
  const bool averaged = aim.import_limit_average_s > 0.0;
  const double allowed_W =
      bus.average.allowed_W(next_cap_W, averaged ? std::numeric_limits<double>::infinity() : next_cap_W, aim.tau_s);
  if (!std::isnan(allowed_W)) room_cap_W = allowed_W;
  bus.fill.fill_W = std::min(bus.fill.fill_W, std::max(0.0, room_cap_W - free_W));
  if (bus.fill.fill_W <= 0.0) return aim;
  BusParams with_fill = aim;
  with_fill.fill_W = bus.fill.fill_W;
  return with_fill;
}

BusParams ControlCore::shave(BusIndex b, const WindowOccurrence& occ, const FillBuffers& fb, const BusParams& aim,
                             std::int64_t now_ns) noexcept {
  BusState& bus = buses_[b];
  ShaveInput si;
  si.cap_W = aim.import_limit_W;
  si.elapsed_s = static_cast<double>(now_ns - occ.start_ns) / kNsPerS;
  si.window_s = static_cast<double>(occ.end_ns - occ.start_ns) / kNsPerS;
  si.available_J = fb.stored_J * fb.efficiency;  // discharging E of stored energy delivers E x efficiency
  si.discharge_W = fb.discharge_rate_W;
  si.reserve = need_reserve(bus.needs, occ.window, bus.params.fill_margin);
  double level_W = shave_level(bus.needs, occ.window, si);
  // Never below the month's highest quarter hour so far: the demand charge bills the month's peak, so a
  // lower level buys nothing on the bill and costs battery throughput. Taken at the occurrence's start:
  // its own quarters, held at the level with the law's lag, would otherwise push the floor up a few tens
  // of watts each (the level held already only rises within it). Within a month the maximum only
  // grows; one below the floor taken means the month rolled within the occurrence (its maximum starts
  // anew, NaN until its first whole quarter): the occurrence is planned afresh from then on.
  const double month_W = std::isnan(bus.demand.max_month_W()) ? 0.0 : bus.demand.max_month_W();
  if (bus.level_start_ns != occ.start_ns || month_W < bus.level_floor_W) {
    bus.level_start_ns = occ.start_ns;
    bus.level_floor_W = month_W;
    bus.level_held_W = level_W;
  }
  // Never below a level already held in this occurrence either: a lower level later buys nothing and
  // costs throughput. The level only rises, when the load runs above what earlier days recorded and the
  // energy would not last.
  level_W = std::min(std::max({level_W, bus.level_held_W, bus.level_floor_W}), aim.import_limit_W);
  bus.level_held_W = level_W;
  bus.fill.level_W = level_W;
  BusParams shaved = aim;
  shaved.import_limit_W = level_W;
  return shaved;
}

BusParams ControlCore::average_cap(BusIndex b, const BusParams& aim, bool in_window) const noexcept {
  if (aim.mode != BusMode::caps) return aim;
  const BusState& bus = buses_[b];
  // An instantaneous cap (import_limit_average_s 0) is also held on the quarter hour's average, the
  // figure the demand charge bills: the law follows a rising load with a lag of about tau_s, and the
  // import above the cap in that lag is paid back, below the cap, within the same quarter, so that no
  // quarter averages above the cap the lab set (the cap itself is the ceiling: never above it).
  double ceiling_W = aim.import_limit_W;
  if (aim.import_limit_average_s > 0.0) {
    // A window's cap below the bus's own (caps mode): the bus's own is the connection's rating, which
    // holds at every instant. Outside windows the cap in force is the only one, averaged.
    const double own_W = bus.params.import_limit_W;
    ceiling_W = in_window && bus.params.mode == BusMode::caps && own_W > aim.import_limit_W
                    ? own_W
                    : std::numeric_limits<double>::infinity();
  }
  const double allowed_W = bus.average.allowed_W(aim.import_limit_W, ceiling_W, aim.tau_s);
  if (std::isnan(allowed_W)) return aim;
  BusParams averaged = aim;
  averaged.import_limit_W = allowed_W;
  return averaged;
}

void ControlCore::publish_bus(BusIndex b, const BusParams& aim, int window, const LawInput& in, const LawOutput& out,
                              double commanded_W, const Capacity& cap) noexcept {
  BusState& bus = buses_[b];
  const Accum& acc = acc_[b];
  const BusParams& p = bus.params;
  // Saturated: the bus asks for more than its buffers can give (judged every cycle, not only when the
  // law updates, so that a reader sees it for as long as it lasts).
  BusStatus status = in.mode;
  if (status == BusStatus::ok && (out.desired_W > cap.hi_W + p.deadband_W || out.desired_W < cap.lo_W - p.deadband_W))
    status = BusStatus::saturated;
  bus.status = stopping_ ? BusStatus::idle : status;

  const double net = acc.free_W + in.eq_measured_W;
  BusSnapshot& s = bus.snap;  // s.params is current (see BusState::snap)
  s.energy = bus.energy;
  s.free_W = acc.free_W;
  s.eq_commanded_W = commanded_W;
  s.eq_measured_W = in.eq_measured_W;
  s.net_W = net;
  s.meter_trim_W = bus.trim_W;
  s.residual_W = residual_of(aim, bus.trim_W != 0.0 ? net + bus.trim_W : net);
  s.active_window = static_cast<std::int16_t>(window);
  s.active_mode = aim.mode;
  s.active_target_W = aim.target_W;
  s.active_import_limit_W = aim.import_limit_W;
  s.active_export_limit_W = aim.export_limit_W;
  s.demand_quarter_W = bus.demand.last_quarter_W();
  s.demand_max_day_W = bus.demand.max_day_W();
  s.demand_max_month_W = bus.demand.max_month_W();
  s.fill = bus.fill;
  s.desired_W = out.desired_W;
  s.free_forecast_W = std::isnan(in.free_forecast_W) ? in.free_W : in.free_forecast_W;
  s.stat_path = in.free_path_W != nullptr && bus.path.statistical();
  s.capacity_charge_W = in.capacity_charge_W;
  s.capacity_discharge_W = in.capacity_discharge_W;
  const LawCounters counters = bus.law->counters();
  s.updates = counters.updates;
  s.direction_flips = counters.direction_flips;
  s.setpoint_travel_W = counters.setpoint_travel_W;
  s.plans_applied = counters.plans_applied;
  s.channels = acc.channels;
  s.buffers = acc.buffers;
  s.pending = acc.pending;
  s.stale = acc.stale;
  s.faulted = acc.faulted;
  s.offline = acc.offline;
  s.status = bus.status;
  bus_snap_[b].store(s);
}

}  // namespace eqd::core
