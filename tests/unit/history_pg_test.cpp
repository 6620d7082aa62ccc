// The history in PostgreSQL (history.url), against a real server the test starts itself: Debian's
// postgresql 15, initdb into a temporary directory as an unprivileged user (nobody, through setpriv
// when the test runs as root), a Unix socket in that directory and no TCP. Audit and energy rows
// round-trip with their instance, `eqctl audit`'s queries, a server stopped mid-run (rows wait in the
// queue, the failures are counted, nothing is lost within the queue; beyond it the drops are
// counted), and the reconnection after the restart. Everything is removed at the end.
#include <catch2/catch.hpp>

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "eqd/history/store.hpp"

using eqd::history::AuditPage;
using eqd::history::AuditQuery;
using eqd::history::AuditRecord;
using eqd::history::BufferMinute;
using eqd::history::BusMinute;
using eqd::history::EnergyMinute;
using eqd::history::HistoryOptions;
using eqd::history::HistoryStore;
using eqd::history::ReportAnswer;
using eqd::history::ReportQuery;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kBin = "/usr/lib/postgresql/15/bin";

// One PostgreSQL server in a temporary directory, as `nobody` when run as root.
class PgServer {
 public:
  PgServer() {
    if (!fs::exists(kBin + "/initdb")) {
      skip_ = "PostgreSQL 15 is not installed (Debian package postgresql-15)";
      return;
    }
    if (::geteuid() == 0) {
      if (::getpwnam("nobody") == nullptr) {
        skip_ = "running as root and there is no user nobody to run PostgreSQL as";
        return;
      }
      as_ = "setpriv --reuid=nobody --regid=nogroup --clear-groups ";
    }
    char tmpl[] = "/tmp/eqd-pg-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    if (!as_.empty()) REQUIRE(run("chown nobody:nogroup " + dir_) == 0);
    REQUIRE(run(as_ + kBin + "/initdb -D " + dir_ + "/data -A trust -U eqd --no-sync >" + dir_ + "/initdb.log 2>&1") ==
            0);
    start();
    REQUIRE(run(as_ + kBin + "/psql -h " + dir_ + " -U eqd -d postgres -qc 'CREATE DATABASE eqd' >/dev/null") == 0);
  }
  ~PgServer() {
    if (dir_.empty()) return;
    (void)run(as_ + kBin + "/pg_ctl -D " + dir_ + "/data -m immediate stop >/dev/null 2>&1");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  void start() {
    // No TCP (listen_addresses empty), the socket in the test's directory.
    REQUIRE(run(as_ + kBin + "/pg_ctl -D " + dir_ + "/data -l " + dir_ + "/server.log -w -o \"-k " + dir_ +
                " -c listen_addresses='' -c fsync=off\" start >/dev/null") == 0);
  }
  void stop() { REQUIRE(run(as_ + kBin + "/pg_ctl -D " + dir_ + "/data -m fast -w stop >/dev/null") == 0); }

  [[nodiscard]] std::string url() const { return "postgresql:///eqd?host=" + dir_ + "&user=eqd"; }
  /// One value from psql.
  std::string sql(const std::string& query) const {
    const std::string out = dir_ + "/psql.out";
    REQUIRE(run(as_ + kBin + "/psql -h " + dir_ + " -U eqd -d eqd -tAc \"" + query + "\" >" + out) == 0);
    std::ifstream in(out);
    std::string s;
    std::getline(in, s);
    return s;
  }
  [[nodiscard]] const std::string& skip() const { return skip_; }

 private:
  static int run(const std::string& cmd) { return std::system(cmd.c_str()); }
  std::string dir_, as_, skip_;
};

PgServer& server() {
  static PgServer s;
  return s;
}

#define SKIP_WITHOUT_SERVER()               \
  do {                                      \
    if (!server().skip().empty()) {         \
      WARN("skipped: " << server().skip()); \
      return;                               \
    }                                       \
  } while (0)

AuditRecord rec(const std::string& user, const std::string& channel) {
  AuditRecord r;
  r.command = "assign";
  r.uid = 1000;
  r.user = user;
  r.pid = 42;
  r.role = "operator";
  r.channel = channel;
  r.request = json{{"cmd", "assign"}, {"channel", channel}};
  r.ok = true;
  r.after = json{{"role", "equalization"}};
  return r;
}

AuditPage ask(HistoryStore& s, const AuditQuery& q) {
  std::promise<AuditPage> p;
  auto f = p.get_future();
  REQUIRE(s.query(q, [&p](AuditPage page) { p.set_value(std::move(page)); }));
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

ReportAnswer ask_report(HistoryStore& s, const ReportQuery& q) {
  std::promise<ReportAnswer> p;
  auto f = p.get_future();
  REQUIRE(s.report(q, [&p](ReportAnswer a) { p.set_value(std::move(a)); }));
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

HistoryOptions pg(const std::string& instance, std::size_t capacity = 4096) {
  HistoryOptions o;
  o.url = server().url();
  o.instance = instance;
  o.queue_capacity = capacity;
  o.journal = false;
  return o;
}

}  // namespace

TEST_CASE("PostgreSQL: audit and energy rows round-trip with their instance", "[history][postgresql]") {
  SKIP_WITHOUT_SERVER();
  HistoryStore a(pg("rig-a"));
  REQUIRE(a.database_error().empty());
  HistoryStore b(pg("rig-b"));  // a second eqd on the same database
  a.start();
  b.start();
  REQUIRE(a.record(rec("alice", "cab1/1")));
  REQUIRE(a.record(rec("bob", "cab1/2")));
  REQUIRE(b.record(rec("carol", "cab1/1")));
  EnergyMinute m;
  m.minute_s = 1'700'000'040;
  BusMinute bus;
  bus.bus = "main";
  bus.energy.grid_import_J = 1000.0;
  bus.energy.free_import_J = 3000.0;
  bus.peak_net_W = 50.0;
  bus.peak_import_W = 40.0;
  bus.peak_free_import_W = 70.0;
  bus.samples = 300;
  m.buses.push_back(bus);
  m.buffers.push_back(BufferMinute{"cab2/16", "main", 2000.0, 0.0, 0.5});
  REQUIRE(a.record_energy(m));
  REQUIRE(a.record_energy(m));  // the same minute again (a restart within it): added to
  EnergyMinute other = m;       // the same bus and minute of another eqd: not in rig-a's report
  other.buses[0].energy.grid_import_J = 99.0;
  other.buses[0].peak_import_W = 900.0;
  REQUIRE(b.record_energy(other));
  REQUIRE(a.flush(10s));
  REQUIRE(b.flush(10s));
  CHECK(server().sql("SELECT count(*) FROM audit WHERE instance = 'rig-a'") == "2");
  CHECK(server().sql("SELECT count(*) FROM audit WHERE instance = 'rig-b'") == "1");
  CHECK(server().sql("SELECT grid_import_j FROM energy_bus WHERE instance = 'rig-a' AND bus = 'main'") == "2000");
  CHECK(server().sql("SELECT samples FROM energy_bus WHERE instance = 'rig-a'") == "600");
  CHECK(server().sql("SELECT charged_j FROM energy_buffer WHERE instance = 'rig-a' AND channel = 'cab2/16'") == "4000");
  CHECK(server().sql("SELECT peak_import_w FROM energy_bus WHERE instance = 'rig-a'") == "40");
  CHECK(server().sql("SELECT max(version) FROM eqd_schema") == "2");
  CHECK(a.stats()->rows_written[0].load() == 2);
  CHECK(a.stats()->rows_written[1].load() == 2);
  CHECK(a.stats()->rows_written[2].load() == 2);

  // eqctl report: this instance's sums per interval and bus (an empty interval has no bus), with the
  // peaks and the bus's buffers; a bus filter.
  ReportQuery rq;
  rq.edges_s = {1'699'999'980, 1'700'000'040, 1'700'000'100};
  const ReportAnswer rep = ask_report(a, rq);
  REQUIRE(rep.error.empty());
  REQUIRE(rep.intervals.size() == 2);
  CHECK(rep.intervals[0].from_s == 1'699'999'980);
  CHECK(rep.intervals[0].buses.empty());
  REQUIRE(rep.intervals[1].buses.size() == 1);
  const eqd::history::ReportBus& rb = rep.intervals[1].buses[0];
  CHECK(rb.bus == "main");
  CHECK(rb.energy.grid_import_J == 2000.0);
  CHECK(rb.energy.free_import_J == 6000.0);
  CHECK(rb.peak_import_W == 40.0);
  CHECK(rb.peak_free_import_W == 70.0);
  CHECK(rb.minutes == 1);
  CHECK(rb.charged_J == 4000.0);
  CHECK(rb.buffers == 1);
  rq.bus = "other";
  CHECK(ask_report(a, rq).intervals.at(1).buses.empty());

  SECTION("eqctl audit's queries see this instance's rows only, newest first, filtered and paged") {
    AuditQuery q;
    AuditPage all = ask(a, q);
    REQUIRE(all.error.empty());
    REQUIRE(all.records.size() >= 2);
    CHECK(all.records[0].user == "bob");
    CHECK(all.records[0].after["role"] == "equalization");
    CHECK(all.records[0].pid == 42);
    for (const AuditRecord& r : all.records) CHECK(r.user != "carol");
    q.channel = "cab1/1";
    const AuditPage one = ask(a, q);
    REQUIRE(one.records.size() >= 1);
    for (const AuditRecord& r : one.records) CHECK(r.channel == "cab1/1");
    AuditQuery paged;
    paged.limit = 1;
    const AuditPage first = ask(a, paged);
    CHECK(first.more);
    paged.before_id = first.records.at(0).id;
    CHECK(ask(a, paged).records.at(0).id < first.records[0].id);
    AuditQuery by_user;
    by_user.user = "alice";
    by_user.since_ms = eqd::history::now_utc_ms() - 3'600'000;
    CHECK(ask(a, by_user).records.size() >= 1);
  }
}

TEST_CASE("PostgreSQL stopped mid-run: rows wait in the queue, failures are counted, all arrive after the restart",
          "[history][postgresql]") {
  SKIP_WITHOUT_SERVER();
  HistoryStore s(pg("rig-down", 8));
  s.start();
  REQUIRE(s.record(rec("dave", "cab3/1")));
  REQUIRE(s.flush(10s));
  const std::string before = server().sql("SELECT count(*) FROM audit WHERE instance = 'rig-down'");
  server().stop();
  for (int i = 0; i < 5; ++i) REQUIRE(s.record(rec("dave", "cab3/" + std::to_string(i + 2))));
  // The writer tries, fails, counts, and keeps the rows (nothing lost within the queue).
  for (int i = 0; i < 100 && s.stats()->unreachable.load() == 0; ++i) std::this_thread::sleep_for(50ms);
  CHECK(s.stats()->unreachable.load() > 0);
  CHECK(s.stats()->write_errors.load() == 0);
  CHECK_FALSE(s.database_error().empty());
  // Queries answer at once, saying why (not after the rows that wait).
  const auto asked = std::chrono::steady_clock::now();
  CHECK_THAT(ask(s, AuditQuery{}).error, Catch::Contains("PostgreSQL"));
  CHECK(std::chrono::steady_clock::now() - asked < 1s);
  // Beyond the queue's capacity (8, with the 5 held) new rows are dropped, and counted.
  int refused = 0;
  for (int i = 0; i < 10; ++i) refused += s.record(rec("dave", "cab4/" + std::to_string(i))) ? 0 : 1;
  CHECK(refused >= 7);
  CHECK(s.stats()->dropped_queue_full.load() == static_cast<std::uint64_t>(refused));
  server().start();
  REQUIRE(s.flush(20s));
  const int expected = std::stoi(before) + 5 + (10 - refused);
  CHECK(server().sql("SELECT count(*) FROM audit WHERE instance = 'rig-down'") == std::to_string(expected));
  CHECK(s.database_error().empty());
  CHECK(s.stats()->write_errors.load() == 0);
}

// docs/benchmarks.md "History in PostgreSQL": insert cost and size per row, the same loads as the
// SQLite bench (history_store_test.cpp, history_energy_test.cpp). Hidden from CTest ("[.]").
TEST_CASE("PostgreSQL: insert cost and size of audit and energy rows", "[.][history][postgresql][bench]") {
  SKIP_WITHOUT_SERVER();
  constexpr int kRows = 20'000;
  HistoryOptions o = pg("bench");
  o.queue_capacity = 100'000;
  HistoryStore s(o);
  for (int i = 0; i < kRows; ++i) REQUIRE(s.record(rec("alice", "cab1/" + std::to_string(i % 48 + 1))));
  const auto t0 = std::chrono::steady_clock::now();
  s.start();
  REQUIRE(s.flush(300s));
  const double batched_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kRows;
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < 500; ++i) {
    REQUIRE(s.record(rec("bob", "cab2/1")));
    REQUIRE(s.flush(5s));
  }
  const double single_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t1).count() / 500;
  constexpr int kMinutes = 5'000;
  const auto t2 = std::chrono::steady_clock::now();
  for (int i = 0; i < kMinutes; ++i) {
    EnergyMinute m;
    m.minute_s = 1'700'000'000 + 60LL * i;
    for (const char* b : {"main", "aux"}) {
      BusMinute bus;
      bus.bus = b;
      bus.energy.grid_import_J = 1000.0 + i;
      bus.energy.free_import_J = 3000.0 + i;
      bus.peak_net_W = 50.0;
      bus.samples = 300;
      bus.window_pos = 0.5;
      m.buses.push_back(bus);
    }
    for (int k = 1; k <= 4; ++k)
      m.buffers.push_back(BufferMinute{"cab2/" + std::to_string(k), "main", 2000.0, 10.0, 0.4});
    REQUIRE(s.record_energy(std::move(m)));
  }
  REQUIRE(s.flush(300s));
  const double minute_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t2).count() / kMinutes;
  s.stop();
  server().sql("VACUUM ANALYZE");
  const double audit_bytes = std::stod(server().sql("SELECT pg_total_relation_size('audit')")) / (kRows + 500);
  const double energy_bytes = (std::stod(server().sql("SELECT pg_total_relation_size('energy_bus')")) +
                               std::stod(server().sql("SELECT pg_total_relation_size('energy_buffer')"))) /
                              (kMinutes * 6.0);
  WARN("PostgreSQL: audit " << batched_us << " us per row batched, " << single_us << " us per row alone; "
                            << audit_bytes << " bytes per row; energy " << minute_us << " us per minute (6 rows), "
                            << energy_bytes << " bytes per row");
}
