#include "eqd/core/schedule_text.hpp"

namespace eqd::core {

int parse_hhmm(std::string_view s, bool allow_24) noexcept {
  if (s.size() != 5 || s[2] != ':') return -1;
  for (const std::size_t i : {0U, 1U, 3U, 4U})
    if (s[i] < '0' || s[i] > '9') return -1;
  const int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24))) return -1;
  return h * 60 + m;
}

std::uint8_t parse_day_word(std::string_view s) noexcept {
  static constexpr std::string_view kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  if (s == "weekdays") return 0x1f;
  if (s == "weekends") return 0x60;
  if (s == "all") return 0x7f;
  for (unsigned i = 0; i < 7; ++i)
    if (s == kDays[i]) return static_cast<std::uint8_t>(1U << i);
  return 0;
}

const char* window_aim_error(bool has_target, bool has_limit) noexcept {
  if (has_target && has_limit)
    return "has both target_W and a limit (expected target_W, or import_limit_W/export_limit_W)";
  if (!has_target && !has_limit)
    return "has neither target_W nor a limit (expected target_W, or import_limit_W/export_limit_W)";
  return nullptr;
}

}  // namespace eqd::core
