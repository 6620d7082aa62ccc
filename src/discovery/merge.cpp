// Merging known controllers into the configuration (see merge.hpp).
#include "eqd/discovery/merge.hpp"

#include <fnmatch.h>

#include <algorithm>

#include "eqd/io/modbus/register_map.hpp"

namespace eqd::discovery {

bool matches_adopt_rule(const std::string& name, const std::vector<std::string>& patterns) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return ::fnmatch(p.c_str(), name.c_str(), 0) == 0; });
}

namespace {

std::string endpoint(const std::string& host, std::uint16_t port, int unit) {
  return host + ":" + std::to_string(port) + "#" + std::to_string(unit);
}

}  // namespace

MergeResult merge_controllers(const config::Config& base, const std::vector<KnownController>& known) {
  MergeResult out;
  out.config = base;
  config::Config& cfg = out.config;
  for (const KnownController& k : known) {
    const ControllerRecord& r = k.record;
    const std::string ep = endpoint(r.host, r.port, r.unit_id);
    auto same = std::find_if(cfg.controllers.begin(), cfg.controllers.end(), [&](const config::ControllerConfig& c) {
      return c.name == r.name ||
             (c.transport == config::Transport::tcp && endpoint(c.host, c.port, c.unit_id) == ep);
    });
    if (same != cfg.controllers.end()) {
      out.skipped.push_back(r.name + ": " +
                            (same->name == r.name ? "a controller of that name is already " + std::string(same->origin == config::ControllerOrigin::config ? "configured" : "known")
                                                  : "its endpoint " + ep + " belongs to controller " + same->name));
      continue;
    }
    if (cfg.buses.empty()) {
      out.skipped.push_back(r.name + ": no bus configured");
      continue;
    }
    config::ControllerConfig c;
    c.name = r.name;
    c.transport = config::Transport::tcp;
    c.host = r.host;
    c.port = r.port;
    c.unit_id = r.unit_id;
    c.profile = r.profile;
    c.channels = r.channels;
    c.bus = cfg.buses.front().name;
    c.origin = k.origin;
    c.identity = r.identity;
    c.read_only = !(r.adopted || matches_adopt_rule(r.name, base.discovery.adopt));
    if (r.profile == config::kDefaultProfileName) {
      c.map = io::modbus::default_profile(r.channels);
    } else {
      const auto it = base.maps.find(r.profile);
      if (it == base.maps.end()) {
        out.skipped.push_back(r.name + ": unknown profile '" + r.profile + "' (define it under maps: in the configuration)");
        continue;
      }
      if (r.channels > it->second.channel_count) {
        out.skipped.push_back(r.name + ": announces " + std::to_string(r.channels) + " channels but profile '" + r.profile +
                              "' describes " + std::to_string(it->second.channel_count));
        continue;
      }
      c.map = it->second;
    }
    cfg.controllers.push_back(std::move(c));
  }
  return out;
}

}  // namespace eqd::discovery
