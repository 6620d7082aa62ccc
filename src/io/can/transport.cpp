/// @file transport.cpp
/// The CAN transport `can`: its keys, profile resolution (built-in classic or FD profile, or a key
/// of can_maps), identifier checks, lease check, endpoint text and link factory (a CanLink).

#include "eqd/io/can/transport.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "eqd/io/can/can_link.hpp"
#include "eqd/io/can/codec.hpp"

namespace eqd::io::can {

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

// A network interface name as the kernel takes it (IFNAMSIZ - 1 characters, no '/' or spaces).
bool is_interface_name(const std::string& s) {
  return !s.empty() && s.size() < 16 &&
         std::all_of(s.begin(), s.end(), [](char ch) { return ch > ' ' && ch != '/' && ch != ':' && ch < 127; });
}

class CanTransport final : public Transport {
 public:
  const char* name() const noexcept override { return "can"; }
  const char* title() const noexcept override { return "CAN (SocketCAN)"; }
  const std::vector<TransportKey>& keys() const override {
    static const std::vector<TransportKey> k{
        {"interface",
         [](TransportSettings& s, const ValueReader& v) {
           std::string i = v.text();
           if (!is_interface_name(i)) v.refuse("a network interface name of at most 15 characters, e.g. can0");
           dynamic_cast<CanSettings&>(s).interface = std::move(i);
         }},
        {"node_id",
         [](TransportSettings& s, const ValueReader& v) {
           dynamic_cast<CanSettings&>(s).node_id = static_cast<std::uint32_t>(v.integer(0, 0x1FFFFFFF, ""));
         }},
        {"can_profile",
         [](TransportSettings& s, const ValueReader& v) {
           std::string p = v.text();
           if (const char* e = check_name(p)) v.refuse(e);
           dynamic_cast<CanSettings&>(s).can_profile = std::move(p);
         }},
    };
    return k;
  }
  std::unique_ptr<TransportSettings> defaults() const override { return std::make_unique<CanSettings>(); }

  std::optional<SettingProblem> resolve(TransportSettings& s, std::uint16_t& channels,
                                        const NamedMaps& maps) const override {
    auto& c = dynamic_cast<CanSettings&>(s);
    if (c.interface.empty())
      return SettingProblem{"interface", "missing required key 'interface' (transport can), e.g. can0", {}, {}};
    const std::uint16_t n = channels != 0 ? channels : std::uint16_t{16};
    if (c.can_profile == kDefaultCanProfile || c.can_profile == kDefaultCanFdProfile) {
      if (n > 255)
        return SettingProblem{
            "channels", std::to_string(n) + " channels: the built-in CAN profiles carry 1..255", {}, {}};
      c.map = c.can_profile == kDefaultCanProfile ? default_can_profile(n) : default_can_fd_profile(n);
    } else {
      const auto* named = maps.signal_maps;
      const bool found = named != nullptr && named->count(c.can_profile) != 0;
      if (!found) {
        std::vector<std::string> known{kDefaultCanProfile, kDefaultCanFdProfile};
        if (named != nullptr)
          for (const auto& [name, m] : *named) known.push_back(name);
        return SettingProblem{"can_profile", "unknown CAN profile '" + c.can_profile + "'", c.can_profile,
                              std::move(known)};
      }
      c.map = named->at(c.can_profile);
      if (channels > c.map.channel_count)
        return SettingProblem{"channels",
                              std::to_string(channels) + " is more than CAN map '" + c.can_profile +
                                  "' describes (expected 1.." + std::to_string(c.map.channel_count) + ")",
                              {},
                              {}};
    }
    if (channels == 0) channels = c.map.channel_count;
    if (const auto issues = validate_ids(c.map, c.node_id); !issues.empty())
      return SettingProblem{"node_id", issues.front().message, {}, {}};
    return std::nullopt;
  }

  // Two controllers on one interface must not share an identifier: each would take the other's frames.
  std::optional<SettingProblem> conflict(const TransportSettings& a, const TransportSettings& b,
                                         const std::string& b_name) const override {
    const auto& x = dynamic_cast<const CanSettings&>(a);
    const auto& y = dynamic_cast<const CanSettings&>(b);
    if (x.interface != y.interface || x.map.frames.empty() || y.map.frames.empty()) return std::nullopt;
    for (const auto& i : frame_ids(x.map, x.node_id))
      for (const auto& j : frame_ids(y.map, y.node_id))
        if (i == j)
          return SettingProblem{"node_id",
                                "identifier " + std::to_string(i.id) + " is also used by controller '" + b_name +
                                    "' on " + x.interface + " (expected distinct node ids)",
                                {},
                                {}};
    return std::nullopt;
  }

  std::string lease_problem(const TransportSettings& s, std::uint32_t lease_ms,
                            const std::string& controller) const override {
    const auto& c = dynamic_cast<const CanSettings&>(s);
    const double want = static_cast<double>(lease_ms);
    for (const auto& frame : c.map.frames) {
      if (frame.role != FrameRole::command) continue;
      for (const auto& sig : frame.signals) {
        if (sig.name != "lease") continue;
        const std::string where = "the lease signal of CAN profile '" + c.can_profile + "' (controller '" + controller +
                                  "', scale " + num(sig.scale) + ", " + std::to_string(sig.length) + " bits)";
        std::uint8_t data[64] = {};
        if (encode_signal(sig, want, data) != CodecStatus::ok) return "does not fit " + where;
        const double got = decode_signal(sig, data);
        if (std::abs(got - want) > 1e-6 * want)
          return "cannot be written exactly to " + where + ": the controller would get " + num(got) +
                 " ms (choose a lease that is a multiple of " + num(std::abs(sig.scale)) + " ms, or fix the scale)";
      }
    }
    return {};
  }

  std::string endpoint(const TransportSettings& s) const override {
    const auto& c = dynamic_cast<const CanSettings&>(s);
    return c.interface + "#" + std::to_string(c.node_id);
  }

  std::unique_ptr<Link> make_link(const TransportSettings& s, const LinkSpec& spec,
                                  core::ControlCore& core) const override {
    const auto& c = dynamic_cast<const CanSettings&>(s);
    // CanLink has no read-only mode (only discovered Modbus TCP controllers are read-only): refuse
    // rather than command a controller eqd was told only to watch.
    if (spec.read_only)
      throw std::invalid_argument("controller '" + spec.name + "': transport can has no read-only link");
    CanLinkConfig lc;
    lc.name = spec.name;
    lc.interface = c.interface;
    lc.node_id = c.node_id;
    lc.map = c.map;
    lc.status_hz = spec.poll_hz;  // a CAN controller's poll_hz is its cyclic status rate
    // Down after ten missing status periods (or timeout_ms if longer): a late frame or two must not
    // flap the controller offline; the core judges staleness per sample with max_age_ms anyway.
    lc.timeout_ms = std::max(spec.timeout_ms, static_cast<int>(10000.0 / spec.poll_hz));
    lc.backoff_initial_ms = spec.backoff_initial_ms;
    lc.backoff_max_ms = spec.backoff_max_ms;
    lc.channel_slots = spec.channel_slots;
    lc.on_error = spec.on_error;
    return std::make_unique<CanLink>(lc, slots_from_core(core, lc.channel_slots));
  }
};

}  // namespace

std::unique_ptr<Transport> make_can_transport() { return std::make_unique<CanTransport>(); }

}  // namespace eqd::io::can
