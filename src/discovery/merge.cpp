// Merging known controllers into the configuration (see merge.hpp).
#include "eqd/discovery/merge.hpp"

#include <fnmatch.h>

#include <algorithm>

#include "eqd/io/modbus/register_map.hpp"
#include "eqd/io/modbus/transport.hpp"

namespace eqd::discovery {

const config::AdoptRule* find_adopt_rule(const std::string& name, const std::vector<config::AdoptRule>& rules) {
  const auto it = std::find_if(rules.begin(), rules.end(), [&](const config::AdoptRule& r) {
    return ::fnmatch(r.match.c_str(), name.c_str(), 0) == 0;
  });
  return it == rules.end() ? nullptr : &*it;
}

bool matches_adopt_rule(const std::string& name, const std::vector<config::AdoptRule>& rules) {
  return find_adopt_rule(name, rules) != nullptr;
}

namespace {

std::string endpoint(const std::string& host, std::uint16_t port, int unit) {
  return host + ":" + std::to_string(port) + "#" + std::to_string(unit);
}

bool has_bus(const config::Config& cfg, const std::string& name) {
  return std::any_of(cfg.buses.begin(), cfg.buses.end(), [&](const config::BusConfig& b) { return b.name == name; });
}

std::string bus_list(const config::Config& cfg) {
  std::string s;
  for (const auto& b : cfg.buses) s += (s.empty() ? "" : ", ") + b.name;
  return s.empty() ? "none" : s;
}

}  // namespace

BusChoice choose_bus(const config::Config& base, const ControllerRecord& r) {
  BusChoice out;
  // The operator's choice first (a command for this controller, then a rule of the file), then what
  // the controller says: the operator may know better, and may name the bus differently.
  std::string chosen;
  std::string from;
  if (r.adopted && !r.adopted_bus.empty()) {
    chosen = r.adopted_bus;
    from = "adopted on bus " + r.adopted_bus;
  } else if (const config::AdoptRule* rule = find_adopt_rule(r.name, base.discovery.adopt);
             rule != nullptr && !rule->bus.empty()) {
    chosen = rule->bus;
    from = "adopted on bus " + rule->bus + " by the discovery.adopt rule '" + rule->match + "'";
  }
  if (!chosen.empty()) {
    if (!has_bus(base, chosen)) {
      out.note = "controller " + r.name + " was " + from +
                 ", which the configuration does not have (buses: " + bus_list(base) + ")";
      return out;
    }
    out.bus = chosen;
    if (!r.bus.empty() && r.bus != chosen)
      out.note = "controller " + r.name + " announces bus " + r.bus + " but was " + from + ": it is on " + chosen;
    return out;
  }
  if (!r.bus.empty()) {
    if (has_bus(base, r.bus))
      out.bus = r.bus;
    else
      out.note = "controller " + r.name + " announces bus " + r.bus +
                 ", which eqd does not have (buses: " + bus_list(base) + ")";
    return out;
  }
  // Nothing to choose from: with one bus a controller that names none can only be on it.
  if (base.buses.size() == 1) {
    out.bus = base.buses.front().name;
    return out;
  }
  out.note = "controller " + r.name + " announces no bus and eqd has " + std::to_string(base.buses.size()) + " (" +
             bus_list(base) + ")";
  return out;
}

MergeResult merge_controllers(const config::Config& base, const std::vector<KnownController>& known) {
  MergeResult out;
  out.config = base;
  config::Config& cfg = out.config;
  for (const KnownController& k : known) {
    const ControllerRecord& r = k.record;
    const std::string ep = endpoint(r.host, r.port, r.unit_id);
    auto same = std::find_if(cfg.controllers.begin(), cfg.controllers.end(), [&](const config::ControllerConfig& c) {
      const auto* tcp = c.settings_as<io::modbus::TcpSettings>();
      return c.name == r.name || (tcp != nullptr && endpoint(tcp->host, tcp->port, tcp->unit_id) == ep);
    });
    if (same != cfg.controllers.end()) {
      out.skipped.push_back(
          r.name + ": " +
          (same->name == r.name
               ? "a controller of that name is already " +
                     std::string(same->origin == config::ControllerOrigin::config ? "configured" : "known")
               : "its endpoint " + ep + " belongs to controller " + same->name));
      continue;
    }
    if (cfg.buses.empty()) {
      out.skipped.push_back(r.name + ": no bus configured");
      continue;
    }
    // mDNS announces Modbus TCP controllers only (docs/discovery.md).
    config::ControllerConfig c;
    c.name = r.name;
    c.transport = "tcp";
    c.settings = config::transport_defaults("tcp");
    auto& tcp = *c.settings_as<io::modbus::TcpSettings>();
    tcp.host = r.host;
    tcp.port = r.port;
    tcp.unit_id = r.unit_id;
    tcp.profile = r.profile;
    c.channels = r.channels;
    const BusChoice bus = choose_bus(base, r);
    c.bus = bus.bus;
    c.bus_unknown = bus.bus.empty();
    if (!bus.note.empty())
      out.notes.push_back(bus.note + (c.bus_unknown
                                          ? "; it stays read-only and in no bus's balance until its bus is known "
                                            "(`eqctl controllers adopt " +
                                                r.name +
                                                " --bus BUS`, or a "
                                                "discovery.adopt rule with a bus)"
                                          : ""));
    c.origin = k.origin;
    c.identity = r.identity;
    // Commanding a controller whose bus is unknown would balance nothing (its channels are in no bus).
    c.read_only = !(r.adopted || matches_adopt_rule(r.name, base.discovery.adopt)) || c.bus_unknown;
    if (r.profile == io::modbus::kDefaultProfileName) {
      tcp.map = io::modbus::default_profile(r.channels);
    } else {
      const auto it = base.maps.find(r.profile);
      if (it == base.maps.end()) {
        out.skipped.push_back(r.name + ": unknown profile '" + r.profile +
                              "' (define it under maps: in the configuration)");
        continue;
      }
      if (r.channels > it->second.channel_count) {
        out.skipped.push_back(r.name + ": announces " + std::to_string(r.channels) + " channels but profile '" +
                              r.profile + "' describes " + std::to_string(it->second.channel_count));
        continue;
      }
      tcp.map = it->second;
    }
    cfg.controllers.push_back(std::move(c));
  }
  return out;
}

}  // namespace eqd::discovery
