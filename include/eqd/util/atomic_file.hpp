#pragma once
/// @file atomic_file.hpp
/// Files that survive a power cut whole or not at all, and corrupt files kept as evidence. Used for
/// eqd's state (state.json), the discovery cache and the learned forecasts. Thread-safety: the
/// functions are reentrant; two writers of the same path must be serialised by their caller.

#include <string>
#include <string_view>

namespace eqd::util {

/// Write `bytes` to `path` so that after a crash the file is either the old one or the whole new one:
/// a temporary file beside it (`path.tmp`), fsync, rename over `path`, fsync of the directory. Creates
/// the directory (mode 0750) if it is missing. Throws std::system_error naming the step and the path;
/// the temporary file is removed on failure.
void write_atomically(const std::string& path, std::string_view bytes, unsigned mode = 0640);

/// Move a corrupt `path` aside to `path.<tag>-<UTC stamp>` (with `-N` appended when that name exists:
/// two corruptions within a second keep both copies) and return the new name. Throws std::system_error
/// when the rename fails.
std::string move_aside(const std::string& path, const std::string& tag);

/// move_aside() for a loader that goes on without the file: the new name, or "(could not move it
/// aside: WHY)" for its warning. Never throws.
std::string move_aside_for_log(const std::string& path, const std::string& tag) noexcept;

}  // namespace eqd::util
