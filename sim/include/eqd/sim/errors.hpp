#pragma once
/// @file errors.hpp
/// Start-up errors of the simulator's input files (rig YAML, scenario YAML, profile CSV).

#include <stdexcept>
#include <string>

namespace eqd::sim {

/// A bad input file. what() is "file:line:column: key.path: message" (column omitted for CSV, key
/// path omitted when unknown) so that an editor can jump to the spot. Thrown at load time only.
class InputError : public std::runtime_error {
 public:
  InputError(std::string file, int line, int column, std::string key_path, const std::string& message);
  [[nodiscard]] const std::string& file() const noexcept { return file_; }
  [[nodiscard]] int line() const noexcept { return line_; }      ///< 1-based, 0 = unknown
  [[nodiscard]] int column() const noexcept { return column_; }  ///< 1-based, 0 = unknown / CSV
  [[nodiscard]] const std::string& key_path() const noexcept { return key_path_; }

 private:
  std::string file_;
  int line_;
  int column_;
  std::string key_path_;
};

}  // namespace eqd::sim
