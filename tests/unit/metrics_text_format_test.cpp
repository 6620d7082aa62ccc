// The fast text-format writer against prometheus-cpp's TextSerializer (the reference eqd used to
// serve): the same lines in the same order on the same families, including escaped labels and
// special values; plus the spellings the format requires where the two differ on purpose.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <prometheus/text_serializer.h>

#include "../fakes/core_fixture.hpp"
#include "eqd/metrics/collector.hpp"
#include "eqd/metrics/text_format.hpp"

using namespace eqd;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> v;
  std::size_t p = 0;
  for (std::size_t e; (e = text.find('\n', p)) != std::string::npos; p = e + 1) v.push_back(text.substr(p, e - p));
  if (p < text.size()) v.push_back(text.substr(p));  // an unterminated last line must show up too
  return v;
}

// A sample line with its value re-printed the way TextSerializer prints it (16 significant digits,
// NaN in one spelling); comment lines unchanged. Only the value is normalised: names, labels and
// their escaping must match byte for byte.
std::string normalised(const std::string& line) {
  if (line.empty() || line[0] == '#') return line;
  const std::size_t sp = line.rfind(' ');
  if (sp == std::string::npos) return line;
  const char* v = line.c_str() + sp + 1;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (end == v || *end != '\0') return line;  // not a number: leave it to fail the comparison
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.16g", x);
  return line.substr(0, sp + 1) + (std::isnan(x) ? std::string("NaN") : std::string(buf));
}

std::vector<std::string> normalised_lines(const std::string& text) {
  std::vector<std::string> v = lines_of(text);
  for (auto& l : v) l = normalised(l);
  return v;
}

std::string reference_text(const std::vector<MetricFamily>& fams) {
  std::ostringstream o;
  prometheus::TextSerializer().Serialize(o, fams);
  return o.str();
}

std::string fast_text(const std::vector<MetricFamily>& fams) {
  std::string s;
  metrics::write_text(fams, s);
  return s;
}

ClientMetric metric(std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  return m;
}

MetricFamily family(const char* name, const char* help, MetricType type) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

// Every kind of family and the awkward cases: labels needing escapes, special and long values,
// a histogram with and one without an explicit +Inf bucket, a metric without labels.
std::vector<MetricFamily> awkward_families() {
  std::vector<MetricFamily> v;
  {
    MetricFamily f = family("t_gauge_watts", "A gauge with \"quotes\" in its help.", MetricType::Gauge);
    const double values[] = {
        0.0,  -0.0, 1.0,   -250.5, 0.1,   0.1 + 0.2, 1.0 / 3.0, 1e-300, 6.02214076e23, 1e15, 123456789012345678.0,
        kNaN, kInf, -kInf, 48.3,   5e-324};
    int i = 0;
    for (double x : values) {
      ClientMetric m = metric({{"bus", "main"}, {"channel", "cab1/" + std::to_string(++i)}});
      m.gauge.value = x;
      f.metric.push_back(m);
    }
    ClientMetric esc = metric(
        {{"path", "C:\\lab\\rig"}, {"quote", "say \"hi\""}, {"nl", "two\nlines"}, {"all", "\\\"\n\\n"}, {"empty", ""}});
    esc.gauge.value = 7.0;
    f.metric.push_back(esc);
    v.push_back(f);
  }
  {
    MetricFamily f = family("t_energy_joules_total", "A counter.", MetricType::Counter);
    ClientMetric m = metric({});
    m.counter.value = 3.6e6;
    f.metric.push_back(m);
    ClientMetric big = metric({{"bus", "b2"}});
    big.counter.value = 9007199254740993.0;
    f.metric.push_back(big);
    v.push_back(f);
  }
  {
    MetricFamily f = family("t_latency_seconds", "A histogram.", MetricType::Histogram);
    ClientMetric with_inf = metric({{"controller", "cab\"1\""}});
    with_inf.histogram.sample_count = 4;
    with_inf.histogram.sample_sum = 5.034;
    // 0.0001 and 1e6 catch a shortest-digits le ("1e-04", "1e+06") instead of TextSerializer's.
    with_inf.histogram.bucket = {{0, 1e-06}, {1, 0.0001}, {2, 0.005}, {3, 0.05}, {3, 1.0}, {3, 1e6}, {4, kInf}};
    f.metric.push_back(with_inf);
    ClientMetric without_inf = metric({});
    without_inf.histogram.sample_count = 9;
    without_inf.histogram.sample_sum = 0.25;
    without_inf.histogram.bucket = {{1, 5e-05}, {8, 0.1}};
    f.metric.push_back(without_inf);
    v.push_back(f);
  }
  {
    MetricFamily f = family("t_request_seconds", "A summary.", MetricType::Summary);
    ClientMetric m = metric({{"kind", "read"}});
    m.summary.sample_count = 100;
    m.summary.sample_sum = 12.5;
    m.summary.quantile = {{0.5, 0.1}, {0.99, kNaN}};
    f.metric.push_back(m);
    v.push_back(f);
  }
  {
    MetricFamily f = family("t_untyped", "", MetricType::Untyped);  // no help: no HELP line
    ClientMetric m = metric({{"a", "b"}});
    m.untyped.value = -1.5;
    f.metric.push_back(m);
    v.push_back(f);
  }
  v.push_back(family("t_empty_ratio", "A family without samples.", MetricType::Gauge));
  return v;
}

}  // namespace

TEST_CASE("write_text gives the same lines as prometheus TextSerializer on awkward families", "[metrics][text]") {
  const auto fams = awkward_families();
  const std::string fast = fast_text(fams);
  const std::string ref = reference_text(fams);
  REQUIRE(!fast.empty());
  CHECK(fast.back() == '\n');
  // Exactly equal after normalising values, in order: write_text keeps TextSerializer's line order.
  CHECK(normalised_lines(fast) == normalised_lines(ref));
  // Guard against a vacuous comparison: the escapes really are in both texts.
  CHECK(fast.find("path=\"C:\\\\lab\\\\rig\"") != std::string::npos);
  CHECK(ref.find("path=\"C:\\\\lab\\\\rig\"") != std::string::npos);
}

TEST_CASE("write_text gives the same lines as prometheus TextSerializer on the collector's families",
          "[metrics][text]") {
  test::CoreFixture f{4};
  f.state[0] = f.state[1] = core::ChannelState::running;
  f.power[0] = 900.0;
  f.power[1] = -300.0;
  f.voltage[1] = 47.25;
  REQUIRE(f.assign(3) == core::ResponseStatus::ok);
  f.run_s(20.0);
  daemon::Directory dir;
  dir.buses = {"main"};
  daemon::ControllerInfo c;
  c.name = "cab1";
  c.channels = 4;
  dir.controllers.push_back(c);
  for (int i = 0; i < 4; ++i) {
    daemon::ChannelInfo ch;
    ch.name = "cab1/" + std::to_string(i + 1);
    ch.number = static_cast<std::uint16_t>(i + 1);
    dir.channels.push_back(ch);
  }
  metrics::Sources src;
  src.snapshots = std::make_shared<daemon::CoreSnapshots>(*f.core);
  src.directory = &dir;
  src.controller_stats = [](std::size_t, io::LinkStats& out) {
    out = io::LinkStats{};
    out.connected = true;
    out.polls = 70;
    out.latency.observe(0.002);
    out.latency.observe(5.0);
    return true;
  };
  const std::int64_t now = f.now_ns;
  src.now_ns = [now] { return now; };
  const metrics::Collector collector(src, {});
  const auto fams = collector.Collect();
  const auto fast = normalised_lines(fast_text(fams));
  CHECK(fast == normalised_lines(reference_text(fams)));
  CHECK(fast.size() > 100);
}

TEST_CASE("write_text spells special values and escapes as the text format requires", "[metrics][text]") {
  MetricFamily f = family("x", "back\\slash and\nnewline", MetricType::Gauge);
  for (double v : {kNaN, kInf, -kInf, 0.1 + 0.2, 1e22, 5e-324}) {
    ClientMetric m = metric({{"l", "a\\b\"c\nd"}});
    m.gauge.value = v;
    f.metric.push_back(m);
  }
  f.metric.back().timestamp_ms = 1700000000123;
  const std::vector<std::string> lines = lines_of(fast_text({f}));
  const std::vector<std::string> expected = {
      "# HELP x back\\\\slash and\\nnewline", "# TYPE x gauge",
      "x{l=\"a\\\\b\\\"c\\nd\"} NaN",         "x{l=\"a\\\\b\\\"c\\nd\"} +Inf",
      "x{l=\"a\\\\b\\\"c\\nd\"} -Inf",        "x{l=\"a\\\\b\\\"c\\nd\"} 0.30000000000000004",
      "x{l=\"a\\\\b\\\"c\\nd\"} 1e+22",       "x{l=\"a\\\\b\\\"c\\nd\"} 5e-324 1700000000123",
  };
  CHECK(lines == expected);
}

TEST_CASE("write_text values read back to the same double", "[metrics][text]") {
  MetricFamily f = family("x", "", MetricType::Gauge);
  double v = 1.0;
  for (int i = 0; i < 2000; ++i) {
    v = v * 1.37 + 1e-3 * i;  // spans many magnitudes and digit patterns
    ClientMetric m = metric({});
    m.gauge.value = i % 2 ? v : -1.0 / v;
    f.metric.push_back(m);
  }
  const std::vector<std::string> lines = lines_of(fast_text({f}));
  REQUIRE(lines.size() == f.metric.size() + 1);
  for (std::size_t i = 0; i < f.metric.size(); ++i) {
    const std::string& l = lines[i + 1];
    const double back = std::strtod(l.c_str() + l.rfind(' ') + 1, nullptr);
    INFO(l);
    REQUIRE(std::memcmp(&back, &f.metric[i].gauge.value, sizeof back) == 0);
  }
}

TEST_CASE("write_text replaces the buffer contents and keeps its capacity", "[metrics][text]") {
  const auto fams = awkward_families();
  std::string out = "stale text that must not survive";
  metrics::write_text(fams, out);
  const std::string first = out;
  CHECK(first.rfind("# HELP t_gauge_watts ", 0) == 0);
  const char* data = out.data();
  const std::size_t capacity = out.capacity();
  metrics::write_text(fams, out);
  CHECK(out == first);
  CHECK(out.data() == data);  // no reallocation on the second scrape
  CHECK(out.capacity() == capacity);
}
