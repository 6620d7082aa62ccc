#pragma once
/// @file report.hpp
/// `eqctl report`: the local calendar's periods (hour, day, week, month; DST-safe through mktime with
/// tm_isdst = -1), the tariff file, and adding up the daemon's per-interval sums (control API
/// `report`) into per-period, per-bus rows with savings and money. Rendering is in render_report.cpp.
/// Times are in the local time zone of eqctl (TZ, else /etc/localtime). Pure apart from the tariff
/// file read by load_tariff(); any thread (localtime_r/mktime are thread-safe).

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace eqd::cli::report {

/// The length of a report's periods.
enum class Period { hour, day, week, month };
/// "hour", "day", "week", "month"; nullopt for anything else.
[[nodiscard]] std::optional<Period> parse_period(const std::string& text);
[[nodiscard]] const char* to_string(Period p) noexcept;

/// A local date or time: 2026-12-03, 2026-12-03T17:40, 2026-12-03 17:40:12 (local time zone, DST
/// resolved by mktime; a time skipped by a DST change is the one after it) as UTC s; nullopt when it
/// is not one or does not exist (2026-02-30).
[[nodiscard]] std::optional<std::int64_t> parse_local_time(const std::string& text);
/// The start (UTC s) of the local period holding `t_s`: the hour, midnight, Monday's midnight, the
/// 1st's midnight.
[[nodiscard]] std::int64_t period_start(std::int64_t t_s, Period p);
/// The start of the period after the one starting at `start_s` (a local day may be 23 or 25 hours).
[[nodiscard]] std::int64_t next_period(std::int64_t start_s, Period p);
/// The edges of the periods between `from_s` and `to_s`: from_s, each period start after it, to_s.
[[nodiscard]] std::vector<std::int64_t> period_edges(std::int64_t from_s, std::int64_t to_s, Period p);
/// "2026-12-03 17:00" (local) of `t_s`; with `p`, the period's label: "2026-12-03 17h", "2026-12-03",
/// "2026-W49", "2026-12".
[[nodiscard]] std::string local_text(std::int64_t t_s);
[[nodiscard]] std::string period_label(std::int64_t start_s, Period p);

/// A tariff file's problem, as the configuration's: "FILE:LINE:COL: KEY: message".
struct TariffError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One energy price window of a tariff: on `days` (bit 0 Monday .. bit 6 Sunday), local time of day
/// in [from_min, to_min) (to_min < from_min: across midnight, the days being the start's).
struct PriceWindow {
  unsigned days = 0x7f;
  int from_min = 0;
  int to_min = 24 * 60;
  double price_per_kWh = 0.0;
};

/// A tariff (docs/eqctl.md, "Tariff file"). Plain data.
struct Tariff {
  std::string currency;               ///< shown after amounts ("EUR"); empty: none
  std::vector<PriceWindow> energy;    ///< the first window holding a time gives its price
  double export_price_per_kWh = 0.0;  ///< what exported energy earns (less export costs this)
  double demand_price_per_kW = 0.0;   ///< per kW of each period's peak import
};
/// Reads and checks the tariff file `path` (unknown keys, missing prices, bad times, a time of the week
/// without a price). Throws TariffError.
[[nodiscard]] Tariff load_tariff(const std::string& path);
/// Parses tariff YAML `text` as if read from `name`. Throws TariffError.
[[nodiscard]] Tariff parse_tariff(const std::string& text, const std::string& name);
/// The energy price at local time `t_s`.
[[nodiscard]] double energy_price(const Tariff& t, std::int64_t t_s);
/// The times within (from_s, to_s) at which the tariff's price may change: each window's ends and
/// each local midnight.
[[nodiscard]] std::vector<std::int64_t> tariff_edges(const Tariff& t, std::int64_t from_s, std::int64_t to_s);

/// One bus in one period: what the report shows. Energies in J, powers in W.
struct Row {
  std::int64_t from_s = 0, to_s = 0;
  std::string period;  ///< the period's label
  std::string bus;
  std::int64_t minutes = 0;
  double grid_import_J = 0, grid_export_J = 0, free_import_J = 0, free_export_J = 0;
  std::optional<double> peak_import_W, free_peak_import_W;
  double charged_J = 0, discharged_J = 0;
  std::int64_t buffers = 0;            ///< most buffers seen in one of the period's intervals
  std::optional<double> energy_saved;  ///< money saved on energy (with a tariff)
  std::optional<double> demand_saved;  ///< money saved on the peak's demand price (with a tariff)
  [[nodiscard]] double with_J() const { return grid_import_J + grid_export_J; }
  [[nodiscard]] double without_J() const { return free_import_J + free_export_J; }
  [[nodiscard]] double saved_J() const { return without_J() - with_J(); }
  /// The saving as a percentage of the exchange without equalization; nullopt when that is 0.
  [[nodiscard]] std::optional<double> saved_pct() const;
  /// Equivalent full cycles of the average buffer with `capacity_kWh` each: throughput / 2 / capacity
  /// / buffers. nullopt without a capacity or buffers.
  [[nodiscard]] std::optional<double> cycles(std::optional<double> capacity_kWh) const;
};

/// What the report is: its settings and rows (per period, buses by name; a bus without a minute in a
/// period has no row there), and the totals per bus over the whole range.
struct Report {
  std::int64_t from_s = 0, to_s = 0;
  Period by = Period::day;
  std::string bus;  ///< the --bus filter, empty: all
  std::optional<double> capacity_kWh;
  std::optional<Tariff> tariff;
  std::vector<Row> rows;
  std::vector<Row> totals;  ///< one per bus (period "total"; peaks the largest; buffers the most)
};

/// The intervals to ask the daemon for: the period edges, cut also where the tariff's price may change.
[[nodiscard]] std::vector<std::int64_t> query_edges(const std::vector<std::int64_t>& period_edges,
                                                    const std::optional<Tariff>& tariff);
/// Adds up the daemon's answers (the "intervals" of each `report` result, in order) into `rep.rows`
/// and `rep.totals`, with `edges` the period edges.
void build(Report& rep, const std::vector<std::int64_t>& edges, const nlohmann::json& intervals);

/// The renderings. table: one line per period and bus, then the totals, at most ~100 columns;
/// csv: a header and one line per row (totals with period "total"); json: the report as an object;
/// html: one self-contained file with inline CSS and SVG charts (no script, nothing fetched).
[[nodiscard]] std::string render_table(const Report& rep);
[[nodiscard]] std::string render_csv(const Report& rep);
[[nodiscard]] nlohmann::json render_json(const Report& rep);
[[nodiscard]] std::string render_html(const Report& rep, const std::string& generated_text);

}  // namespace eqd::cli::report
