#pragma once
/// @file text_format.hpp
/// Prometheus text exposition format 0.0.4, written straight into a std::string with std::to_chars.
/// It replaces prometheus::TextSerializer on the /metrics path: the ostream formatting of that
/// serialiser cost 75-90 % of a 10k-channel scrape (docs/benchmarks.md, "Metrics scrape").

#include <string>
#include <vector>

#include <prometheus/metric_family.h>

namespace eqd::metrics {

/// Content-Type of the text written by write_text().
inline constexpr const char* kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

/// Replaces the contents of `out` with `families` in the text exposition format 0.0.4: `# HELP`
/// (if any) and `# TYPE` per family, then one line per sample in the families' order (histograms as
/// _count, _sum and cumulative _bucket{le=...} lines ending with le="+Inf", summaries as _count,
/// _sum and {quantile=...}). Label values are escaped (backslash, double quote, newline) and HELP
/// text too (backslash, newline); values are the shortest text that reads back to the same double,
/// with NaN, +Inf and -Inf spelled as Prometheus does. The le and quantile label values are spelled
/// as prometheus::TextSerializer spells them (%.16g; 17 digits if 16 do not read back), because a
/// label value is part of a series' identity. The same lines as TextSerializer gives, except that
/// sample values are exact (it rounds them to 16 digits) and NaN is "NaN" (it writes "Nan").
/// `out` keeps its capacity, so a buffer reused across scrapes stops allocating after the first.
/// Thread-safety: pure function; any thread, concurrently with distinct `out` buffers.
void write_text(const std::vector<prometheus::MetricFamily>& families, std::string& out);

}  // namespace eqd::metrics
