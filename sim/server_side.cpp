// eqsim's list of server sides and the choice of the written configuration's transport.
#include "server_side.hpp"

#include <cstring>

namespace eqd::sim {

std::vector<std::unique_ptr<ServerSide>> builtin_server_sides() {
  std::vector<std::unique_ptr<ServerSide>> sides;
  // Port order: the rig's controllers first (base port + c), then the SunSpec devices, then the BTS
  // server; CAN takes no port.
  sides.push_back(make_modbus_tcp_side());
  sides.push_back(make_sunspec_side());
  sides.push_back(make_bts_side());
  sides.push_back(make_can_side());
  return sides;
}

ServerSide* config_side(const std::vector<std::unique_ptr<ServerSide>>& sides, const std::string& transport,
                        std::string& error) {
  if (transport.empty()) {
    ServerSide* chosen = nullptr;
    for (const auto& s : sides)
      if (s->wanted() && s->serves_rig_controllers() && s->commands()) chosen = s.get();
    if (chosen == nullptr) error = "no server side serves the rig's controllers";
    return chosen;
  }
  std::string names;
  for (const auto& s : sides) {
    if (s->serves_rig_controllers()) names += std::string(names.empty() ? "" : ", ") + s->transport();
    if (transport != s->transport()) continue;
    if (!s->serves_rig_controllers()) {
      error = "--eqd-transport " + transport + ": eqsim serves no rig controller over " + transport;
      return nullptr;
    }
    if (!s->wanted()) {
      error = "--eqd-transport " + transport + ": eqsim does not serve " + transport + " (its option is missing)";
      return nullptr;
    }
    return s.get();
  }
  error =
      "--eqd-transport " + transport + ": unknown transport (eqsim serves the rig's controllers over: " + names + ")";
  return nullptr;
}

}  // namespace eqd::sim
