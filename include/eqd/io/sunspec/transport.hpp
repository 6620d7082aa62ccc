#pragma once
/// @file transport.hpp
/// The transport `sunspec` (SunSpec storage over Modbus TCP, one channel per device) as a plug-in
/// (eqd/io/transport.hpp): its settings of one controller and its registry entry. Thread-safety:
/// settings are plain data; the Transport object is immutable (any thread).

#include <cstdint>
#include <memory>
#include <string>

#include "eqd/io/transport.hpp"

namespace eqd::io::sunspec {

/// controllers[] with `transport: sunspec`. Plain data.
struct SunSpecSettings final : TransportSettings {
  std::string host;          ///< controllers[].host (required): IP literal or host name
  std::uint16_t port = 502;  ///< controllers[].port 1..65535
  int unit_id = 1;           ///< controllers[].unit_id 0..247
  int base_address = -1;     ///< controllers[].base_address: auto (-1) | 0 | 40000 | 50000
  [[nodiscard]] std::unique_ptr<TransportSettings> clone() const override {
    return std::make_unique<SunSpecSettings>(*this);
  }
};

/// The registry entry (registered by io's built-in list).
[[nodiscard]] std::unique_ptr<io::Transport> make_sunspec_transport();

}  // namespace eqd::io::sunspec
