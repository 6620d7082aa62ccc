// Prometheus text exposition format 0.0.4 without iostreams (see text_format.hpp).
#include "eqd/metrics/text_format.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

namespace eqd::metrics {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Longest to_chars output: shortest round-trip double is at most 24 chars ("-2.2250738585072014e-308").
constexpr std::size_t kNumberChars = 32;

void put_double(std::string& out, double v) {
  // The spellings of Go's strconv.FormatFloat, which Prometheus and its own client libraries use.
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v < 0 ? "-Inf" : "+Inf";
    return;
  }
  char buf[kNumberChars];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// A number used as a label value (le, quantile). Prometheus 2 keeps label values as strings, so
// le="0.0001" and le="1e-04" would be two different series: spell them as TextSerializer did
// (printf %.16g), so that no series changes identity, and use 17 digits only when 16 do not read back.
void put_label_double(std::string& out, double v) {
  if (std::isnan(v) || std::isinf(v)) {
    put_double(out, v);
    return;
  }
  char buf[kNumberChars];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 16);
  double back = 0.0;
  std::from_chars(buf, r.ptr, back);
  if (back != v) r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 17);
  out.append(buf, r.ptr);
}

void put_uint(std::string& out, std::uint64_t v) {
  char buf[kNumberChars];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void put_int(std::string& out, std::int64_t v) {
  char buf[kNumberChars];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Label values almost never need escaping, so scan first and copy the whole value in one append.
void put_label_value(std::string& out, std::string_view v) {
  if (v.find_first_of("\\\"\n") == std::string_view::npos) {
    out.append(v);
    return;
  }
  for (const char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
        break;
    }
  }
}

// HELP escapes backslash and newline only (a double quote is literal there, per the format).
void put_help(std::string& out, std::string_view v) {
  if (v.find_first_of("\\\n") == std::string_view::npos) {
    out.append(v);
    return;
  }
  for (const char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

// The extra label of a histogram bucket or summary quantile: le="0.005", quantile="0.99".
struct Extra {
  const char* name = nullptr;
  double value = 0.0;
};

// "name_suffix{labels,extra} " : everything before the value.
void put_head(std::string& out, const MetricFamily& f, const ClientMetric& m, std::string_view suffix,
              Extra extra = {}) {
  out.append(f.name);
  out.append(suffix);
  if (m.label.empty() && extra.name == nullptr) {
    out += ' ';
    return;
  }
  out += '{';
  bool first = true;
  for (const auto& l : m.label) {
    if (!first) out += ',';
    first = false;
    out.append(l.name);
    out += "=\"";
    put_label_value(out, l.value);
    out += '"';
  }
  if (extra.name != nullptr) {
    if (!first) out += ',';
    out += extra.name;
    out += "=\"";
    put_label_double(out, extra.value);
    out += '"';
  }
  out += "} ";
}

void put_tail(std::string& out, const ClientMetric& m) {
  if (m.timestamp_ms != 0) {
    out += ' ';
    put_int(out, m.timestamp_ms);
  }
  out += '\n';
}

const char* type_name(MetricType t) {
  switch (t) {
    case MetricType::Counter:
      return "counter";
    case MetricType::Gauge:
      return "gauge";
    case MetricType::Summary:
      return "summary";
    case MetricType::Histogram:
      return "histogram";
    case MetricType::Untyped:
      break;
  }
  return "untyped";
}

void put_histogram(std::string& out, const MetricFamily& f, const ClientMetric& m) {
  const auto& h = m.histogram;
  put_head(out, f, m, "_count");
  put_uint(out, h.sample_count);
  put_tail(out, m);
  put_head(out, f, m, "_sum");
  put_double(out, h.sample_sum);
  put_tail(out, m);
  double last = -std::numeric_limits<double>::infinity();
  for (const auto& b : h.bucket) {
    put_head(out, f, m, "_bucket", {"le", b.upper_bound});
    put_uint(out, b.cumulative_count);
    put_tail(out, m);
    last = b.upper_bound;
  }
  // The format requires a +Inf bucket; a family built without one gets it from the count.
  if (!std::isinf(last) || last < 0) {
    put_head(out, f, m, "_bucket", {"le", std::numeric_limits<double>::infinity()});
    put_uint(out, h.sample_count);
    put_tail(out, m);
  }
}

void put_summary(std::string& out, const MetricFamily& f, const ClientMetric& m) {
  const auto& s = m.summary;
  put_head(out, f, m, "_count");
  put_uint(out, s.sample_count);
  put_tail(out, m);
  put_head(out, f, m, "_sum");
  put_double(out, s.sample_sum);
  put_tail(out, m);
  for (const auto& q : s.quantile) {
    put_head(out, f, m, "", {"quantile", q.quantile});
    put_double(out, q.value);
    put_tail(out, m);
  }
}

void put_family(std::string& out, const MetricFamily& f) {
  if (!f.help.empty()) {
    out += "# HELP ";
    out.append(f.name);
    out += ' ';
    put_help(out, f.help);
    out += '\n';
  }
  out += "# TYPE ";
  out.append(f.name);
  out += ' ';
  out += type_name(f.type);
  out += '\n';
  for (const auto& m : f.metric) {
    switch (f.type) {
      case MetricType::Counter:
        put_head(out, f, m, "");
        put_double(out, m.counter.value);
        put_tail(out, m);
        break;
      case MetricType::Gauge:
        put_head(out, f, m, "");
        put_double(out, m.gauge.value);
        put_tail(out, m);
        break;
      case MetricType::Untyped:
        put_head(out, f, m, "");
        put_double(out, m.untyped.value);
        put_tail(out, m);
        break;
      case MetricType::Histogram:
        put_histogram(out, f, m);
        break;
      case MetricType::Summary:
        put_summary(out, f, m);
        break;
    }
  }
}

}  // namespace

void write_text(const std::vector<MetricFamily>& families, std::string& out) {
  out.clear();
  for (const auto& f : families) put_family(out, f);
}

}  // namespace eqd::metrics
