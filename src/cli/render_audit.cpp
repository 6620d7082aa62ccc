// eqctl audit: the table of audit records and --since (see render.hpp).
#include <cstdio>
#include <ctime>
#include <string>

#include "render.hpp"

namespace eqd::cli {

using nlohmann::json;

namespace {

std::string field(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer() || it->is_number_unsigned()) return it->dump();
  return {};
}

// A cell cut to `width` characters, the cut marked with '~' (the table must fit 80 columns).
std::string cut(const std::string& s, std::size_t width) {
  return s.size() <= width ? s : s.substr(0, width - 1) + "~";
}

}  // namespace

std::string format_utc_ms(std::int64_t time_ms) {
  const std::time_t t = static_cast<std::time_t>(time_ms / 1000);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "-";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string render_audit(const json& records) {
  std::vector<std::vector<std::string>> rows;
  if (records.is_array()) {
    for (const json& r : records) {
      const auto it = r.is_object() ? r.find("time_ms") : r.end();
      const std::string time =
          r.is_object() && it != r.end() && it->is_number() ? format_utc_ms(it->get<std::int64_t>()) : "-";
      std::string user = field(r, "user");
      if (user.empty()) user = field(r, "uid").empty() ? "-" : "uid " + field(r, "uid");
      std::string target = field(r, "channel");
      if (target.empty()) target = field(r, "controller");
      if (target.empty() && !field(r, "bus").empty()) target = "bus " + field(r, "bus");
      const std::string role = field(r, "role");
      const std::string result = field(r, "result");
      rows.push_back({time, cut(user, 8), role.empty() ? "-" : cut(role, 8), cut(field(r, "command"), 7),
                      target.empty() ? "-" : cut(target, 12), result.empty() ? "-" : cut(result, 16)});
    }
  }
  if (rows.empty()) return "no audit records\n";
  return format_table({"TIME (UTC)", "USER", "ROLE", "COMMAND", "TARGET", "RESULT"}, rows);
}

std::optional<std::int64_t> parse_since(const std::string& text, std::int64_t now_ms) {
  // A duration back from now: 90s, 30m, 24h, 7d.
  if (text.size() >= 2) {
    const char unit = text.back();
    const std::string digits = text.substr(0, text.size() - 1);
    const std::int64_t per = unit == 's'   ? 1000
                             : unit == 'm' ? 60'000
                             : unit == 'h' ? 3'600'000
                             : unit == 'd' ? 86'400'000
                                           : 0;
    if (per != 0 && digits.size() <= 9 && digits.find_first_not_of("0123456789") == std::string::npos)
      return now_ms - std::stoll(digits) * per;
  }
  // ISO-8601 in UTC: 2026-12-03, 2026-12-03T17:40, 2026-12-03T17:40:12 (a space for the T; optional Z).
  std::tm tm{};
  int n = 0;
  char sep = 'T';
  const int got = std::sscanf(text.c_str(), "%4d-%2d-%2d%n%c%2d:%2d%n:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n,
                              &sep, &tm.tm_hour, &tm.tm_min, &n, &tm.tm_sec, &n);
  if (got < 3 || (got >= 4 && sep != 'T' && sep != ' ') || got == 4 || got == 5) return std::nullopt;
  std::string rest = text.substr(static_cast<std::size_t>(n));
  if (rest == "Z" && got >= 6) rest.clear();
  if (!rest.empty() || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

}  // namespace eqd::cli
