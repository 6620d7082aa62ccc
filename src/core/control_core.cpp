// The control core. Everything sized here, in the constructor; cycle() only reads, computes and stores.
#include "eqd/core/control_core.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace eqd::core {

namespace {
constexpr double kNsPerS = 1e9;
constexpr std::int64_t kNsPerMs = 1'000'000;
// A reader retries a slot this often before using the previous sample: enough to get past a write in
// progress (a few ns), too few for a preempted writer to delay the cycle.
constexpr int kReadAttempts = 4;
// Requests handled per cycle: bounds the cycle's work when a client floods the queue.
constexpr int kRequestsPerCycle = 64;
// Changes of a buffer's setpoint below this are not worth a new command (and a Modbus write).
constexpr double kSetpointResolution_W = 0.5;
}  // namespace

ControlCore::ControlCore(const CoreConfig& cfg)
    : hot_(cfg.channels.size()),
      cold_(cfg.channels.size()),
      buses_(cfg.buses.size()),
      samples_(std::make_unique<Seqlock<Sample>[]>(cfg.channels.size())),
      commands_(std::make_unique<Seqlock<Command>[]>(cfg.channels.size())),
      channel_snap_(std::make_unique<Seqlock<ChannelSnapshot>[]>(cfg.channels.size())),
      bus_snap_(std::make_unique<Seqlock<BusSnapshot>[]>(cfg.buses.size())),
      requests_(cfg.request_capacity),
      responses_(cfg.request_capacity) {
  if (cfg.buses.empty()) throw std::invalid_argument("control core: at least one bus is required");
  if (cfg.buses.size() > 65535) throw std::invalid_argument("control core: too many buses");
  for (std::size_t b = 0; b < cfg.buses.size(); ++b) {
    if (const char* err = validate(cfg.buses[b], true))
      throw std::invalid_argument("control core: bus " + std::to_string(b) + ": " + err);
    buses_[b].params = cfg.buses[b];
  }
  std::vector<std::size_t> members(cfg.buses.size(), 0);
  for (std::size_t i = 0; i < cfg.channels.size(); ++i) {
    const ChannelConfig& c = cfg.channels[i];
    if (c.bus >= cfg.buses.size())
      throw std::invalid_argument("control core: channel " + std::to_string(i) + ": no bus " + std::to_string(c.bus));
    ++members[c.bus];
  }
  // Any channel of a bus may become a buffer at run time: reserve for all of them now so that role
  // changes on the control thread never allocate.
  for (std::size_t b = 0; b < buses_.size(); ++b) {
    BusState_& bus = buses_[b];
    bus.buffers.reserve(members[b]);
    bus.usable.reserve(members[b]);
    bus.headroom.resize(members[b]);
    bus.alloc_out.resize(members[b]);
    bus.alloc_scratch.resize(members[b]);
  }
  for (std::size_t i = 0; i < cfg.channels.size(); ++i) {
    const ChannelConfig& c = cfg.channels[i];
    hot_[i].bus = c.bus;
    if (c.assigned) {
      if (const char* err = validate(c.limits))
        throw std::invalid_argument("control core: channel " + std::to_string(i) + ": " + err);
      cold_[i].limits = c.limits;
      set_role(static_cast<ChannelIndex>(i), Role::pending);
    }
    publish_channel(static_cast<ChannelIndex>(i));
  }
  for (std::size_t b = 0; b < buses_.size(); ++b) {
    BusSnapshot snap;
    snap.params = buses_[b].params;
    bus_snap_[b].store(snap);
  }
}

bool ControlCore::submit(const Request& r) {
  std::lock_guard<std::mutex> lock(submit_mutex_);
  return requests_.try_push(r);
}

bool ControlCore::poll_response(Response& out) {
  std::lock_guard<std::mutex> lock(response_mutex_);
  return responses_.try_pop(out);
}

void ControlCore::respond(std::uint64_t id, ResponseStatus s) noexcept {
  if (s != ResponseStatus::ok && s != ResponseStatus::pending && s != ResponseStatus::already)
    ++stats_.requests_refused;
  if (!responses_.try_push(Response{id, s})) ++stats_.responses_dropped;
}

void ControlCore::set_role(ChannelIndex i, Role role) noexcept {
  Hot_& h = hot_[i];
  BusState_& bus = buses_[h.bus];
  const bool was_buffer = h.role != Role::test;
  const bool is_buffer = role != Role::test;
  if (!was_buffer && is_buffer) {
    bus.buffers.push_back(i);  // capacity reserved in the constructor: never allocates
  } else if (was_buffer && !is_buffer) {
    auto it = std::find(bus.buffers.begin(), bus.buffers.end(), i);
    if (it != bus.buffers.end()) bus.buffers.erase(it);
  }
  h.role = role;
}

void ControlCore::publish_command(ChannelIndex i, bool equalize, double setpoint_W) noexcept {
  Cold_& c = cold_[i];
  const std::uint32_t lease_ms = buses_[hot_[i].bus].params.lease_ms;
  if (c.command.equalize == equalize && std::abs(c.command.setpoint_W - setpoint_W) < kSetpointResolution_W &&
      c.command.lease_ms == lease_ms && c.command.sequence != 0)
    return;
  c.command.equalize = equalize;
  c.command.setpoint_W = setpoint_W;
  c.command.lease_ms = lease_ms;
  ++c.command.sequence;
  commands_[i].store(c.command);
}

void ControlCore::publish_channel(ChannelIndex i) noexcept {
  const Hot_& h = hot_[i];
  const Cold_& c = cold_[i];
  ChannelSnapshot s;
  s.limits = c.limits;
  s.setpoint_W = c.setpoint_W;
  s.headroom_charge_W = c.headroom.charge_W;
  s.headroom_discharge_W = c.headroom.discharge_W;
  s.window_pos = c.headroom.window_pos;
  s.command_sequence = c.command.sequence;
  s.bus = h.bus;
  s.role = h.role;
  s.health = h.health;
  s.command_equalize = c.command.equalize;
  channel_snap_[i].store(s);
  hot_[i].published_health = h.health;
  hot_[i].published_role = h.role;
}

void ControlCore::handle_request(const Request& r) noexcept {
  ++stats_.requests;
  switch (r.kind) {
    case RequestKind::assign: {
      if (r.channel >= hot_.size() || validate(r.limits) != nullptr) {
        respond(r.id, ResponseStatus::refused_invalid);
        return;
      }
      Hot_& h = hot_[r.channel];
      if (h.role == Role::pending || h.role == Role::equalization) {
        cold_[r.channel].limits = r.limits;  // a re-assign updates the limits
        respond(r.id, ResponseStatus::already);
        return;
      }
      const bool reachable = h.health == Health::ok || h.health == Health::fault;
      if (reachable && h.state == ChannelState::fault) {
        respond(r.id, ResponseStatus::refused_fault);
        return;
      }
      if (reachable && (h.state == ChannelState::running || h.state == ChannelState::paused)) {
        respond(r.id, ResponseStatus::refused_running);
        return;
      }
      cold_[r.channel].limits = r.limits;
      cold_[r.channel].window = WindowState{};
      set_role(r.channel, Role::pending);
      respond(r.id, reachable ? ResponseStatus::ok : ResponseStatus::pending);
      return;
    }
    case RequestKind::release: {
      if (r.channel >= hot_.size()) {
        respond(r.id, ResponseStatus::refused_invalid);
        return;
      }
      Hot_& h = hot_[r.channel];
      if (h.role == Role::test || h.role == Role::releasing) {
        respond(r.id, ResponseStatus::already);
        return;
      }
      set_role(r.channel, Role::releasing);
      respond(r.id, ResponseStatus::ok);
      return;
    }
    case RequestKind::set_params: {
      if (r.bus >= buses_.size() || validate(r.params, true) != nullptr) {
        respond(r.id, ResponseStatus::refused_invalid);
        return;
      }
      buses_[r.bus].params = r.params;
      respond(r.id, ResponseStatus::ok);
      return;
    }
    case RequestKind::stop_all:
      stopping_ = true;
      respond(r.id, ResponseStatus::ok);
      return;
    case RequestKind::resume:
      stopping_ = false;
      respond(r.id, ResponseStatus::ok);
      return;
  }
  respond(r.id, ResponseStatus::refused_invalid);
}

void ControlCore::cycle(std::int64_t now_ns) noexcept {
  for (BusState_& bus : buses_) bus.acc = Accum_{};

  // Pass 1, every channel: take the newest consistent sample, judge its health, sum test power.
  const std::size_t n = hot_.size();
  for (std::size_t i = 0; i < n; ++i) {
    Hot_& h = hot_[i];
    Sample s;
    if (samples_[i].try_load(s, kReadAttempts)) {
      h.power_W = s.power_W;
      h.receive_time_ns = s.receive_time_ns;
      h.state = s.state;
      h.equalization_mode = s.equalization_mode;
      h.valid = s.valid && std::isfinite(s.power_W) && std::isfinite(s.voltage_V);
      if (h.role != Role::test) cold_[i].voltage_V = s.voltage_V;
    } else {
      ++stats_.torn_reads;  // the writer is mid-store (or stalled there): keep the previous sample
    }
    BusState_& bus = buses_[h.bus];
    Accum_& acc = bus.acc;
    const std::int64_t max_age_ns = bus.params.max_age_ms * kNsPerMs;
    if (h.receive_time_ns == 0 || h.state == ChannelState::offline) {
      h.health = Health::offline;
    } else if (!h.valid) {
      h.health = Health::invalid;
    } else if (now_ns - h.receive_time_ns > max_age_ns) {
      h.health = Health::stale;
    } else if (h.state == ChannelState::fault) {
      h.health = Health::fault;
    } else {
      h.health = Health::ok;
    }
    ++acc.channels;
    switch (h.health) {
      case Health::ok: acc.any_fresh = true; break;
      case Health::fault: acc.any_fresh = true; ++acc.faulted; break;
      case Health::stale:
      case Health::invalid: ++acc.stale; break;
      case Health::offline: ++acc.offline; break;
    }
    // Test power counts in free power; so does a channel we have asked for but that is not (yet, or
    // any more) following our setpoint: its power is the lab's, not ours.
    const bool ours = h.role == Role::equalization && h.equalization_mode;
    if (!ours) {
      if (h.health == Health::ok || h.health == Health::fault) {
        acc.free_W += h.power_W;
      } else {
        acc.any_test_stale = true;
      }
    }
    if (h.role == Role::test && (h.health != h.published_health || h.role != h.published_role))
      publish_channel(static_cast<ChannelIndex>(i));
  }

  // Requests see this cycle's health (e.g. "is the channel running a test right now?").
  Request req;
  for (int k = 0; k < kRequestsPerCycle && requests_.try_pop(req); ++k) handle_request(req);

  // Pass 2, per bus: buffers, law, allocation, commands, energy, snapshot.
  for (std::size_t b = 0; b < buses_.size(); ++b) run_bus(static_cast<BusIndex>(b), now_ns);

  stats_.cycles++;
  stats_.last_cycle_ns = now_ns;
  stats_snap_.store(stats_);
  last_cycle_ns_ = now_ns;
}

void ControlCore::run_bus(BusIndex b, std::int64_t now_ns) noexcept {
  BusState_& bus = buses_[b];
  Accum_& acc = bus.acc;
  const BusParams& p = bus.params;

  // Role transitions and usability of each buffer. Iterate over a copy of the index because
  // set_role() may remove entries; iterate backwards so removal does not skip one.
  bus.usable.clear();
  double cap_charge = 0.0, cap_discharge = 0.0, rated = 0.0, measured = 0.0;
  bool newer_than_command = true;
  for (std::size_t k = bus.buffers.size(); k-- > 0;) {
    const ChannelIndex i = bus.buffers[k];
    Hot_& h = hot_[i];
    Cold_& c = cold_[i];
    const bool fresh = h.health == Health::ok;
    switch (h.role) {
      case Role::pending:
        ++acc.pending;
        // Never take over a channel that is running (or pausing) a test or is in fault.
        if (fresh && h.state != ChannelState::running && h.state != ChannelState::paused && !stopping_) {
          publish_command(i, true, 0.0);
          if (h.equalization_mode) set_role(i, Role::equalization);
        } else if (stopping_) {
          publish_command(i, false, 0.0);
        }
        break;
      case Role::releasing:
        publish_command(i, false, 0.0);
        if ((fresh && !h.equalization_mode) || h.health == Health::offline) {
          c.setpoint_W = 0.0;
          set_role(i, Role::test);
          publish_channel(i);
          continue;
        }
        break;
      case Role::equalization:
        break;
      case Role::test:
        break;
    }
    if (h.role != Role::equalization) continue;
    ++acc.buffers;
    c.headroom = compute_headroom(c.limits, c.voltage_V, c.window);
    // A stale buffer is excluded (its share goes to the others) unless nothing on the bus is fresh:
    // then the whole bus ramps down, stale buffers included, rather than stepping to 0 W.
    const bool ramp_candidate = !acc.any_fresh && h.health == Health::stale;
    const bool usable = (fresh || ramp_candidate) && h.equalization_mode && !stopping_;
    if (usable) {
      bus.usable.push_back(i);
      cap_charge += c.headroom.charge_W;
      cap_discharge += c.headroom.discharge_W;
      rated += std::max(c.limits.max_charge_W, c.limits.max_discharge_W);
      measured += h.power_W;
      if (h.receive_time_ns <= bus.last_command_ns) newer_than_command = false;
    }
  }

  EqualizerInput in;
  in.now_ns = now_ns;
  in.free_W = acc.free_W;
  in.eq_measured_W = measured;
  in.capacity_charge_W = cap_charge;
  in.capacity_discharge_W = cap_discharge;
  in.rated_W = rated;
  in.any_test_stale = acc.any_test_stale;
  in.any_fresh = acc.any_fresh;
  in.samples_newer_than_command = newer_than_command;
  const EqualizerOutput out = equalizer_step(in, p, bus.law);

  // Re-allocate when the law moved, when the usable set or a headroom would be exceeded (safety
  // reductions apply at once), else keep setpoints steady so that the links are not flooded with writes.
  bool reallocate = out.updated || std::abs(out.command_W - bus.command_W) > kSetpointResolution_W;
  const std::size_t m = bus.usable.size();
  for (std::size_t k = 0; k < m && !reallocate; ++k) {
    const Cold_& c = cold_[bus.usable[k]];
    if (c.setpoint_W > c.headroom.charge_W + 1e-9 || -c.setpoint_W > c.headroom.discharge_W + 1e-9)
      reallocate = true;
  }
  for (ChannelIndex i : bus.buffers) {
    // A buffer that was usable and is not any more (stale, fault, left the mode) must be re-allocated.
    if (hot_[i].role == Role::equalization && cold_[i].setpoint_W != 0.0 &&
        std::find(bus.usable.begin(), bus.usable.end(), i) == bus.usable.end()) {
      reallocate = true;
      break;
    }
  }
  double commanded = 0.0;
  if (reallocate) {
    for (std::size_t k = 0; k < m; ++k) bus.headroom[k] = cold_[bus.usable[k]].headroom;
    allocate(out.command_W, bus.headroom.data(), m, bus.alloc_out.data(), bus.alloc_scratch.data());
    for (ChannelIndex i : bus.buffers) cold_[i].setpoint_W = 0.0;
    for (std::size_t k = 0; k < m; ++k) cold_[bus.usable[k]].setpoint_W = bus.alloc_out[k];
    bus.command_W = out.command_W;
  }
  bool any_new = false;
  for (ChannelIndex i : bus.buffers) {
    const Hot_& h = hot_[i];
    if (h.role != Role::equalization) continue;
    Cold_& c = cold_[i];
    const std::uint32_t before = c.command.sequence;
    // An excluded buffer stays in equalization mode at 0 W: it can rejoin as soon as it is healthy.
    publish_command(i, !stopping_, stopping_ ? 0.0 : c.setpoint_W);
    any_new = any_new || c.command.sequence != before;
    commanded += c.setpoint_W;
    publish_channel(i);
  }
  for (ChannelIndex i : bus.buffers)
    if (hot_[i].role != Role::equalization) publish_channel(i);
  if (any_new) bus.last_command_ns = now_ns;

  // Energy accounting: integrate over the time since this bus's previous cycle, capped so a paused
  // process does not book a long gap at the latest power.
  const double net = acc.free_W + measured;
  if (bus.last_cycle_ns >= 0) {
    const double dt_s = std::min(static_cast<double>(now_ns - bus.last_cycle_ns) / kNsPerS, 10.0);
    if (dt_s > 0.0 && acc.any_fresh) {
      EnergyCounters& e = bus.energy;
      e.grid_import_J += std::max(net, 0.0) * dt_s;
      e.grid_export_J += std::max(-net, 0.0) * dt_s;
      e.free_import_J += std::max(acc.free_W, 0.0) * dt_s;
      e.free_export_J += std::max(-acc.free_W, 0.0) * dt_s;
      e.eq_absorbed_J += std::max(measured, 0.0) * dt_s;
      e.eq_delivered_J += std::max(-measured, 0.0) * dt_s;
    }
  }
  bus.last_cycle_ns = now_ns;
  bus.status = stopping_ ? BusStatus::idle : out.status;

  BusSnapshot s;
  s.params = p;
  s.energy = bus.energy;
  s.free_W = acc.free_W;
  s.eq_commanded_W = commanded;
  s.eq_measured_W = measured;
  s.net_W = net;
  s.residual_W = net - p.target_W;
  s.desired_W = out.desired_W;
  s.capacity_charge_W = cap_charge;
  s.capacity_discharge_W = cap_discharge;
  s.updates = bus.law.updates;
  s.direction_flips = bus.law.direction_flips;
  s.setpoint_travel_W = bus.law.setpoint_travel_W;
  s.channels = acc.channels;
  s.buffers = acc.buffers;
  s.pending = acc.pending;
  s.stale = acc.stale;
  s.faulted = acc.faulted;
  s.offline = acc.offline;
  s.status = bus.status;
  bus_snap_[b].store(s);
}

void ControlCore::record_timing(std::int64_t duration_ns, std::int64_t lateness_ns) noexcept {
  stats_.duration.observe(static_cast<double>(duration_ns) / kNsPerS);
  stats_.lateness.observe(static_cast<double>(std::max<std::int64_t>(lateness_ns, 0)) / kNsPerS);
}

}  // namespace eqd::core
