// The control core. Everything sized here, in the constructor; cycle() only reads, computes and stores.
#include "eqd/core/control_core.hpp"
#include "control_core_detail.hpp"
#include "eqd/core/planned_law.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace eqd::core {

using namespace detail;  // NOLINT(google-build-using-namespace): the core's own helpers

inline void ControlCore::Accum::add_test(double power_W, float forecast_W, const Hot& h) noexcept {
  const double bus_W = h.to_bus(power_W);
  free_W += bus_W;
  // An announced schedule (NaN: none; a non-finite value is treated the same, so it can never reach the
  // law) goes into the bus's forecast path.
  if (finite_bits(forecast_W)) {
    announcing_present_W += bus_W;
    announced_W += h.to_bus(static_cast<double>(forecast_W));
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
      device_limits_(std::make_unique<DeviceLimitsSlot[]>(cfg.channels.size())),
      channel_snap_(std::make_unique<Seqlock<ChannelSnapshot>[]>(cfg.channels.size())),
      bus_snap_(std::make_unique<Seqlock<BusSnapshot>[]>(cfg.buses.size())),
      schedules_(std::make_unique<Seqlock<BusSchedule>[]>(cfg.buses.size())),
      needs_snap_(std::make_unique<Seqlock<WindowNeeds>[]>(cfg.buses.size())),
      meter_trims_(std::make_unique<Seqlock<MeterTrimValue>[]>(cfg.buses.size())),
      stat_models_(std::make_unique<Seqlock<StatModel>[]>(cfg.buses.size())),
      requests_(cfg.request_capacity),
      responses_(cfg.request_capacity),
      liveness_ns_(cfg.liveness_ms * kNsPerMs),
      learned_(cfg.channels.size(), cfg.buses.size()),
      plans_(cfg.buses.size()) {
  if (cfg.liveness_ms < 1 || cfg.liveness_ms > 3'600'000)
    throw std::invalid_argument("control core: liveness_ms must be within 1..3600000");
  if (cfg.buses.empty()) throw std::invalid_argument("control core: at least one bus is required");
  if (cfg.buses.size() > 65535) throw std::invalid_argument("control core: too many buses");
  for (std::size_t b = 0; b < cfg.buses.size(); ++b) {
    if (const char* err = validate(cfg.buses[b], true))
      throw std::invalid_argument("control core: bus " + std::to_string(b) + ": " + err);
    buses_[b].params = cfg.buses[b];
    if (cfg.make_law) {
      buses_[b].law = cfg.make_law(static_cast<BusIndex>(b), cfg.buses[b]);
    } else if (cfg.buses[b].law == LawKind::planned) {
      buses_[b].law = std::make_unique<PlannedLaw>(&plans_, b);  // its planner: plan_board() (planner thread)
      plans_wanted_ = true;
    } else {
      buses_[b].law = make_bus_law(cfg.buses[b].law);
    }
    if (!buses_[b].law)
      throw std::invalid_argument("control core: bus " + std::to_string(b) + ": no control law '" +
                                  to_string(cfg.buses[b].law) + "'");
    if (b < cfg.initial_energy.size()) buses_[b].energy = cfg.initial_energy[b];
    if (b < cfg.initial_demand.size())
      buses_[b].demand.seed(cfg.initial_demand[b].max_day_W, cfg.initial_demand[b].max_month_W);
    if (b < cfg.initial_window_needs.size()) {
      buses_[b].needs = cfg.initial_window_needs[b];
      needs_snap_[b].store(buses_[b].needs);
      buses_[b].needs_published = buses_[b].needs.records();
    }
    max_age_ns_[b] = cfg.buses[b].max_age_ms * kNsPerMs;
  }
  const std::size_t no_bus = cfg.buses.size();  // the accumulator of channels of no bus
  max_age_ns_[no_bus] = max_age_ns_[0];         // judges their health as the first bus would
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
        throw std::invalid_argument("control core: channel " + std::to_string(i) +
                                    ": a channel of no bus cannot be a buffer");
      continue;
    }
    if (c.bus >= cfg.buses.size())
      throw std::invalid_argument("control core: channel " + std::to_string(i) + ": no bus " + std::to_string(c.bus));
    ++members[c.bus];
  }
  // Any channel of a bus may become a buffer at run time: reserve for all of them now so that role
  // changes on the control thread never allocate.
  for (std::size_t b = 0; b < buses_.size(); ++b) {
    BusState& bus = buses_[b];
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
  Hot& h = hot_[i];
  BusState& bus = buses_[h.bus];
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
  Cold& c = cold_[i];
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
  Cold& c = cold_[i];
  // A stop needs no confirmation: links may always send it. An equalize command is confirmed at a
  // quarter of the bound (and of its lease), so that a live core's command never looks old to its link.
  if (!c.command.equalize || c.command.sequence == 0) return;
  std::int64_t every_ns = liveness_ns_ / 4;
  if (c.command.lease_ms > 0)
    every_ns = std::min(every_ns, static_cast<std::int64_t>(c.command.lease_ms) * kNsPerMs / 4);
  if (now_ns - c.command.issued_ns < every_ns) return;
  c.command.issued_ns = now_ns;
  commands_[i].store(c.command);
}

void ControlCore::refresh_headroom(Cold& c) noexcept {
  // The device's own limits lower the configured ones: the allocator then asks this buffer for no more
  // than its device takes, and the others carry the rest (its link still clamps, as the last safety).
  const BufferLimits lim = effective_limits(c.limits, c.device);
  c.headroom = compute_headroom(lim, c.voltage_V, static_cast<double>(c.soc_pct), c.window);
  c.headroom_voltage_V = c.voltage_V;
  c.headroom_soc_pct = c.soc_pct;
  c.headroom_stale = false;
  const double eff = lim.efficiency;
  c.headroom_bus_charge_W = c.headroom.charge_W / eff;
  c.headroom_bus_discharge_W = c.headroom.discharge_W * eff;
  c.rated_bus_W = std::max(lim.max_charge_W / eff, lim.max_discharge_W * eff);
}

void ControlCore::publish_channel(ChannelIndex i) noexcept {
  const Hot& h = hot_[i];
  const Cold& c = cold_[i];
  ChannelSnapshot s;
  s.limits = c.limits;
  s.device = c.device;
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

void ControlCore::take_sample(ChannelIndex i, const Reading& s, Health health) noexcept {
  Cold& c = cold_[i];
  c.voltage_V = s.voltage_V;
  c.power_W = s.power_W;
  c.soc_pct = s.soc_pct;
  c.receive_time_ns = s.receive_time_ns;
  c.state = s.state;
  c.equalization_mode = s.equalization_mode;
  c.health = health;
}

// Pass 1 for every channel but a test channel whose sample is, and was, fresh and valid: health changes,
// stale, invalid or unread samples (s == nullptr: the slot was mid-store every attempt), and buffers.
void ControlCore::pass1_other(ChannelIndex i, std::int64_t now_ns, const Reading* s) noexcept {
  Hot& h = hot_[i];
  Accum& acc = acc_[h.bus];
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
      acc.add_test(s->power_W, s->forecast_W, h);
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
    const Cold& c = cold_[i];
    if (!(h.role == Role::equalization && c.equalization_mode)) {
      if (known(c.health)) {
        const double power_W = h.to_bus(c.power_W);
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
    BusState& bus = buses_[b];
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
    const Hot& h = hot_[i];
    if (h.role != Role::test || !learning_[h.bus] || !known(h.health) ||
        !learned_.in_path(i, buses_[h.bus].learned.made_s))
      continue;
    Sample s;
    if (samples_[i].try_load(s, kReadAttempts) && s.valid && std::isfinite(s.power_W))
      buses_[h.bus].learned_present_W += h.to_bus(s.power_W);
  }
}

namespace {
// Up to kReadAttempts tries of try_load_pass1_words (the same attempts as a whole sample's read).
bool try_load_fast(const Seqlock<Sample>& slot, Sample& s) noexcept {
  for (int k = 0; k < kReadAttempts; ++k)
    if (ControlCore::try_load_pass1_words(slot, s)) return true;
  return false;
}
}  // namespace

// Pass 1's long way for channel i: the whole sample, newest and consistent (nullptr: mid-store every
// attempt), to pass1_other(). Out of line so that the fast loop keeps its pointers in registers.
void ControlCore::take_long_way(ChannelIndex i, std::int64_t now_ns, const Seqlock<Sample>& slot) noexcept {
  Sample s;
  if (!slot.try_load(s, kReadAttempts)) {
    pass1_other(i, now_ns, nullptr);
    return;
  }
  const Reading r = reading(s);
  pass1_other(i, now_ns, &r);
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
    acc_[b] = Accum{};
    constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
    const std::int64_t max_age = max_age_ns_[b];  // > 0 (validated)
    // At least 1: the fast path below then also rejects a receive time <= 0 with this one compare.
    acc_[b].fresh_from_ns = std::max<std::int64_t>(1, now_ns < kMin + max_age ? kMin : now_ns - max_age);
  }

  // Pass 1, every channel: take the newest consistent sample, judge its health, sum test power.
  // Test channels touch only their sample, 8 bytes of state and their bus's accumulator line. The
  // common case, a test channel whose sample is and was fresh and valid, is handled in this loop;
  // everything else (health changes, unread samples, buffers) in pass1_other(), out of line so that
  // this loop keeps its pointers in registers.
  Hot* const hot = hot_.data();
  Accum* const accs = acc_.data();
  const Seqlock<Sample>* const slots = samples_.get();
  const std::size_t n = hot_.size();
  for (std::size_t i = 0; i < n; ++i) {
    Hot& h = hot[i];
    // Only a test channel that was ok can take the fast path: every other one (buffers, health
    // changes) reads its whole sample once, the long way. The fast path reads only the words it uses
    // (try_load_pass1_words); the other fields of s are not loaded and must not be used below.
    Sample s;
    if (h.role != Role::test || h.health != Health::ok || !try_load_fast(slots[i], s)) [[unlikely]] {
      take_long_way(static_cast<ChannelIndex>(i), now_ns, slots[i]);
      continue;
    }
    Accum& acc = accs[h.bus];
    // A test channel that was fresh and still is. The checks are those of classify() in a cheaper form
    // that implies Health::ok; a few ok samples fail them (two huge finite values whose sum overflows, a
    // receive time <= 0, a state value >= 64) and take the long way below, which gets them right.
    if (s.receive_time_ns >= acc.fresh_from_ns && ok_state(s.state) && s.valid &&
        std::isfinite(s.power_W + s.voltage_V)) [[likely]] {
      acc.add_test(s.power_W, s.forecast_W, h);
      continue;
    }
    take_long_way(static_cast<ChannelIndex>(i), now_ns, slots[i]);
  }

  for (std::size_t b = 0; b < acc_.size(); ++b) {
    const auto& hc = health_counts_[b];
    Accum& acc = acc_[b];
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

void ControlCore::record_timing(std::int64_t duration_ns, std::int64_t lateness_ns) noexcept {
  stats_.duration.observe(static_cast<double>(duration_ns) / kNsPerS);
  stats_.lateness.observe(static_cast<double>(std::max<std::int64_t>(lateness_ns, 0)) / kNsPerS);
}

}  // namespace eqd::core
