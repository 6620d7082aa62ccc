// Valley filling's window needs in state_dir/window_needs.json. See window_needs_file.hpp.
#include "eqd/daemon/window_needs_file.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <optional>
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

std::string hhmm(std::int32_t min) {
  char b[8];
  std::snprintf(b, sizeof b, "%02d:%02d", min / 60, min % 60);
  return b;
}
std::string limit(double v) {
  if (!std::isfinite(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.10g", v);
  return b;
}
}  // namespace

std::string window_key(const core::ScheduleWindow& w) {
  char days[8];
  std::snprintf(days, sizeof days, "0x%02x", static_cast<unsigned>(w.days));
  std::string k = std::string("days=") + days + " start=" + hhmm(w.start_min) + " end=" + hhmm(w.end_min);
  if (w.mode == core::BusMode::caps)
    k += " mode=caps import_limit_W=" + limit(w.import_limit_W) + " export_limit_W=" + limit(w.export_limit_W);
  else
    k += " mode=balance target_W=" + limit(w.target_W);
  return k;
}

std::string window_needs_text(const std::vector<std::string>& names,
                              const std::vector<std::vector<core::ScheduleWindow>>& windows,
                              const std::vector<core::WindowNeeds>& needs) {
  json buses = json::object();
  for (std::size_t b = 0; b < names.size() && b < windows.size() && b < needs.size(); ++b) {
    json list = json::array();
    for (std::size_t w = 0; w < windows[b].size(); ++w) {
      const int n = needs[b].seen(static_cast<int>(w));
      if (n == 0) continue;
      json kept = json::array();
      json profiles = json::array();
      for (int k = 0; k < n; ++k) {
        kept.push_back(needs[b].kept_J(static_cast<int>(w), k));
        const core::WindowNeeds::Profile* p = needs[b].kept_profile(static_cast<int>(w), k);
        const bool whole = p != nullptr && std::all_of(p->begin(), p->end(), [](float v) { return std::isfinite(v); });
        profiles.push_back(whole ? json(*p) : json(nullptr));  // null: none recorded (an older file)
      }
      list.push_back(json{{"window", window_key(windows[b][w])}, {"needs_J", kept}, {"profiles_W", profiles}});
    }
    if (!list.empty()) buses[names[b]] = list;
  }
  return json{{"format", kFormat}, {"buses", buses}}.dump(2) + "\n";
}

std::vector<core::WindowNeeds> parse_window_needs(const std::string& text, const std::vector<std::string>& names,
                                                  const std::vector<std::vector<core::ScheduleWindow>>& windows) {
  std::vector<core::WindowNeeds> out(names.size());
  const json j = json::parse(text);  // throws json::parse_error (a std::exception) on malformed text
  if (!j.is_object() || !j.contains("format") || !j["format"].is_number_integer())
    throw std::runtime_error("no \"format\" number");
  if (j["format"].get<int>() != kFormat)
    throw std::runtime_error("format " + j["format"].dump() + " (this eqd reads " + std::to_string(kFormat) + ")");
  if (!j.contains("buses") || !j["buses"].is_object()) throw std::runtime_error("no \"buses\" object");
  for (std::size_t b = 0; b < names.size() && b < windows.size(); ++b) {
    const auto it = j["buses"].find(names[b]);
    if (it == j["buses"].end()) continue;
    if (!it->is_array()) throw std::runtime_error("buses." + names[b] + ": not a list");
    for (const json& e : *it) {
      if (!e.is_object() || !e.contains("window") || !e["window"].is_string() || !e.contains("needs_J") ||
          !e["needs_J"].is_array())
        throw std::runtime_error("buses." + names[b] + ": an entry without \"window\" and \"needs_J\"");
      // Every need is checked, also those of a window that is no longer configured: a file with one
      // wrong number is not trusted in part.
      for (const json& v : e["needs_J"])
        if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0.0)
          throw std::runtime_error("buses." + names[b] + ": a need that is not a number >= 0");
      // profiles_W (since level shaving; absent in older files): per need, null or one mean free
      // power per 48th of the window.
      const std::size_t n = e["needs_J"].size();
      std::vector<std::optional<core::WindowNeeds::Profile>> profiles(n);
      if (e.contains("profiles_W")) {
        const json& ps = e["profiles_W"];
        if (!ps.is_array() || ps.size() != n)
          throw std::runtime_error("buses." + names[b] + ": \"profiles_W\" is not a list as long as \"needs_J\"");
        for (std::size_t k = 0; k < n; ++k) {
          if (ps[k].is_null()) continue;
          if (!ps[k].is_array() || ps[k].size() != core::WindowNeeds::kProfileBins)
            throw std::runtime_error("buses." + names[b] + ": a profile that is not " +
                                     std::to_string(core::WindowNeeds::kProfileBins) + " numbers");
          core::WindowNeeds::Profile p{};
          for (std::size_t j = 0; j < p.size(); ++j) {
            if (!ps[k][j].is_number() || !std::isfinite(ps[k][j].get<double>()) ||
                std::abs(ps[k][j].get<double>()) > core::kMaxPower_W)
              throw std::runtime_error("buses." + names[b] + ": a profile value that is not a power in W");
            p[j] = ps[k][j].get<float>();
          }
          profiles[k] = p;
        }
      }
      const std::string key = e["window"].get<std::string>();
      for (std::size_t w = 0; w < windows[b].size(); ++w)
        if (window_key(windows[b][w]) == key)
          for (std::size_t k = 0; k < n; ++k)
            out[b].record(static_cast<int>(w), e["needs_J"][k].get<double>(), profiles[k] ? &*profiles[k] : nullptr);
    }
  }
  return out;
}

std::vector<core::WindowNeeds> load_window_needs(const std::string& path, const std::vector<std::string>& names,
                                                 const std::vector<std::vector<core::ScheduleWindow>>& windows) {
  std::ifstream in(path);
  if (!in) return std::vector<core::WindowNeeds>(names.size());  // none yet
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return parse_window_needs(text.str(), names, windows);
  } catch (const std::exception& e) {
    const std::string aside = util::move_aside_for_log(path, "corrupt");
    spdlog::warn("{}: unreadable ({}); moved to {}; valley filling measures its windows again", path, e.what(), aside);
    return std::vector<core::WindowNeeds>(names.size());
  }
}

}  // namespace eqd::daemon
