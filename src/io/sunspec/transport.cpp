/// @file transport.cpp
/// The transport `sunspec`: keys, checks, lease check, endpoint and link factory (a SunSpecLink).

#include "eqd/io/sunspec/transport.hpp"

#include "eqd/io/sunspec/link.hpp"
#include "eqd/io/sunspec/models.hpp"

namespace eqd::io::sunspec {

namespace {

SunSpecSettings& of(TransportSettings& s) { return dynamic_cast<SunSpecSettings&>(s); }
const SunSpecSettings& of(const TransportSettings& s) { return dynamic_cast<const SunSpecSettings&>(s); }

class SunSpecTransport final : public io::Transport {
 public:
  const char* name() const noexcept override { return "sunspec"; }
  const char* title() const noexcept override { return "SunSpec storage (Modbus TCP)"; }
  const std::vector<TransportKey>& keys() const override {
    static const std::vector<TransportKey> k{
        {"host",
         [](TransportSettings& s, const ValueReader& v) {
           std::string h = v.text();
           if (!is_host(h))
             v.refuse("an IPv4 or IPv6 address or an RFC 1123 host name, e.g. 192.168.10.40 or storage1.lab.example");
           of(s).host = std::move(h);
         }},
        {"port", [](TransportSettings& s,
                    const ValueReader& v) { of(s).port = static_cast<std::uint16_t>(v.integer(1, 65535, "")); }},
        {"unit_id",
         [](TransportSettings& s, const ValueReader& v) { of(s).unit_id = static_cast<int>(v.integer(0, 247, "")); }},
        {"base_address",
         [](TransportSettings& s, const ValueReader& v) {
           const std::string t = v.text();
           if (t == "auto")
             of(s).base_address = -1;
           else if (t == "0" || t == "40000" || t == "50000")
             of(s).base_address = std::stoi(t);
           else
             v.refuse("auto | 0 | 40000 | 50000");
         }},
    };
    return k;
  }
  std::unique_ptr<TransportSettings> defaults() const override { return std::make_unique<SunSpecSettings>(); }
  std::optional<SettingProblem> resolve(TransportSettings& s, std::uint16_t& channels,
                                        const NamedMaps&) const override {
    if (of(s).host.empty()) return SettingProblem{"host", "missing required key 'host' (transport sunspec)", {}, {}};
    if (channels == 0) channels = 1;
    if (channels != 1) return SettingProblem{"channels", "a SunSpec storage is one channel (expected 1)", {}, {}};
    return std::nullopt;
  }
  std::string lease_problem(const TransportSettings&, std::uint32_t lease_ms,
                            const std::string& controller) const override {
    // InOutWRte_RvrtTms counts whole seconds. As for every transport, the lease must reach the device
    // exactly: refused, not rounded (a longer lease would keep a setpoint alive longer than promised).
    if (!revert_seconds(lease_ms))
      return "lease_ms " + std::to_string(lease_ms) + " does not fit InOutWRte_RvrtTms of controller '" + controller +
             "' (1..65534 s)";
    if (lease_ms % 1000U != 0)
      return "cannot be written exactly to InOutWRte_RvrtTms of controller '" + controller +
             "' (whole seconds): choose a lease that is a multiple of 1000 ms";
    return {};
  }
  std::string endpoint(const TransportSettings& s) const override {
    const auto& t = of(s);
    return "sunspec:" + t.host + ":" + std::to_string(t.port) + "#" + std::to_string(t.unit_id);
  }
  std::unique_ptr<Link> make_link(const TransportSettings& s, const LinkSpec& spec,
                                  core::ControlCore& core) const override {
    const auto& t = of(s);
    SunSpecLinkConfig c;
    c.name = spec.name;
    c.host = t.host;
    c.port = t.port;
    c.unit_id = t.unit_id;
    c.base_address = t.base_address;
    c.poll_hz = spec.poll_hz;
    c.timeout_ms = spec.timeout_ms;
    c.backoff_initial_ms = spec.backoff_initial_ms;
    c.backoff_max_ms = spec.backoff_max_ms;
    c.read_only = spec.read_only;
    c.channel_slots = spec.channel_slots;
    c.on_error = spec.on_error;
    return std::make_unique<SunSpecLink>(std::move(c), slots_from_core(core, spec.channel_slots));
  }
};

}  // namespace

std::unique_ptr<io::Transport> make_sunspec_transport() { return std::make_unique<SunSpecTransport>(); }

}  // namespace eqd::io::sunspec
