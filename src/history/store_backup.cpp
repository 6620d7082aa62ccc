// The history store's backups (see store.hpp, backup.hpp): the database copied with SQLite's online
// backup API on the writer thread, and the archive built in an unlinked file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "eqd/history/store.hpp"
#include "store_detail.hpp"

namespace eqd::history {

namespace {

// An unlinked file in `dir` for the archive (O_TMPFILE; a named file unlinked at once where the file
// system has no O_TMPFILE). Nothing is left behind whatever happens, and nobody else can open it.
OwnedFd unlinked_file(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return OwnedFd(fd);
  std::string name = dir + "/.eqd-backup-XXXXXX";
  fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) throw BackupError("backup: cannot create a temporary file in " + dir + ": " + std::strerror(errno));
  ::unlink(name.c_str());
  return OwnedFd(fd);
}

}  // namespace

OwnedFd::~OwnedFd() {
  if (fd_ >= 0) ::close(fd_);
}

OwnedFd& OwnedFd::operator=(OwnedFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

bool HistoryStore::backup(BackupJob job, std::function<void(BackupResult)> done) noexcept {
  try {
    Job j;
    j.kind = Job::Kind::backup;
    j.backup = std::move(job);
    j.backup_done = std::move(done);
    return push(std::move(j), true);
  } catch (...) {
    return false;
  }
}

void HistoryStore::run_backup(Job& job) {
  BackupResult res;
  std::string copy;  // the database's copy, a temporary file beside it
  try {
    BackupJob& b = job.backup;
    std::vector<BackupMember> members;
    if (!opts_.path.empty()) {
      if (!db_) throw BackupError("the history database is not open: " + database_error());
      copy = opts_.path + ".backup-XXXXXX";
      const int fd = ::mkostemp(copy.data(), O_CLOEXEC);
      if (fd < 0) {
        copy.clear();
        throw BackupError("backup: cannot create a temporary file beside " + opts_.path + ": " + std::strerror(errno));
      }
      ::close(fd);
      b.meta.schema_version = db_->backend->backup_to(copy);
      members.push_back({"history.db", copy, std::nullopt});
    }
    for (BackupMember& m : b.files) members.push_back(std::move(m));
    b.meta.created_ms = now_utc_ms();
    OwnedFd out = unlinked_file(b.temp_dir);
    res.manifest = write_backup(out.get(), members, b.meta);
    struct stat st {};
    if (::fstat(out.get(), &st) == 0) res.size_bytes = st.st_size;
    if (::lseek(out.get(), 0, SEEK_SET) != 0) throw BackupError(std::string("backup: lseek: ") + std::strerror(errno));
    res.archive = std::make_shared<OwnedFd>(std::move(out));
  } catch (const std::exception& e) {
    res.archive.reset();
    res.error = e.what();
    spdlog::error("history: backup failed: {}", res.error);
  }
  if (!copy.empty()) ::unlink(copy.c_str());
  try {
    if (job.backup_done) job.backup_done(std::move(res));
  } catch (const std::exception& e) {
    spdlog::error("history: a backup's answer failed: {}", e.what());
  }
}

}  // namespace eqd::history
