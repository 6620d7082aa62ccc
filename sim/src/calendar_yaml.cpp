// Wall-clock windows in scenario files (issue #17): target schedules of a bus and a tariff's peak
// period, read with the same words and rules as eqd's configuration (core/schedule_text.hpp).
#include <string>
#include <vector>

#include "eqd/core/schedule.hpp"
#include "eqd/core/schedule_text.hpp"
#include "yaml_util.hpp"

namespace eqd::sim::detail {
namespace {

std::uint8_t parse_days(const YAML::Node& n, const YamlCtx& c, const std::string& p) {
  const auto one = [&](const YAML::Node& d, const std::string& dp) -> std::uint8_t {
    if (!d.IsScalar()) c.fail(d, dp, std::string("expected a day (") + core::kDayWordsExpected + ")");
    const std::uint8_t days = core::parse_day_word(d.Scalar());
    if (days == 0) c.fail(d, dp, "got '" + d.Scalar() + "' (expected " + core::kDayWordsExpected + ")");
    return days;
  };
  if (!n.IsSequence()) return one(n, p);
  if (n.size() == 0) c.fail(n, p, "got an empty list (expected at least one day)");
  std::uint8_t days = 0;
  for (std::size_t i = 0; i < n.size(); ++i) days |= one(n[i], p + "[" + std::to_string(i) + "]");
  return days;
}

int parse_time(const YAML::Node& map, const char* key, const YamlCtx& c, const std::string& p, bool is_end) {
  const std::string kp = p + "." + key;
  const YAML::Node n = map[key];
  if (!n) c.fail(map, p, std::string("missing key '") + key + "'");
  const char* expected = is_end ? core::kHhmmEndExpected : core::kHhmmStartExpected;
  const int m = n.IsScalar() ? core::parse_hhmm(n.Scalar(), is_end) : -1;
  if (m < 0) c.fail(n, kp, "got '" + (n.IsScalar() ? n.Scalar() : std::string("?")) + "' (expected " + expected + ")");
  return m;
}

}  // namespace

void parse_window_times(const YAML::Node& n, const YamlCtx& c, const std::string& p, core::ScheduleWindow& w) {
  if (n["days"]) w.days = parse_days(n["days"], c, p + ".days");
  w.start_min = parse_time(n, "start", c, p, false);
  w.end_min = parse_time(n, "end", c, p, true);
  if (w.start_min == w.end_min) c.fail(n["end"], p + ".end", "equals start (a window needs a length)");
}

std::vector<core::ScheduleWindow> parse_target_schedule(const YAML::Node& n, const YamlCtx& c, const std::string& p) {
  c.require_seq(n, p);
  if (n.size() > core::kMaxScheduleWindows)
    c.fail(n, p,
           "got " + std::to_string(n.size()) + " windows (at most " + std::to_string(core::kMaxScheduleWindows) +
               " per bus)");
  std::vector<core::ScheduleWindow> out;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const YAML::Node e = n[i];
    const std::string ip = p + "[" + std::to_string(i) + "]";
    c.check_keys(e, ip, {"days", "start", "end", "target_W", "import_limit_W", "export_limit_W"});
    core::ScheduleWindow w;
    parse_window_times(e, c, ip, w);
    const bool target = static_cast<bool>(e["target_W"]);
    const bool caps = e["import_limit_W"] || e["export_limit_W"];
    if (const char* why = core::window_aim_error(target, caps)) c.fail(e, ip, why);
    w.mode = caps ? core::BusMode::caps : core::BusMode::balance;
    w.target_W = c.num(e, "target_W", ip, w.target_W, -core::kMaxPower_W, core::kMaxPower_W);
    w.import_limit_W = c.num(e, "import_limit_W", ip, w.import_limit_W, 0.0, core::kMaxPower_W);
    w.export_limit_W = c.num(e, "export_limit_W", ip, w.export_limit_W, 0.0, core::kMaxPower_W);
    if (const char* why = core::validate(w)) c.fail(e, ip, why);
    out.push_back(w);
  }
  return out;
}

}  // namespace eqd::sim::detail
