#pragma once
/// @file transport.hpp
/// The Modbus transports `tcp` and `rtu` as plug-ins (eqd/io/transport.hpp): their settings of one
/// controller and their registry entries. Thread-safety: settings are plain data; the Transport
/// objects are immutable (any thread).

#include <cstdint>
#include <memory>
#include <string>

#include "eqd/io/modbus/register_map.hpp"
#include "eqd/io/transport.hpp"

namespace eqd::io::modbus {

/// Name of the built-in Modbus profile (the default of `profile`).
inline constexpr const char* kDefaultProfileName = "eqd-default";

/// What both Modbus transports share: the unit, the register map and its version. Plain data.
struct ModbusSettings : TransportSettings {
  int unit_id = 1;                            ///< controllers[].unit_id 0..247 (0 only for tcp)
  std::string profile = kDefaultProfileName;  ///< controllers[].profile: eqd-default or a key of maps
  RegisterMap map;                            ///< resolved from `profile` (built-in or maps.NAME)
};

/// controllers[] with `transport: tcp`. Plain data.
struct TcpSettings final : ModbusSettings {
  std::string host;          ///< controllers[].host (required): IP literal or host name
  std::uint16_t port = 502;  ///< controllers[].port 1..65535
  [[nodiscard]] std::unique_ptr<TransportSettings> clone() const override {
    return std::make_unique<TcpSettings>(*this);
  }
};

/// controllers[] with `transport: rtu`. Plain data.
struct RtuSettings final : ModbusSettings {
  std::string device;  ///< controllers[].device (required), e.g. /dev/ttyUSB0
  int baud = 19200;    ///< controllers[].baud (a standard rate)
  char parity = 'N';   ///< controllers[].parity: N | E | O
  int data_bits = 8;   ///< controllers[].data_bits: 7 | 8
  int stop_bits = 1;   ///< controllers[].stop_bits: 1 | 2
  [[nodiscard]] std::unique_ptr<TransportSettings> clone() const override {
    return std::make_unique<RtuSettings>(*this);
  }
};

/// The registry entries (registered by io's built-in list).
[[nodiscard]] std::unique_ptr<io::Transport> make_tcp_transport();
[[nodiscard]] std::unique_ptr<io::Transport> make_rtu_transport();

}  // namespace eqd::io::modbus
