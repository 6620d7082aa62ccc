#pragma once
/// @file schedule_text.hpp
/// The words of a target schedule window as people write them (issue #17): a time of day "HH:MM" and
/// the day names. Shared by eqd's configuration (src/config) and the harness's scenario files (sim/), so
/// that both read `buses[].schedule` alike; yaml-free, so the core-only build (sim, bench) has it.

#include <cstdint>
#include <string_view>

namespace eqd::core {

/// "17:00" -> 1020 minutes after midnight; "24:00" only where allow_24 (an end). -1: not a time of day
/// (the text must be exactly HH:MM). Pure; any thread.
int parse_hhmm(std::string_view s, bool allow_24) noexcept;

/// The days one word names, as ScheduleWindow::days bits (bit 0 = Monday): "mon".."sun", "weekdays",
/// "weekends", "all". 0: not a day word. Pure; any thread.
std::uint8_t parse_day_word(std::string_view s) noexcept;

/// What parse_hhmm accepts, for error messages ("expected " + this).
inline constexpr const char* kHhmmStartExpected = "HH:MM, 00:00..23:59";
inline constexpr const char* kHhmmEndExpected = "HH:MM, 00:01..24:00";
/// What parse_day_word accepts, for error messages.
inline constexpr const char* kDayWordsExpected = "mon, tue, wed, thu, fri, sat, sun, weekdays, weekends or all";

/// A window aims at a target or at caps, never both: nullptr when the keys given (target_W; at least
/// one of import_limit_W / export_limit_W) say one of them, else the message. Pure; any thread.
const char* window_aim_error(bool has_target, bool has_limit) noexcept;

}  // namespace eqd::core
