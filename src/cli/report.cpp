// eqctl report: local periods, the tariff file and adding up the daemon's sums (see report.hpp).
#include "report.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

namespace eqd::cli::report {

using nlohmann::json;

namespace {

std::tm local_tm(std::int64_t t_s) {
  const std::time_t t = static_cast<std::time_t>(t_s);
  std::tm tm{};
  localtime_r(&t, &tm);
  return tm;
}

// mktime of a local calendar time; tm_isdst = -1 lets the C library pick standard or summer time,
// so that a day keeps its midnight across a DST change (23 or 25 hours long).
std::int64_t local_mktime(std::tm tm) {
  tm.tm_isdst = -1;
  return static_cast<std::int64_t>(std::mktime(&tm));
}

// Monday = 0 .. Sunday = 6.
int weekday_mon0(const std::tm& tm) { return (tm.tm_wday + 6) % 7; }

constexpr const char* kDayNames[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

}  // namespace

std::optional<Period> parse_period(const std::string& text) {
  if (text == "hour") return Period::hour;
  if (text == "day") return Period::day;
  if (text == "week") return Period::week;
  if (text == "month") return Period::month;
  return std::nullopt;
}

const char* to_string(Period p) noexcept {
  switch (p) {
    case Period::hour:
      return "hour";
    case Period::day:
      return "day";
    case Period::week:
      return "week";
    case Period::month:
      return "month";
  }
  return "day";
}

std::optional<std::int64_t> parse_local_time(const std::string& text) {
  std::tm tm{};
  int n = 0;
  char sep = 'T';
  int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0;
  const int got = std::sscanf(text.c_str(), "%4d-%2d-%2d%n%c%2d:%2d%n:%2d%n", &year, &mon, &day, &n, &sep, &hour, &min,
                              &n, &sec, &n);
  if (got < 3 || (got >= 4 && sep != 'T' && sep != ' ') || got == 4 || got == 5) return std::nullopt;
  if (static_cast<std::size_t>(n) != text.size()) return std::nullopt;
  if (year < 1970 || year > 9999 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59 ||
      hour < 0 || min < 0 || sec < 0)
    return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  const std::int64_t t = local_mktime(tm);
  // mktime normalises 2026-02-30 into March: such a date does not exist.
  const std::tm back = local_tm(t);
  if (back.tm_mday != day || back.tm_mon != mon - 1) return std::nullopt;
  return t;
}

std::int64_t period_start(std::int64_t t_s, Period p) {
  std::tm tm = local_tm(t_s);
  tm.tm_sec = 0;
  tm.tm_min = 0;
  if (p == Period::hour) {
    // The hour of the local clock; a 30-minute zone offset makes it start at :30 UTC, as it should.
    // Within a repeated hour (DST ending) mktime may pick the other one: stay on the side of t_s.
    std::int64_t s = local_mktime(tm);
    if (s > t_s) s -= 3600;
    if (t_s - s >= 3600) s += 3600;
    return s;
  }
  tm.tm_hour = 0;
  if (p == Period::week) tm.tm_mday -= weekday_mon0(tm);
  if (p == Period::month) tm.tm_mday = 1;
  return local_mktime(tm);
}

std::int64_t next_period(std::int64_t start_s, Period p) {
  if (p == Period::hour) return start_s + 3600;  // an hour is an hour, whatever the clock says
  std::tm tm = local_tm(start_s);
  tm.tm_sec = tm.tm_min = tm.tm_hour = 0;
  if (p == Period::day) tm.tm_mday += 1;
  if (p == Period::week) tm.tm_mday += 7;
  if (p == Period::month) {
    tm.tm_mday = 1;
    tm.tm_mon += 1;
  }
  return local_mktime(tm);
}

std::vector<std::int64_t> period_edges(std::int64_t from_s, std::int64_t to_s, Period p) {
  std::vector<std::int64_t> e{from_s};
  for (std::int64_t t = next_period(period_start(from_s, p), p); t < to_s; t = next_period(t, p))
    if (t > e.back()) e.push_back(t);
  if (to_s > e.back()) e.push_back(to_s);
  return e;
}

std::string local_text(std::int64_t t_s) {
  const std::tm tm = local_tm(t_s);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string period_label(std::int64_t start_s, Period p) {
  const std::tm tm = local_tm(start_s);
  char buf[40];
  switch (p) {
    case Period::hour:
      std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
      break;
    case Period::day:
      std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
      break;
    case Period::week:
      std::strftime(buf, sizeof buf, "%G-W%V", &tm);  // ISO week: weeks start on Monday here too
      break;
    case Period::month:
      std::strftime(buf, sizeof buf, "%Y-%m", &tm);
      break;
  }
  return buf;
}

// ---------------------------------------------------------------------------------------------
// The tariff file.

namespace {

[[noreturn]] void fail(const std::string& file, const YAML::Node& n, const std::string& key, const std::string& msg) {
  std::string s = file;
  if (n.IsDefined() && n.Mark().line >= 0)
    s += ":" + std::to_string(n.Mark().line + 1) + ":" + std::to_string(n.Mark().column + 1);
  s += ": ";
  if (!key.empty()) s += key + ": ";
  throw TariffError(s + msg);
}

double price(const std::string& file, const YAML::Node& n, const std::string& key) {
  double v = 0;
  if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !std::isfinite(v))
    fail(file, n, key, "'" + (n.IsScalar() ? n.Scalar() : std::string("?")) + "' is not a number");
  if (v < 0) fail(file, n, key, "must not be negative");
  return v;
}

// "HH:MM" (24:00 allowed for an end) as minutes of the day.
int time_of_day(const std::string& file, const YAML::Node& n, const std::string& key, bool end) {
  const std::string s = n.IsScalar() ? n.Scalar() : std::string();
  int h = -1, m = -1, used = 0;
  if (std::sscanf(s.c_str(), "%2d:%2d%n", &h, &m, &used) != 2 || static_cast<std::size_t>(used) != s.size() || h < 0 ||
      m < 0 || m > 59 || h > 24 || (h == 24 && (m != 0 || !end)))
    fail(file, n, key, "'" + s + "' is not a time of day HH:MM (00:00.." + (end ? "24:00" : "23:59") + ")");
  return h * 60 + m;
}

unsigned day_bit(const std::string& file, const YAML::Node& n, const std::string& key, const std::string& name) {
  for (int d = 0; d < 7; ++d)
    if (name == kDayNames[d]) return 1U << static_cast<unsigned>(d);
  fail(file, n, key, "'" + name + "' is not a day (mon, tue, wed, thu, fri, sat, sun, or a range mon-fri)");
}

unsigned days_of(const std::string& file, const YAML::Node& n, const std::string& key) {
  unsigned mask = 0;
  auto one = [&](const YAML::Node& item, const std::string& k) {
    const std::string s = item.IsScalar() ? item.Scalar() : std::string();
    if (const auto dash = s.find('-'); dash != std::string::npos) {
      const unsigned a = day_bit(file, item, k, s.substr(0, dash));
      const unsigned b = day_bit(file, item, k, s.substr(dash + 1));
      int ia = 0, ib = 0;
      while ((1U << static_cast<unsigned>(ia)) != a) ++ia;
      while ((1U << static_cast<unsigned>(ib)) != b) ++ib;
      for (int d = ia;; d = (d + 1) % 7) {
        mask |= 1U << static_cast<unsigned>(d);
        if (d == ib) break;
      }
    } else {
      mask |= day_bit(file, item, k, s);
    }
  };
  if (n.IsSequence()) {
    if (n.size() == 0) fail(file, n, key, "an empty list of days");
    for (std::size_t i = 0; i < n.size(); ++i) one(n[i], key + "[" + std::to_string(i) + "]");
  } else if (n.IsScalar()) {
    one(n, key);
  } else {
    fail(file, n, key, "days must be a list like [mon, tue] or a range like mon-fri");
  }
  return mask;
}

bool holds(const PriceWindow& w, int weekday, int minute) {
  if (w.from_min <= w.to_min) return (w.days >> weekday & 1U) != 0 && minute >= w.from_min && minute < w.to_min;
  // Across midnight: the evening part on its days, the morning part on the day after one of them.
  const int yesterday = (weekday + 6) % 7;
  return ((w.days >> weekday & 1U) != 0 && minute >= w.from_min) ||
         ((w.days >> yesterday & 1U) != 0 && minute < w.to_min);
}

const PriceWindow* window_at(const Tariff& t, int weekday, int minute) {
  for (const PriceWindow& w : t.energy)
    if (holds(w, weekday, minute)) return &w;
  return nullptr;
}

}  // namespace

Tariff parse_tariff(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw TariffError(file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": not valid YAML: " + e.msg);
  }
  if (!root.IsMap())
    fail(file, root, "", "a tariff is a mapping with energy: (and currency:, demand_price_per_kW:, ...)");
  Tariff t;
  bool have_energy = false;
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "currency") {
      if (!v.IsScalar() || v.Scalar().size() > 8) fail(file, v, key, "a short name such as EUR");
      t.currency = v.Scalar();
    } else if (key == "export_price_per_kWh") {
      t.export_price_per_kWh = price(file, v, key);
    } else if (key == "demand_price_per_kW") {
      t.demand_price_per_kW = price(file, v, key);
    } else if (key == "energy") {
      have_energy = true;
      if (!v.IsSequence() || v.size() == 0)
        fail(file, v, key,
             "a list of price windows, e.g. - {days: mon-fri, from: \"07:00\", to: \"21:00\", "
             "price_per_kWh: 0.34}");
      for (std::size_t i = 0; i < v.size(); ++i) {
        const YAML::Node& w = v[i];
        const std::string k = "energy[" + std::to_string(i) + "]";
        if (!w.IsMap()) fail(file, w, k, "a price window: days, from, to, price_per_kWh");
        PriceWindow pw;
        bool have_price = false;
        for (const auto& f : w) {
          const std::string fk = f.first.Scalar();
          if (fk == "days")
            pw.days = days_of(file, f.second, k + ".days");
          else if (fk == "from")
            pw.from_min = time_of_day(file, f.second, k + ".from", false);
          else if (fk == "to")
            pw.to_min = time_of_day(file, f.second, k + ".to", true);
          else if (fk == "price_per_kWh") {
            pw.price_per_kWh = price(file, f.second, k + ".price_per_kWh");
            have_price = true;
          } else
            fail(file, f.first, k, "unknown key '" + fk + "' (known: days, from, to, price_per_kWh)");
        }
        if (!have_price) fail(file, w, k, "price_per_kWh is missing");
        if (pw.from_min == pw.to_min) fail(file, w, k, "from and to are the same time: an empty window");
        t.energy.push_back(pw);
      }
    } else {
      fail(file, kv.first, "",
           "unknown key '" + key + "' (known: currency, energy, export_price_per_kWh, demand_price_per_kW)");
    }
  }
  if (!have_energy) fail(file, root, "", "energy is missing: the price per kWh by time of day");
  // Every minute of the week needs a price: a gap would silently count as free energy.
  for (int d = 0; d < 7; ++d)
    for (int m = 0; m < 24 * 60; ++m)
      if (window_at(t, d, m) == nullptr) {
        char when[32];
        std::snprintf(when, sizeof when, "%s %02d:%02d", kDayNames[d], m / 60, m % 60);
        fail(file, root["energy"], "energy",
             std::string("no price for ") + when + " (end the list with a window without days, from and to)");
      }
  return t;
}

Tariff load_tariff(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw TariffError(path + ": cannot read the tariff file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > 1024 * 1024) throw TariffError(path + ": larger than 1 MiB: not a tariff file");
  return parse_tariff(ss.str(), path);
}

double energy_price(const Tariff& t, std::int64_t t_s) {
  const std::tm tm = local_tm(t_s);
  const PriceWindow* w = window_at(t, weekday_mon0(tm), tm.tm_hour * 60 + tm.tm_min);
  return w != nullptr ? w->price_per_kWh : 0.0;
}

std::vector<std::int64_t> tariff_edges(const Tariff& t, std::int64_t from_s, std::int64_t to_s) {
  std::vector<int> minutes{0};
  for (const PriceWindow& w : t.energy) {
    minutes.push_back(w.from_min);
    if (w.to_min < 24 * 60) minutes.push_back(w.to_min);
  }
  std::sort(minutes.begin(), minutes.end());
  minutes.erase(std::unique(minutes.begin(), minutes.end()), minutes.end());
  std::vector<std::int64_t> out;
  for (std::int64_t day = period_start(from_s, Period::day); day < to_s; day = next_period(day, Period::day)) {
    std::tm tm = local_tm(day);
    for (int m : minutes) {
      tm.tm_hour = m / 60;
      tm.tm_min = m % 60;
      tm.tm_sec = 0;
      const std::int64_t e = local_mktime(tm);
      if (e > from_s && e < to_s) out.push_back(e);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Adding up.

std::optional<double> Row::saved_pct() const {
  if (!(without_J() > 0.0)) return std::nullopt;
  return 100.0 * saved_J() / without_J();
}

std::optional<double> Row::cycles(std::optional<double> capacity_kWh) const {
  if (!capacity_kWh || !(*capacity_kWh > 0.0) || buffers <= 0) return std::nullopt;
  return (charged_J + discharged_J) / 3.6e6 / 2.0 / (*capacity_kWh * static_cast<double>(buffers));
}

std::vector<std::int64_t> query_edges(const std::vector<std::int64_t>& period_edges,
                                      const std::optional<Tariff>& tariff) {
  std::vector<std::int64_t> e = period_edges;
  if (tariff && period_edges.size() >= 2) {
    const std::vector<std::int64_t> more = tariff_edges(*tariff, period_edges.front(), period_edges.back());
    e.insert(e.end(), more.begin(), more.end());
    std::sort(e.begin(), e.end());
    e.erase(std::unique(e.begin(), e.end()), e.end());
  }
  return e;
}

namespace {

double num(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::optional<double> opt(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

void add_peak(std::optional<double>& into, std::optional<double> v) {
  if (v) into = into ? std::max(*into, *v) : *v;
}

void add(Row& into, const Row& r) {
  into.minutes += r.minutes;
  into.grid_import_J += r.grid_import_J;
  into.grid_export_J += r.grid_export_J;
  into.free_import_J += r.free_import_J;
  into.free_export_J += r.free_export_J;
  add_peak(into.peak_import_W, r.peak_import_W);
  add_peak(into.free_peak_import_W, r.free_peak_import_W);
  into.charged_J += r.charged_J;
  into.discharged_J += r.discharged_J;
  into.buffers = std::max(into.buffers, r.buffers);
  if (r.energy_saved) into.energy_saved = into.energy_saved.value_or(0.0) + *r.energy_saved;
}

// The demand saving of a row from its peaks (a period's or the whole range's).
void demand(Row& r, const std::optional<Tariff>& t) {
  if (!t) return;
  r.demand_saved = r.free_peak_import_W && r.peak_import_W
                       ? (*r.free_peak_import_W - *r.peak_import_W) / 1000.0 * t->demand_price_per_kW
                       : 0.0;
}

}  // namespace

void build(Report& rep, const std::vector<std::int64_t>& edges, const json& intervals) {
  rep.rows.clear();
  rep.totals.clear();
  if (edges.size() < 2) return;
  // Per period, per bus (std::map: buses by name).
  std::vector<std::map<std::string, Row>> periods(edges.size() - 1);
  if (intervals.is_array()) {
    for (const json& iv : intervals) {
      if (!iv.is_object()) continue;
      const std::int64_t from = iv.value("from_s", std::int64_t{0});
      const std::int64_t to = iv.value("to_s", std::int64_t{0});
      // The period holding this interval: the last edge at or before its start.
      const auto it = std::upper_bound(edges.begin(), edges.end(), from);
      if (it == edges.begin() || it == edges.end()) continue;
      const std::size_t p = static_cast<std::size_t>(it - edges.begin()) - 1;
      const double price = rep.tariff ? energy_price(*rep.tariff, from) : 0.0;
      for (const json& b : iv.value("buses", json::array())) {
        if (!b.is_object() || !b.contains("bus") || !b["bus"].is_string()) continue;
        Row r;
        r.bus = b["bus"].get<std::string>();
        r.minutes = static_cast<std::int64_t>(num(b, "minutes"));
        r.grid_import_J = num(b, "grid_import_J");
        r.grid_export_J = num(b, "grid_export_J");
        r.free_import_J = num(b, "without_eq_import_J");
        r.free_export_J = num(b, "without_eq_export_J");
        r.peak_import_W = opt(b, "peak_import_W");
        r.free_peak_import_W = opt(b, "without_eq_peak_import_W");
        r.charged_J = num(b, "buffer_charged_J");
        r.discharged_J = num(b, "buffer_discharged_J");
        r.buffers = static_cast<std::int64_t>(num(b, "buffers"));
        if (rep.tariff)
          r.energy_saved = ((r.free_import_J - r.grid_import_J) * price -
                            (r.free_export_J - r.grid_export_J) * rep.tariff->export_price_per_kWh) /
                           3.6e6;
        Row& into = periods[p][r.bus];
        if (into.bus.empty()) {
          into.bus = r.bus;
          into.from_s = edges[p];
          into.to_s = edges[p + 1];
          into.period = period_label(edges[p], rep.by);
        }
        (void)to;
        add(into, r);
      }
    }
  }
  std::map<std::string, Row> totals;
  for (auto& period : periods)
    for (auto& [name, row] : period) {
      demand(row, rep.tariff);
      Row& t = totals[name];
      if (t.bus.empty()) {
        t.bus = name;
        t.period = "total";
        t.from_s = rep.from_s;
        t.to_s = rep.to_s;
      }
      add(t, row);
      if (row.demand_saved) t.demand_saved = t.demand_saved.value_or(0.0) + *row.demand_saved;
      rep.rows.push_back(row);
    }
  for (auto& [name, t] : totals) rep.totals.push_back(t);
}

}  // namespace eqd::cli::report
