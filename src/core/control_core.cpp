// The control core. Everything sized here, in the constructor; cycle() only reads, computes and stores.
#include "eqd/core/control_core.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
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

template <class S>  // Sample or ControlCore::Reading_
Health classify(const S& s, std::int64_t now_ns, std::int64_t max_age_ns) noexcept {
  if (s.receive_time_ns == 0 || s.state == ChannelState::offline) return Health::offline;
  if (!s.valid || !std::isfinite(s.power_W) || !std::isfinite(s.voltage_V)) return Health::invalid;
  if (now_ns - s.receive_time_ns > max_age_ns) return Health::stale;
  if (s.state == ChannelState::fault) return Health::fault;
  return Health::ok;
}

bool known(Health h) noexcept { return h == Health::ok || h == Health::fault; }

// std::isfinite of a float by its exponent bits: no conversion and no floating-point constants, which the
// per-channel loop would otherwise reload after every call it contains.
bool finite_bits(float f) noexcept {
  return (std::bit_cast<std::uint32_t>(f) & 0x7f800000U) != 0x7f800000U;
}

// Implies that the state alone does not make classify() return offline or fault: zero or a power of two
// (idle 0, running 1, paused 2, equalizing 4; not fault 3, offline 5), in three instructions.
static_assert(static_cast<unsigned>(ChannelState::idle) == 0 && static_cast<unsigned>(ChannelState::running) == 1 &&
              static_cast<unsigned>(ChannelState::paused) == 2 && static_cast<unsigned>(ChannelState::fault) == 3 &&
              static_cast<unsigned>(ChannelState::equalizing) == 4 && static_cast<unsigned>(ChannelState::offline) == 5);
bool ok_state(ChannelState s) noexcept {
  const unsigned v = static_cast<unsigned>(s);
  return (v & (v - 1U)) == 0;
}

// True when `c` already asks for (equalize, setpoint_W, lease_ms), the setpoint within resolution: then
// no new command (and no Modbus write) is needed.
bool command_current(const Command& c, bool equalize, double setpoint_W, std::uint32_t lease_ms) noexcept {
  return c.equalize == equalize && std::abs(c.setpoint_W - setpoint_W) < kSetpointResolution_W &&
         c.lease_ms == lease_ms && c.sequence != 0;
}

// Bitwise equality: unlike ==, tells -0.0 from 0.0 (and holds for a NaN and itself), so that a cached
// result is reused only for exactly the input it was computed from.
bool same_bits(double a, double b) noexcept {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}
}  // namespace

inline void ControlCore::Accum_::add_test(double power_W, float forecast_W, double eff) noexcept {
  const double bus_W = to_bus_W(power_W, eff);
  free_W += bus_W;
  // An announced schedule (NaN: none; a non-finite value is treated the same, so it can never reach the
  // law) goes into the bus's forecast path.
  if (finite_bits(forecast_W)) {
    announcing_present_W += bus_W;
    announced_W += to_bus_W(static_cast<double>(forecast_W), eff);
    ++announcing;
  }
}

ControlCore::ControlCore(const CoreConfig& cfg)
    : hot_(cfg.channels.size()),
      cold_(cfg.channels.size()),
      buses_(cfg.buses.size()),
      // One accumulator more than buses: channels of no bus (kNoBus) sum into it, and nothing reads it.
      // Pass 1 then needs no test for them.
      acc_(cfg.buses.size() + 1),
      learning_(cfg.buses.size() + 1, 0),
      max_age_ns_(cfg.buses.size() + 1),
      samples_(std::make_unique<Seqlock<Sample>[]>(cfg.channels.size())),
      commands_(std::make_unique<Seqlock<Command>[]>(cfg.channels.size())),
      channel_snap_(std::make_unique<Seqlock<ChannelSnapshot>[]>(cfg.channels.size())),
      bus_snap_(std::make_unique<Seqlock<BusSnapshot>[]>(cfg.buses.size())),
      requests_(cfg.request_capacity),
      responses_(cfg.request_capacity),
      liveness_ns_(cfg.liveness_ms * kNsPerMs),
      learned_(cfg.channels.size(), cfg.buses.size()) {
  if (cfg.liveness_ms < 1 || cfg.liveness_ms > 3'600'000)
    throw std::invalid_argument("control core: liveness_ms must be within 1..3600000");
  if (cfg.buses.empty()) throw std::invalid_argument("control core: at least one bus is required");
  if (cfg.buses.size() > 65535) throw std::invalid_argument("control core: too many buses");
  for (std::size_t b = 0; b < cfg.buses.size(); ++b) {
    if (const char* err = validate(cfg.buses[b], true))
      throw std::invalid_argument("control core: bus " + std::to_string(b) + ": " + err);
    buses_[b].params = cfg.buses[b];
    buses_[b].law = cfg.make_law ? cfg.make_law(static_cast<BusIndex>(b), cfg.buses[b]) : make_bus_law(cfg.buses[b].law);
    if (!buses_[b].law)
      throw std::invalid_argument("control core: bus " + std::to_string(b) + ": no control law '" +
                                  to_string(cfg.buses[b].law) + "'");
    if (b < cfg.initial_energy.size()) buses_[b].energy = cfg.initial_energy[b];
    max_age_ns_[b] = cfg.buses[b].max_age_ms * kNsPerMs;
  }
  const std::size_t no_bus = cfg.buses.size();  // the accumulator of channels of no bus
  max_age_ns_[no_bus] = max_age_ns_[0];           // judges their health as the first bus would
  health_counts_.assign(cfg.buses.size() + 1, {});
  channels_per_bus_.assign(cfg.buses.size() + 1, 0);
  for (const ChannelConfig& c : cfg.channels) {
    const std::size_t b = c.bus == kNoBus ? no_bus : c.bus;
    if (b < channels_per_bus_.size()) {
      ++channels_per_bus_[b];
      ++health_counts_[b][static_cast<std::size_t>(Health::offline)];
    }
  }
  std::vector<std::size_t> members(cfg.buses.size(), 0);
  for (std::size_t i = 0; i < cfg.channels.size(); ++i) {
    const ChannelConfig& c = cfg.channels[i];
    if (c.bus == kNoBus) {
      if (c.assigned)
        throw std::invalid_argument("control core: channel " + std::to_string(i) + ": a channel of no bus cannot be a buffer");
      continue;
    }
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
    hot_[i].bus = c.bus == kNoBus ? static_cast<BusIndex>(no_bus) : c.bus;
    if (!(c.efficiency >= 0.5 && c.efficiency <= 1.0))
      throw std::invalid_argument("control core: channel " + std::to_string(i) + ": efficiency must be within 0.5..1");
    hot_[i].efficiency = static_cast<float>(c.efficiency);
    if (c.assigned) {
      if (const char* err = validate(c.limits))
        throw std::invalid_argument("control core: channel " + std::to_string(i) + ": " + err);
      cold_[i].limits = c.limits;
      cold_[i].headroom_stale = true;
      set_role(static_cast<ChannelIndex>(i), Role::pending);
    }
    publish_channel(static_cast<ChannelIndex>(i));
  }
  for (std::size_t b = 0; b < buses_.size(); ++b) {
    buses_[b].snap.params = buses_[b].params;
    bus_snap_[b].store(buses_[b].snap);
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

void ControlCore::publish_command(ChannelIndex i, bool equalize, double setpoint_W, std::int64_t now_ns) noexcept {
  Cold_& c = cold_[i];
  const std::uint32_t lease_ms = buses_[hot_[i].bus].params.lease_ms;
  if (command_current(c.command, equalize, setpoint_W, lease_ms)) {
    confirm_command(i, now_ns);
    return;
  }
  c.command.equalize = equalize;
  c.command.setpoint_W = setpoint_W;
  c.command.lease_ms = lease_ms;
  c.command.issued_ns = now_ns;
  ++c.command.sequence;
  commands_[i].store(c.command);
}

void ControlCore::confirm_command(ChannelIndex i, std::int64_t now_ns) noexcept {
  Cold_& c = cold_[i];
  // A stop needs no confirmation: links may always send it. An equalize command is confirmed at a
  // quarter of the bound (and of its lease), so that a live core's command never looks old to its link.
  if (!c.command.equalize || c.command.sequence == 0) return;
  std::int64_t every_ns = liveness_ns_ / 4;
  if (c.command.lease_ms > 0) every_ns = std::min(every_ns, static_cast<std::int64_t>(c.command.lease_ms) * kNsPerMs / 4);
  if (now_ns - c.command.issued_ns < every_ns) return;
  c.command.issued_ns = now_ns;
  commands_[i].store(c.command);
}

void ControlCore::refresh_headroom(Cold_& c) noexcept {
  c.headroom = compute_headroom(c.limits, c.voltage_V, c.window);
  c.headroom_voltage_V = c.voltage_V;
  c.headroom_stale = false;
  const double eff = c.limits.efficiency;
  c.headroom_bus_charge_W = c.headroom.charge_W / eff;
  c.headroom_bus_discharge_W = c.headroom.discharge_W * eff;
  c.rated_bus_W = std::max(c.limits.max_charge_W / eff, c.limits.max_discharge_W * eff);
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
  s.bus = h.bus < buses_.size() ? h.bus : kNoBus;
  s.role = h.role;
  s.health = h.health;
  s.command_equalize = c.command.equalize;
  channel_snap_[i].store(s);
  cold_[i].published = s;
}

void ControlCore::take_sample(ChannelIndex i, const Reading_& s, Health health) noexcept {
  Cold_& c = cold_[i];
  c.voltage_V = s.voltage_V;
  c.power_W = s.power_W;
  c.receive_time_ns = s.receive_time_ns;
  c.state = s.state;
  c.equalization_mode = s.equalization_mode;
  c.health = health;
}

void ControlCore::handle_request(const Request& r, std::int64_t now_ns) noexcept {
  ++stats_.requests;
  switch (r.kind) {
    case RequestKind::assign: {
      if (r.channel >= hot_.size() || validate(r.limits) != nullptr) {
        respond(r.id, ResponseStatus::refused_invalid);
        return;
      }
      Hot_& h = hot_[r.channel];
      if (h.bus >= buses_.size()) {  // of no bus: it balances nothing, so it may not become a buffer
        respond(r.id, ResponseStatus::refused_invalid);
        return;
      }
      if (h.role == Role::pending || h.role == Role::equalization) {
        cold_[r.channel].limits = r.limits;  // a re-assign updates the limits
        cold_[r.channel].headroom_stale = true;
        publish_channel(r.channel);  // readers see the new limits at once, not at the next change
        respond(r.id, ResponseStatus::already);
        return;
      }
      // Judge the channel by its newest sample, not by last cycle's summary.
      Sample s;
      Health health = Health::offline;
      if (samples_[r.channel].try_load(s, kReadAttempts)) health = classify(s, now_ns, max_age_ns_[h.bus]);
      const bool reachable = known(health);
      if (reachable && s.state == ChannelState::fault) {
        respond(r.id, ResponseStatus::refused_fault);
        return;
      }
      if (reachable && (s.state == ChannelState::running || s.state == ChannelState::paused)) {
        respond(r.id, ResponseStatus::refused_running);
        return;
      }
      cold_[r.channel].limits = r.limits;
      cold_[r.channel].window = WindowState{};
      cold_[r.channel].headroom_stale = true;
      take_sample(r.channel, reading(s), health);
      set_role(r.channel, Role::pending);
      publish_channel(r.channel);
      respond(r.id, reachable ? ResponseStatus::ok : ResponseStatus::pending);
      return;
    }
    case RequestKind::release: {
      if (r.channel >= hot_.size()) {
        respond(r.id, ResponseStatus::refused_invalid);
        return;
      }
      Hot_& h = hot_[r.channel];
      if (h.bus >= buses_.size()) {  // of no bus: never a buffer, and set_role() needs a bus
        respond(r.id, ResponseStatus::refused_invalid);
        return;
      }
      if (h.role == Role::releasing) {
        respond(r.id, ResponseStatus::already);
        return;
      }
      if (h.role == Role::test) {
        // Not ours, but still in equalization mode (e.g. dropped from the configuration by a reload,
        // or left over from an earlier run): stop it too, rather than let it follow a stale setpoint.
        Sample s;
        if (!samples_[r.channel].try_load(s, kReadAttempts) || !s.equalization_mode) {
          respond(r.id, ResponseStatus::already);
          return;
        }
        take_sample(r.channel, reading(s), classify(s, now_ns, max_age_ns_[h.bus]));
      }
      set_role(r.channel, Role::releasing);
      publish_channel(r.channel);
      respond(r.id, ResponseStatus::ok);
      return;
    }
    case RequestKind::set_params: {
      // The law object was built with the core: another law takes a reload, never the control thread.
      if (r.bus >= buses_.size() || validate(r.params, true) != nullptr || r.params.law != buses_[r.bus].params.law) {
        respond(r.id, ResponseStatus::refused_invalid);
        return;
      }
      buses_[r.bus].params = r.params;
      buses_[r.bus].snap.params = r.params;
      max_age_ns_[r.bus] = r.params.max_age_ms * kNsPerMs;
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

// Pass 1 for every channel but a test channel whose sample is, and was, fresh and valid: health changes,
// stale, invalid or unread samples (s == nullptr: the slot was mid-store every attempt), and buffers.
void ControlCore::pass1_other(ChannelIndex i, std::int64_t now_ns, const Reading_* s) noexcept {
  Hot_& h = hot_[i];
  Accum_& acc = acc_[h.bus];
  const bool read = s != nullptr;
  Health health = h.health;
  if (read) {
    health = classify(*s, now_ns, max_age_ns_[h.bus]);
  } else {
    ++stats_.torn_reads;  // the writer is mid-store (or stalled there): do not wait for it
  }
  if (health != h.health) {
    // Health counts are kept incrementally: a steady rig costs no counting per channel.
    --health_counts_[h.bus][static_cast<std::size_t>(h.health)];
    ++health_counts_[h.bus][static_cast<std::size_t>(health)];
  }
  if (h.role == Role::test) {
    // Unknown test power (stale, invalid, or unreadable this cycle) must hold the law.
    if (read && known(health)) {
      acc.add_test(s->power_W, s->forecast_W, static_cast<double>(h.efficiency));
    } else {
      acc.any_test_stale = true;
    }
    if (health != h.health) {
      h.health = health;
      publish_channel(i);
    }
  } else {
    if (read) take_sample(i, *s, health);
    h.health = health;
    // A channel we asked for that is not (yet, or any more) following our setpoint is the lab's:
    // its power counts as free power.
    const Cold_& c = cold_[i];
    if (!(h.role == Role::equalization && c.equalization_mode)) {
      if (known(c.health)) {
        const double power_W = to_bus_W(c.power_W, static_cast<double>(h.efficiency));
        acc.free_W += power_W;  // a buffer in transition announces no schedule
      } else {
        acc.any_test_stale = true;
      }
    }
  }
}

void ControlCore::refresh_learned(std::int64_t now_ns) noexcept {
  // Once per second (the forecast path works in 1 s bins): each learning bus's newest learned path
  // (a ~500-byte copy), and the present power of the channels in it, read now, so that the path's
  // expected power replaces exactly theirs (a fast load changes a lot in the second since the path
  // was made).
  const std::int64_t sec = now_ns / 1'000'000'000;
  if (sec == learned_read_s_) return;
  learned_read_s_ = sec;
  bool any = false;
  for (std::size_t b = 0; b < buses_.size(); ++b) {
    BusState_& bus = buses_[b];
    bus.learned_present_W = 0.0;
    learning_[b] = bus.params.use_forecast && bus.params.learn_forecast;
    if (!learning_[b]) {
      bus.learned_read_s = -1;
      continue;
    }
    bus.learned = learned_.ahead(b);
    bus.learned_read_s = sec;
    learning_[b] = bus.learned.channels > 0;
    any = any || learning_[b];
  }
  if (!any) return;
  for (std::size_t i = 0; i < hot_.size(); ++i) {
    const Hot_& h = hot_[i];
    if (h.role != Role::test || !learning_[h.bus] || !known(h.health) ||
        !learned_.in_path(i, buses_[h.bus].learned.made_s))
      continue;
    Sample s;
    if (samples_[i].try_load(s, kReadAttempts) && s.valid && std::isfinite(s.power_W))
      buses_[h.bus].learned_present_W += to_bus_W(s.power_W, static_cast<double>(h.efficiency));
  }
}

void ControlCore::cycle(std::int64_t now_ns) noexcept {
  if (last_cycle_ns_ >= 0) {
    const std::int64_t gap_ns = now_ns - last_cycle_ns_;
    stats_.longest_gap_ns = std::max(stats_.longest_gap_ns, gap_ns);
    if (gap_ns > liveness_ns_) {
      // The control thread (or the whole process) stalled: its links stopped the heartbeat and the
      // refreshes, so the controllers may have dropped their buffers, and every sample is old.
      // Nothing from before the stall is used or sent again (see resume_ns_).
      ++stats_.stalls;
      resume_ns_ = now_ns;
    }
  }
  for (std::size_t b = 0; b < acc_.size(); ++b) {
    acc_[b] = Accum_{};
    constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
    const std::int64_t max_age = max_age_ns_[b];  // > 0 (validated)
    acc_[b].fresh_from_ns = now_ns < kMin + max_age ? kMin : now_ns - max_age;
  }

  // Pass 1, every channel: take the newest consistent sample, judge its health, sum test power.
  // Test channels touch only their sample, 8 bytes of state and their bus's accumulator line. The
  // common case, a test channel whose sample is and was fresh and valid, is handled in this loop;
  // everything else (health changes, unread samples, buffers) in pass1_other(), out of line so that
  // this loop keeps its pointers in registers.
  Hot_* const hot = hot_.data();
  Accum_* const accs = acc_.data();
  const Seqlock<Sample>* const slots = samples_.get();
  const std::size_t n = hot_.size();
  for (std::size_t i = 0; i < n; ++i) {
    Hot_& h = hot[i];
    Sample s;
    if (!slots[i].try_load(s, kReadAttempts)) [[unlikely]] {
      pass1_other(static_cast<ChannelIndex>(i), now_ns, nullptr);
      continue;
    }
    Accum_& acc = accs[h.bus];
    // A test channel that was fresh and still is. The checks are those of classify() in a cheaper form
    // that implies Health::ok; a few ok samples fail them (two huge finite values whose sum overflows, a
    // receive time <= 0, a state value >= 64) and take the long way below, which gets them right.
    if (h.role == Role::test && h.health == Health::ok && s.receive_time_ns > 0 &&
        s.receive_time_ns >= acc.fresh_from_ns && ok_state(s.state) &&
        s.valid && std::isfinite(s.power_W + s.voltage_V)) [[likely]] {
      acc.add_test(s.power_W, s.forecast_W, static_cast<double>(h.efficiency));
      continue;
    }
    const Reading_ r = reading(s);
    pass1_other(static_cast<ChannelIndex>(i), now_ns, &r);
  }

  for (std::size_t b = 0; b < acc_.size(); ++b) {
    const auto& hc = health_counts_[b];
    Accum_& acc = acc_[b];
    acc.channels = channels_per_bus_[b];
    acc.faulted = hc[static_cast<std::size_t>(Health::fault)];
    acc.stale = hc[static_cast<std::size_t>(Health::stale)] + hc[static_cast<std::size_t>(Health::invalid)];
    acc.offline = hc[static_cast<std::size_t>(Health::offline)];
    acc.any_fresh = hc[static_cast<std::size_t>(Health::ok)] + acc.faulted > 0;
  }

  refresh_learned(now_ns);

  // Requests see this cycle's samples (e.g. "is the channel running a test right now?").
  if (!requests_.empty()) {  // a Request is a few hundred bytes to initialise: not every cycle
    Request req;
    for (int k = 0; k < kRequestsPerCycle && requests_.try_pop(req); ++k) handle_request(req, now_ns);
  }

  // Pass 2, per bus: buffers, law, allocation, commands, energy, snapshot.
  for (std::size_t b = 0; b < buses_.size(); ++b) run_bus(static_cast<BusIndex>(b), now_ns);

  stats_.cycles++;
  stats_.last_cycle_ns = now_ns;
  stats_snap_.store(stats_);
  last_cycle_ns_ = now_ns;
  // Release: a link that sees this time also sees the commands this cycle published.
  cycle_clock_.store(now_ns, std::memory_order_release);
}

void ControlCore::run_bus(BusIndex b, std::int64_t now_ns) noexcept {
  BusState_& bus = buses_[b];
  Accum_& acc = acc_[b];
  const BusParams& p = bus.params;

  // Role transitions and usability of each buffer. set_role() may remove entries from bus.buffers:
  // iterate backwards so that a removal does not skip one.
  bus.usable.clear();
  double cap_charge = 0.0, cap_discharge = 0.0, rated = 0.0, measured = 0.0;
  bool newer_than_command = true;
  bool lost_buffer = false;  // a buffer with a non-zero setpoint is no longer usable
  bool exceeded = false;     // a usable buffer's setpoint is beyond its headroom
  for (std::size_t k = bus.buffers.size(); k-- > 0;) {
    const ChannelIndex i = bus.buffers[k];
    Hot_& h = hot_[i];
    Cold_& c = cold_[i];
    // After a stall, a buffer counts as fresh only with a sample taken since.
    const bool fresh = c.health == Health::ok && c.receive_time_ns > resume_ns_;
    switch (h.role) {
      case Role::pending:
        ++acc.pending;
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
        break;
      case Role::releasing:
        publish_command(i, false, 0.0, now_ns);
        if ((fresh && !c.equalization_mode) || c.health == Health::offline) {
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
    if (c.headroom_stale || !same_bits(c.voltage_V, c.headroom_voltage_V)) refresh_headroom(c);
    // A stale buffer is excluded (its share goes to the others) unless nothing on the bus is fresh:
    // then the whole bus ramps down, stale buffers included, rather than stepping to 0 W.
    const bool ramp_candidate = !acc.any_fresh && c.health == Health::stale && c.receive_time_ns > resume_ns_;
    const bool usable = (fresh || ramp_candidate) && c.equalization_mode && !stopping_;
    if (usable) {
      // The law works in bus-side power (what the grid sees); buffers report battery-side power.
      const double eff = c.limits.efficiency;
      bus.usable.push_back(i);
      cap_charge += c.headroom_bus_charge_W;
      cap_discharge += c.headroom_bus_discharge_W;
      rated += c.rated_bus_W;
      measured += to_bus_W(c.power_W, eff);
      if (c.receive_time_ns <= bus.last_command_ns) newer_than_command = false;
      if (c.setpoint_W > c.headroom.charge_W + 1e-9 || -c.setpoint_W > c.headroom.discharge_W + 1e-9)
        exceeded = true;
    } else if (c.setpoint_W != 0.0) {
      lost_buffer = true;
    }
  }

  LawInput in;
  in.now_ns = now_ns;
  in.free_W = acc.free_W;
  if (p.use_forecast) {
    const LearnedAhead* learned = p.learn_forecast && bus.learned_read_s >= 0 ? &bus.learned : nullptr;
    bus.path.update(now_ns, acc.free_W, acc.announcing_present_W, acc.announced_W, acc.announcing,
                    p.forecast_horizon_s, p.tau_s, learned, bus.learned_present_W);
    in.free_forecast_W = bus.path.steer_W();  // NaN while nothing is announced: the law uses free_W
  }
  in.eq_measured_W = measured;
  in.capacity_charge_W = cap_charge;
  in.capacity_discharge_W = cap_discharge;
  in.rated_W = rated;
  in.any_test_stale = acc.any_test_stale;
  in.any_fresh = acc.any_fresh;
  in.samples_newer_than_command = newer_than_command;
  // The mode is the core's, the same for every law: no usable buffer, or hold / ramp down on the
  // health of the samples (bus_law.hpp).
  const Capacity cap = capacity_of(in);
  const double cap_hi = cap.hi_W;
  const double cap_lo = cap.lo_W;
  in.mode = cap.empty() ? BusStatus::idle : bus_mode(acc.any_fresh, acc.any_test_stale, now_ns, p, bus.hold_since_ns);
  LawOutput out = bus.law->step(in, p);
  // The capacity clamp holds whatever the law answers (a law's bug must not reach a battery).
  out.command_W = std::isfinite(out.command_W) ? cap.clamp(out.command_W) : 0.0;

  // Re-allocate when the law moved, when the usable set or a headroom would be exceeded (safety
  // reductions apply at once), else keep setpoints steady so that the links are not flooded with writes.
  const bool reallocate = out.updated || lost_buffer || exceeded ||
                          std::abs(out.command_W - bus.command_W) > kSetpointResolution_W;
  const std::size_t m = bus.usable.size();
  double commanded = 0.0;
  if (reallocate) {
    for (std::size_t k = 0; k < m; ++k) {
      const Cold_& c = cold_[bus.usable[k]];
      // Allocate in bus-side terms.
      bus.headroom[k] = Headroom{c.headroom_bus_charge_W, c.headroom_bus_discharge_W, c.headroom.window_pos};
    }
    allocate(out.command_W, bus.headroom.data(), m, bus.alloc_out.data(), bus.alloc_scratch.data());
    for (ChannelIndex i : bus.buffers) cold_[i].setpoint_W = 0.0;
    for (std::size_t k = 0; k < m; ++k) {
      Cold_& c = cold_[bus.usable[k]];
      // Back to battery side, and never beyond the battery-side headroom (rounding).
      c.setpoint_W = std::clamp(to_battery_W(bus.alloc_out[k], c.limits.efficiency), -c.headroom.discharge_W,
                                c.headroom.charge_W);
    }
    bus.command_W = out.command_W;
  }
  bool any_new = false;
  for (ChannelIndex i : bus.buffers) {
    const Hot_& h = hot_[i];
    if (h.role != Role::equalization) {
      publish_channel(i);  // pending or releasing: published every cycle
      continue;
    }
    Cold_& c = cold_[i];
    // An excluded buffer stays in equalization mode at 0 W: it can rejoin as soon as it is healthy.
    const double setpoint_W = stopping_ ? 0.0 : c.setpoint_W;
    if (!stopping_ && c.receive_time_ns <= resume_ns_) {
      // Not heard from since a stall: neither a new command nor a confirmation of the old one, so its
      // link stays silent until the buffer's state is known again.
    } else if (!command_current(c.command, !stopping_, setpoint_W, p.lease_ms)) {
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
        last.command_sequence != c.command.sequence || last.health != h.health || last.role != h.role)
      publish_channel(i);
  }
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
  // Saturated: the bus asks for more than its buffers can give (judged every cycle, not only when the
  // law updates, so that a reader sees it for as long as it lasts).
  BusStatus status = in.mode;
  if (status == BusStatus::ok && (out.desired_W > cap_hi + p.deadband_W || out.desired_W < cap_lo - p.deadband_W))
    status = BusStatus::saturated;
  bus.status = stopping_ ? BusStatus::idle : status;

  BusSnapshot& s = bus.snap;  // s.params is current (see BusState_::snap)
  s.energy = bus.energy;
  s.free_W = acc.free_W;
  s.eq_commanded_W = commanded;
  s.eq_measured_W = measured;
  s.net_W = net;
  s.residual_W = net - p.target_W;
  s.desired_W = out.desired_W;
  s.free_forecast_W = std::isnan(in.free_forecast_W) ? acc.free_W : in.free_forecast_W;
  s.capacity_charge_W = cap_charge;
  s.capacity_discharge_W = cap_discharge;
  const LawCounters counters = bus.law->counters();
  s.updates = counters.updates;
  s.direction_flips = counters.direction_flips;
  s.setpoint_travel_W = counters.setpoint_travel_W;
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
