/// @file transport.cpp
/// The Modbus transports `tcp` and `rtu`: their keys, checks, profile resolution, lease check,
/// endpoint text and link factory (a Poller).

#include "eqd/io/modbus/transport.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

#include "eqd/io/modbus/codec.hpp"
#include "eqd/io/modbus/poller.hpp"

namespace eqd::io::modbus {

namespace {

ModbusSettings& modbus_of(TransportSettings& s) { return dynamic_cast<ModbusSettings&>(s); }
const ModbusSettings& modbus_of(const TransportSettings& s) { return dynamic_cast<const ModbusSettings&>(s); }

void read_unit_id(TransportSettings& s, const ValueReader& v) {
  modbus_of(s).unit_id = static_cast<int>(v.integer(0, 247, ""));
}

void read_profile(TransportSettings& s, const ValueReader& v) {
  std::string text = v.text();
  if (const char* e = check_name(text)) v.refuse(e);
  modbus_of(s).profile = std::move(text);
}

// The profile named by `settings.profile`: the built-in one (made for `channels`) or a key of maps.
std::optional<SettingProblem> resolve_map(ModbusSettings& m, std::uint16_t& channels, const NamedMaps& maps) {
  if (m.profile == kDefaultProfileName) {
    m.map = default_profile(channels != 0 ? channels : std::uint16_t{16});
    if (channels == 0) channels = m.map.channel_count;
    return std::nullopt;
  }
  const auto* named = maps.register_maps;
  const auto it = named != nullptr ? named->find(m.profile) : decltype(named->end()){};
  if (named == nullptr || it == named->end()) {
    std::vector<std::string> known{kDefaultProfileName};
    if (named != nullptr)
      for (const auto& [name, map] : *named) known.push_back(name);
    return SettingProblem{"profile", "unknown profile '" + m.profile + "'", m.profile, std::move(known)};
  }
  m.map = it->second;
  if (channels == 0) channels = m.map.channel_count;
  if (channels > m.map.channel_count)
    return SettingProblem{"channels",
                          std::to_string(channels) + " is more than map '" + m.profile + "' describes (expected 1.." +
                              std::to_string(m.map.channel_count) + ")",
                          {},
                          {}};
  return std::nullopt;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string modbus_lease_problem(const ModbusSettings& m, std::uint32_t lease_ms, const std::string& controller) {
  if (!m.map.cmd_lease) return {};
  const double want = static_cast<double>(lease_ms);
  const Field& f = *m.map.cmd_lease;
  const std::string where = "cmd_lease of map '" + m.map.name + "' (controller '" + controller + "', " +
                            to_string(f.type) + ", scale " + num(f.scale) + " ms per count)";
  std::uint16_t regs[2] = {};
  if (encode_field(f, want, regs) != CodecStatus::ok) return "does not fit " + where;
  const double got = decode_field(f, regs);
  if (std::abs(got - want) > 1e-6 * want)
    return "cannot be written exactly to " + where + ": the controller would get " + num(got) +
           " ms (choose a lease that is a multiple of " + num(std::abs(f.scale)) + " ms, or fix the scale)";
  return {};
}

PollerConfig poller_config(const ModbusSettings& m, const LinkSpec& spec) {
  PollerConfig pc;
  pc.name = spec.name;
  pc.unit_id = m.unit_id;
  pc.poll_hz = spec.poll_hz;
  pc.timeout_ms = spec.timeout_ms;
  pc.backoff_initial_ms = spec.backoff_initial_ms;
  pc.backoff_max_ms = spec.backoff_max_ms;
  pc.map = m.map;
  pc.read_only = spec.read_only;
  // The built-in profile expects its own version; a custom map the version it names (0: it names none).
  pc.expected_profile_version = m.map.expected_profile_version;
  pc.channel_slots = spec.channel_slots;
  pc.on_error = spec.on_error;
  return pc;
}

class TcpTransport final : public io::Transport {
 public:
  const char* name() const noexcept override { return "tcp"; }
  const char* title() const noexcept override { return "Modbus TCP"; }
  const std::vector<TransportKey>& keys() const override {
    static const std::vector<TransportKey> k{
        {"host",
         [](TransportSettings& s, const ValueReader& v) {
           // It goes to getaddrinfo(): an IP literal or a host name, nothing else (a stray quote or a
           // pasted sentence would otherwise be resolved at run time, and fail there).
           std::string h = v.text();
           if (!is_host(h))
             v.refuse("an IPv4 or IPv6 address or an RFC 1123 host name, e.g. 192.168.10.21 or cab1.lab.example");
           dynamic_cast<TcpSettings&>(s).host = std::move(h);
         }},
        {"port",
         [](TransportSettings& s, const ValueReader& v) {
           dynamic_cast<TcpSettings&>(s).port = static_cast<std::uint16_t>(v.integer(1, 65535, ""));
         }},
        {"unit_id", read_unit_id},
        {"profile", read_profile},
    };
    return k;
  }
  std::unique_ptr<TransportSettings> defaults() const override { return std::make_unique<TcpSettings>(); }
  std::optional<SettingProblem> resolve(TransportSettings& s, std::uint16_t& channels,
                                        const NamedMaps& maps) const override {
    if (dynamic_cast<const TcpSettings&>(s).host.empty())
      return SettingProblem{"host", "missing required key 'host' (transport tcp)", {}, {}};
    return resolve_map(modbus_of(s), channels, maps);
  }
  std::string lease_problem(const TransportSettings& s, std::uint32_t lease_ms,
                            const std::string& controller) const override {
    return modbus_lease_problem(modbus_of(s), lease_ms, controller);
  }
  std::string endpoint(const TransportSettings& s) const override {
    const auto& t = dynamic_cast<const TcpSettings&>(s);
    return t.host + ":" + std::to_string(t.port) + "#" + std::to_string(t.unit_id);
  }
  std::unique_ptr<Link> make_link(const TransportSettings& s, const LinkSpec& spec,
                                  core::ControlCore& core) const override {
    const auto& t = dynamic_cast<const TcpSettings&>(s);
    PollerConfig pc = poller_config(t, spec);
    pc.transport = modbus::Transport::tcp;
    pc.host = t.host;
    pc.port = t.port;
    return std::make_unique<Poller>(pc, slots_from_core(core, pc.channel_slots));
  }
};

class RtuTransport final : public io::Transport {
 public:
  const char* name() const noexcept override { return "rtu"; }
  const char* title() const noexcept override { return "Modbus RTU"; }
  const std::vector<TransportKey>& keys() const override {
    static const std::vector<TransportKey> k{
        {"device",
         [](TransportSettings& s, const ValueReader& v) {
           std::string d = v.text();
           if (d.empty() || d.front() != '/') v.refuse("an absolute path");
           dynamic_cast<RtuSettings&>(s).device = std::move(d);
         }},
        {"baud",
         [](TransportSettings& s, const ValueReader& v) {
           static constexpr std::array<long long, 9> kRates{1200,  2400,  4800,   9600,  19200,
                                                            38400, 57600, 115200, 230400};
           const long long b = v.integer(1, 4000000, "baud");
           if (std::find(kRates.begin(), kRates.end(), b) == kRates.end())
             v.refuse("a standard rate: 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200 or 230400");
           dynamic_cast<RtuSettings&>(s).baud = static_cast<int>(b);
         }},
        {"parity",
         [](TransportSettings& s, const ValueReader& v) {
           const std::string p = v.text();
           char& parity = dynamic_cast<RtuSettings&>(s).parity;
           if (p == "N" || p == "none")
             parity = 'N';
           else if (p == "E" || p == "even")
             parity = 'E';
           else if (p == "O" || p == "odd")
             parity = 'O';
           else
             v.refuse("N | E | O");
         }},
        {"data_bits",
         [](TransportSettings& s, const ValueReader& v) {
           dynamic_cast<RtuSettings&>(s).data_bits = static_cast<int>(v.integer(7, 8, ""));
         }},
        {"stop_bits",
         [](TransportSettings& s, const ValueReader& v) {
           dynamic_cast<RtuSettings&>(s).stop_bits = static_cast<int>(v.integer(1, 2, ""));
         }},
        {"unit_id", read_unit_id},
        {"profile", read_profile},
    };
    return k;
  }
  std::unique_ptr<TransportSettings> defaults() const override { return std::make_unique<RtuSettings>(); }
  std::optional<SettingProblem> resolve(TransportSettings& s, std::uint16_t& channels,
                                        const NamedMaps& maps) const override {
    if (dynamic_cast<const RtuSettings&>(s).device.empty())
      return SettingProblem{"device", "missing required key 'device' (transport rtu)", {}, {}};
    if (modbus_of(s).unit_id == 0)
      return SettingProblem{"unit_id", "0 is the RTU broadcast address (expected 1..247 for transport rtu)", {}, {}};
    return resolve_map(modbus_of(s), channels, maps);
  }
  std::string lease_problem(const TransportSettings& s, std::uint32_t lease_ms,
                            const std::string& controller) const override {
    return modbus_lease_problem(modbus_of(s), lease_ms, controller);
  }
  std::string endpoint(const TransportSettings& s) const override {
    const auto& r = dynamic_cast<const RtuSettings&>(s);
    return r.device + "@" + std::to_string(r.baud) + "#" + std::to_string(r.unit_id);
  }
  std::unique_ptr<Link> make_link(const TransportSettings& s, const LinkSpec& spec,
                                  core::ControlCore& core) const override {
    const auto& r = dynamic_cast<const RtuSettings&>(s);
    PollerConfig pc = poller_config(r, spec);
    pc.transport = modbus::Transport::rtu;
    pc.device = r.device;
    pc.baud = r.baud;
    pc.parity = r.parity;
    pc.data_bits = r.data_bits;
    pc.stop_bits = r.stop_bits;
    return std::make_unique<Poller>(pc, slots_from_core(core, pc.channel_slots));
  }
};

}  // namespace

std::unique_ptr<io::Transport> make_tcp_transport() { return std::make_unique<TcpTransport>(); }
std::unique_ptr<io::Transport> make_rtu_transport() { return std::make_unique<RtuTransport>(); }

}  // namespace eqd::io::modbus
