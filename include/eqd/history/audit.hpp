#pragma once
/// @file audit.hpp
/// The audit log (issue #16): who asked eqd to change what, when, and what came of it. One record per
/// change request that the control API answers (assign, release, set, adopt, forget, including the
/// refused ones) and per daemon start, stop and reload. Records go to the journal (structured fields,
/// MESSAGE_ID kAuditMessageId) and to the history database's `audit` table (docs/operations.md).

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqd/history/report.hpp"

namespace eqd::history {

/// MESSAGE_ID of every audit record in the journal (generated once with `journalctl --new-id128`):
/// `journalctl MESSAGE_ID=a2896f1371314f359c89412c5a3f733d`.
inline constexpr const char* kAuditMessageId = "a2896f1371314f359c89412c5a3f733d";

/// One audit record. Plain data; copy freely.
struct AuditRecord {
  std::int64_t id = 0;       ///< row id in the database (0 until written); grows with time
  std::int64_t time_ms = 0;  ///< when eqd answered, UTC, ms since 1970
  std::string command;       ///< assign, release, set, adopt, forget; start, stop, reload (the daemon's own)
  std::int64_t uid = -1;     ///< the requester's uid (SO_PEERCRED; a signal's si_uid); -1 unknown
  std::string user;          ///< its user name (getpwuid_r); empty when the uid has none
  std::int64_t pid = -1;     ///< the requester's pid (SO_PEERCRED; a signal's si_pid); -1 unknown
  std::string role;          ///< viewer, operator, admin; empty for daemon events
  std::string channel;       ///< assign, release: the channel as named in the request
  std::string bus;           ///< set (and assign/adopt when given): the bus
  std::string controller;    ///< adopt, forget: the controller
  nlohmann::json request = nlohmann::json::object();  ///< the request with its fields, as JSON
  bool ok = false;                                    ///< the result: done (true) or refused / failed
  std::string error_code;                             ///< protocol error code when not ok ("forbidden", "invalid", ...)
  std::string message;                                ///< the answer's message (refusal reason, or what was done)
  nlohmann::json before;  ///< values before the request (channel role and limits, bus parameters...); null: none
  nlohmann::json after;   ///< values after it; null when nothing changed (refused) or unknown (timeout)
};

/// The record as one JSON object (the `audit` answer's rows, `eqctl audit --json`). Any thread.
[[nodiscard]] nlohmann::json to_json(const AuditRecord& r);
/// One line for the log and the journal's MESSAGE: "audit: uid 0 (root, admin) set bus main: ok". Any thread.
[[nodiscard]] std::string summary(const AuditRecord& r);
/// The user name of `uid` (getpwuid_r), or "" when it has none. Any thread (reentrant).
[[nodiscard]] std::string user_name(uid_t uid);
/// Now, UTC, in ms since 1970 (CLOCK_REALTIME). Any thread.
[[nodiscard]] std::int64_t now_utc_ms() noexcept;

/// Filter of an audit query (the control API's `audit`). Plain data.
struct AuditQuery {
  std::optional<std::int64_t> since_ms;   ///< only records at or after this UTC ms
  std::string user;                       ///< only this user name (empty: all)
  std::string channel;                    ///< only records of this channel (empty: all)
  std::optional<std::int64_t> before_id;  ///< paging: only records with a smaller id
  std::size_t limit = 100;                ///< at most this many (clamped to 1..kMaxAuditRows)
};
/// Most rows one audit query returns; a client pages with before_id for more.
inline constexpr std::size_t kMaxAuditRows = 1000;

/// The answer to an AuditQuery: newest first. Plain data.
struct AuditPage {
  std::vector<AuditRecord> records;
  bool more = false;  ///< older matching records exist (ask again with before_id = the last id)
  std::string error;  ///< non-empty: the query could not be answered (why)
};

/// Where audit records go, and what answers the control API's audit and report queries. Implemented
/// by HistoryStore (store.hpp); tests may fake it.
/// Thread-safety: both members from any thread; neither waits for the disk.
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  /// Queues `r` for the journal and the database. False (and counted) when the queue is full; never blocks.
  virtual bool record(AuditRecord r) noexcept = 0;
  /// Answers `q` later by calling `done` on the history writer thread (never on the caller's thread,
  /// never inline). False when it cannot be queued (then `done` is never called).
  virtual bool query(const AuditQuery& q, std::function<void(AuditPage)> done) noexcept = 0;
  /// Answers the report query `q` (report.hpp) later on the history writer thread, like query().
  /// False when it cannot be queued (then `done` is never called).
  virtual bool report(const ReportQuery& q, std::function<void(ReportAnswer)> done) noexcept = 0;
};

}  // namespace eqd::history
