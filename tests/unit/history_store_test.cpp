// The history database (include/eqd/history/store.hpp): schema and migrations, a newer schema refused,
// a corrupt file moved aside, retention, the bounded queue, records round-trip with every field, the
// journal fields, concurrent writers (TSan), and a writer killed with SIGKILL mid-write.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sqlite3.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "../fakes/temp_files.hpp"
#include "eqd/daemon/logging.hpp"
#include "eqd/history/store.hpp"

using eqd::history::AuditPage;
using eqd::history::AuditQuery;
using eqd::history::AuditRecord;
using eqd::history::HistoryOptions;
using eqd::history::HistoryStore;
using eqd::history::kSchemaVersion;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

eqd::test::ProcessTempDir& scratch() {
  static eqd::test::ProcessTempDir d("eqd-history-test");
  return d;
}

// A fresh database path for one test case (each case runs in its own process, but a case may use several).
std::string db_path(const std::string& name) {
  const fs::path p = scratch().path() / name;
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(p.string() + suffix, ec);
  return p.string();
}

// Plain SQLite access for checking what the store wrote (and preparing old or bad files).
struct Sql {
  explicit Sql(const std::string& path) { REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK); }
  ~Sql() { sqlite3_close(db); }
  std::string text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr)
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
  }
  void exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    INFO((err ? err : ""));
    sqlite3_free(err);
    REQUIRE(rc == SQLITE_OK);
  }
  sqlite3* db = nullptr;
};

AuditRecord sample(const std::string& command, const std::string& channel, std::int64_t uid = 1000) {
  AuditRecord r;
  r.time_ms = eqd::history::now_utc_ms();
  r.command = command;
  r.uid = uid;
  r.user = uid == 1000 ? "alice" : "";
  r.pid = 4242;
  r.role = "operator";
  r.channel = channel;
  r.bus = "main";
  r.request = json{{"cmd", command}, {"channel", channel}};
  r.ok = true;
  r.message = channel + " done";
  r.before = json{{"role", "test"}};
  r.after = json{{"role", "equalization"}, {"limits", {{"max_charge_W", 3000.0}}}};
  return r;
}

AuditPage ask(HistoryStore& s, AuditQuery q) {
  auto got = std::make_shared<std::promise<AuditPage>>();
  REQUIRE(s.query(q, [got](AuditPage p) { got->set_value(std::move(p)); }));
  auto f = got->get_future();
  REQUIRE(f.wait_for(5s) == std::future_status::ready);
  return f.get();
}

HistoryOptions options(const std::string& path, bool journal = false) {
  HistoryOptions o;
  o.path = path;
  o.journal = journal;
  return o;
}

}  // namespace

TEST_CASE("history store: a new database gets the latest schema in WAL mode", "[history]") {
  const std::string path = db_path("new.db");
  {
    HistoryStore s(options(path));
    CHECK(s.database_error().empty());
  }
  Sql db(path);
  CHECK(db.text("PRAGMA user_version") == std::to_string(kSchemaVersion));
  CHECK(db.text("PRAGMA journal_mode") == "wal");
  CHECK(db.text("SELECT name FROM sqlite_master WHERE name = 'audit_user'") == "audit_user");
}

TEST_CASE("history store: a version 1 database is migrated and keeps its rows", "[history]") {
  const std::string path = db_path("v1.db");
  {
    Sql db(path);
    db.exec(std::string(eqd::history::schema_migrations().at(0)));
    db.exec("PRAGMA user_version = 1");
    db.exec("INSERT INTO audit (time_ms, command, uid, user, request_json, ok) VALUES (" +
            std::to_string(eqd::history::now_utc_ms()) + ", 'assign', 7, 'bob', '{\"cmd\":\"assign\"}', 1)");
  }
  HistoryStore s(options(path));
  REQUIRE(s.database_error().empty());
  s.start();
  const AuditPage p = ask(s, AuditQuery{});
  REQUIRE(p.error.empty());
  REQUIRE(p.records.size() == 1);
  CHECK(p.records[0].user == "bob");
  CHECK(p.records[0].command == "assign");
  s.stop();
  Sql db(path);
  CHECK(db.text("PRAGMA user_version") == std::to_string(kSchemaVersion));
  CHECK(db.text("SELECT name FROM sqlite_master WHERE name = 'audit_channel'") == "audit_channel");
}

TEST_CASE("history store: a database of a newer schema is refused and left alone", "[history]") {
  const std::string path = db_path("newer.db");
  {
    Sql db(path);
    db.exec("CREATE TABLE future (x INTEGER)");
    db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion + 1));
  }
  HistoryStore s(options(path));
  CHECK_THAT(s.database_error(), Catch::Contains("newer than this eqd's"));
  s.start();
  CHECK(s.record(sample("assign", "cab1/1")));  // accepted for the journal, lost to the database
  const AuditPage p = ask(s, AuditQuery{});
  CHECK_THAT(p.error, Catch::Contains("newer"));
  CHECK(s.stats()->write_errors.load() == 1);
  s.stop();
  Sql db(path);
  CHECK(db.text("PRAGMA user_version") == std::to_string(kSchemaVersion + 1));
  CHECK(db.text("SELECT name FROM sqlite_master WHERE name = 'audit'").empty());
  for (const auto& e : fs::directory_iterator(scratch().path()))
    CHECK(e.path().filename().string().rfind("newer.db.corrupt", 0) != 0);
}

TEST_CASE("history store: a corrupt file is moved aside and a fresh database started", "[history]") {
  const std::string path = db_path("corrupt.db");
  const std::string garbage(8192, 'x');
  std::ofstream(path) << "this is not an SQLite database\n" << garbage;
  HistoryStore s(options(path));
  CHECK(s.database_error().empty());
  std::string moved;
  for (const auto& e : fs::directory_iterator(scratch().path()))
    if (e.path().filename().string().rfind("corrupt.db.corrupt-", 0) == 0) moved = e.path().string();
  REQUIRE_FALSE(moved.empty());
  std::ifstream in(moved);
  std::string first;
  std::getline(in, first);
  CHECK(first == "this is not an SQLite database");
  s.start();
  CHECK(s.record(sample("release", "cab1/2")));
  REQUIRE(s.flush(5s));
  CHECK(ask(s, AuditQuery{}).records.size() == 1);
}

TEST_CASE("history store: retention deletes rows older than retention_days", "[history]") {
  const std::string path = db_path("retention.db");
  HistoryOptions o = options(path);
  o.retention_days = 1;
  HistoryStore s(o);
  s.start();
  AuditRecord old_one = sample("assign", "cab1/1");
  old_one.time_ms -= 2 * 86'400'000;
  AuditRecord recent = sample("release", "cab1/1");
  recent.time_ms -= 86'400'000 - 60'000;  // a minute inside the window
  REQUIRE(s.record(old_one));
  REQUIRE(s.record(recent));
  REQUIRE(s.flush(5s));
  CHECK(ask(s, AuditQuery{}).records.size() == 2);
  s.prune_now();
  const AuditPage p = ask(s, AuditQuery{});
  REQUIRE(p.records.size() == 1);
  CHECK(p.records[0].command == "release");
}

TEST_CASE("history store: a full queue is counted and never blocks", "[history]") {
  const std::string path = db_path("queue.db");
  HistoryOptions o = options(path);
  o.queue_capacity = 4;
  HistoryStore s(o);  // not started: nothing drains the queue
  int accepted = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) accepted += s.record(sample("set", "")) ? 1 : 0;
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(accepted == 4);
  CHECK(s.stats()->dropped_queue_full.load() == 6);
  CHECK(took < 50ms);
  s.start();
  REQUIRE(s.flush(5s));
  CHECK(s.stats()->rows_written[0].load() == 4);
  CHECK(s.stats()->last_write_ms.load() > 0);
  CHECK(s.stats()->write_errors.load() == 0);
}

TEST_CASE("history store: records round-trip with every field, filters and pages", "[history]") {
  const std::string path = db_path("roundtrip.db");
  HistoryStore s(options(path));
  s.start();
  AuditRecord full = sample("assign", "cab2/16");
  full.time_ms = eqd::history::now_utc_ms() - 3'600'123;  // within retention
  AuditRecord refused = sample("set", "", 0);
  refused.bus = "aux";
  refused.channel.clear();
  refused.ok = false;
  refused.error_code = "forbidden";
  refused.message = "set needs the admin role";
  refused.after = nullptr;
  refused.time_ms = full.time_ms + 1000;
  REQUIRE(s.record(full));
  REQUIRE(s.record(refused));
  for (int i = 0; i < 5; ++i) REQUIRE(s.record(sample("release", "cab1/" + std::to_string(i + 1))));
  REQUIRE(s.flush(5s));
  CHECK(s.stats()->rows_written[0].load() == 7);

  AuditQuery by_channel;
  by_channel.channel = "cab2/16";
  AuditPage p = ask(s, by_channel);
  REQUIRE(p.records.size() == 1);
  const AuditRecord& r = p.records[0];
  CHECK(r.id > 0);
  CHECK(r.time_ms == full.time_ms);
  CHECK(r.command == "assign");
  CHECK(r.uid == 1000);
  CHECK(r.user == "alice");
  CHECK(r.pid == 4242);
  CHECK(r.role == "operator");
  CHECK(r.channel == "cab2/16");
  CHECK(r.bus == "main");
  CHECK(r.controller.empty());
  CHECK(r.request == full.request);
  CHECK(r.ok);
  CHECK(r.error_code.empty());
  CHECK(r.message == "cab2/16 done");
  CHECK(r.before == full.before);
  CHECK(r.after == full.after);

  AuditQuery by_user;
  by_user.user = "root";  // uid 0 without a name: the writer looks it up
  p = ask(s, by_user);
  REQUIRE(p.records.size() == 1);
  CHECK(p.records[0].uid == 0);
  CHECK_FALSE(p.records[0].ok);
  CHECK(p.records[0].error_code == "forbidden");
  CHECK(p.records[0].after.is_null());
  CHECK(eqd::history::to_json(p.records[0])["result"] == "forbidden");

  AuditQuery since;
  since.since_ms = full.time_ms + 1;
  CHECK(ask(s, since).records.size() == 6);

  AuditQuery page;
  page.limit = 3;
  p = ask(s, page);
  REQUIRE(p.records.size() == 3);
  CHECK(p.more);
  CHECK(p.records[0].id > p.records[2].id);  // newest first
  page.before_id = p.records[2].id;
  const AuditPage next = ask(s, page);
  REQUIRE(next.records.size() == 3);
  CHECK(next.records[0].id < p.records[2].id);
  page.before_id = next.records[2].id;
  const AuditPage last = ask(s, page);
  CHECK(last.records.size() == 1);
  CHECK_FALSE(last.more);
}

TEST_CASE("history store: audit records reach the journal with their fields", "[history]") {
  std::vector<std::vector<std::string>> entries;
  auto sink =
      std::make_shared<eqd::daemon::logging::JournalSink>("eqd-test", [&entries](const struct iovec* iov, int n) {
        std::vector<std::string> e;
        for (int i = 0; i < n; ++i) e.emplace_back(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
        entries.push_back(std::move(e));
        return 0;
      });
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("eqd", sink));
  {
    HistoryStore s(options("", true));  // journal only
    s.start();
    AuditRecord r = sample("assign", "cab2/16");
    r.ok = false;
    r.error_code = "refused_running";
    REQUIRE(s.record(r));
    REQUIRE(s.flush(5s));
    CHECK_THAT(ask(s, AuditQuery{}).error, Catch::Contains("history.enabled: false"));
  }
  spdlog::set_default_logger(previous);
  std::vector<std::string> audit;
  for (const auto& e : entries)
    for (const auto& f : e)
      if (f == std::string("MESSAGE_ID=") + eqd::history::kAuditMessageId) audit = e;
  REQUIRE_FALSE(audit.empty());
  auto has = [&audit](const std::string& f) { return std::find(audit.begin(), audit.end(), f) != audit.end(); };
  CHECK(has("EQD_AUDIT_USER=alice"));
  CHECK(has("EQD_AUDIT_UID=1000"));
  CHECK(has("EQD_AUDIT_PID=4242"));
  CHECK(has("EQD_AUDIT_ROLE=operator"));
  CHECK(has("EQD_AUDIT_COMMAND=assign"));
  CHECK(has("EQD_AUDIT_CHANNEL=cab2/16"));
  CHECK(has("EQD_AUDIT_RESULT=refused_running"));
  CHECK(has(R"(EQD_AUDIT_REQUEST={"channel":"cab2/16","cmd":"assign"})"));
  CHECK(has("PRIORITY=4"));  // a refusal is a warning
}

TEST_CASE("history store: concurrent writers and readers", "[history][stress]") {
  const std::string path = db_path("concurrent.db");
  HistoryStore s(options(path));
  s.start();
  std::atomic<int> accepted{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&s, &accepted, t] {
      for (int i = 0; i < 300; ++i)
        if (s.record(sample("release", "cab" + std::to_string(t) + "/" + std::to_string(i)))) ++accepted;
    });
  std::atomic<int> answers{0};
  for (int q = 0; q < 20; ++q) {
    AuditQuery aq;
    aq.limit = 10;
    (void)s.query(aq, [&answers](AuditPage) { ++answers; });
  }
  for (auto& w : writers) w.join();
  REQUIRE(s.flush(10s));
  CHECK(answers.load() == 20);
  CHECK(s.stats()->rows_written[0].load() + s.stats()->dropped_queue_full.load() == 1200);
  CHECK(static_cast<int>(s.stats()->rows_written[0].load()) == accepted.load());
}

TEST_CASE("history store: a writer killed with SIGKILL mid-write leaves a sound database", "[history]") {
  const std::string path = db_path("killed.db");
  { HistoryStore create(options(path)); }  // the schema exists before the child starts writing
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    HistoryStore s(options(path));
    s.start();
    for (int i = 0;; ++i) {
      (void)s.record(sample("assign", "cab1/" + std::to_string(i % 16 + 1)));
      if (i % 50 == 0) (void)s.flush(1s);
    }
  }
  // Let it write for a while, then kill it without warning, in the middle of some transaction.
  const auto until = std::chrono::steady_clock::now() + 5s;
  std::int64_t rows = 0;
  while (std::chrono::steady_clock::now() < until && rows < 500) {
    std::this_thread::sleep_for(20ms);
    Sql peek(path);
    rows = std::stoll("0" + peek.text("SELECT count(*) FROM audit"));
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  CHECK(rows >= 500);
  {
    Sql db(path);
    CHECK(db.text("PRAGMA integrity_check") == "ok");
  }
  HistoryStore again(options(path));
  CHECK(again.database_error().empty());
  again.start();
  const AuditPage p = ask(again, AuditQuery{});
  CHECK(p.error.empty());
  CHECK(p.records.size() == 100);
}

// Not run by CTest ("[.]"): the cost of an audit row and the size of the file, for docs/benchmarks.md.
TEST_CASE("history store: insert cost and size of audit rows", "[.][history][bench]") {
  const std::string path = db_path("bench.db");
  HistoryOptions o = options(path);
  o.queue_capacity = 200'000;
  HistoryStore s(o);
  constexpr int kRows = 100'000;
  for (int i = 0; i < kRows; ++i) REQUIRE(s.record(sample("assign", "cab1/" + std::to_string(i % 48 + 1))));
  const auto t0 = std::chrono::steady_clock::now();
  s.start();
  REQUIRE(s.flush(120s));
  const double batched_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kRows;
  // One record per transaction: what a trickle of requests costs.
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(s.record(sample("release", "cab2/1")));
    REQUIRE(s.flush(5s));
  }
  const double single_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t1).count() / 1000;
  s.stop();
  const double bytes = static_cast<double>(fs::file_size(path)) / (kRows + 1000);
  WARN("audit rows: " << batched_us << " us per row batched, " << single_us << " us per row alone (flush included); "
                      << bytes << " bytes per row");
}
