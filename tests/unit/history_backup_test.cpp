// Backup archives (include/eqd/history/backup.hpp, HistoryStore::backup): a backup made while records
// are being written is a consistent database; the archive round-trips through restore (old files
// moved aside, not deleted); a tampered checksum, a newer schema or format, a truncated archive, a
// missing or extra member and a tar that is not an eqd backup are refused before anything changes.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <thread>

#include "../fakes/temp_files.hpp"
#include "eqd/history/backup.hpp"
#include "eqd/history/store.hpp"

using eqd::history::AuditRecord;
using eqd::history::BackupError;
using eqd::history::BackupJob;
using eqd::history::BackupMember;
using eqd::history::BackupMeta;
using eqd::history::BackupResult;
using eqd::history::HistoryOptions;
using eqd::history::HistoryStore;
using eqd::history::kSchemaVersion;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

eqd::test::ProcessTempDir& scratch() {
  static eqd::test::ProcessTempDir d("eqd-backup-test");
  return d;
}

std::string fresh_dir(const std::string& name) {
  const fs::path p = scratch().path() / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string sql_text(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string out;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr)
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

AuditRecord rec(int i) {
  AuditRecord r;
  r.command = "assign";
  r.uid = 1000;
  r.user = "lab";
  r.channel = "cab1/" + std::to_string(i);
  r.request = json{{"cmd", "assign"}, {"channel", r.channel}};
  r.ok = true;
  return r;
}

// An installation in `dir`: a database with `rows` audit records, state.json, a cache and a config.
struct Install {
  std::string dir, db, config;
};

Install make_install(const std::string& name, int rows) {
  Install in{fresh_dir(name), "", ""};
  in.db = in.dir + "/history.db";
  in.config = in.dir + "/eqd.yaml";
  HistoryStore s(HistoryOptions{in.db, 730, 4096, false, {}, {}});
  s.start();
  for (int i = 0; i < rows; ++i) REQUIRE(s.record(rec(i)));
  REQUIRE(s.flush(5s));
  s.stop();
  spit(in.dir + "/state.json", R"({"version":1,"from":")" + name + "\"}\n");
  spit(in.dir + "/controllers-cache.json", R"({"controllers":[]})"
                                           "\n");
  spit(in.config, "state_dir: " + in.dir + "\n# " + name + "\n");
  return in;
}

BackupJob job_for(const Install& in) {
  BackupJob job;
  job.files = {{"state.json", in.dir + "/state.json", std::nullopt},
               {"controllers-cache.json", in.dir + "/controllers-cache.json", std::nullopt},
               {"eqd.yaml", in.config, slurp(in.config)}};
  job.meta.eqd_version = "test";
  job.meta.config_path = in.config;
  job.temp_dir = in.dir;
  return job;
}

// Runs a backup through the store and saves the archive it passes back to `out`.
json backup_to(HistoryStore& s, BackupJob job, const std::string& out) {
  std::promise<BackupResult> p;
  auto f = p.get_future();
  REQUIRE(s.backup(std::move(job), [&p](BackupResult r) { p.set_value(std::move(r)); }));
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  BackupResult r = f.get();
  INFO(r.error);
  REQUIRE(r.error.empty());
  REQUIRE(r.archive);
  std::string bytes;
  char buf[65536];
  for (ssize_t n; (n = ::read(r.archive->get(), buf, sizeof buf)) > 0;) bytes.append(buf, static_cast<std::size_t>(n));
  CHECK(static_cast<std::int64_t>(bytes.size()) == r.size_bytes);
  spit(out, bytes);
  return r.manifest;
}

std::string archive_of(const std::string& name, int rows) {
  const Install in = make_install(name, rows);
  HistoryStore s(HistoryOptions{in.db, 730, 4096, false, {}, {}});
  s.start();
  const std::string out = scratch().path().string() + "/" + name + ".tar";
  (void)backup_to(s, job_for(in), out);
  return out;
}

// Writes an archive by hand (write_backup) of the given members and manifest fields.
std::string handmade(const std::string& name, const std::vector<BackupMember>& members, int schema) {
  const std::string out = scratch().path().string() + "/" + name + ".tar";
  const int fd = ::open(out.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  BackupMeta meta;
  meta.eqd_version = "test";
  meta.schema_version = schema;
  meta.created_ms = 1'700'000'000'000;
  (void)eqd::history::write_backup(fd, members, meta);
  ::close(fd);
  return out;
}

std::string refusal(const std::string& archive) {
  try {
    (void)eqd::history::verify_backup(archive, kSchemaVersion);
  } catch (const BackupError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a backup holds every member with its size and SHA-256, and verifies", "[history][backup]") {
  const Install in = make_install("members", 3);
  HistoryStore s(HistoryOptions{in.db, 730, 4096, false, {}, {}});
  s.start();
  const std::string out = in.dir + "/../members.tar";
  const json m = backup_to(s, job_for(in), out);
  CHECK(m["format"] == "eqd-backup");
  CHECK(m["schema_version"] == kSchemaVersion);
  REQUIRE(m["files"].size() == 4);
  CHECK(m["files"][0]["name"] == "history.db");
  CHECK(m["files"][1]["name"] == "state.json");
  CHECK(m["files"][1]["sha256"] == eqd::history::sha256_file(in.dir + "/state.json"));
  CHECK(m["files"][3]["size"] == slurp(in.config).size());
  CHECK(refusal(out).empty());
  // No temporary file is left beside the database or in the state directory.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(in.dir))
    entries += e.path().filename().string().find("backup") != std::string::npos;
  CHECK(entries == 0);
}

TEST_CASE("a backup taken while records are written is one consistent database", "[history][backup]") {
  const Install in = make_install("busy", 0);
  HistoryStore s(HistoryOptions{in.db, 730, 1 << 16, false, {}, {}});
  s.start();
  std::atomic<bool> stop{false};
  std::atomic<int> queued{0};
  std::thread writer([&] {
    while (!stop.load()) {
      if (s.record(rec(queued.load()))) ++queued;
      std::this_thread::sleep_for(50us);
    }
  });
  std::this_thread::sleep_for(100ms);
  const std::string out = scratch().path().string() + "/busy.tar";
  (void)backup_to(s, job_for(in), out);
  const int at_backup = queued.load();
  stop = true;
  writer.join();
  REQUIRE(s.flush(5s));
  const Install target = {fresh_dir("busy-restored"), "", ""};
  const auto done = eqd::history::restore_backup(
      out, {target.dir + "/history.db", target.dir, target.dir + "/eqd.yaml"}, kSchemaVersion);
  CHECK(done.size() == 4);
  CHECK(sql_text(target.dir + "/history.db", "PRAGMA integrity_check") == "ok");
  const int rows = std::stoi(sql_text(target.dir + "/history.db", "SELECT count(*) FROM audit"));
  CHECK(rows > 0);
  CHECK(rows <= at_backup);
  // Rows are whole transactions: ids are 1..rows with no gap.
  CHECK(sql_text(target.dir + "/history.db", "SELECT max(id) FROM audit") == std::to_string(rows));
}

TEST_CASE("restore puts every member back and moves the replaced files aside", "[history][backup]") {
  const std::string archive = archive_of("source", 5);
  const Install now = make_install("target", 1);  // the installation restored into: other contents
  const auto done = eqd::history::restore_backup(archive, {now.db, now.dir, now.config}, kSchemaVersion);
  REQUIRE(done.size() == 4);
  CHECK(sql_text(now.db, "SELECT count(*) FROM audit") == "5");
  CHECK(slurp(now.dir + "/state.json").find("\"source\"") != std::string::npos);
  CHECK(slurp(now.config).find("# source") != std::string::npos);
  for (const auto& f : done) {
    INFO(f.member);
    REQUIRE_FALSE(f.moved_aside.empty());
    CHECK(fs::exists(f.moved_aside));
    CHECK(f.moved_aside.find(".before-restore-") != std::string::npos);
  }
  CHECK(sql_text(done[0].moved_aside, "SELECT count(*) FROM audit") == "1");  // the old database, kept
  CHECK(slurp(done[1].moved_aside).find("\"target\"") != std::string::npos);
}

TEST_CASE("a tampered member is refused for its checksum and nothing is replaced", "[history][backup]") {
  const std::string archive = archive_of("tamper", 2);
  std::string bytes = slurp(archive);
  const std::size_t at = bytes.find("\"from\":\"tamper\"");  // state.json's content inside the tar
  REQUIRE(at != std::string::npos);
  bytes[at + 9] = 'T';
  spit(archive, bytes);
  CHECK_THAT(refusal(archive), Catch::Contains("state.json: SHA-256 mismatch"));
  const Install now = make_install("tamper-target", 1);
  CHECK_THROWS_AS(eqd::history::restore_backup(archive, {now.db, now.dir, now.config}, kSchemaVersion), BackupError);
  CHECK(sql_text(now.db, "SELECT count(*) FROM audit") == "1");
  CHECK(slurp(now.dir + "/state.json").find("\"tamper-target\"") != std::string::npos);
  int aside = 0;
  for (const auto& e : fs::directory_iterator(now.dir))
    aside += e.path().string().find("before-restore") != std::string::npos;
  CHECK(aside == 0);
}

TEST_CASE("an archive from a newer schema or format is refused", "[history][backup]") {
  const std::string dir = fresh_dir("newer");
  spit(dir + "/state.json", "{}\n");
  const std::string newer =
      handmade("newer-schema", {{"state.json", dir + "/state.json", std::nullopt}}, kSchemaVersion + 1);
  CHECK_THAT(refusal(newer), Catch::Contains("history schema version " + std::to_string(kSchemaVersion + 1)) &&
                                 Catch::Contains("upgrade eqd"));
  const std::string same = handmade("same-schema", {{"state.json", dir + "/state.json", std::nullopt}}, kSchemaVersion);
  CHECK(refusal(same).empty());
  // A newer format version: the manifest edited in place (same length, so the tar stays valid; the
  // manifest has no checksum of its own, the format check is what refuses it).
  std::string bytes = slurp(same);
  const std::size_t at = bytes.find("\"format_version\": 1");
  REQUIRE(at != std::string::npos);
  bytes[at + 18] = '9';
  spit(same, bytes);
  CHECK_THAT(refusal(same), Catch::Contains("format version 9 was written by a newer eqd"));
}

TEST_CASE("a truncated archive is refused", "[history][backup]") {
  const std::string archive = archive_of("trunc", 50);
  const std::string bytes = slurp(archive);
  // Cut inside the database member.
  spit(archive, bytes.substr(0, bytes.size() / 2));
  CHECK_THAT(refusal(archive), Catch::Contains("trunc"));
  // Cut right after the manifest (a clean member boundary): the members are missing.
  const std::size_t manifest_end = 512 + ((bytes.find("\n}\n", 512) + 3 - 512 + 511) / 512) * 512;
  spit(archive, bytes.substr(0, manifest_end));
  CHECK_THAT(refusal(archive), Catch::Contains("listed in the manifest but missing"));
  spit(archive, "");
  CHECK_FALSE(refusal(archive).empty());
}

TEST_CASE("a tar that is not an eqd backup, or has a stray member, is refused", "[history][backup]") {
  CHECK_THAT(refusal(scratch().path().string() + "/does-not-exist.tar"), Catch::Contains("cannot open"));
  const std::string dir = fresh_dir("stray");
  spit(dir + "/notes.txt", "hello\n");
  const std::string plain = dir + "/plain.tar";
  REQUIRE(std::system(("tar -C " + dir + " -cf " + plain + " notes.txt").c_str()) == 0);
  CHECK_THAT(refusal(plain), Catch::Contains("not an eqd backup"));
  // An extra file appended to a valid archive (tar -r): not in the manifest.
  spit(dir + "/state.json", "{}\n");
  const std::string good = handmade("stray-good", {{"state.json", dir + "/state.json", std::nullopt}}, kSchemaVersion);
  REQUIRE(std::system(("tar -C " + dir + " -rf " + good + " notes.txt").c_str()) == 0);
  CHECK_THAT(refusal(good), Catch::Contains("\"notes.txt\" is not listed in the manifest"));
}
