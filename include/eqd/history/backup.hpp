#pragma once
/// @file backup.hpp
/// eqd's backup archive (issue #16, docs/operations.md "Backup and restore"): one uncompressed POSIX
/// tar file (pax format, written and read with libarchive; `tar tvf` lists it) whose first member is
/// `manifest.json`, followed by the members it names: `history.db` (a consistent copy made with
/// SQLite's online backup API), `state.json`, `controllers-cache.json` and `eqd.yaml` (the running
/// configuration), each only when eqd had one. The manifest carries the format version, eqd's
/// version, the history schema version, the creation time, and each member's size and SHA-256.
///
/// Reading checks everything before anything is replaced: a bad checksum, a missing, extra or
/// truncated member, an unknown member name, a newer format or schema are refused with a message
/// naming what and where (BackupError). Thread-safety: the functions are reentrant.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace eqd::history {

/// The archive format this build writes and the newest it reads (manifest "format_version").
inline constexpr int kBackupFormatVersion = 1;
/// The manifest's "format" value: tells an eqd archive from any other tar file.
inline constexpr const char* kBackupFormatName = "eqd-backup";

/// A member of the archive: its name and where its bytes come from (a file) or go to.
struct BackupMember {
  std::string name;  ///< one of kBackupMemberNames
  std::string path;  ///< the file on disk
  /// The member's bytes when they are not a file (the configuration as eqd read it); nullopt: `path`.
  std::optional<std::string> bytes;
};

/// The member names an archive may hold, in the order they are written.
inline constexpr const char* kBackupMemberNames[] = {"history.db", "state.json", "controllers-cache.json", "eqd.yaml"};

/// A refused archive (or a backup that could not be made): the message says what and where.
struct BackupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What is written into the manifest besides the members.
struct BackupMeta {
  std::string eqd_version;      ///< EQD_VERSION
  int schema_version = 0;       ///< the history database's PRAGMA user_version (0: no database)
  std::int64_t created_ms = 0;  ///< UTC ms since 1970
  std::string config_path;      ///< where the configuration was read from (informative)
};

/// Writes the archive of `members` (each file read whole now; members whose file is missing are
/// skipped) to the open file `fd` (not closed; its offset is left at the end). Returns the manifest
/// written. Throws BackupError naming the member or step that failed.
nlohmann::json write_backup(int fd, const std::vector<BackupMember>& members, const BackupMeta& meta);

/// Reads and checks the whole archive `path` (manifest, every member's size and SHA-256, names,
/// versions against this build's kBackupFormatVersion and `max_schema_version`). Returns the
/// manifest. Throws BackupError.
nlohmann::json verify_backup(const std::string& path, int max_schema_version);

/// Where `eqd --restore` puts each member. Plain data.
struct RestoreTargets {
  std::string history_db;  ///< the history database file (its -wal and -shm are moved aside with it)
  std::string state_dir;   ///< state.json and controllers-cache.json go here
  std::string config;      ///< the configuration file eqd is started with
};

/// One restored file: where it went and where the file it replaced was moved ("" when none).
struct RestoredFile {
  std::string member, path, moved_aside;
};

/// Verifies `archive` (verify_backup), extracts each member beside its target, then moves each
/// existing target aside (`FILE.before-restore-<UTC stamp>`, never deleted) and renames the new file
/// in, owned like the file it replaces (or its directory) when run as root. Throws BackupError before
/// anything is replaced when the archive is refused.
std::vector<RestoredFile> restore_backup(const std::string& archive, const RestoreTargets& to, int max_schema_version);

/// SHA-256 of the file `path` as 64 lowercase hex digits. Throws BackupError.
std::string sha256_file(const std::string& path);

}  // namespace eqd::history
