#include "eqd/daemon/rig.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace eqd::daemon {

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

  for (std::size_t c = 0; c < cfg.controllers.size(); ++c) {
    const config::ControllerConfig& cc = cfg.controllers[c];
    ControllerInfo info;
    info.name = cc.name;
    info.transport = cc.transport == config::Transport::tcp ? "tcp" : cc.transport == config::Transport::can ? "can" : "rtu";
    info.endpoint = cc.transport == config::Transport::can ? cc.interface + "#" + std::to_string(cc.node_id)
                    : cc.transport == config::Transport::tcp
                        ? cc.host + ":" + std::to_string(cc.port) + "#" + std::to_string(cc.unit_id)
                        : cc.device + "@" + std::to_string(cc.baud) + "#" + std::to_string(cc.unit_id);
    info.source = cc.origin == config::ControllerOrigin::cache       ? ControllerSource::cache
                  : cc.origin == config::ControllerOrigin::discovery ? ControllerSource::discovery
                                                                     : ControllerSource::config;
    info.read_only = cc.read_only || cc.bus_unknown;
    info.bus_unknown = cc.bus_unknown;
    info.identity = cc.identity;
    info.first_channel = static_cast<core::ChannelIndex>(dir.channels.size());
    const std::uint16_t count = cc.channels ? cc.channels : cc.map.channel_count;
    info.channels = count;

    io::modbus::PollerConfig pc;
    pc.name = cc.name;
    pc.transport = cc.transport == config::Transport::tcp ? io::modbus::Transport::tcp : io::modbus::Transport::rtu;
    pc.host = cc.host;
    pc.port = cc.port;
    pc.device = cc.device;
    pc.baud = cc.baud;
    pc.parity = cc.parity;
    pc.data_bits = cc.data_bits;
    pc.stop_bits = cc.stop_bits;
    pc.unit_id = cc.unit_id;
    pc.poll_hz = cc.poll_hz;
    pc.timeout_ms = cc.timeout_ms;
    pc.backoff_initial_ms = cc.backoff_initial_ms;
    pc.backoff_max_ms = cc.backoff_max_ms;
    pc.map = cc.map;
    pc.read_only = cc.read_only;
    // The built-in profile expects its own version; a custom map the version it names (0: it names none).
    pc.expected_profile_version = cc.map.expected_profile_version;

    for (std::uint16_t n = 1; n <= count; ++n) {
      // An ignored channel gets no core slot at all: it is not part of any bus, so its absence can
      // neither hold the law nor count as free power. The poller skips it.
      if (std::find(cc.ignore_channels.begin(), cc.ignore_channels.end(), n) != cc.ignore_channels.end()) {
        pc.channel_slots.push_back(io::modbus::kNoChannel);
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
      pc.channel_slots.push_back(index);
    }
    if (cc.transport == config::Transport::can) {
      io::can::CanLinkConfig lc;
      lc.name = cc.name;
      lc.interface = cc.interface;
      lc.node_id = cc.node_id;
      lc.map = cc.can_map;
      lc.status_hz = cc.poll_hz;  // a CAN controller's poll_hz is its cyclic status rate
      // Down after ten missing status periods (or timeout_ms if longer): a late frame or two must not
      // flap the controller offline; the core judges staleness per sample with max_age_ms anyway.
      lc.timeout_ms = std::max(cc.timeout_ms, static_cast<int>(10000.0 / cc.poll_hz));
      lc.backoff_initial_ms = cc.backoff_initial_ms;
      lc.backoff_max_ms = cc.backoff_max_ms;
      for (const core::ChannelIndex i : pc.channel_slots)
        lc.channel_slots.push_back(i == io::modbus::kNoChannel ? io::can::kNoChannel : i);
      plan.can_links.emplace(c, std::move(lc));
    }
    dir.controllers.push_back(std::move(info));
    plan.pollers.push_back(std::move(pc));
  }
  for (const config::BufferConfig& b : cfg.buffers) {
    auto idx = dir.find_channel(b.channel);
    if (!idx) throw std::invalid_argument("equalization channel '" + b.channel + "' is not a known channel");
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
