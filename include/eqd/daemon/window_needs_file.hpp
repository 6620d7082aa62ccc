#pragma once
/// @file window_needs_file.hpp
/// Valley filling's learned window needs (docs/control.md "Valley filling"), kept across restarts in
/// state_dir/window_needs.json, so that the first evening after a restart or an upgrade is prepared
/// for like any other. Each need is stored under its bus's name and its window's definition (days,
/// start, end, caps): a window whose definition changed in the configuration starts again from
/// nothing, as a new window would. Thread-safety: free functions, reentrant; one writer per path.

#include <string>
#include <vector>

#include "eqd/core/schedule.hpp"
#include "eqd/core/valley_fill.hpp"

namespace eqd::daemon {

/// The key of a window in the file: "days=0x1f start=17:00 end=20:00 mode=caps import_limit_W=20000
/// export_limit_W=-" ("-": the bus's own).
std::string window_key(const core::ScheduleWindow& w);

/// The file's text for the buses' windows (windows[b], needs[b] by window index; names[b]).
std::string window_needs_text(const std::vector<std::string>& names,
                              const std::vector<std::vector<core::ScheduleWindow>>& windows,
                              const std::vector<core::WindowNeeds>& needs);

/// Needs per bus (by window index of `windows`) from the file's text: entries of unknown buses or
/// windows are left out. Throws std::runtime_error naming what is wrong in a malformed text.
std::vector<core::WindowNeeds> parse_window_needs(const std::string& text, const std::vector<std::string>& names,
                                                  const std::vector<std::vector<core::ScheduleWindow>>& windows);

/// Reads `path`: no file gives empty needs; a corrupt one is moved aside (util::move_aside, tag
/// "corrupt") with a warning in the log, and the needs start empty. Never throws.
std::vector<core::WindowNeeds> load_window_needs(const std::string& path, const std::vector<std::string>& names,
                                                 const std::vector<std::vector<core::ScheduleWindow>>& windows);

}  // namespace eqd::daemon
