/// @file transport.cpp
/// What every transport shares besides the registry (eqd/io/transport.hpp).

#include "eqd/io/transport.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

namespace eqd::io {

namespace {

bool is_ipv4(const std::string& s) {
  in_addr a{};
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
  in6_addr a{};
  return ::inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// RFC 1123 host name: labels of letters, digits and '-' (not first or last), 1..63 characters each,
// at most 253 in all, an optional final dot. A name whose labels are all digits is refused here: it
// reads as an IPv4 address, and one that is not a valid address (999.1.1.1) is a typo, not a name.
bool is_hostname(const std::string& s) {
  std::string name = s;
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (name.empty() || name.size() > 253) return false;
  bool all_numeric = true;
  std::size_t start = 0;
  for (;;) {
    const auto dot = name.find('.', start);
    const std::string label = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (const char ch : label) {
      const bool digit = ch >= '0' && ch <= '9';
      if (!digit && !(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') && ch != '-') return false;
      all_numeric = all_numeric && digit;
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return !all_numeric;
}

}  // namespace

bool is_host(const std::string& s) { return is_ipv4(s) || is_ipv6(s) || is_hostname(s); }

const char* check_name(const std::string& s) noexcept {
  const bool ok = !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
  });
  return ok ? nullptr : "a name of letters, digits, '_' and '-'";
}

}  // namespace eqd::io
