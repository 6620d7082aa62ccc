// RAII helpers over the SQLite C API (see sqlite_db.hpp).
#include "sqlite_db.hpp"

namespace eqd::history::sqlite {

void check(sqlite3* db, int rc, const char* what) {
  if (rc == SQLITE_OK) return;
  const char* msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw Error(rc, std::string(what) + ": " + (msg != nullptr ? msg : sqlite3_errstr(rc)));
}

Database::Database(const std::string& path) {
  const int rc =
      sqlite3_open_v2(path.c_str(), &h_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = h_ != nullptr ? sqlite3_errmsg(h_) : sqlite3_errstr(rc);
    sqlite3_close_v2(h_);
    h_ = nullptr;
    throw Error(rc, "open " + path + ": " + msg);
  }
  sqlite3_extended_result_codes(h_, 1);
  // Another process (an operator's sqlite3 shell) may hold a lock for a moment: wait that long, on
  // the writer thread, rather than lose the write.
  sqlite3_busy_timeout(h_, 1000);
}

Database::~Database() { sqlite3_close_v2(h_); }

void Database::exec(std::string_view sql, const char* what) {
  const std::string s(sql);
  char* err = nullptr;
  const int rc = sqlite3_exec(h_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw Error(rc, std::string(what) + ": " + msg);
  }
}

std::string Database::text(const char* sql) {
  Statement st(*this, sql);
  return st.step() ? st.text(0) : std::string();
}

Statement::Statement(Database& db, std::string_view sql) : db_(db.handle()) {
  check(db_, sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s_, nullptr), "prepare");
}

Statement::~Statement() { sqlite3_finalize(s_); }

void Statement::bind(int i, std::int64_t v) { check(db_, sqlite3_bind_int64(s_, i, v), "bind"); }

void Statement::bind_real(int i, double v) { check(db_, sqlite3_bind_double(s_, i, v), "bind"); }

void Statement::bind(int i, std::string_view v) {
  if (v.empty()) {
    bind_null(i);
    return;
  }
  check(db_, sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT), "bind");
}

void Statement::bind_null(int i) { check(db_, sqlite3_bind_null(s_, i), "bind"); }

bool Statement::step() {
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  check(db_, rc, "step");
  return false;
}

void Statement::reset() noexcept {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

std::string Statement::text(int col) const {
  const unsigned char* t = sqlite3_column_text(s_, col);
  return t == nullptr
             ? std::string()
             : std::string(reinterpret_cast<const char*>(t), static_cast<std::size_t>(sqlite3_column_bytes(s_, col)));
}

}  // namespace eqd::history::sqlite
