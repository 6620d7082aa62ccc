#pragma once
// Small RAII helpers over the SQLite C API for the history store (private to src/history).
// Thread-safety: a Database and its statements belong to one thread at a time.
#include <sqlite3.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace eqd::history::sqlite {

/// An SQLite failure with its primary result code (SQLITE_CORRUPT, SQLITE_NOTADB, ...).
struct Error : std::runtime_error {
  Error(int c, const std::string& what) : std::runtime_error(what), code(c) {}
  int code;
  /// True when the file is not a database or damaged: it is moved aside, not retried.
  [[nodiscard]] bool corrupt() const noexcept {
    const int primary = code & 0xff;
    return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
  }
};

/// The database's version is newer than this build knows: refused, never migrated down.
struct NewerSchema : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One open connection.
class Database {
 public:
  /// Opens (creates) `path` read-write. Throws Error.
  explicit Database(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  /// Runs `sql` (one or more statements, no results). Throws Error naming `what`.
  void exec(std::string_view sql, const char* what);
  /// The first column of the first row of `sql` as text ("" if none). Throws Error.
  std::string text(const char* sql);
  [[nodiscard]] sqlite3* handle() const noexcept { return h_; }

 private:
  sqlite3* h_ = nullptr;
};

/// One prepared statement, reset for reuse.
class Statement {
 public:
  Statement(Database& db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind(int i, std::int64_t v);
  void bind_real(int i, double v);
  void bind(int i, std::string_view v);  ///< an empty string binds NULL
  void bind_null(int i);
  /// Steps once: true while a row is there, false when done. Throws Error.
  bool step();
  /// Resets the statement and clears its bindings for the next use.
  void reset() noexcept;
  [[nodiscard]] std::int64_t int64(int col) const noexcept { return sqlite3_column_int64(s_, col); }
  [[nodiscard]] double real(int col) const noexcept { return sqlite3_column_double(s_, col); }
  [[nodiscard]] bool is_null(int col) const noexcept { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  [[nodiscard]] std::string text(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

/// Throws Error(code, what + ": " + sqlite's message) unless `rc` is SQLITE_OK.
void check(sqlite3* db, int rc, const char* what);

}  // namespace eqd::history::sqlite
