// eqd's backup archive: writing, checking and restoring (see backup.hpp).
#include "eqd/history/backup.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "eqd/util/atomic_file.hpp"
#include "sqlite_db.hpp"

namespace eqd::history {

namespace {

using nlohmann::json;

constexpr const char* kManifestName = "manifest.json";
// A manifest is a few hundred bytes: past this the first member is not one.
constexpr la_int64_t kMaxManifestBytes = 1 << 20;
constexpr std::size_t kChunk = 64 * 1024;

bool known_member(const std::string& name) {
  for (const char* n : kBackupMemberNames)
    if (name == n) return true;
  return false;
}

std::string hex(const unsigned char* p, unsigned n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 0xf];
  }
  return s;
}

// Incremental SHA-256 (OpenSSL's EVP interface).
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) throw BackupError("SHA-256: cannot start");
  }
  void update(const void* p, std::size_t n) {
    if (EVP_DigestUpdate(ctx_.get(), p, n) != 1) throw BackupError("SHA-256: update failed");
  }
  std::string hex_digest() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned n = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), md.data(), &n) != 1) throw BackupError("SHA-256: final failed");
    return hex(md.data(), n);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

std::string utc_iso(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;

std::string archive_message(archive* a) {
  const char* m = archive_error_string(a);
  return m != nullptr ? m : "unknown libarchive error";
}

// Writes one member (header + data) to `a`.
void write_member(archive* a, const std::string& name, const std::string& bytes, std::int64_t mtime_s) {
  std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(), archive_entry_free);
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(bytes.size()));
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0600);
  archive_entry_set_mtime(e.get(), static_cast<time_t>(mtime_s), 0);
  if (archive_write_header(a, e.get()) != ARCHIVE_OK)
    throw BackupError("backup: writing the header of " + name + ": " + archive_message(a));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const std::size_t n = std::min(kChunk, bytes.size() - done);
    const la_ssize_t w = archive_write_data(a, bytes.data() + done, n);
    if (w < 0) throw BackupError("backup: writing " + name + ": " + archive_message(a));
    done += static_cast<std::size_t>(w);
  }
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BackupError("backup: cannot read " + path + ": " + std::strerror(errno));
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw BackupError("backup: reading " + path + " failed");
  return s;
}

// What is expected of each member, from the manifest.
struct Expected {
  std::int64_t size = 0;
  std::string sha256;
  bool seen = false;
};

// Checks the manifest's text against this build and returns the members it names.
std::map<std::string, Expected> check_manifest(const std::string& path, const std::string& text, int max_schema,
                                               json& manifest) {
  manifest = json::parse(text, nullptr, false);
  const std::string where = path + ": manifest.json";
  if (manifest.is_discarded() || !manifest.is_object()) throw BackupError(where + " is not a JSON object");
  if (manifest.value("format", std::string()) != kBackupFormatName)
    throw BackupError(where + ": \"format\" is not \"" + std::string(kBackupFormatName) + "\": not an eqd backup");
  const json& fv = manifest.value("format_version", json());
  if (!fv.is_number_integer()) throw BackupError(where + ": \"format_version\" missing or not an integer");
  if (fv.get<int>() > kBackupFormatVersion)
    throw BackupError(where + ": format version " + std::to_string(fv.get<int>()) +
                      " was written by a newer eqd (this one reads up to " + std::to_string(kBackupFormatVersion) +
                      "): upgrade eqd before restoring it");
  const json& sv = manifest.value("schema_version", json());
  if (!sv.is_number_integer()) throw BackupError(where + ": \"schema_version\" missing or not an integer");
  if (sv.get<int>() > max_schema)
    throw BackupError(where + ": history schema version " + std::to_string(sv.get<int>()) +
                      " is newer than this eqd's " + std::to_string(max_schema) +
                      " (the backup comes from a newer eqd): upgrade eqd before restoring it; nothing was changed");
  const json& files = manifest.value("files", json());
  if (!files.is_array()) throw BackupError(where + ": \"files\" missing or not an array");
  std::map<std::string, Expected> out;
  for (const json& f : files) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string() || !f.contains("size") ||
        !f["size"].is_number_integer() || !f.contains("sha256") || !f["sha256"].is_string())
      throw BackupError(where + ": each entry of \"files\" needs name, size and sha256");
    const std::string name = f["name"].get<std::string>();
    if (!known_member(name)) throw BackupError(where + ": unknown member name \"" + name.substr(0, 80) + "\"");
    if (out.count(name) != 0) throw BackupError(where + ": member \"" + name + "\" listed twice");
    out[name] = Expected{f["size"].get<std::int64_t>(), f["sha256"].get<std::string>(), false};
  }
  return out;
}

// Reads the archive `path` through: checks the manifest, each member's size and checksum, and that
// every member is there once. `sink(name)` may return a file descriptor to copy the member into (-1:
// only check it). Returns the manifest.
json scan(const std::string& path, int max_schema, const std::function<int(const std::string&)>& sink) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  if (!a) throw BackupError("restore: out of memory");
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), kChunk) != ARCHIVE_OK)
    throw BackupError(path + ": cannot open: " + archive_message(a.get()));
  json manifest;
  std::map<std::string, Expected> expected;
  bool have_manifest = false;
  std::vector<char> buf(kChunk);
  for (;;) {
    archive_entry* e = nullptr;
    const int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN)
      throw BackupError(path + ": not a readable tar archive, or truncated or damaged: " + archive_message(a.get()));
    const std::string name = archive_entry_pathname(e) != nullptr ? archive_entry_pathname(e) : "";
    if (!have_manifest) {
      if (name != kManifestName)
        throw BackupError(path + ": the first member is \"" + name.substr(0, 80) + "\", not " + kManifestName +
                          ": not an eqd backup");
      if (archive_entry_size(e) > kMaxManifestBytes) throw BackupError(path + ": manifest.json is too large");
      std::string text;
      for (;;) {
        const la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n < 0) throw BackupError(path + ": reading manifest.json (truncated?): " + archive_message(a.get()));
        if (n == 0) break;
        text.append(buf.data(), static_cast<std::size_t>(n));
        if (static_cast<la_int64_t>(text.size()) > kMaxManifestBytes)
          throw BackupError(path + ": manifest.json is too large");
      }
      expected = check_manifest(path, text, max_schema, manifest);
      have_manifest = true;
      continue;
    }
    const auto it = expected.find(name);
    if (it == expected.end())
      throw BackupError(path + ": member \"" + name.substr(0, 80) + "\" is not listed in the manifest");
    if (it->second.seen) throw BackupError(path + ": member \"" + name + "\" appears twice");
    it->second.seen = true;
    const int out = sink ? sink(name) : -1;
    Sha256 sha;
    std::int64_t size = 0;
    for (;;) {
      const la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
      if (n < 0)
        throw BackupError(path + ": reading member " + name + " (truncated archive?): " + archive_message(a.get()));
      if (n == 0) break;
      sha.update(buf.data(), static_cast<std::size_t>(n));
      size += n;
      for (la_ssize_t done = 0; out >= 0 && done < n;) {
        const ssize_t w = ::write(out, buf.data() + done, static_cast<std::size_t>(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) throw BackupError("restore: writing " + name + ": " + std::strerror(errno));
        done += w;
      }
    }
    if (size != it->second.size)
      throw BackupError(path + ": member " + name + " has " + std::to_string(size) + " bytes, the manifest says " +
                        std::to_string(it->second.size) + " (truncated archive?)");
    if (const std::string got = sha.hex_digest(); got != it->second.sha256)
      throw BackupError(path + ": member " + name + ": SHA-256 mismatch (archive " + got + ", manifest " +
                        it->second.sha256 + "): the archive is damaged or was altered; nothing was changed");
  }
  if (!have_manifest) throw BackupError(path + ": empty archive (no manifest.json): not an eqd backup");
  for (const auto& [name, exp] : expected)
    if (!exp.seen)
      throw BackupError(path + ": member " + name + " is listed in the manifest but missing (truncated archive?)");
  return manifest;
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

// Who should own a file put at `target`: the file it replaces, else its directory.
struct stat owner_of(const std::string& target) {
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0) return st;
  const std::string dir = std::filesystem::path(target).parent_path().string();
  if (::stat(dir.empty() ? "." : dir.c_str(), &st) == 0) {
    st.st_mode = S_IFREG | 0640;
    return st;
  }
  st = {};
  st.st_uid = ::geteuid();
  st.st_gid = ::getegid();
  st.st_mode = S_IFREG | 0640;
  return st;
}

}  // namespace

std::string sha256_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw BackupError("cannot read " + path + ": " + std::strerror(errno));
  Sha256 sha;
  std::vector<char> buf(kChunk);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw BackupError("reading " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    sha.update(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return sha.hex_digest();
}

json write_backup(int fd, const std::vector<BackupMember>& members, const BackupMeta& meta) {
  // The members are read whole first: the manifest, written first, must already know their checksums.
  // The database copy is the big one; it is a private temporary file, so reading it twice is safe.
  struct Loaded {
    std::string name, bytes;
  };
  std::vector<Loaded> loaded;
  json files = json::array();
  for (const char* known : kBackupMemberNames)
    for (const BackupMember& m : members) {
      if (m.name != known) continue;
      std::error_code ec;
      if (!m.bytes && !std::filesystem::exists(m.path, ec)) continue;  // e.g. no connection cache yet
      Loaded l{m.name, m.bytes ? *m.bytes : read_whole(m.path)};
      Sha256 sha;
      sha.update(l.bytes.data(), l.bytes.size());
      files.push_back(json{{"name", m.name}, {"size", l.bytes.size()}, {"sha256", sha.hex_digest()}});
      loaded.push_back(std::move(l));
    }
  json manifest{{"format", kBackupFormatName},     {"format_version", kBackupFormatVersion},
                {"eqd_version", meta.eqd_version}, {"schema_version", meta.schema_version},
                {"created_ms", meta.created_ms},   {"created_utc", utc_iso(meta.created_ms)},
                {"config_path", meta.config_path}, {"files", files}};
  ArchivePtr a(archive_write_new(), archive_write_free);
  if (!a) throw BackupError("backup: out of memory");
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_open_fd(a.get(), fd) != ARCHIVE_OK)
    throw BackupError("backup: cannot start the archive: " + archive_message(a.get()));
  const std::int64_t mtime_s = meta.created_ms / 1000;
  write_member(a.get(), kManifestName, manifest.dump(2) + "\n", mtime_s);
  for (const Loaded& l : loaded) write_member(a.get(), l.name, l.bytes, mtime_s);
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    throw BackupError("backup: finishing the archive: " + archive_message(a.get()));
  return manifest;
}

json verify_backup(const std::string& path, int max_schema_version) { return scan(path, max_schema_version, {}); }

namespace {

// Second pass of a restore: each member into a temporary file beside its target (checked again on
// the way), owned and moded like what it will replace; the database opened and checked. Returns
// member -> temporary file. Throws BackupError, leaving nothing behind.
std::map<std::string, std::string> extract(const std::string& archive, const std::map<std::string, std::string>& target,
                                           int max_schema_version) {
  std::map<std::string, std::string> temp;
  std::map<std::string, int> fds;
  auto cleanup = [&] {
    for (auto& [name, fd] : fds)
      if (fd >= 0) ::close(fd);
    for (const auto& [name, t] : temp) ::unlink(t.c_str());
  };
  try {
    (void)scan(archive, max_schema_version, [&](const std::string& name) {
      const std::string& dest = target.at(name);
      if (dest.empty()) return -1;  // nowhere to put it: checked, not restored
      std::error_code ec;
      const std::string dir = std::filesystem::path(dest).parent_path().string();
      if (!dir.empty()) std::filesystem::create_directories(dir, ec);
      std::string t = dest + ".restore-XXXXXX";
      const int fd = ::mkostemp(t.data(), O_CLOEXEC);
      if (fd < 0)
        throw BackupError("restore: cannot create a temporary file beside " + dest + ": " + std::strerror(errno));
      temp[name] = t;
      fds[name] = fd;
      return fd;
    });
    for (auto& [name, fd] : fds) {
      if (::fsync(fd) != 0) throw BackupError("restore: fsync of " + temp[name] + ": " + std::strerror(errno));
      ::close(fd);
      fd = -1;
      // Owned like what it replaces: root restoring for the eqd user must leave files eqd can write.
      const struct stat owner = owner_of(target.at(name));
      if (::geteuid() == 0 && ::chown(temp[name].c_str(), owner.st_uid, owner.st_gid) != 0)
        throw BackupError("restore: chown of " + temp[name] + ": " + std::strerror(errno));
      if (::chmod(temp[name].c_str(), owner.st_mode & 07777) != 0)
        throw BackupError("restore: chmod of " + temp[name] + ": " + std::strerror(errno));
    }
    // The database must be one this eqd can open: checked before anything is replaced.
    if (const auto it = temp.find("history.db"); it != temp.end()) {
      sqlite::Database db(it->second);
      if (const std::string check = db.text("PRAGMA quick_check"); check != "ok")
        throw BackupError(archive + ": history.db fails SQLite's quick_check (" + check + ")");
      const int v = std::stoi("0" + db.text("PRAGMA user_version"));
      if (v > max_schema_version)
        throw BackupError(archive + ": history.db has schema version " + std::to_string(v) +
                          ", newer than this eqd's " + std::to_string(max_schema_version));
    }
  } catch (const sqlite::Error& e) {
    cleanup();
    throw BackupError(archive + ": history.db cannot be opened as a database: " + e.what());
  } catch (...) {
    cleanup();
    throw;
  }
  return temp;
}

// Moves `dest` aside (with its -wal and -shm for the database) and renames `temp` into its place.
RestoredFile install(const std::string& member, const std::string& temp, const std::string& dest) {
  RestoredFile r{member, dest, ""};
  std::error_code ec;
  if (std::filesystem::exists(dest, ec)) r.moved_aside = util::move_aside(dest, "before-restore");
  if (member == "history.db")
    for (const char* suffix : {"-wal", "-shm"})  // a stale WAL must never meet the restored file
      if (std::filesystem::exists(dest + suffix, ec)) {
        if (r.moved_aside.empty())
          (void)util::move_aside(dest + suffix, "before-restore");
        else
          std::filesystem::rename(dest + suffix, r.moved_aside + suffix, ec);
      }
  if (::rename(temp.c_str(), dest.c_str()) != 0)
    throw BackupError("restore: cannot rename " + temp + " to " + dest + ": " + std::strerror(errno) +
                      (r.moved_aside.empty() ? "" : " (the old file is at " + r.moved_aside + ")"));
  fsync_path(std::filesystem::path(dest).parent_path().string(), true);
  return r;
}

}  // namespace

std::vector<RestoredFile> restore_backup(const std::string& archive, const RestoreTargets& to, int max_schema_version) {
  // First pass: check everything, so that a refused archive changes nothing.
  (void)verify_backup(archive, max_schema_version);
  const std::map<std::string, std::string> target = {
      {"history.db", to.history_db},
      {"state.json", to.state_dir + "/state.json"},
      {"controllers-cache.json", to.state_dir + "/controllers-cache.json"},
      {"eqd.yaml", to.config},
  };
  const std::map<std::string, std::string> temp = extract(archive, target, max_schema_version);
  // Last: move each old file aside and put the new one in its place.
  std::vector<RestoredFile> done;
  for (const char* name : kBackupMemberNames)
    if (const auto it = temp.find(name); it != temp.end()) done.push_back(install(name, it->second, target.at(name)));
  return done;
}

}  // namespace eqd::history
