#pragma once
// Helpers shared by the control core's translation units (control_core.cpp, control_core_bus.cpp,
// control_core_requests.cpp). Internal to eqd_core: not installed, not included from elsewhere.
// Pure functions and constants; thread-safety: stateless.

#include <bit>
#include <cmath>
#include <cstdint>

#include "eqd/core/control_core.hpp"

namespace eqd::core::detail {

inline constexpr double kNsPerS = 1e9;
inline constexpr std::int64_t kNsPerMs = 1'000'000;
// A reader retries a slot this often before using the previous sample: enough to get past a write in
// progress (a few ns), too few for a preempted writer to delay the cycle.
inline constexpr int kReadAttempts = 4;
// Requests handled per cycle: bounds the cycle's work when a client floods the queue.
inline constexpr int kRequestsPerCycle = 64;
// Changes of a buffer's setpoint below this are not worth a new command (and a Modbus write).
inline constexpr double kSetpointResolution_W = 0.5;

template <class S>  // Sample or ControlCore::Reading
Health classify(const S& s, std::int64_t now_ns, std::int64_t max_age_ns) noexcept {
  if (s.receive_time_ns == 0 || s.state == ChannelState::offline) return Health::offline;
  if (!s.valid || !std::isfinite(s.power_W) || !std::isfinite(s.voltage_V)) return Health::invalid;
  if (now_ns - s.receive_time_ns > max_age_ns) return Health::stale;
  if (s.state == ChannelState::fault) return Health::fault;
  return Health::ok;
}

inline bool known(Health h) noexcept { return h == Health::ok || h == Health::fault; }

// std::isfinite of a float by its exponent bits: no conversion and no floating-point constants, which the
// per-channel loop would otherwise reload after every call it contains.
inline bool finite_bits(float f) noexcept { return (std::bit_cast<std::uint32_t>(f) & 0x7f800000U) != 0x7f800000U; }

// Implies that the state alone does not make classify() return offline or fault: zero or a power of two
// (idle 0, running 1, paused 2, equalizing 4; not fault 3, offline 5), in three instructions.
static_assert(static_cast<unsigned>(ChannelState::idle) == 0 && static_cast<unsigned>(ChannelState::running) == 1 &&
              static_cast<unsigned>(ChannelState::paused) == 2 && static_cast<unsigned>(ChannelState::fault) == 3 &&
              static_cast<unsigned>(ChannelState::equalizing) == 4 &&
              static_cast<unsigned>(ChannelState::offline) == 5);
inline bool ok_state(ChannelState s) noexcept {
  const unsigned v = static_cast<unsigned>(s);
  return (v & (v - 1U)) == 0;
}

// True when `c` already asks for (equalize, setpoint_W, lease_ms), the setpoint within resolution: then
// no new command (and no Modbus write) is needed.
inline bool command_current(const Command& c, bool equalize, double setpoint_W, std::uint32_t lease_ms) noexcept {
  return c.equalize == equalize && std::abs(c.setpoint_W - setpoint_W) < kSetpointResolution_W &&
         c.lease_ms == lease_ms && c.sequence != 0;
}

// Bitwise equality: unlike ==, tells -0.0 from 0.0 (and holds for a NaN and itself), so that a cached
// result is reused only for exactly the input it was computed from.
inline bool same_bits(double a, double b) noexcept {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

}  // namespace eqd::core::detail
