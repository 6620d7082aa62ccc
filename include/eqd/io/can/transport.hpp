#pragma once
/// @file transport.hpp
/// The CAN transport `can` as a plug-in (eqd/io/transport.hpp): its settings of one controller and
/// its registry entry. Thread-safety: settings are plain data; the Transport is immutable.

#include <cstdint>
#include <memory>
#include <string>

#include "eqd/io/can/signal_map.hpp"
#include "eqd/io/transport.hpp"

namespace eqd::io::can {

/// controllers[] with `transport: can`. Plain data.
struct CanSettings final : TransportSettings {
  std::string interface;                         ///< controllers[].interface (required), e.g. can0
  std::uint32_t node_id = 1;                     ///< controllers[].node_id 0..0x1FFFFFFF, added to frame ids
  std::string can_profile = kDefaultCanProfile;  ///< eqd-default | eqd-default-fd | a key of can_maps
  SignalMap map;                                 ///< resolved from `can_profile`
  [[nodiscard]] std::unique_ptr<TransportSettings> clone() const override {
    return std::make_unique<CanSettings>(*this);
  }
};

/// The registry entry (registered by io's built-in list).
[[nodiscard]] std::unique_ptr<Transport> make_can_transport();

}  // namespace eqd::io::can
