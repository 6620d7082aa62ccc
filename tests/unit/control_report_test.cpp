// eqctl report (src/cli/report.hpp): local periods across DST changes, dates that do not exist, the
// tariff file and its errors (FILE:LINE:COL like the configuration's), adding up the daemon's
// intervals into periods with savings and money, and the HTML naming no URL and running no script.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <ctime>
#include <string>

#include "report.hpp"

namespace rp = eqd::cli::report;
using nlohmann::json;

namespace {

// Central European time as a POSIX rule (no tzdata needed): summer time from the last Sunday of March
// 02:00 to the last Sunday of October 03:00.
struct BerlinTime {
  std::string old;
  bool had = false;
  BerlinTime() {
    if (const char* tz = std::getenv("TZ")) {
      old = tz;
      had = true;
    }
    setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    tzset();
  }
  ~BerlinTime() {
    if (had)
      setenv("TZ", old.c_str(), 1);
    else
      unsetenv("TZ");
    tzset();
  }
};

constexpr const char* kTariff = R"(currency: EUR
energy:
  - days: mon-fri
    from: "08:00"
    to: "20:00"
    price_per_kWh: 0.40
  - price_per_kWh: 0.20
export_price_per_kWh: 0.05
demand_price_per_kW: 10
)";

}  // namespace

TEST_CASE("eqctl report: local days and hours across the DST changes", "[control][report]") {
  BerlinTime tz;
  const auto march28 = rp::parse_local_time("2026-03-28");
  const auto march31 = rp::parse_local_time("2026-03-31");
  REQUIRE(march28);
  REQUIRE(march31);
  const auto days = rp::period_edges(*march28, *march31, rp::Period::day);
  REQUIRE(days.size() == 4);
  CHECK(days[1] - days[0] == 24 * 3600);
  CHECK(days[2] - days[1] == 23 * 3600);  // Sunday 29 March: clocks go forward
  CHECK(days[3] - days[2] == 24 * 3600);
  CHECK(rp::period_label(days[2], rp::Period::day) == "2026-03-30");
  const auto oct25 = rp::parse_local_time("2026-10-25");
  const auto oct26 = rp::parse_local_time("2026-10-26");
  CHECK(*oct26 - *oct25 == 25 * 3600);  // clocks go back
  CHECK(rp::period_edges(*oct25, *oct26, rp::Period::hour).size() == 26);
  // Weeks start on Monday, months on the 1st, both at local midnight.
  const auto week =
      rp::period_edges(*rp::parse_local_time("2026-03-25"), *rp::parse_local_time("2026-04-08"), rp::Period::week);
  REQUIRE(week.size() == 4);
  CHECK(rp::local_text(week[1]) == "2026-03-30 00:00");
  CHECK(week[2] - week[1] == 7 * 86400);
  CHECK(rp::period_label(week[1], rp::Period::week) == "2026-W14");
  const auto months = rp::period_edges(*march28, *rp::parse_local_time("2026-05-15"), rp::Period::month);
  REQUIRE(months.size() == 4);
  CHECK(rp::local_text(months[1]) == "2026-04-01 00:00");
  CHECK(rp::period_label(months[2], rp::Period::month) == "2026-05");
}

TEST_CASE("eqctl report: dates that are not dates are refused", "[control][report]") {
  for (const char* bad : {"", "yesterday", "2026-02-30", "2026-13-01", "2026-12-03T25:00", "2026-12-03x", "2026-12",
                          "2026-12-03T17", "1969-12-31"}) {
    INFO(bad);
    CHECK_FALSE(rp::parse_local_time(bad));
  }
  CHECK(rp::parse_local_time("2026-12-03T17:40"));
  CHECK(rp::parse_local_time("2026-12-03 17:40:12"));
}

TEST_CASE("eqctl report: the tariff file and its prices by weekday and time of day", "[control][report]") {
  BerlinTime tz;
  const rp::Tariff t = rp::parse_tariff(kTariff, "t.yaml");
  CHECK(t.currency == "EUR");
  CHECK(t.demand_price_per_kW == 10.0);
  CHECK(rp::energy_price(t, *rp::parse_local_time("2026-12-03T07:59")) == 0.20);  // a Thursday
  CHECK(rp::energy_price(t, *rp::parse_local_time("2026-12-03T08:00")) == 0.40);
  CHECK(rp::energy_price(t, *rp::parse_local_time("2026-12-05T12:00")) == 0.20);  // Saturday
  const auto edges =
      rp::tariff_edges(t, *rp::parse_local_time("2026-12-03"), *rp::parse_local_time("2026-12-04T12:00"));
  REQUIRE(edges.size() == 4);  // 08:00, 20:00, midnight, 08:00
  CHECK(rp::local_text(edges[2]) == "2026-12-04 00:00");
  // Across midnight: 22:00..06:00 on Fridays reaches into Saturday morning.
  const rp::Tariff night = rp::parse_tariff(
      "energy:\n  - {days: fri, from: \"22:00\", to: \"06:00\", price_per_kWh: 0.1}\n  - price_per_kWh: 0.3\n", "n");
  CHECK(rp::energy_price(night, *rp::parse_local_time("2026-12-05T05:00")) == 0.1);
  CHECK(rp::energy_price(night, *rp::parse_local_time("2026-12-06T05:00")) == 0.3);
}

TEST_CASE("eqctl report: a bad tariff file names file, line, column and key", "[control][report]") {
  auto error = [](const std::string& text) {
    try {
      (void)rp::parse_tariff(text, "tariff.yaml");
    } catch (const rp::TariffError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error("energy:\n  - from: \"25:00\"\n    price_per_kWh: 1\n") ==
        "tariff.yaml:2:11: energy[0].from: '25:00' is not a time of day HH:MM (00:00..23:59)");
  CHECK(error("energy:\n  - price_per_kWh: cheap\n") ==
        "tariff.yaml:2:20: energy[0].price_per_kWh: 'cheap' is not a number");
  CHECK(error("energy:\n  - price_per_kWh: 1\nvat: 19\n") ==
        "tariff.yaml:3:1: unknown key 'vat' (known: currency, energy, export_price_per_kWh, demand_price_per_kW)");
  CHECK_THAT(error("energy:\n  - days: [mon, funday]\n    price_per_kWh: 1\n"),
             Catch::StartsWith("tariff.yaml:2:17: energy[0].days[1]: 'funday' is not a day"));
  CHECK_THAT(error("energy:\n  - {days: mon-fri, price_per_kWh: 1}\n"),
             Catch::Contains("energy: no price for sat 00:00"));
  CHECK_THAT(error("energy:\n  - days: mon\n"),
             Catch::StartsWith("tariff.yaml:2:5: energy[0]: price_per_kWh is missing"));
  CHECK_THAT(error("energy: [\n"), Catch::StartsWith("tariff.yaml:") && Catch::Contains(": not valid YAML"));
  CHECK_THAT(error("currency: EUR\n"), Catch::Contains("energy is missing"));
  CHECK_THAT(error("demand_price_per_kW: -1\nenergy:\n  - price_per_kWh: 1\n"),
             Catch::StartsWith("tariff.yaml:1:22: demand_price_per_kW: must not be negative"));
  CHECK_THROWS_WITH(rp::load_tariff("/nonexistent/t.yaml"), Catch::Contains("cannot read"));
}

TEST_CASE("eqctl report: intervals add up into periods with the saving, peaks, cycles and money", "[control][report]") {
  BerlinTime tz;
  rp::Report rep;
  rep.by = rp::Period::day;
  rep.from_s = *rp::parse_local_time("2026-12-03");
  rep.to_s = *rp::parse_local_time("2026-12-05");
  rep.capacity_kWh = 2.0;
  rep.tariff = rp::parse_tariff(kTariff, "t.yaml");
  const auto periods = rp::period_edges(rep.from_s, rep.to_s, rep.by);
  const auto edges = rp::query_edges(periods, rep.tariff);
  REQUIRE(edges.size() == 7);  // two days, each cut at 08:00 and 20:00
  // Each interval: 2 kWh imported without equalization, 1 kWh with; 0.5 kWh exported without, none with.
  json intervals = json::array();
  for (std::size_t i = 0; i + 1 < edges.size(); ++i)
    intervals.push_back({{"from_s", edges[i]},
                         {"to_s", edges[i + 1]},
                         {"buses", json::array({{{"bus", "main"},
                                                 {"minutes", 60},
                                                 {"grid_import_J", 3.6e6},
                                                 {"grid_export_J", 0.0},
                                                 {"without_eq_import_J", 7.2e6},
                                                 {"without_eq_export_J", 1.8e6},
                                                 {"peak_import_W", 1000.0 * static_cast<double>(i)},
                                                 {"without_eq_peak_import_W", 3000.0},
                                                 {"buffer_charged_J", 3.6e6},
                                                 {"buffer_discharged_J", 3.6e6},
                                                 {"buffers", 1}}})}});
  rp::build(rep, periods, intervals);
  REQUIRE(rep.rows.size() == 2);
  REQUIRE(rep.totals.size() == 1);
  const rp::Row& d1 = rep.rows[0];
  CHECK(d1.period == "2026-12-03");
  CHECK(d1.with_J() == Approx(3 * 3.6e6));
  CHECK(d1.without_J() == Approx(3 * 2.5 * 3.6e6));
  CHECK(*d1.saved_pct() == Approx(60.0));
  CHECK(*d1.peak_import_W == 2000.0);
  CHECK(*d1.free_peak_import_W == 3000.0);
  CHECK(*d1.cycles(rep.capacity_kWh) == Approx(6.0 / 2.0 / 2.0));
  // Energy: 1 kWh less import per interval at 0.20 + 0.40 + 0.20, 0.5 kWh less export at 0.05 each.
  CHECK(*d1.energy_saved == Approx(0.8 - 3 * 0.025));
  CHECK(*d1.demand_saved == Approx(1.0 * 10));            // 3 kW - 2 kW at 10 per kW
  CHECK(*rep.rows[1].demand_saved == Approx(-2.0 * 10));  // day 2's peak with is 5 kW: worse than without
  CHECK(*rep.totals[0].energy_saved == Approx(2 * (0.8 - 0.075)));
  CHECK(rep.totals[0].minutes == 360);

  const std::string table = rp::render_table(rep);
  CHECK_THAT(table, Catch::Contains("SAVED EUR"));
  CHECK_THAT(table, Catch::Contains("2026-12-03"));
  const std::string csv = rp::render_csv(rep);
  CHECK_THAT(csv, Catch::StartsWith("period,from,bus,minutes,with_eq_kWh"));
  CHECK(rp::render_json(rep)["totals"][0]["saved_pct"].get<double>() == Approx(60.0));
  const std::string html = rp::render_html(rep, "now");
  CHECK_THAT(html, Catch::Contains("<svg"));
  CHECK_THAT(html, !Catch::Contains("<script"));
  CHECK_THAT(html, !Catch::Contains("http"));
  CHECK_THAT(html, !Catch::Contains("url("));
  CHECK_THAT(html, !Catch::Contains("src="));
}
