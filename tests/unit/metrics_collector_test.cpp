// The metrics collector against a real ControlCore driven in virtual time: every catalogued family is
// exported with the value of the snapshot field it names; per-channel series can be turned off; the
// exporter serves the text format over loopback HTTP; scraping during cycles stays consistent.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "../fakes/core_fixture.hpp"
#include "eqd/metrics/collector.hpp"
#include "eqd/metrics/exporter.hpp"
#include "eqd/metrics/text_format.hpp"

using namespace eqd;
using eqd::test::CoreFixture;
using prometheus::ClientMetric;
using prometheus::MetricFamily;

namespace {

// One bus "main", one controller "cab1" with the fixture's channels cab1/1..N.
daemon::Directory directory_for(std::size_t channels) {
  daemon::Directory d;
  d.buses = {"main"};
  daemon::ControllerInfo c;
  c.name = "cab1";
  c.channels = static_cast<std::uint16_t>(channels);
  d.controllers.push_back(c);
  for (std::size_t i = 0; i < channels; ++i) {
    daemon::ChannelInfo ch;
    ch.name = "cab1/" + std::to_string(i + 1);
    ch.number = static_cast<std::uint16_t>(i + 1);
    d.channels.push_back(ch);
  }
  return d;
}

// Distinct counts per error kind, so that a mix-up of kinds shows.
io::LinkStats link_stats() {
  io::LinkStats s;
  s.connected = true;
  s.polls = 70;
  s.timeouts = 1;
  s.exceptions = 2;
  s.connection_errors = 3;
  s.invalid_samples = 4;
  s.protocol_errors = 5;
  s.write_errors = 6;
  s.forecast_errors = 7;
  s.program_errors = 8;
  s.writes = 11;
  s.heartbeats = 12;
  s.reconnects = 13;
  s.errors_by_code[static_cast<std::size_t>(io::LinkErrc::timeout)] = 21;
  s.errors_by_code[static_cast<std::size_t>(io::LinkErrc::value_refused)] = 24;
  s.achieved_hz = 9.5;
  s.latency.observe(0.002);  // le 0.005
  s.latency.observe(0.002);
  s.latency.observe(0.03);  // le 0.05
  s.latency.observe(5.0);   // +Inf
  return s;
}

// The core's snapshots plus a predictor thread's statistics (a core alone has no predictor thread).
class SceneSnapshots final : public daemon::SnapshotView {
 public:
  explicit SceneSnapshots(const core::ControlCore& c) : core_(c) {}
  std::size_t bus_count() const noexcept override { return core_.bus_count(); }
  std::size_t channel_count() const noexcept override { return core_.channel_count(); }
  core::BusSnapshot bus(core::BusIndex b) const noexcept override { return core_.bus(b); }
  core::ChannelSnapshot channel(core::ChannelIndex i) const noexcept override { return core_.channel(i); }
  core::Sample sample(core::ChannelIndex i) const noexcept override { return core_.sample(i); }
  core::CycleStats cycle_stats() const noexcept override { return core_.cycle_stats(); }
  daemon::StallView stall(std::int64_t now_ns) const noexcept override { return core_.stall(now_ns); }
  daemon::LearnedView learned(core::ChannelIndex i) const noexcept override { return core_.learned(i); }
  float bus_forecast_skill(core::BusIndex b) const noexcept override { return core_.bus_forecast_skill(b); }
  daemon::PredictorView predictor() const noexcept override {
    daemon::PredictorView v;
    v.running = true;
    v.ticks = 100;
    v.last_tick_s = 0.0125;
    v.memory_bytes = 4096;
    v.save_errors = 2;
    v.tick_errors = 3;
    return v;
  }

 private:
  daemon::CoreSnapshots core_;
};

core::BusParams scene_params() {
  core::BusParams p;
  p.fill_energy_Wh = 2000.0;
  return p;
}

struct Scene {
  CoreFixture f{4, scene_params()};
  daemon::Directory dir = directory_for(4);
  Scene() {
    f.state[0] = f.state[1] = core::ChannelState::running;
    f.power[0] = 900.0;
    f.power[1] = -300.0;
    f.voltage[1] = 47.25;
    // cab1/1 announces 1500 W (its power a horizon ahead), cab1/2 nothing; what a buffer announces is
    // not the law's business (neither counted nor exported).
    f.forecast[0] = 1500.0F;
    f.forecast[3] = 777.0F;
    // A calendar (as the schedule thread hands it over) whose quarter hours start a second from now,
    // and two of them run before the scene: one whole quarter hour of 600 W import is measured.
    core::BusSchedule cal;
    // A caps window ten hours ahead (beyond the lead: nothing charged for it) whose need is assumed
    // (fill_energy_Wh), for the valley-filling families.
    cal.window_count = 1;
    cal.windows[0].mode = core::BusMode::caps;
    cal.occurrence_count = 1;
    cal.occurrences[0] = {f.now_ns + 36'000'000'000'000, f.now_ns + 40'000'000'000'000, 0};
    cal.marks.calendar = true;
    cal.marks.quarter_origin_ns = f.now_ns + 1'000'000'000;
    cal.marks.next_month_ns = std::numeric_limits<std::int64_t>::max();
    f.core->set_schedule(0, cal);
    f.run_s(1802.0);
    REQUIRE(f.core->bus(0).demand_quarter_W == Approx(600.0));
    REQUIRE(f.assign(3) == core::ResponseStatus::ok);
    f.run_s(35.0);  // longer than the default 30 s horizon: the announced path fills the law's window
    // The buffer lags its setpoint from now on, so that commanded and measured power differ.
    f.follow[3] = false;
    f.power[3] = -200.0;
    f.run_s(1.0);
    // cab1/2 (announcing nothing) has a learned forecast in use, as a predictor thread publishes it.
    f.core->learned().publish(1, -250.0F, f.now_ns / 1'000'000'000);
    f.core->learned().set_skill(1, 0.75F, true);
    f.core->learned().set_bus_skill(0, 0.6F);
  }
  metrics::Sources sources() const {
    metrics::Sources s;
    s.snapshots = std::make_shared<SceneSnapshots>(*f.core);
    s.directory = &dir;
    s.controller_stats = [](std::size_t c, io::LinkStats& out) {
      if (c != 0) return false;
      out = link_stats();
      return true;
    };
    s.control_overruns = [] { return std::uint64_t{9}; };
    // The control API answered 3 status requests and refused one assign of an unknown channel.
    auto api = std::make_shared<daemon::ApiRequestStats>();
    for (int k = 0; k < 3; ++k) api->count("status", "ok");
    api->count("assign", "unknown_channel");
    s.api_requests = api;
    // The history writer committed 5 audit rows 2 s ago, lost 1 to the database and 2 to a full queue.
    auto history = std::make_shared<eqd::history::HistoryStats>();
    history->rows_written[0] = 5;
    history->write_errors = 1;
    history->dropped_queue_full = 2;
    history->last_write_ms = eqd::history::now_utc_ms() - 2000;
    s.history = history;
    const std::int64_t now = f.now_ns;
    s.now_ns = [now] { return now; };
    // The bus's grid meter (issue #19): up, 1234 W measured 0.7 s ago, 321 W off the computed net, in
    // its second disagreement, 5 errors so far, a meter trim of 300 W.
    s.meter = [](core::BusIndex) {
      daemon::MeterView v;
      v.configured = true;
      v.ok = true;
      v.age_s = 0.7;
      v.trim = true;
      v.status.trim_W = 300.0;
      v.status.power_W = 1234.0;
      v.status.difference_W = 321.0;
      v.status.disagreement = true;
      v.status.episodes = 2;
      v.status.errors = 5;
      return v;
    };
    return s;
  }
};

std::map<std::string, MetricFamily> by_name(const std::vector<MetricFamily>& v) {
  std::map<std::string, MetricFamily> m;
  for (const auto& f : v) m.emplace(f.name, f);
  return m;
}

std::string label(const ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label)
    if (l.name == name) return l.value;
  return {};
}

// The one sample of `family` whose label `name` has `value` (fails the test if not exactly one).
const ClientMetric& one(const MetricFamily& family, const std::string& name, const std::string& value) {
  const ClientMetric* found = nullptr;
  int n = 0;
  for (const auto& m : family.metric)
    if (label(m, name) == value) found = &m, ++n;
  INFO(family.name << " " << name << "=" << value);
  REQUIRE(n == 1);
  return *found;
}

std::string http_get(std::uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{5, 0};  // a broken server must not hang the test
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  std::string resp;
  char buf[65536];
  for (ssize_t r; (r = ::recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<std::size_t>(r));
  ::close(fd);
  return resp;
}

}  // namespace

TEST_CASE("metric catalogue names follow the Prometheus conventions", "[metrics]") {
  const std::regex valid("eqd_[a-z0-9_]+");
  std::set<std::string> seen;
  for (const metrics::MetricInfo& m : metrics::metric_catalogue()) {
    const std::string name = m.name;
    INFO(name);
    CHECK(std::regex_match(name, valid));
    CHECK(seen.insert(name).second);
    CHECK(std::string(m.help).size() > 5);
    const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    CHECK(total == (m.kind == metrics::MetricKind::counter));
    const std::string unit = m.unit;
    if (!unit.empty()) {
      // The unit comes last (before _total for counters).
      const std::string stem = total ? name.substr(0, name.size() - 6) : name;
      CHECK(stem.size() > unit.size());
      CHECK(stem.compare(stem.size() - unit.size(), unit.size(), unit) == 0);
    }
    for (const char* bad : {"_milliseconds", "_kilowatt", "_percent", "_ms", "_W"})
      CHECK(name.find(bad) == std::string::npos);
  }
  CHECK(seen.size() >= 40);
}

TEST_CASE("collector: a meter that is not up has no power or difference, a bus without one no series", "[metrics]") {
  Scene s;
  metrics::Sources src = s.sources();
  src.meter = [](core::BusIndex) {
    daemon::MeterView v;
    v.configured = true;
    v.status.power_W = 999.0;  // stale: not to be exported
    v.status.difference_W = 9.0;
    v.status.errors = 3;
    v.status.trim_W = 42.0;  // trim off: not exported
    return v;
  };
  auto fams = by_name(metrics::Collector(src, {}).Collect());
  CHECK(fams.at("eqd_bus_meter_trim_watts").metric.empty());
  CHECK(one(fams.at("eqd_bus_meter_up"), "bus", "main").gauge.value == 0.0);
  CHECK(fams.at("eqd_bus_meter_power_watts").metric.empty());
  CHECK(fams.at("eqd_bus_meter_difference_watts").metric.empty());
  CHECK(fams.at("eqd_bus_meter_age_seconds").metric.empty());
  CHECK(one(fams.at("eqd_bus_meter_errors_total"), "bus", "main").counter.value == 3.0);
  src.meter = [](core::BusIndex) { return daemon::MeterView{}; };
  fams = by_name(metrics::Collector(src, {}).Collect());
  CHECK(fams.at("eqd_bus_meter_up").metric.empty());
  CHECK(fams.at("eqd_bus_meter_disagreements_total").metric.empty());
}

TEST_CASE("collector exports every catalogued family with the value of its snapshot field", "[metrics]") {
  Scene s;
  const metrics::Collector collector(s.sources(), metrics::CollectorOptions{true});
  const auto families = by_name(collector.Collect());

  std::set<std::string> catalogued, exported;
  for (const auto& m : metrics::metric_catalogue()) catalogued.insert(m.name);
  for (const auto& [name, f] : families) exported.insert(name);
  CHECK(exported == catalogued);
  for (const auto& [name, f] : families) {
    INFO(name);
    // Level shaving's level exists only while a caps window is in force, which this scene has not
    // (core_valley_fill_test [level] covers the level itself).
    if (name == "eqd_bus_shave_level_watts")
      CHECK(f.metric.empty());
    else
      CHECK_FALSE(f.metric.empty());
  }

  const core::BusSnapshot b = s.f.core->bus(0);
  // Make sure the fields differ, so that a family carrying another field's value is caught.
  REQUIRE(b.free_W == Approx(600.0));
  REQUIRE(std::abs(b.net_W - b.free_W) > 100.0);
  REQUIRE(b.eq_commanded_W != b.eq_measured_W);
  auto bus_value = [&](const char* name) {
    const MetricFamily& f = families.at(name);
    const ClientMetric& m = one(f, "bus", "main");
    return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
  };
  CHECK(bus_value("eqd_bus_net_power_watts") == b.net_W);
  CHECK(bus_value("eqd_bus_free_power_watts") == b.free_W);
  // What the law steers by: the announced path, cab1/1's 1500 W in place of its present 900 W and
  // cab1/2 (announcing nothing) at its present -300 W.
  REQUIRE(b.free_forecast_W == Approx(1200.0));
  CHECK(bus_value("eqd_bus_free_forecast_watts") == b.free_forecast_W);
  CHECK(bus_value("eqd_bus_forecast_skill_ratio") == Approx(0.6));
  CHECK(one(families.at("eqd_channel_forecast_skill_ratio"), "channel", "cab1/2").gauge.value == Approx(0.75));
  CHECK(families.at("eqd_channel_forecast_skill_ratio").metric.size() == 1);  // only scored test channels
  CHECK(one(families.at("eqd_channel_learned_forecast_watts"), "channel", "cab1/2").gauge.value == -250.0);
  // Which eqd: one series, value 1, labelled with the project's version (what `eqd --version` prints).
  const auto& build = families.at("eqd_build_info");
  REQUIRE(build.metric.size() == 1);
  CHECK(build.metric[0].gauge.value == 1.0);
  CHECK(one(build, "version", EQD_TEST_VERSION).gauge.value == 1.0);
  CHECK(families.at("eqd_predictor_tick_seconds").metric.at(0).gauge.value == 0.0125);
  CHECK(families.at("eqd_predictor_memory_bytes").metric.at(0).gauge.value == 4096.0);
  CHECK(families.at("eqd_predictor_save_errors_total").metric.at(0).counter.value == 2.0);
  CHECK(families.at("eqd_predictor_tick_errors_total").metric.at(0).counter.value == 3.0);
  CHECK(bus_value("eqd_bus_equalization_commanded_power_watts") == b.eq_commanded_W);
  CHECK(bus_value("eqd_bus_equalization_measured_power_watts") == b.eq_measured_W);
  CHECK(bus_value("eqd_bus_residual_power_watts") == b.residual_W);
  CHECK(bus_value("eqd_bus_target_power_watts") == b.params.target_W);
  // Issue #17: the aim in force (a calendar but no window: the bus's own mode) and the demand figures
  // of the quarter hour measured before the buffer was assigned (free power 600 W).
  CHECK(one(families.at("eqd_bus_mode"), "mode", "balance").gauge.value == 1.0);
  CHECK(one(families.at("eqd_bus_mode"), "mode", "caps").gauge.value == 0.0);
  CHECK(bus_value("eqd_bus_schedule_window") == -1.0);
  CHECK(bus_value("eqd_bus_import_quarter_hour_average_watts") == Approx(600.0));
  CHECK(one(families.at("eqd_bus_import_quarter_hour_max_watts"), "period", "day").gauge.value == Approx(600.0));
  CHECK(one(families.at("eqd_bus_import_quarter_hour_max_watts"), "period", "month").gauge.value == Approx(600.0));
  // Valley filling: 2 kWh assumed for the window ahead, x 1.25; the buffer has no capacity_Wh, so all
  // of it is short and nothing is stored or charged.
  CHECK(bus_value("eqd_bus_window_energy_need_joules") == Approx(2000.0 * 3600.0 * 1.25));
  CHECK(bus_value("eqd_bus_valley_fill_shortfall_joules") == Approx(2000.0 * 3600.0 * 1.25));
  CHECK(bus_value("eqd_bus_buffer_stored_energy_joules") == 0.0);
  CHECK(bus_value("eqd_bus_valley_fill_watts") == 0.0);
  CHECK(bus_value("eqd_bus_channels") == 4.0);
  CHECK(bus_value("eqd_bus_equalization_channels") == 1.0);
  CHECK(bus_value("eqd_bus_meter_up") == 1.0);
  CHECK(bus_value("eqd_bus_meter_power_watts") == 1234.0);
  CHECK(bus_value("eqd_bus_meter_age_seconds") == 0.7);
  CHECK(bus_value("eqd_bus_meter_difference_watts") == 321.0);
  CHECK(bus_value("eqd_bus_meter_disagreement") == 1.0);
  CHECK(bus_value("eqd_bus_meter_disagreements_total") == 2.0);
  CHECK(bus_value("eqd_bus_meter_errors_total") == 5.0);
  CHECK(bus_value("eqd_bus_meter_trim_watts") == 300.0);
  CHECK(bus_value("eqd_bus_grid_import_joules_total") == b.energy.grid_import_J);
  CHECK(bus_value("eqd_bus_grid_export_joules_total") == b.energy.grid_export_J);
  CHECK(bus_value("eqd_bus_without_equalization_import_joules_total") == b.energy.free_import_J);
  CHECK(bus_value("eqd_bus_without_equalization_export_joules_total") == b.energy.free_export_J);
  CHECK(bus_value("eqd_bus_equalization_absorbed_joules_total") == b.energy.eq_absorbed_J);
  CHECK(bus_value("eqd_bus_equalization_delivered_joules_total") == b.energy.eq_delivered_J);
  CHECK(bus_value("eqd_bus_plans_applied_total") == static_cast<double>(b.plans_applied));  // 0: law adaptive
  CHECK(bus_value("eqd_bus_stat_path") == (b.stat_path ? 1.0 : 0.0));
  const MetricFamily& api = families.at("eqd_control_api_requests_total");
  REQUIRE(api.metric.size() == 2);  // only the pairs seen
  CHECK(one(api, "operation", "status").counter.value == 3.0);
  CHECK(one(api, "result", "unknown_channel").counter.value == 1.0);
  CHECK(one(families.at("eqd_history_rows_written_total"), "table", "audit").counter.value == 5.0);
  CHECK(one(families.at("eqd_history_write_errors_total"), "reason", "database").counter.value == 1.0);
  CHECK(one(families.at("eqd_history_write_errors_total"), "reason", "queue_full").counter.value == 2.0);
  CHECK(families.at("eqd_history_last_write_age_seconds").metric.at(0).gauge.value == Approx(2.0).margin(0.5));
  CHECK(b.energy.free_import_J > 0.0);
  CHECK(one(families.at("eqd_bus_equalization_capacity_watts"), "direction", "charge").gauge.value ==
        b.capacity_charge_W);
  CHECK(one(families.at("eqd_bus_equalization_capacity_watts"), "direction", "discharge").gauge.value ==
        b.capacity_discharge_W);
  // Exactly one status is 1.
  double status_sum = 0.0;
  for (const auto& m : families.at("eqd_bus_status").metric) status_sum += m.gauge.value;
  CHECK(status_sum == 1.0);
  CHECK(one(families.at("eqd_bus_status"), "status", core::to_string(b.status)).gauge.value == 1.0);

  // Controller: link errors by code, only the codes met (io/error.hpp names them).
  const auto& by_code = families.at("eqd_controller_link_errors_total");
  CHECK(one(by_code, "code", "timeout").counter.value == 21.0);
  CHECK(one(by_code, "code", "value_refused").counter.value == 24.0);
  for (const auto& m : by_code.metric) {
    INFO("a series per code met and controller, none for a code never met");
    bool known = false;
    for (const auto& l : m.label)
      known = known || (l.name == "code" && (l.value == "timeout" || l.value == "value_refused"));
    CHECK(known);
  }
  // Controller: errors by kind, histogram made cumulative with +Inf last.
  const auto& errors = families.at("eqd_controller_errors_total");
  CHECK(errors.metric.size() == 6);
  CHECK(one(errors, "kind", "timeout").counter.value == 1.0);
  CHECK(one(errors, "kind", "exception").counter.value == 2.0);
  CHECK(one(errors, "kind", "connection").counter.value == 3.0);
  CHECK(one(errors, "kind", "invalid").counter.value == 4.0);
  CHECK(one(errors, "kind", "protocol").counter.value == 5.0);
  CHECK(one(errors, "kind", "write").counter.value == 6.0);
  const auto& refused = families.at("eqd_controller_refused_fields_total");
  CHECK(refused.metric.size() == 2);
  CHECK(one(refused, "field", "forecast").counter.value == 7.0);
  CHECK(one(refused, "field", "program").counter.value == 8.0);
  CHECK(one(families.at("eqd_controller_up"), "controller", "cab1").gauge.value == 1.0);
  CHECK(one(families.at("eqd_controller_polls_total"), "controller", "cab1").counter.value == 70.0);
  CHECK(one(families.at("eqd_controller_poll_rate_hertz"), "controller", "cab1").gauge.value == 9.5);
  const auto& h = one(families.at("eqd_controller_poll_latency_seconds"), "controller", "cab1").histogram;
  CHECK(h.sample_count == 4);
  CHECK(h.sample_sum == Approx(5.034));
  REQUIRE(h.bucket.size() == core::Histogram::kBounds_s.size() + 1);
  CHECK(std::isinf(h.bucket.back().upper_bound));
  CHECK(h.bucket.back().cumulative_count == 4);
  for (std::size_t i = 0; i + 1 < h.bucket.size(); ++i) {
    CHECK(h.bucket[i].upper_bound == core::Histogram::kBounds_s[i]);
    CHECK(h.bucket[i].cumulative_count <= h.bucket[i + 1].cumulative_count);
    const double le = h.bucket[i].upper_bound;
    const std::uint64_t expected = (le >= 0.002 ? 2u : 0u) + (le >= 0.03 ? 1u : 0u);
    INFO("le " << le);
    CHECK(h.bucket[i].cumulative_count == expected);
  }
  // The fixture's samples were all received 100 ms before "now" (its last step advanced the clock).
  CHECK(one(families.at("eqd_controller_sample_age_seconds"), "controller", "cab1").gauge.value == Approx(0.1));

  // Control thread: histograms from CycleStats (the fixture never records timing: all zero), counters.
  CHECK(families.at("eqd_control_cycles_total").metric.at(0).counter.value ==
        static_cast<double>(s.f.core->stats().cycles));
  CHECK(families.at("eqd_control_overruns_total").metric.at(0).counter.value == 9.0);
  CHECK(families.at("eqd_control_cycle_duration_seconds").metric.at(0).histogram.bucket.back().cumulative_count == 0);
  CHECK(families.at("eqd_control_last_cycle_age_seconds").metric.at(0).gauge.value == Approx(0.1));

  // Channels: sampled values, numeric enums, buffer-only setpoint and window position.
  const auto& power = families.at("eqd_channel_power_watts");
  CHECK(power.metric.size() == 4);
  CHECK(one(power, "channel", "cab1/1").gauge.value == 900.0);
  CHECK(one(power, "channel", "cab1/2").gauge.value == -300.0);
  CHECK(label(one(power, "channel", "cab1/2"), "bus") == "main");
  CHECK(one(families.at("eqd_channel_voltage_volts"), "channel", "cab1/2").gauge.value == 47.25);
  // Announced forecasts: only a test channel that announces one (no NaN sample, no buffer).
  const auto& forecast = families.at("eqd_channel_forecast_watts");
  REQUIRE(forecast.metric.size() == 1);
  CHECK(label(forecast.metric[0], "channel") == "cab1/1");
  CHECK(label(forecast.metric[0], "bus") == "main");
  CHECK(forecast.metric[0].gauge.value == 1500.0);
  CHECK(one(families.at("eqd_channel_current_amperes"), "channel", "cab1/2").gauge.value == Approx(-300.0 / 47.25));
  // State sets: one series per value and channel, 1 for the current value, 0 for the others.
  const auto state_set = [&](const char* fam, const char* ch, const char* label) {
    std::map<std::string, double> v;
    for (const auto& m : families.at(fam).metric) {
      std::string channel, value;
      for (const auto& l : m.label) {
        if (l.name == "channel") channel = l.value;
        if (l.name == label) value = l.value;
      }
      if (channel == ch) v[value] = m.gauge.value;
    }
    return v;
  };
  const auto st1 = state_set("eqd_channel_state", "cab1/1", "state");
  CHECK(st1.size() == 6);
  CHECK(st1.at("running") == 1.0);
  CHECK(st1.at("idle") == 0.0);
  CHECK(state_set("eqd_channel_state", "cab1/4", "state").at("equalizing") == 1.0);
  CHECK(state_set("eqd_channel_role", "cab1/1", "role").at("test") == 1.0);
  const auto role4 = state_set("eqd_channel_role", "cab1/4", "role");
  CHECK(role4.size() == 4);
  CHECK(role4.at("equalization") == 1.0);
  CHECK(role4.at("test") == 0.0);
  const auto health1 = state_set("eqd_channel_health", "cab1/1", "health");
  CHECK(health1.size() == 5);
  CHECK(health1.at("ok") == 1.0);
  double ones = 0.0;
  for (const auto& [k, v] : health1) ones += v;
  CHECK(ones == 1.0);  // exactly one current value
  const auto& setpoint = families.at("eqd_channel_setpoint_watts");
  REQUIRE(setpoint.metric.size() == 1);
  CHECK(label(setpoint.metric[0], "channel") == "cab1/4");
  CHECK(setpoint.metric[0].gauge.value == s.f.core->channel(3).setpoint_W);
  CHECK(setpoint.metric[0].gauge.value < -100.0);  // discharging: it covers the tests' net draw
  const auto& window = families.at("eqd_channel_window_position_ratio");
  REQUIRE(window.metric.size() == 1);
  CHECK(window.metric[0].gauge.value == Approx((50.0 - 40.0) / 16.0));
}

TEST_CASE("per_channel off drops the channel families and keeps the others", "[metrics]") {
  Scene s;
  const auto with = by_name(metrics::Collector(s.sources(), metrics::CollectorOptions{true}).Collect());
  const auto without = by_name(metrics::Collector(s.sources(), metrics::CollectorOptions{false}).Collect());
  std::size_t channel_families = 0;
  for (const auto& [name, f] : with) {
    INFO(name);
    if (name.rfind("eqd_channel_", 0) == 0) {
      ++channel_families;
      CHECK(without.count(name) == 0);
    } else {
      CHECK(without.count(name) == 1);
    }
  }
  CHECK(channel_families == 11);
  // Controller sample age still works: it reads the sample slots, not the channel families.
  CHECK(without.at("eqd_controller_sample_age_seconds").metric.size() == 1);
}

TEST_CASE("buffers at a window limit are counted by the end of the window they reached", "[metrics]") {
  Scene s;
  s.f.voltage[3] = 56.5;  // above v_max: no charge headroom left
  s.f.run_s(1.0);
  auto fam = by_name(metrics::Collector(s.sources(), {}).Collect()).at("eqd_bus_buffers_at_window_limit");
  CHECK(one(fam, "limit", "high").gauge.value == 1.0);
  CHECK(one(fam, "limit", "low").gauge.value == 0.0);
  s.f.voltage[3] = 39.0;  // below v_min: no discharge headroom
  s.f.run_s(1.0);
  fam = by_name(metrics::Collector(s.sources(), {}).Collect()).at("eqd_bus_buffers_at_window_limit");
  CHECK(one(fam, "limit", "high").gauge.value == 0.0);
  CHECK(one(fam, "limit", "low").gauge.value == 1.0);
}

TEST_CASE("without link statistics or overruns those series are absent rather than zero", "[metrics]") {
  Scene s;
  metrics::Sources src = s.sources();
  src.controller_stats = nullptr;
  src.control_overruns = nullptr;
  const auto fams = by_name(metrics::Collector(src, {}).Collect());
  CHECK(fams.count("eqd_controller_up") == 0);
  CHECK(fams.count("eqd_control_overruns_total") == 0);
  CHECK(fams.count("eqd_bus_net_power_watts") == 1);
  CHECK_THROWS_AS(metrics::Collector(metrics::Sources{}, {}), std::invalid_argument);
}

TEST_CASE("exporter serves the text exposition over loopback HTTP and names an address it cannot bind", "[metrics]") {
  Scene s;
  auto collector = std::make_shared<metrics::Collector>(s.sources(), metrics::CollectorOptions{true});
  metrics::Exporter exporter(collector, "127.0.0.1:0");
  REQUIRE(exporter.port() != 0);
  const std::string resp = http_get(exporter.port(), "/metrics");
  INFO(resp.substr(0, resp.find("\r\n\r\n")));
  // The status line carries the request's version (HTTP/1.0 here) or 1.1; both are valid replies.
  CHECK(std::regex_search(resp, std::regex("^HTTP/1\\.[01] 200 ")));
  CHECK(resp.find("\r\nContent-Type: text/plain; version=0.0.4") != std::string::npos);
  // Content-Length must match the body, or Prometheus reports a truncated scrape.
  const std::size_t body = resp.find("\r\n\r\n");
  REQUIRE(body != std::string::npos);
  const std::regex length_re("\r\nContent-Length: ([0-9]+)\r\n", std::regex::icase);
  std::smatch length;
  REQUIRE(std::regex_search(resp.cbegin(), resp.cbegin() + static_cast<std::ptrdiff_t>(body + 2), length, length_re));
  CHECK(std::stoul(length[1].str()) == resp.size() - body - 4);
  CHECK(std::regex_search(http_get(exporter.port(), "/other"), std::regex("^HTTP/1\\.[01] 404 ")));
  CHECK(resp.find("\n# TYPE eqd_bus_net_power_watts gauge\n") != std::string::npos);
  CHECK(resp.find("\neqd_channel_power_watts{bus=\"main\",channel=\"cab1/1\"} 900\n") != std::string::npos);
  CHECK(resp.find("\neqd_bus_free_forecast_watts{bus=\"main\"} 1200\n") != std::string::npos);
  CHECK(resp.find("\neqd_channel_forecast_watts{bus=\"main\",channel=\"cab1/1\"} 1500\n") != std::string::npos);
  CHECK(resp.find("eqd_controller_poll_latency_seconds_bucket{controller=\"cab1\",le=\"+Inf\"} 4") !=
        std::string::npos);

  const std::string taken = "127.0.0.1:" + std::to_string(exporter.port());
  try {
    metrics::Exporter second(collector, taken);
    FAIL("a second exporter bound " << taken);
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find(taken) != std::string::npos);
  }
}

TEST_CASE("scraping while the core cycles yields complete and consistent families", "[metrics]") {
  Scene s;
  const metrics::Collector collector(s.sources(), {});
  std::atomic<bool> stop{false};
  std::thread control([&] {
    while (!stop.load()) s.f.step();
  });
  std::string text;  // reused across scrapes, as the exporter's workers do
  for (int k = 0; k < 200; ++k) {
    const auto fams = collector.Collect();
    REQUIRE(fams.size() == metrics::metric_catalogue().size());
    for (const auto& f : fams)
      if (f.name == "eqd_channel_power_watts") REQUIRE(f.metric.size() == 4);
    metrics::write_text(fams, text);
    REQUIRE(text.find("eqd_bus_net_power_watts{bus=\"main\"}") != std::string::npos);
  }
  stop = true;
  control.join();
}
