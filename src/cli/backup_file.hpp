#pragma once
/// @file backup_file.hpp
/// `eqctl backup FILE`: saving the archive eqd passed as an open file. Thread-safety: reentrant.
#include <cstdint>
#include <string>

namespace eqd::cli {

/// Copies the open file `fd` (from its offset 0) to `path` with this process's rights: a temporary
/// file beside it created 0600, fsync, then rename over `path` (a crash leaves the old file or the
/// whole new one, never half). `expected_bytes` (>= 0) must match what was copied. Closes `fd`.
/// Returns "" or why it failed (the temporary file is removed).
std::string save_archive(int fd, const std::string& path, std::int64_t expected_bytes);

}  // namespace eqd::cli
