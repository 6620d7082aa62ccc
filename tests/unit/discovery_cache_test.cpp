// The connection cache file: round trip, atomic replacement, corrupt files moved aside, bad entries
// skipped with a reason, expiry.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "eqd/discovery/cache.hpp"

using namespace eqd::discovery;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/eqd-disc-cache-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file() const { return path + "/" + kCacheFileName; }
  std::string path;
};

ControllerRecord record(const std::string& name, std::int64_t last_seen) {
  ControllerRecord r;
  r.name = name;
  r.identity = "SN-" + name;
  r.service_type = "_eqd-ctrl._tcp";
  r.host = "10.0.0.1";
  r.port = 1502;
  r.unit_id = 2;
  r.channels = 16;
  r.adopted = name == "cab2";
  r.first_seen_s = 100;
  r.last_seen_s = last_seen;
  r.last_connected_s = last_seen;
  return r;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::vector<std::string> corrupt_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".corrupt-") != std::string::npos) out.push_back(e.path().string());
  return out;
}

}  // namespace

TEST_CASE("cache round trip keeps every field", "[discovery][cache]") {
  TempDir d;
  const std::vector<ControllerRecord> recs{record("cab1", 1000), record("cab2", 2000)};
  REQUIRE(save_cache(d.file(), recs).empty());
  const CacheLoad l = load_cache(d.file());
  CHECK(l.warning.empty());
  CHECK(l.records == recs);
  CHECK_FALSE(fs::exists(d.file() + ".tmp"));
}

TEST_CASE("a missing cache is empty and silent", "[discovery][cache]") {
  TempDir d;
  const CacheLoad l = load_cache(d.file());
  CHECK(l.records.empty());
  CHECK(l.warning.empty());
}

TEST_CASE("saving replaces the file whole", "[discovery][cache]") {
  TempDir d;
  REQUIRE(save_cache(d.file(), {record("cab1", 1), record("cab2", 2), record("cab3", 3)}).empty());
  REQUIRE(save_cache(d.file(), {record("cab9", 9)}).empty());
  const CacheLoad l = load_cache(d.file());
  REQUIRE(l.records.size() == 1);
  CHECK(l.records[0].name == "cab9");
}

TEST_CASE("a save that cannot write leaves the old file intact", "[discovery][cache]") {
  TempDir d;
  REQUIRE(save_cache(d.file(), {record("cab1", 1)}).empty());
  fs::create_directory(d.file() + ".tmp");  // the temporary file cannot be created
  const std::string err = save_cache(d.file(), {record("cab2", 2)});
  CHECK_THAT(err, Catch::Contains("cannot create"));
  const CacheLoad l = load_cache(d.file());
  REQUIRE(l.records.size() == 1);
  CHECK(l.records[0].name == "cab1");
}

TEST_CASE("corrupt cache files are moved aside and reported", "[discovery][cache]") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"{\"format\": \"eqd-controller-cache\", \"controllers\": [", "not valid JSON"},
      {"[1, 2, 3]", "not a JSON object"},
      {"{\"format\": \"other\", \"version\": 1, \"controllers\": []}", "\"format\""},
      {"{\"format\": \"eqd-controller-cache\", \"controllers\": []}", "\"version\" is missing"},
      {"{\"format\": \"eqd-controller-cache\", \"version\": 99, \"controllers\": []}", "version 99"},
      {"{\"format\": \"eqd-controller-cache\", \"version\": 1, \"controllers\": {}}", "not a list"},
      {std::string("\x00\xff\xfe garbage", 12), "not valid JSON"},
  };
  for (const auto& [text, why] : cases) {
    TempDir d;
    write(d.file(), text);
    const CacheLoad l = load_cache(d.file());
    INFO(why);
    CHECK(l.records.empty());
    CHECK_THAT(l.warning, Catch::Contains(why) && Catch::Contains("moved it to"));
    CHECK_FALSE(fs::exists(d.file()));
    const auto moved = corrupt_files(d.path);
    REQUIRE(moved.size() == 1);
    CHECK(l.moved_to == moved[0]);
    std::ifstream in(moved[0], std::ios::binary);
    std::stringstream kept;
    kept << in.rdbuf();
    CHECK(kept.str() == text);  // nothing lost
  }
}

TEST_CASE("bad entries are skipped with their reason and the rest is kept", "[discovery][cache]") {
  TempDir d;
  write(d.file(), R"({"format": "eqd-controller-cache", "version": 1, "controllers": [
    {"name": "cab1", "identity": "a", "host": "10.0.0.1", "port": 1502, "channels": 16, "last_seen_s": 5},
    {"name": "cab/2", "identity": "b", "host": "10.0.0.2", "port": 1502, "channels": 16, "last_seen_s": 5},
    {"name": "cab3", "identity": "c", "host": "10.0.0.3", "port": 70000, "channels": 16, "last_seen_s": 5},
    {"name": "cab4", "identity": "d", "host": "10.0.0.4", "port": 1502, "channels": "16", "last_seen_s": 5},
    {"name": "cab5", "identity": "e", "host": "10.0.0.5", "port": 1502, "channels": 16},
    {"name": "cab1", "identity": "f", "host": "10.0.0.6", "port": 1502, "channels": 16, "last_seen_s": 5},
    "junk"
  ]})");
  const CacheLoad l = load_cache(d.file());
  REQUIRE(l.records.size() == 1);
  CHECK(l.records[0].name == "cab1");
  CHECK(l.records[0].profile == "eqd-default");
  CHECK_FALSE(l.records[0].adopted);
  CHECK_THAT(l.warning, Catch::Contains("entry 1 skipped: \"name\" is not a controller name"));
  CHECK_THAT(l.warning, Catch::Contains("entry 2 skipped: \"port\" = 70000 is out of range"));
  CHECK_THAT(l.warning, Catch::Contains("entry 3 skipped: \"channels\" is not an integer"));
  CHECK_THAT(l.warning, Catch::Contains("entry 4 skipped: missing \"last_seen_s\""));
  CHECK_THAT(l.warning, Catch::Contains("entry 5 skipped: duplicate name cab1"));
  CHECK_THAT(l.warning, Catch::Contains("entry 6 skipped: entry is not an object"));
  CHECK(fs::exists(d.file()));  // usable file: not moved
  CHECK(corrupt_files(d.path).empty());
}

TEST_CASE("entries not seen for longer than the expiry are dropped", "[discovery][cache]") {
  std::vector<ControllerRecord> recs{record("old", 1000), record("edge", 5000), record("new", 9000)};
  const auto gone = expire(recs, 10000, 5000);
  CHECK(gone == std::vector<std::string>{"old"});
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].name == "edge");
  CHECK(recs[1].name == "new");
}
