// Crash-safe file replacement and moving corrupt files aside. See atomic_file.hpp.
#include "eqd/util/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <system_error>

namespace eqd::util {

namespace {
[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

std::string dir_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string utc_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}
}  // namespace

void write_atomically(const std::string& path, std::string_view bytes, unsigned mode) {
  const std::string dir = dir_of(path);
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) fail(errno, "cannot create directory " + dir);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) fail(errno, "cannot create " + tmp);
  const auto abandon = [&](const std::string& what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(err, what);
  };
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) abandon("cannot write " + tmp);
    done += static_cast<std::size_t>(n);
  }
  // fsync before rename: after a power cut the file is either the old one or the whole new one.
  if (::fsync(fd) != 0) abandon("cannot fsync " + tmp);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(err, "cannot rename " + tmp + " to " + path);
  }
  // The rename is durable only once the directory entry is on disk.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail(errno, "cannot open directory " + dir);
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) fail(err, "cannot fsync directory " + dir);
}

std::string move_aside(const std::string& path, const std::string& tag) {
  const std::string base = path + "." + tag + "-" + utc_stamp();
  std::string aside = base;
  for (int k = 1; ::access(aside.c_str(), F_OK) == 0; ++k) aside = base + "-" + std::to_string(k);
  if (::rename(path.c_str(), aside.c_str()) != 0) fail(errno, "cannot move " + path + " aside to " + aside);
  return aside;
}

std::string move_aside_for_log(const std::string& path, const std::string& tag) noexcept {
  try {
    return move_aside(path, tag);
  } catch (const std::exception& e) {
    try {
      return std::string("(could not move it aside: ") + e.what() + ")";
    } catch (...) {
      return {};
    }
  }
}

}  // namespace eqd::util
