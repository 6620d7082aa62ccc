#include "eqd/daemon/rig.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace eqd::daemon {

namespace {

ControllerSource source_of(config::ControllerOrigin origin) {
  switch (origin) {
    case config::ControllerOrigin::cache:
      return ControllerSource::cache;
    case config::ControllerOrigin::discovery:
      return ControllerSource::discovery;
    case config::ControllerOrigin::config:
      break;
  }
  return ControllerSource::config;
}

// One controller: its entry in the directory, its channels in the directory and the core, and its
// link plan (transport, settings and the common part).
void plan_controller(RigPlan& plan, const config::ControllerConfig& cc, std::size_t c,
                     const std::function<core::BusIndex(const std::string&)>& bus_index) {
  Directory& dir = plan.directory;
  const io::Transport* transport = io::find_transport(cc.transport);
  if (transport == nullptr || cc.settings.get() == nullptr)
    throw std::invalid_argument("controller '" + cc.name + "': transport '" + cc.transport + "' is not registered");
  ControllerInfo info;
  info.name = cc.name;
  info.transport = cc.transport;
  info.endpoint = transport->endpoint(*cc.settings.get());
  info.source = source_of(cc.origin);
  info.read_only = cc.read_only || cc.bus_unknown;
  info.bus_unknown = cc.bus_unknown;
  info.commands = transport->commands();
  info.identity = cc.identity;
  info.first_channel = static_cast<core::ChannelIndex>(dir.channels.size());
  // Validation resolved the count (the transport's profile's when not given).
  if (cc.channels == 0) throw std::invalid_argument("controller '" + cc.name + "': no channel count (not validated)");
  info.channels = cc.channels;

  LinkPlan link;
  link.transport = transport;
  link.settings = cc.settings;
  io::LinkSpec& spec = link.spec;
  spec.name = cc.name;
  spec.poll_hz = cc.poll_hz;
  spec.timeout_ms = cc.timeout_ms;
  spec.backoff_initial_ms = cc.backoff_initial_ms;
  spec.backoff_max_ms = cc.backoff_max_ms;
  spec.read_only = cc.read_only || !transport->commands();

  for (std::uint16_t n = 1; n <= cc.channels; ++n) {
    // An ignored channel gets no core slot at all: it is not part of any bus, so its absence can
    // neither hold the law nor count as free power. The link skips it.
    if (std::find(cc.ignore_channels.begin(), cc.ignore_channels.end(), n) != cc.ignore_channels.end()) {
      spec.channel_slots.push_back(io::kNoChannel);
      continue;
    }
    ChannelInfo ch;
    ch.name = cc.name + "/" + std::to_string(n);
    ch.controller = static_cast<std::uint16_t>(c);
    ch.number = n;
    // A discovered controller whose bus is not known is sampled and shown, but in no bus's balance.
    ch.bus = cc.bus_unknown ? core::kNoBus : bus_index(cc.bus_of(n));
    const auto index = static_cast<core::ChannelIndex>(dir.channels.size());
    dir.by_name.emplace(ch.name, index);
    core::ChannelConfig corech;
    corech.bus = ch.bus;
    corech.efficiency = cc.efficiency;
    plan.core.channels.push_back(corech);
    dir.channels.push_back(std::move(ch));
    spec.channel_slots.push_back(index);
  }
  dir.controllers.push_back(std::move(info));
  plan.links.push_back(std::move(link));
}

}  // namespace

RigPlan plan_rig(const config::Config& cfg) {
  RigPlan plan;
  Directory& dir = plan.directory;
  plan.core.liveness_ms = cfg.loop.liveness_timeout_ms;
  for (const config::BusConfig& b : cfg.buses) {
    dir.buses.push_back(b.name);
    plan.core.buses.push_back(b.params);
  }
  auto bus_index = [&](const std::string& name) -> core::BusIndex {
    if (name.empty()) return 0;
    if (auto b = dir.find_bus(name)) return *b;
    throw std::invalid_argument("unknown bus '" + name + "'");
  };
  for (std::size_t c = 0; c < cfg.controllers.size(); ++c) plan_controller(plan, cfg.controllers[c], c, bus_index);
  for (const config::BufferConfig& b : cfg.buffers) {
    auto idx = dir.find_channel(b.channel);
    if (!idx) throw std::invalid_argument("equalization channel '" + b.channel + "' is not a known channel");
    if (const ControllerInfo& ctl = dir.controllers[dir.channels[*idx].controller]; !ctl.commands)
      throw std::invalid_argument("equalization channel '" + b.channel + "': controller " + ctl.name +
                                  " uses transport " + ctl.transport +
                                  ", which eqd cannot command (read only): its channels are test channels");
    if (const ControllerInfo& ctl = dir.controllers[dir.channels[*idx].controller]; ctl.read_only)
      throw std::invalid_argument("equalization channel '" + b.channel + "': its controller is discovered and " +
                                  (ctl.bus_unknown ? "its bus is not known" : "not adopted") + " (read-only)");
    core::ChannelConfig& corech = plan.core.channels[*idx];
    corech.assigned = true;
    corech.limits = b.limits;
  }
  return plan;
}

}  // namespace eqd::daemon
