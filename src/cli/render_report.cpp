// eqctl report: the table, CSV, JSON and HTML renderings (see report.hpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "render.hpp"
#include "report.hpp"

namespace eqd::cli::report {

using nlohmann::json;

namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}
std::string kwh(double j) { return fixed(j / 3.6e6, 3); }
std::string opt_kw(const std::optional<double>& w) { return w ? fixed(*w / 1000.0, 2) : "-"; }
std::string opt_fixed(const std::optional<double>& v, int d) { return v ? fixed(*v, d) : "-"; }

std::optional<double> money(const Row& r) {
  if (!r.energy_saved && !r.demand_saved) return std::nullopt;
  return r.energy_saved.value_or(0.0) + r.demand_saved.value_or(0.0);
}

std::string money_head(const Report& rep) {
  return rep.tariff && !rep.tariff->currency.empty() ? "SAVED " + rep.tariff->currency : "SAVED MONEY";
}

std::vector<std::string> cells(const Report& rep, const Row& r) {
  std::vector<std::string> c{r.period,
                             r.bus,
                             kwh(r.with_J()),
                             kwh(r.without_J()),
                             kwh(r.saved_J()),
                             opt_fixed(r.saved_pct(), 1),
                             opt_kw(r.peak_import_W),
                             opt_kw(r.free_peak_import_W),
                             kwh(r.charged_J + r.discharged_J),
                             opt_fixed(r.cycles(rep.capacity_kWh), 2)};
  if (rep.tariff) c.push_back(opt_fixed(money(r), 2));
  return c;
}

std::vector<std::string> header(const Report& rep) {
  std::vector<std::string> h{"PERIOD",  "BUS",     "WITH kWh",    "WITHOUT kWh", "SAVED kWh",
                             "SAVED %", "PEAK kW", "PEAK W/O kW", "BUFFER kWh",  "CYCLES"};
  if (rep.tariff) h.push_back(money_head(rep));
  return h;
}

std::string describe(const Report& rep) {
  std::string s = "grid exchange (import + export) with and without equalization, " + local_text(rep.from_s) + " .. " +
                  local_text(rep.to_s) + " local time, by " + to_string(rep.by);
  if (!rep.bus.empty()) s += ", bus " + rep.bus;
  return s;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

json row_json(const Report& rep, const Row& r) {
  auto o = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  json j{{"period", r.period},
         {"from", local_text(r.from_s)},
         {"from_s", r.from_s},
         {"to_s", r.to_s},
         {"bus", r.bus},
         {"minutes", r.minutes},
         {"with_eq_kWh", r.with_J() / 3.6e6},
         {"without_eq_kWh", r.without_J() / 3.6e6},
         {"saved_kWh", r.saved_J() / 3.6e6},
         {"saved_pct", o(r.saved_pct())},
         {"grid_import_kWh", r.grid_import_J / 3.6e6},
         {"grid_export_kWh", r.grid_export_J / 3.6e6},
         {"without_eq_import_kWh", r.free_import_J / 3.6e6},
         {"without_eq_export_kWh", r.free_export_J / 3.6e6},
         {"peak_import_kW", r.peak_import_W ? json(*r.peak_import_W / 1000.0) : json(nullptr)},
         {"without_eq_peak_import_kW", r.free_peak_import_W ? json(*r.free_peak_import_W / 1000.0) : json(nullptr)},
         {"buffer_throughput_kWh", (r.charged_J + r.discharged_J) / 3.6e6},
         {"buffer_charged_kWh", r.charged_J / 3.6e6},
         {"buffer_discharged_kWh", r.discharged_J / 3.6e6},
         {"buffers", r.buffers},
         {"equivalent_full_cycles", o(r.cycles(rep.capacity_kWh))}};
  if (rep.tariff) {
    j["energy_saved"] = o(r.energy_saved);
    j["demand_saved"] = o(r.demand_saved);
    j["money_saved"] = o(money(r));
  }
  return j;
}

// One bar chart: per period, two bars (without, with) of `value`, for one bus. Inline SVG without
// xmlns (HTML5 needs none, and the file then names no URL at all).
std::string bar_chart(const std::string& title, const std::vector<const Row*>& rows, double (*without)(const Row&),
                      double (*with)(const Row&), const char* unit) {
  constexpr int kWidth = 760, kHeight = 240, kLeft = 60, kBottom = 40, kTop = 20;
  double top = 0.0;
  for (const Row* r : rows) top = std::max({top, without(*r), with(*r)});
  if (!(top > 0.0)) top = 1.0;
  const double plot_w = kWidth - kLeft - 10.0, plot_h = kHeight - kBottom - kTop;
  const double slot = plot_w / static_cast<double>(std::max<std::size_t>(rows.size(), 1));
  std::string s = "<figure><figcaption>" + escape(title) + "</figcaption><svg width=\"" + std::to_string(kWidth) +
                  "\" height=\"" + std::to_string(kHeight) + "\" viewBox=\"0 0 " + std::to_string(kWidth) + " " +
                  std::to_string(kHeight) + "\" role=\"img\" aria-label=\"" + escape(title) + "\">";
  for (int k = 0; k <= 4; ++k) {
    const double y = kTop + plot_h * (1.0 - k / 4.0);
    s += "<line x1=\"" + std::to_string(kLeft) + "\" x2=\"" + std::to_string(kWidth - 10) + "\" y1=\"" + fixed(y, 1) +
         "\" y2=\"" + fixed(y, 1) + "\" class=\"grid\"/>";
    s += "<text x=\"" + std::to_string(kLeft - 6) + "\" y=\"" + fixed(y + 4, 1) +
         "\" class=\"axis\" text-anchor=\"end\">" +
         fixed(top * k / 4.0, top < 0.1  ? 4
                              : top < 10 ? 2
                                         : 0) +
         "</text>";
  }
  s += "<text x=\"4\" y=\"12\" class=\"axis\">" + std::string(unit) + "</text>";
  // As many period labels as fit side by side (11 px text: about 6.2 px per character).
  std::size_t longest = 1;
  for (const Row* r : rows) longest = std::max(longest, r->period.size());
  const double label_px = 6.2 * static_cast<double>(longest) + 10.0;
  const auto label_every = static_cast<std::size_t>(std::ceil(label_px / std::max(slot, 1e-3)));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const double x = kLeft + slot * static_cast<double>(i);
    const double bw = std::max(1.0, slot * 0.4);
    const double h0 = plot_h * without(*rows[i]) / top, h1 = plot_h * with(*rows[i]) / top;
    s += "<rect class=\"without\" x=\"" + fixed(x + slot * 0.1, 1) + "\" y=\"" + fixed(kTop + plot_h - h0, 1) +
         "\" width=\"" + fixed(bw, 1) + "\" height=\"" + fixed(h0, 1) + "\"><title>" + escape(rows[i]->period) +
         " without equalization: " + fixed(without(*rows[i]), 3) + " " + unit + "</title></rect>";
    s += "<rect class=\"with\" x=\"" + fixed(x + slot * 0.1 + bw, 1) + "\" y=\"" + fixed(kTop + plot_h - h1, 1) +
         "\" width=\"" + fixed(bw, 1) + "\" height=\"" + fixed(h1, 1) + "\"><title>" + escape(rows[i]->period) +
         " with equalization: " + fixed(with(*rows[i]), 3) + " " + unit + "</title></rect>";
    if (i % label_every == 0)
      s += "<text x=\"" + fixed(x + slot * 0.5, 1) + "\" y=\"" + std::to_string(kHeight - kBottom + 16) +
           "\" class=\"axis\" text-anchor=\"middle\">" + escape(rows[i]->period) + "</text>";
  }
  s += "<rect class=\"without\" x=\"" + std::to_string(kLeft) + "\" y=\"" + std::to_string(kHeight - 14) +
       "\" width=\"12\" height=\"10\"/><text x=\"" + std::to_string(kLeft + 16) + "\" y=\"" +
       std::to_string(kHeight - 5) + "\" class=\"axis\">without equalization</text>";
  s += "<rect class=\"with\" x=\"" + std::to_string(kLeft + 170) + "\" y=\"" + std::to_string(kHeight - 14) +
       "\" width=\"12\" height=\"10\"/><text x=\"" + std::to_string(kLeft + 186) + "\" y=\"" +
       std::to_string(kHeight - 5) + "\" class=\"axis\">with equalization</text>";
  return s + "</svg></figure>\n";
}

std::string html_table(const Report& rep, const std::vector<Row>& rows) {
  std::string s = "<table><thead><tr>";
  for (const std::string& h : header(rep)) s += "<th>" + escape(h) + "</th>";
  s += "</tr></thead><tbody>\n";
  for (const Row& r : rows) {
    s += "<tr>";
    const std::vector<std::string> c = cells(rep, r);
    for (std::size_t i = 0; i < c.size(); ++i) s += (i < 2 ? "<td>" : "<td class=\"n\">") + escape(c[i]) + "</td>";
    s += "</tr>\n";
  }
  return s + "</tbody></table>\n";
}

}  // namespace

std::string render_table(const Report& rep) {
  if (rep.rows.empty()) return "no energy history in " + local_text(rep.from_s) + " .. " + local_text(rep.to_s) + "\n";
  std::vector<std::vector<std::string>> rows;
  for (const Row& r : rep.rows) rows.push_back(cells(rep, r));
  for (const Row& r : rep.totals) rows.push_back(cells(rep, r));
  std::string out = describe(rep) + "\n" + format_table(header(rep), rows);
  if (!rep.capacity_kWh) out += "(CYCLES: give --buffer-capacity-kWh, the nominal energy of one buffer battery)\n";
  return out;
}

std::string render_csv(const Report& rep) {
  std::vector<std::string> h{"period",
                             "from",
                             "bus",
                             "minutes",
                             "with_eq_kWh",
                             "without_eq_kWh",
                             "saved_kWh",
                             "saved_pct",
                             "peak_import_kW",
                             "without_eq_peak_import_kW",
                             "buffer_throughput_kWh",
                             "equivalent_full_cycles"};
  if (rep.tariff) h.push_back("money_saved");
  std::string out;
  for (std::size_t i = 0; i < h.size(); ++i) out += (i ? "," : "") + h[i];
  out += "\n";
  auto line = [&](const Row& r) {
    std::vector<std::string> c{r.period,
                               local_text(r.from_s),
                               r.bus,
                               std::to_string(r.minutes),
                               fixed(r.with_J() / 3.6e6, 4),
                               fixed(r.without_J() / 3.6e6, 4),
                               fixed(r.saved_J() / 3.6e6, 4),
                               r.saved_pct() ? fixed(*r.saved_pct(), 2) : "",
                               r.peak_import_W ? fixed(*r.peak_import_W / 1000.0, 3) : "",
                               r.free_peak_import_W ? fixed(*r.free_peak_import_W / 1000.0, 3) : "",
                               fixed((r.charged_J + r.discharged_J) / 3.6e6, 4),
                               r.cycles(rep.capacity_kWh) ? fixed(*r.cycles(rep.capacity_kWh), 3) : ""};
    if (rep.tariff) c.push_back(money(r) ? fixed(*money(r), 2) : "");
    for (std::size_t i = 0; i < c.size(); ++i) out += (i ? "," : "") + csv_cell(c[i]);
    out += "\n";
  };
  for (const Row& r : rep.rows) line(r);
  for (const Row& r : rep.totals) line(r);
  return out;
}

json render_json(const Report& rep) {
  json j{{"from", local_text(rep.from_s)},
         {"to", local_text(rep.to_s)},
         {"from_s", rep.from_s},
         {"to_s", rep.to_s},
         {"by", to_string(rep.by)},
         {"bus", rep.bus.empty() ? json(nullptr) : json(rep.bus)},
         {"buffer_capacity_kWh", rep.capacity_kWh ? json(*rep.capacity_kWh) : json(nullptr)},
         {"rows", json::array()},
         {"totals", json::array()}};
  if (rep.tariff) j["currency"] = rep.tariff->currency;
  for (const Row& r : rep.rows) j["rows"].push_back(row_json(rep, r));
  for (const Row& r : rep.totals) j["totals"].push_back(row_json(rep, r));
  return j;
}

std::string render_html(const Report& rep, const std::string& generated_text) {
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>eqd energy report " +
      escape(local_text(rep.from_s)) + " .. " + escape(local_text(rep.to_s)) +
      "</title>\n<style>\n"
      "body{font-family:sans-serif;margin:2em;color:#222;background:#fff}h1{font-size:1.4em}h2{font-size:1.15em;"
      "margin-top:1.6em}\ntable{border-collapse:collapse;font-size:.85em}th,td{border:1px solid #bbb;padding:3px 6px}"
      "th{background:#eef}td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
      "figure{margin:1em 0}figcaption{font-weight:bold;margin-bottom:4px}\n"
      ".grid{stroke:#ddd;stroke-width:1}.axis{font-size:11px;fill:#444}.without{fill:#d9534f}.with{fill:#2e7d32}\n"
      ".big{font-size:1.1em}\n</style></head><body>\n<h1>eqd energy report</h1>\n<p>" +
      escape(describe(rep)) + ". Generated " + escape(generated_text) + ".</p>\n";
  if (rep.rows.empty()) return s + "<p>No energy history in this range.</p>\n</body></html>\n";
  s += "<h2>Totals</h2>\n";
  for (const Row& t : rep.totals) {
    s += "<p class=\"big\">Bus <b>" + escape(t.bus) + "</b>: grid exchange " + kwh(t.with_J()) +
         " kWh with equalization, " + kwh(t.without_J()) + " kWh without: <b>" + kwh(t.saved_J()) + " kWh saved";
    if (t.saved_pct()) s += " (" + fixed(*t.saved_pct(), 1) + " %)";
    s += "</b>";
    if (t.peak_import_W && t.free_peak_import_W)
      s += "; peak import " + opt_kw(t.peak_import_W) + " kW instead of " + opt_kw(t.free_peak_import_W) + " kW";
    if (money(t)) s += "; worth <b>" + fixed(*money(t), 2) + " " + escape(rep.tariff->currency) + "</b>";
    s += ".</p>\n";
  }
  s += html_table(rep, rep.totals);
  std::map<std::string, std::vector<const Row*>> by_bus;
  for (const Row& r : rep.rows) by_bus[r.bus].push_back(&r);
  for (const auto& [bus, rows] : by_bus) {
    s += "<h2>Bus " + escape(bus) + "</h2>\n";
    s += bar_chart(
        "Grid exchange per " + std::string(to_string(rep.by)) + ", kWh", rows,
        [](const Row& r) { return r.without_J() / 3.6e6; }, [](const Row& r) { return r.with_J() / 3.6e6; }, "kWh");
    s += bar_chart(
        "Peak import per " + std::string(to_string(rep.by)) + ", kW", rows,
        [](const Row& r) { return r.free_peak_import_W.value_or(0.0) / 1000.0; },
        [](const Row& r) { return r.peak_import_W.value_or(0.0) / 1000.0; }, "kW");
  }
  s += "<h2>Per " + std::string(to_string(rep.by)) + "</h2>\n" + html_table(rep, rep.rows);
  s += "<p>Times are local (" +
       escape(local_text(rep.from_s).empty() ? ""
                                             : "the time zone of the machine that ran "
                                               "eqctl") +
       "). Exchange = import + export. CYCLES = buffer throughput / 2 / (buffer capacity x buffers)";
  if (rep.capacity_kWh) s += ", with " + fixed(*rep.capacity_kWh, 2) + " kWh per buffer";
  s += ".</p>\n</body></html>\n";
  return s;
}

}  // namespace eqd::cli::report
