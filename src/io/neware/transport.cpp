/// @file transport.cpp
/// The transport `neware`: keys, checks, endpoint and link factory (a NewareLink). Read only: it
/// says so to the registry (Transport::commands() false), so no channel of it can become a buffer.

#include "eqd/io/neware/transport.hpp"

#include "eqd/io/neware/link.hpp"

namespace eqd::io::neware {

namespace {

NewareSettings& of(TransportSettings& s) { return dynamic_cast<NewareSettings&>(s); }
const NewareSettings& of(const TransportSettings& s) { return dynamic_cast<const NewareSettings&>(s); }

// A user name or password goes into the XML as text (escaped): printable characters only, so that a
// value never carries a control character or a line break into a message.
std::string printable(const ValueReader& v) {
  std::string t = v.text();
  for (const char ch : t)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F) v.refuse("printable text without control characters");
  if (t.size() > 64) v.refuse("at most 64 characters");
  return t;
}

class NewareTransport final : public io::Transport {
 public:
  const char* name() const noexcept override { return "neware"; }
  const char* title() const noexcept override { return "Neware BTS (TCP/XML API, read only)"; }
  bool commands() const noexcept override { return false; }
  const std::vector<TransportKey>& keys() const override {
    static const std::vector<TransportKey> k{
        {"host",
         [](TransportSettings& s, const ValueReader& v) {
           std::string h = v.text();
           if (!is_host(h))
             v.refuse("an IPv4 or IPv6 address or an RFC 1123 host name, e.g. 192.168.10.50 or bts-pc.lab.example");
           of(s).host = std::move(h);
         }},
        {"port", [](TransportSettings& s,
                    const ValueReader& v) { of(s).port = static_cast<std::uint16_t>(v.integer(1, 65535, "")); }},
        {"device_id", [](TransportSettings& s,
                         const ValueReader& v) { of(s).device_id = static_cast<int>(v.integer(0, 65535, "")); }},
        {"device_type",
         [](TransportSettings& s, const ValueReader& v) {
           if (v.text() == "auto")
             of(s).device_type = -1;
           else
             of(s).device_type = static_cast<int>(v.integer(1, 255, ""));
         }},
        {"unit_channels", [](TransportSettings& s,
                             const ValueReader& v) { of(s).unit_channels = static_cast<int>(v.integer(1, 256, "")); }},
        {"username", [](TransportSettings& s, const ValueReader& v) { of(s).username = printable(v); }},
        {"password", [](TransportSettings& s, const ValueReader& v) { of(s).password = printable(v); }},
    };
    return k;
  }
  std::unique_ptr<TransportSettings> defaults() const override { return std::make_unique<NewareSettings>(); }
  std::optional<SettingProblem> resolve(TransportSettings& s, std::uint16_t& channels,
                                        const NamedMaps&) const override {
    const NewareSettings& n = of(s);
    if (n.host.empty()) return SettingProblem{"host", "missing required key 'host' (transport neware)", {}, {}};
    if (n.device_id < 0)
      return SettingProblem{"device_id", "missing required key 'device_id' (transport neware)", {}, {}};
    if (channels == 0) channels = static_cast<std::uint16_t>(n.unit_channels);
    // One inquire asks every channel of the controller: its reply stays far below the reply bound.
    if (channels > 1024) return SettingProblem{"channels", "a Neware BTS controller has at most 1024 channels", {}, {}};
    return std::nullopt;
  }
  std::string lease_problem(const TransportSettings&, std::uint32_t, const std::string&) const override {
    return {};  // nothing is ever commanded, so no lease has to reach the device
  }
  std::optional<SettingProblem> conflict(const TransportSettings& a, const TransportSettings& b,
                                         const std::string& b_name) const override {
    const NewareSettings& x = of(a);
    const NewareSettings& y = of(b);
    if (x.host == y.host && x.port == y.port && x.device_id == y.device_id)
      return SettingProblem{"device_id",
                            "device " + std::to_string(x.device_id) + " of " + x.host + ":" + std::to_string(x.port) +
                                " is already controller '" + b_name + "'",
                            {},
                            {}};
    return std::nullopt;
  }
  std::string endpoint(const TransportSettings& s) const override {
    const auto& t = of(s);
    return "neware:" + t.host + ":" + std::to_string(t.port) + "#" + std::to_string(t.device_id);
  }
  std::unique_ptr<Link> make_link(const TransportSettings& s, const LinkSpec& spec,
                                  core::ControlCore& core) const override {
    const auto& t = of(s);
    NewareLinkConfig c;
    c.name = spec.name;
    c.host = t.host;
    c.port = t.port;
    c.device_id = t.device_id;
    c.device_type = t.device_type;
    c.unit_channels = t.unit_channels;
    c.username = t.username;
    c.password = t.password;
    c.poll_hz = spec.poll_hz;
    c.timeout_ms = spec.timeout_ms;
    c.backoff_initial_ms = spec.backoff_initial_ms;
    c.backoff_max_ms = spec.backoff_max_ms;
    c.channel_slots = spec.channel_slots;
    c.on_error = spec.on_error;
    return std::make_unique<NewareLink>(std::move(c), slots_from_core(core, spec.channel_slots));
  }
};

}  // namespace

std::unique_ptr<io::Transport> make_neware_transport() { return std::make_unique<NewareTransport>(); }

}  // namespace eqd::io::neware
