#pragma once
/// @file transport_settings.hpp
/// Test helpers: a configured controller's transport settings as their concrete type. Each throws
/// std::logic_error when the controller uses another transport (so a test fails, never reads junk).

#include <stdexcept>

#include "eqd/config/config.hpp"
#include "eqd/io/can/transport.hpp"
#include "eqd/io/modbus/transport.hpp"

namespace eqd::test {

template <class S>
const S& settings_of(const io::SettingsBox& box) {
  const S* s = box.as<S>();
  if (s == nullptr) throw std::logic_error("the controller's settings are another transport's");
  return *s;
}

inline const io::modbus::ModbusSettings& modbus_of(const config::ControllerConfig& c) {
  return settings_of<io::modbus::ModbusSettings>(c.settings);
}
inline const io::modbus::TcpSettings& tcp_of(const config::ControllerConfig& c) {
  return settings_of<io::modbus::TcpSettings>(c.settings);
}
inline const io::modbus::RtuSettings& rtu_of(const config::ControllerConfig& c) {
  return settings_of<io::modbus::RtuSettings>(c.settings);
}
inline const io::can::CanSettings& can_of(const config::ControllerConfig& c) {
  return settings_of<io::can::CanSettings>(c.settings);
}

}  // namespace eqd::test
