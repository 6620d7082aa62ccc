/// @file transports.cpp
/// The transport registry and its built-in entries. Adding a built-in transport is one line in
/// builtins() (and its folder under io/); a test or a site's build adds its own with
/// register_transport().

#include <stdexcept>

#include "eqd/io/can/transport.hpp"
#include "eqd/io/modbus/transport.hpp"
#include "eqd/io/neware/transport.hpp"
#include "eqd/io/sunspec/transport.hpp"
#include "eqd/io/transport.hpp"

namespace eqd::io {

namespace {

std::vector<std::unique_ptr<Transport>> builtins() {
  std::vector<std::unique_ptr<Transport>> t;
  t.push_back(modbus::make_tcp_transport());
  t.push_back(modbus::make_rtu_transport());
  t.push_back(can::make_can_transport());
  t.push_back(sunspec::make_sunspec_transport());
  t.push_back(neware::make_neware_transport());
  return t;
}

// Filled on first use (a function-local static: thread-safe initialisation); register_transport()
// appends on the main thread before any configuration is read.
std::vector<std::unique_ptr<Transport>>& registry() {
  static std::vector<std::unique_ptr<Transport>> r = builtins();
  return r;
}

}  // namespace

const Transport* find_transport(std::string_view name) {
  for (const auto& t : registry())
    if (name == t->name()) return t.get();
  return nullptr;
}

std::vector<std::string> transport_names() {
  std::vector<std::string> out;
  for (const auto& t : registry()) out.emplace_back(t->name());
  return out;
}

std::vector<std::string> transports_owning(std::string_view key) {
  std::vector<std::string> out;
  for (const auto& t : registry())
    for (const TransportKey& k : t->keys())
      if (key == k.name) {
        out.emplace_back(t->name());
        break;
      }
  return out;
}

void register_transport(std::unique_ptr<Transport> transport) {
  if (!transport) throw std::invalid_argument("register_transport: no transport");
  if (find_transport(transport->name()) != nullptr)
    throw std::invalid_argument(std::string("transport '") + transport->name() + "' is already registered");
  if (const char* e = check_name(transport->name()))
    throw std::invalid_argument(std::string("transport name '") + transport->name() + "': expected " + e);
  registry().push_back(std::move(transport));
}

}  // namespace eqd::io
