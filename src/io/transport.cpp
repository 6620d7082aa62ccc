/// @file transport.cpp
/// What every transport shares besides the registry (eqd/io/transport.hpp).

#include "eqd/io/transport.hpp"

#include <algorithm>

namespace eqd::io {

const char* check_name(const std::string& s) noexcept {
  const bool ok = !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
  });
  return ok ? nullptr : "a name of letters, digits, '_' and '-'";
}

}  // namespace eqd::io
