// The control core's requests (assign, release, set_params, stop_all, resume): handled on the control
// thread at the start of a cycle, each answered through the response queue. See control_core.hpp.
#include <cstdint>

#include "control_core_detail.hpp"
#include "eqd/core/control_core.hpp"

namespace eqd::core {

using namespace detail;  // NOLINT(google-build-using-namespace): the core's own helpers

void ControlCore::handle_request(const Request& r, std::int64_t now_ns) noexcept {
  ++stats_.requests;
  switch (r.kind) {
    case RequestKind::assign:
      handle_assign(r, now_ns);
      return;
    case RequestKind::release:
      handle_release(r, now_ns);
      return;
    case RequestKind::set_params:
      handle_set_params(r);
      return;
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

void ControlCore::handle_assign(const Request& r, std::int64_t now_ns) noexcept {
  if (r.channel >= hot_.size() || validate(r.limits) != nullptr) {
    respond(r.id, ResponseStatus::refused_invalid);
    return;
  }
  Hot& h = hot_[r.channel];
  if (h.bus >= buses_.size()) {  // of no bus: it balances nothing, so it may not become a buffer
    respond(r.id, ResponseStatus::refused_invalid);
    return;
  }
  if (h.role == Role::pending || h.role == Role::equalization) {
    // A re-assign updates the limits; a new capacity makes the stored energy unknown again.
    if (cold_[r.channel].limits.capacity_Wh != r.limits.capacity_Wh) cold_[r.channel].gauge.known = false;
    cold_[r.channel].limits = r.limits;
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
}

void ControlCore::handle_release(const Request& r, std::int64_t now_ns) noexcept {
  if (r.channel >= hot_.size()) {
    respond(r.id, ResponseStatus::refused_invalid);
    return;
  }
  Hot& h = hot_[r.channel];
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
}

void ControlCore::handle_set_params(const Request& r) noexcept {
  // The law object was built with the core: another law takes a reload, never the control thread.
  if (r.bus >= buses_.size() || validate(r.params, true) != nullptr || r.params.law != buses_[r.bus].params.law) {
    respond(r.id, ResponseStatus::refused_invalid);
    return;
  }
  buses_[r.bus].params = r.params;
  buses_[r.bus].snap.params = r.params;
  max_age_ns_[r.bus] = r.params.max_age_ms * kNsPerMs;
  respond(r.id, ResponseStatus::ok);
}

}  // namespace eqd::core
