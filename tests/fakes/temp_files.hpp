// Scratch files for unit tests. CTest runs each Catch2 test case as its own process, two at a time,
// so a fixed path shared by several test cases races: one truncates a file another is reading. Every
// process gets its own directory, removed when the process exits.
// Thread-safety: not thread-safe (tests call it from the test's own thread).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace eqd::test {

/// This process's scratch directory, `<tmp>/<prefix>-<pid>`, created on first use.
class ProcessTempDir {
 public:
  explicit ProcessTempDir(const std::string& prefix)
      : dir_(std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
  }
  ~ProcessTempDir() {
    std::error_code ec;  // never throw from a destructor; a leftover directory is harmless
    std::filesystem::remove_all(dir_, ec);
  }
  ProcessTempDir(const ProcessTempDir&) = delete;
  ProcessTempDir& operator=(const ProcessTempDir&) = delete;

  /// Writes `text` to `name` in this directory (replacing it) and returns the file's path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  const std::filesystem::path& path() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace eqd::test
