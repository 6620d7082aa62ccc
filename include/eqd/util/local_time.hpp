#pragma once
/// @file local_time.hpp
/// The system's local time zone, for target schedules (core::expand_schedule takes it as its offset
/// function). Reads the time-zone database: never on the control thread.

#include <cstdint>

namespace eqd::util {

/// The local time zone's offset (local - UTC, s) at UTC instant `utc_s` (s since the epoch): the zone of
/// the process (TZ, else /etc/localtime), daylight saving time included. Thread-safe (localtime_r); any
/// thread but the control thread (it may read the time-zone database).
std::int64_t local_utc_offset_s(std::int64_t utc_s);

}  // namespace eqd::util
