#include "eqd/sim/errors.hpp"

namespace eqd::sim {
namespace {
std::string format(const std::string& file, int line, int column, const std::string& key, const std::string& message) {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line);
  if (column > 0) s += ":" + std::to_string(column);
  s += ": ";
  if (!key.empty()) s += key + ": ";
  return s + message;
}
}  // namespace

InputError::InputError(std::string file, int line, int column, std::string key_path, const std::string& message)
    : std::runtime_error(format(file, line, column, key_path, message)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      key_path_(std::move(key_path)) {}

}  // namespace eqd::sim
