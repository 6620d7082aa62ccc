/// @file yaml_read.cpp
/// Typed reads of YAML scalars with positioned errors, and the "did you mean" suggestion.

#include "yaml_read.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace eqd::config {

std::string suggest(std::string_view word, const std::vector<std::string>& candidates) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
  };
  const std::string w = lower(word);
  if (w.empty()) return {};
  // Optimal string alignment distance: a swapped pair of letters ("tua_s") is one typo, not two.
  auto distance = [](const std::string& a, const std::string& b) {
    const std::size_t n = a.size(), m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
    for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= n; ++i)
      for (std::size_t j = 1; j <= m; ++j) {
        const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
        d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
          d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    return d[n][m];
  };
  std::string best;
  std::size_t best_d = std::numeric_limits<std::size_t>::max();
  for (const auto& cand : candidates) {
    const std::string lc = lower(cand);
    // A key written without its unit suffix ("tau" for "tau_s", "deadband" for "deadband_W") is the
    // most common slip with unit-named keys; accept it whatever the edit distance.
    // Likewise a singular for a plural ("bus" for "buses").
    if (lc.size() > w.size() && lc.compare(0, w.size(), w) == 0 &&
        ((lc[w.size()] == '_' && lc.find('_', w.size() + 1) == std::string::npos) ||
         (w.size() >= 3 && lc.size() - w.size() <= 2 && lc.find('_', w.size()) == std::string::npos)))
      return cand;
    const std::size_t dist = distance(w, lc);
    const std::size_t allowed = std::max<std::size_t>(1, std::min<std::size_t>(3, lc.size() / 3));
    if (dist <= allowed && dist < best_d) {
      best_d = dist;
      best = cand;
    }
  }
  return best;
}

namespace detail {

void fail(const Ctx& ctx, const YAML::Mark& mark, const std::string& path, const std::string& message) {
  if (!ctx.positions || mark.is_null()) throw ConfigError(ctx.file, 0, 0, path, message);
  throw ConfigError(ctx.file, mark.line + 1, mark.column + 1, path, message);
}

std::string join(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

std::string num(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string quoted(const std::string& text) {
  constexpr std::size_t kMax = 80;
  if (text.size() <= kMax) return "'" + text + "'";
  std::size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  return "'" + text.substr(0, cut) + "\xE2\x80\xA6' (" + std::to_string(text.size()) + " characters)";
}

std::string describe(const YAML::Node& n) {
  if (n.IsMap()) return "a mapping";
  if (n.IsSequence()) return "a list";
  if (!n.IsDefined() || n.IsNull()) return "nothing";
  return quoted(n.Scalar());
}

std::string Bound::text() const {
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (has_lo && has_hi) return lo_open ? "> " + num(lo) + " and <= " + num(hi) : num(lo) + ".." + num(hi);
  if (has_lo) return (lo_open ? "> " : ">= ") + num(lo);
  if (has_hi) return "<= " + num(hi);
  return "any finite number";
}

namespace {

const std::string& scalar(const YAML::Node& n, const Ctx& c, const std::string& path, const std::string& expected) {
  if (!n.IsScalar()) fail(c, n.Mark(), path, "got " + describe(n) + " (expected " + expected + ")");
  return n.Scalar();
}

bool parse_double(std::string_view s, double& out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size() && std::isfinite(out);
}

// Integers accept 0x.. as well: Modbus addresses are often copied from hex register tables.
bool parse_int(std::string_view s, long long& out) {
  bool neg = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    neg = s.front() == '-';
    s.remove_prefix(1);
  }
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out, base);
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return false;
  if (neg) out = -out;
  return true;
}

std::string with_unit(const std::string& text, const char* unit) {
  return unit != nullptr && *unit != '\0' ? text + " " + unit : text;
}

}  // namespace

double read_double(const YAML::Node& n, const Ctx& c, const std::string& path, const Bound& b, const char* unit) {
  const std::string expected = with_unit("a number " + b.text(), unit);
  const std::string& s = scalar(n, c, path, expected);
  double v = 0.0;
  if (!parse_double(s, v)) fail(c, n.Mark(), path, "got " + quoted(s) + " (expected " + expected + ")");
  if (!b.contains(v)) fail(c, n.Mark(), path, num(v) + " is out of range (expected " + with_unit(b.text(), unit) + ")");
  return v;
}

long long read_int(const YAML::Node& n, const Ctx& c, const std::string& path, long long lo, long long hi,
                   const char* unit) {
  const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
  const std::string expected = with_unit("a whole number " + range, unit);
  const std::string& s = scalar(n, c, path, expected);
  long long v = 0;
  if (!parse_int(s, v)) fail(c, n.Mark(), path, "got " + quoted(s) + " (expected " + expected + ")");
  if (v < lo || v > hi)
    fail(c, n.Mark(), path, std::to_string(v) + " is out of range (expected " + with_unit(range, unit) + ")");
  return v;
}

bool read_bool(const YAML::Node& n, const Ctx& c, const std::string& path) {
  const std::string& s = scalar(n, c, path, "true or false");
  std::string l = s;
  for (char& ch : l) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (l == "true" || l == "yes" || l == "on") return true;
  if (l == "false" || l == "no" || l == "off") return false;
  fail(c, n.Mark(), path, "got " + quoted(s) + " (expected true or false)");
}

std::string read_string(const YAML::Node& n, const Ctx& c, const std::string& path) {
  const std::string& s = scalar(n, c, path, "a text value");
  if (s.empty()) fail(c, n.Mark(), path, "got an empty text (expected a text value)");
  return s;
}

std::string unknown_key_message(const std::string& what, const std::string& word,
                                const std::vector<std::string>& candidates) {
  const std::string s = suggest(word, candidates);
  if (!s.empty()) return "unknown " + what + " '" + word + "' (did you mean '" + s + "'?)";
  std::string list;
  for (const auto& cand : candidates) list += (list.empty() ? "" : ", ") + cand;
  return "unknown " + what + " '" + word + "' (expected one of: " + list + ")";
}

}  // namespace detail
}  // namespace eqd::config
