#pragma once
/// @file cache.hpp
/// The connection cache: controllers that eqd reached through discovery, kept in the state
/// directory so that the next start connects to them at once, before (or without) mDNS.
/// File format and expiry: docs/discovery.md.
///
/// Thread-safety: plain data and free functions; the daemon uses them from the main thread only.

#include <cstdint>
#include <string>
#include <vector>

namespace eqd::discovery {

/// File name of the cache inside the state directory.
inline constexpr const char* kCacheFileName = "controllers-cache.json";
/// Value of the file's "format" field.
inline constexpr const char* kCacheFormat = "eqd-controller-cache";
/// Version of the file written; older versions are read, newer ones refused (moved aside).
inline constexpr int kCacheVersion = 1;

/// One known controller that is not in the configuration file. Plain data.
struct ControllerRecord {
  std::string name;          ///< controller name (channels are NAME/N)
  std::string identity;      ///< serial or mDNS instance name: the same controller across addresses
  std::string service_type;  ///< service type it was found under
  std::string host;          ///< IPv4 address
  std::uint16_t port = 0;
  int unit_id = 1;
  std::string profile = "eqd-default";
  std::uint16_t channels = 0;
  bool adopted = false;               ///< `eqctl controllers adopt` (rules are applied on top, not stored)
  std::string bus;                    ///< the bus it announces (TXT `bus`); empty: none announced
  std::string adopted_bus;            ///< `eqctl controllers adopt NAME --bus B`; empty: none given
  std::int64_t first_seen_s = 0;      ///< Unix time of the first discovery
  std::int64_t last_seen_s = 0;       ///< Unix time it was last announced or connected
  std::int64_t last_connected_s = 0;  ///< Unix time of the last successful connection (0: never)

  friend bool operator==(const ControllerRecord&, const ControllerRecord&) = default;
};

/// Result of load_cache(): the records, and what went wrong (nothing is lost: a file that cannot be
/// read is moved aside and named in `warning`).
struct CacheLoad {
  std::vector<ControllerRecord> records;
  std::string warning;   ///< non-empty: say it once (corrupt file moved aside, entries skipped)
  std::string moved_to;  ///< where a corrupt file was moved, if it was
};

/// Reads `path`. A missing file gives no records and no warning. A file that is not a valid cache
/// (bad JSON, wrong format or version, wrong field types) is renamed to
/// `path.corrupt-UNIXTIME` and reported; single entries with bad fields are skipped and reported.
/// Never throws. Main thread.
[[nodiscard]] CacheLoad load_cache(const std::string& path);

/// Writes the records atomically: a temporary file in the same directory, fsync, rename, fsync of
/// the directory. Returns an empty string or the reason it failed (the old file is then intact).
/// Main thread.
[[nodiscard]] std::string save_cache(const std::string& path, const std::vector<ControllerRecord>& records);

/// Removes records whose last_seen_s is more than `expiry_s` before `now_s`; returns their names.
/// Any thread (pure).
std::vector<std::string> expire(std::vector<ControllerRecord>& records, std::int64_t now_s, std::int64_t expiry_s);

}  // namespace eqd::discovery
