#pragma once
/// @file transport.hpp
/// The transport `neware` (a Neware BTS device read through the BTS test software's TCP/XML API, read
/// only) as a plug-in (eqd/io/transport.hpp): its settings of one controller and its registry entry.
/// Thread-safety: settings are plain data; the Transport object is immutable (any thread).

#include <cstdint>
#include <memory>
#include <string>

#include "eqd/io/transport.hpp"

namespace eqd::io::neware {

/// controllers[] with `transport: neware`. Plain data.
struct NewareSettings final : TransportSettings {
  std::string host;          ///< controllers[].host (required): the PC running the BTS server
  std::uint16_t port = 502;  ///< controllers[].port: the BTS API port (TCP/XML, not Modbus)
  int device_id = -1;        ///< controllers[].device_id (required): the BTS device (devid)
  int device_type = -1;      ///< controllers[].device_type: auto (-1, from getdevinfo) | 1..255
  int unit_channels = 8;     ///< controllers[].unit_channels: channels per sub-device (unit)
  std::string username = "admin";
  std::string password = "neware";
  [[nodiscard]] std::unique_ptr<TransportSettings> clone() const override {
    return std::make_unique<NewareSettings>(*this);
  }
};

/// The registry entry (registered by io's built-in list).
[[nodiscard]] std::unique_ptr<io::Transport> make_neware_transport();

}  // namespace eqd::io::neware
