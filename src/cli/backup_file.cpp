// `eqctl backup FILE`: saving the archive (see backup_file.hpp).
#include "backup_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace eqd::cli {

namespace {

std::string copy_all(int in, int out, std::int64_t& copied) {
  std::vector<char> buf(1 << 16);
  for (;;) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::string("reading the archive from eqd: ") + std::strerror(errno);
    if (n == 0) return "";
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out, buf.data() + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return std::string("write: ") + std::strerror(errno);
      done += w;
    }
    copied += n;
  }
}

}  // namespace

std::string save_archive(int fd, const std::string& path, std::int64_t expected_bytes) {
  std::string tmp = path + ".tmp-XXXXXX";
  const int out = ::mkostemp(tmp.data(), O_CLOEXEC);  // mode 0600: the archive holds the audit log
  if (out < 0) {
    const int err = errno;
    ::close(fd);
    return "cannot create " + tmp + ": " + std::strerror(err);
  }
  std::int64_t copied = 0;
  std::string err = ::lseek(fd, 0, SEEK_SET) == 0 ? copy_all(fd, out, copied) : std::string("lseek failed");
  ::close(fd);
  if (err.empty() && expected_bytes >= 0 && copied != expected_bytes)
    err = "eqd announced " + std::to_string(expected_bytes) + " bytes, " + std::to_string(copied) + " arrived";
  if (err.empty() && ::fsync(out) != 0) err = std::string("fsync: ") + std::strerror(errno);
  if (::close(out) != 0 && err.empty()) err = std::string("close: ") + std::strerror(errno);
  if (err.empty() && ::rename(tmp.c_str(), path.c_str()) != 0) err = "rename to " + path + ": " + std::strerror(errno);
  if (!err.empty()) {
    ::unlink(tmp.c_str());
    return path + ": " + err;
  }
  const std::string::size_type slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    (void)::fsync(d);
    ::close(d);
  }
  return "";
}

}  // namespace eqd::cli
