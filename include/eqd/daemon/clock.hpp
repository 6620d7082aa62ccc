#pragma once
/// @file clock.hpp
/// The daemon's clock: CLOCK_MONOTONIC in ns, the clock of the control cycles and of samples'
/// receive_time_ns.

#include <cstdint>

namespace eqd::daemon {

/// Monotonic time in ns (CLOCK_MONOTONIC, the clock of samples' receive_time_ns). Any thread.
std::int64_t monotonic_ns() noexcept;

}  // namespace eqd::daemon
