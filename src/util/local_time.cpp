// The system's local time zone through the C library (glibc reads TZ or /etc/localtime once and
// caches it; localtime_r is thread-safe). See local_time.hpp.
#include "eqd/util/local_time.hpp"

#include <ctime>

namespace eqd::util {

std::int64_t local_utc_offset_s(std::int64_t utc_s) {
  const std::time_t t = static_cast<std::time_t>(utc_s);
  std::tm tm{};
  if (localtime_r(&t, &tm) == nullptr) return 0;  // out of the C library's range: UTC
  return tm.tm_gmtoff;
}

}  // namespace eqd::util
