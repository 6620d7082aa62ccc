#pragma once
/// @file views.hpp
/// What the reading commands return, built from a daemon::RigView: the core's lock-free snapshots,
/// the Directory and the links' statistics. Thread-safety: any thread except the control thread's
/// hot path; never blocks the control thread (the view's reads only).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "eqd/control/protocol.hpp"
#include "eqd/daemon/views.hpp"

namespace eqd::control {

/// The metrics endpoint as `status` reports it (field "metrics"). Plain data.
struct MetricsEndpointState {
  bool enabled = false;                ///< metrics.enabled
  bool listening = false;              ///< the HTTP server is bound and serving
  std::string listen;                  ///< metrics.listen (HOST:PORT)
  std::string error;                   ///< why it is not listening, e.g. "address in use"; empty when listening
  std::chrono::milliseconds retry{0};  ///< bind retry period while not listening
};

/// `status`: per bus power, energy, parameters and counts by health; controller counts; with
/// `metrics`, the metrics endpoint's state (field "metrics").
[[nodiscard]] nlohmann::json status_view(const daemon::RigView& rig, std::int64_t now_ns,
                                         const MetricsEndpointState* metrics = nullptr);
/// `channels`: one row per channel, filtered by bus (index; -1 = all) and role.
[[nodiscard]] nlohmann::json channels_view(const daemon::RigView& rig, std::int64_t now_ns, int bus, RoleFilter role);
/// `controllers`: endpoint, transport, source, link state and poll statistics of each controller.
[[nodiscard]] nlohmann::json controllers_view(const daemon::RigView& rig);

}  // namespace eqd::control
