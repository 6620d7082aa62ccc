// The buses' demand maxima in state_dir/demand.json. See demand_file.hpp.
#include "eqd/daemon/demand_file.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "eqd/util/atomic_file.hpp"

namespace eqd::daemon {

namespace {
using nlohmann::json;
constexpr int kFormat = 1;
constexpr std::int64_t kDay_s = 86400;
// A seed is not taken back this close to the local midnight (or month start) that would end it.
constexpr std::int64_t kRollMargin_s = 60;

std::chrono::year_month_day local_date(std::int64_t utc_s, std::int64_t (*offset)(std::int64_t)) {
  const std::int64_t local_s = utc_s + offset(utc_s);
  const std::int64_t day = local_s / kDay_s - (local_s % kDay_s < 0 ? 1 : 0);
  return std::chrono::year_month_day{std::chrono::sys_days{std::chrono::days{day}}};
}

json watts(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// A watt figure of the file: null, or a finite number >= 0.
double read_watts(const json& e, const char* key, const std::string& where) {
  if (!e.contains(key) || e[key].is_null()) return std::nan("");
  if (!e[key].is_number()) throw std::runtime_error(where + "." + key + ": not a number");
  const double v = e[key].get<double>();
  if (!std::isfinite(v) || v < 0.0) throw std::runtime_error(where + "." + key + ": " + std::to_string(v) + " W");
  return v;
}

}  // namespace

std::string local_day(std::int64_t utc_s, std::int64_t (*offset)(std::int64_t)) {
  const auto d = local_date(utc_s, offset);
  char b[16];
  std::snprintf(b, sizeof b, "%04d-%02u-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                static_cast<unsigned>(d.day()));
  return b;
}

std::string local_month(std::int64_t utc_s, std::int64_t (*offset)(std::int64_t)) {
  return local_day(utc_s, offset).substr(0, 7);
}

std::string demand_text(const std::vector<std::string>& names, const std::vector<SavedDemand>& saved) {
  json buses = json::object();
  for (std::size_t b = 0; b < names.size() && b < saved.size(); ++b)
    buses[names[b]] = {{"day", saved[b].day},
                       {"max_day_W", watts(saved[b].max.max_day_W)},
                       {"month", saved[b].month},
                       {"max_month_W", watts(saved[b].max.max_month_W)}};
  return json{{"format", kFormat}, {"buses", buses}}.dump(1) + "\n";
}

std::vector<SavedDemand> parse_demand(const std::string& text, const std::vector<std::string>& names) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw std::runtime_error("not a JSON object");
  if (!j.contains("format") || j["format"] != kFormat)
    throw std::runtime_error("format is not " + std::to_string(kFormat));
  if (!j.contains("buses") || !j["buses"].is_object()) throw std::runtime_error("no 'buses' object");
  std::vector<SavedDemand> out(names.size());
  for (std::size_t b = 0; b < names.size(); ++b) {
    if (!j["buses"].contains(names[b])) continue;
    const json& e = j["buses"][names[b]];
    const std::string where = "buses." + names[b];
    if (!e.is_object() || !e.contains("day") || !e["day"].is_string() || !e.contains("month") ||
        !e["month"].is_string())
      throw std::runtime_error(where + ": needs 'day' and 'month' as text");
    out[b].day = e["day"].get<std::string>();
    out[b].month = e["month"].get<std::string>();
    out[b].max.max_day_W = read_watts(e, "max_day_W", where);
    out[b].max.max_month_W = read_watts(e, "max_month_W", where);
  }
  return out;
}

std::vector<core::DemandSeed> load_demand(const std::string& path, const std::vector<std::string>& names,
                                          std::int64_t utc_s, std::int64_t (*offset)(std::int64_t)) {
  std::vector<core::DemandSeed> seeds(names.size());
  std::ifstream in(path);
  if (!in) return seeds;  // none yet
  std::ostringstream text;
  text << in.rdbuf();
  std::vector<SavedDemand> saved;
  try {
    saved = parse_demand(text.str(), names);
  } catch (const std::exception& e) {
    const std::string aside = util::move_aside_for_log(path, "corrupt");
    spdlog::warn("{}: unreadable ({}); moved to {}; the demand maxima start again from this quarter hour", path,
                 e.what(), aside);
    return seeds;
  }
  const std::string day = local_day(utc_s, offset), month = local_month(utc_s, offset);
  const bool day_stays = local_day(utc_s + kRollMargin_s, offset) == day;
  const bool month_stays = local_month(utc_s + kRollMargin_s, offset) == month;
  for (std::size_t b = 0; b < names.size(); ++b) {
    if (day_stays && saved[b].day == day) seeds[b].max_day_W = saved[b].max.max_day_W;
    if (month_stays && saved[b].month == month) seeds[b].max_month_W = saved[b].max.max_month_W;
  }
  return seeds;
}

}  // namespace eqd::daemon
