// eqctl's commands on the daemon's history: audit, report, backup (history_commands.hpp).
#include "history_commands.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>
#include <vector>

#include "backup_file.hpp"
#include "eqd/control/protocol.hpp"
#include "render.hpp"
#include "report.hpp"

namespace eqd::cli {

namespace {

using eqd::control::ApiRequest;
using eqd::control::Command;
using nlohmann::json;

// `backup` copies the whole database first: minutes for a very large one (the daemon gives up at 300 s).
constexpr int kBackupTimeoutMs = 310000;

}  // namespace

int report_error(const json& resp, bool as_json) {
  if (as_json) {
    std::cout << resp.dump(2) << "\n";
  }
  const json& e = resp.contains("error") && resp["error"].is_object() ? resp["error"] : json::object();
  const std::string code = e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "error";
  const std::string msg = e.contains("message") && e["message"].is_string() ? eqd::cli::describe_error(e) : resp.dump();
  std::fprintf(stderr, "eqctl: %s (%s)\n", msg.c_str(), code.c_str());
  // bad_request/unknown_command mean this eqctl and eqd disagree on the protocol, i.e. usage.
  if (code == eqd::control::error_code::kBadRequest || code == eqd::control::error_code::kUnknownCommand ||
      code == eqd::control::error_code::kMalformed)
    return kExitUsage;
  return kExitRefused;
}

/// `eqctl audit`: asks for up to args.limit records, newest first (paging with before_id past the
/// daemon's 1000 per answer), and prints them oldest first: a table, or one JSON object per line.
int run_audit(Client& client, const AuditArgs& args, bool as_json) {
  ApiRequest r;
  r.command = Command::audit;
  r.user = args.user;
  r.channel = args.channel;
  if (!args.since.empty()) {
    const std::int64_t now_ms = static_cast<std::int64_t>(std::time(nullptr)) * 1000;
    r.since_ms = eqd::cli::parse_since(args.since, now_ms);
    if (!r.since_ms) {
      std::fprintf(stderr,
                   "eqctl: audit: --since '%s' is neither a duration (90s, 30m, 24h, 7d) nor a UTC date or "
                   "time (2026-12-03, 2026-12-03T17:40:12Z)\n",
                   args.since.c_str());
      return kExitUsage;
    }
  }
  json records = json::array();
  bool more = true;
  while (more && static_cast<int>(records.size()) < args.limit) {
    r.limit = std::min<std::int64_t>(args.limit - static_cast<int>(records.size()), eqd::control::kMaxAuditLimit);
    const json resp = client.call(r);
    if (!resp.value("ok", false)) return report_error(resp, as_json);
    const json& res = resp["result"];
    for (const json& rec : res.value("records", json::array())) records.push_back(rec);
    more = res.value("more", false) && res.contains("next_before_id") && res["next_before_id"].is_number_integer();
    if (more) r.before_id = res["next_before_id"].get<std::int64_t>();
  }
  std::reverse(records.begin(), records.end());  // oldest first, as a log reads
  if (as_json) {
    for (const json& rec : records) std::cout << rec.dump() << "\n";
  } else {
    std::cout << eqd::cli::render_audit(records);
    if (more) std::cout << "(older records not shown: --limit " << args.limit << ")\n";
  }
  return kExitOk;
}

/// Longest time one report request covers (unless one interval is longer): ~45 k minutes per bus.
constexpr std::int64_t kMaxRequestSpan_s = 31 * 86'400;

/// Most periods one report shows (ten years by hour); past it, a coarser --by.
constexpr std::size_t kMaxReportPeriods = 87'660;

/// `eqctl report`: cuts the range into local periods (and the tariff's windows), asks the daemon for
/// the sums of each interval (kMaxReportIntervals per request), adds them up and renders them.
int run_report(Client& client, const ReportArgs& a, bool as_json) {
  namespace rp = eqd::cli::report;
  rp::Report rep;
  rep.by = *rp::parse_period(a.by);  // CLI11 checked it
  rep.bus = a.bus;
  if (a.capacity_given) rep.capacity_kWh = a.capacity_kWh;
  const std::int64_t now_s = static_cast<std::int64_t>(std::time(nullptr));
  auto when = [](const std::string& text, const char* opt) -> std::optional<std::int64_t> {
    auto t = rp::parse_local_time(text);
    if (!t)
      std::fprintf(stderr,
                   "eqctl: report: %s '%s' is not a local date or time (2026-12-03, 2026-12-03T17:40, "
                   "2026-12-03 17:40:00)\n",
                   opt, text.c_str());
    return t;
  };
  std::optional<std::int64_t> to = a.to.empty() ? std::optional<std::int64_t>(now_s / 60 * 60) : when(a.to, "--to");
  if (!to) return kExitUsage;
  std::optional<std::int64_t> from =
      a.from.empty() ? std::optional<std::int64_t>(rp::period_start(*to - 7 * 86'400, rp::Period::day))
                     : when(a.from, "--from");
  if (!from) return kExitUsage;
  if (*from >= *to) {
    std::fprintf(stderr, "eqctl: report: --from %s is not before --to %s (--to is exclusive)\n",
                 rp::local_text(*from).c_str(), rp::local_text(*to).c_str());
    return kExitUsage;
  }
  rep.from_s = *from;
  rep.to_s = *to;
  if (!a.tariff.empty()) {
    try {
      rep.tariff = rp::load_tariff(a.tariff);
    } catch (const rp::TariffError& e) {
      std::fprintf(stderr, "eqctl: report: %s\n", e.what());
      return kExitUsage;
    }
  }
  const std::vector<std::int64_t> periods = rp::period_edges(*from, *to, rep.by);
  if (periods.size() - 1 > kMaxReportPeriods) {
    std::fprintf(stderr, "eqctl: report: %zu periods is more than %zu; use a coarser --by or a shorter range\n",
                 periods.size() - 1, kMaxReportPeriods);
    return kExitUsage;
  }
  const std::vector<std::int64_t> edges = rp::query_edges(periods, rep.tariff);
  json intervals = json::array();
  // One request per at most kMaxReportIntervals intervals and about a month of minutes (at least one
  // interval): each keeps the daemon's history writer busy for a short while only (docs/benchmarks.md).
  for (std::size_t first = 0, last = 0; first + 1 < edges.size(); first = last) {
    last = first + 1;
    while (last + 1 < edges.size() && last - first < eqd::control::kMaxReportIntervals &&
           edges[last + 1] - edges[first] <= kMaxRequestSpan_s)
      ++last;
    ApiRequest r;
    r.command = Command::report;
    r.bus = a.bus;
    r.edges_s.assign(edges.begin() + static_cast<std::ptrdiff_t>(first),
                     edges.begin() + static_cast<std::ptrdiff_t>(last) + 1);
    const json resp = client.call(r);
    if (!resp.value("ok", false)) return report_error(resp, as_json);
    for (const json& iv : resp["result"].value("intervals", json::array())) intervals.push_back(iv);
  }
  rp::build(rep, periods, intervals);
  const std::string format = as_json ? "json" : a.format;
  if (format == "json")
    std::cout << rp::render_json(rep).dump(2) << "\n";
  else if (format == "csv")
    std::cout << rp::render_csv(rep);
  else if (format == "html")
    std::cout << rp::render_html(rep, rp::local_text(now_s) + " by eqctl " + EQD_VERSION);
  else
    std::cout << rp::render_table(rep);
  return kExitOk;
}

/// `eqctl backup FILE`: eqd makes the archive and passes it as an open file; eqctl writes FILE (0600,
/// atomically) with the caller's own rights. A large database takes a while: a longer timeout.
int run_backup(Client& client, const std::string& file, bool as_json) {
  ApiRequest r;
  r.command = Command::backup;
  client.set_timeout(kBackupTimeoutMs);
  const json resp = client.call(r);
  if (!resp.value("ok", false)) return report_error(resp, as_json);
  const json& res = resp["result"];
  const int fd = client.take_passed_fd();
  if (fd < 0) {
    std::fprintf(stderr, "eqctl: backup: eqd answered but passed no archive file\n");
    return kExitRefused;
  }
  const std::int64_t size = res.value("size_bytes", std::int64_t{-1});
  if (const std::string err = eqd::cli::save_archive(fd, file, size); !err.empty()) {
    std::fprintf(stderr, "eqctl: backup: %s\n", err.c_str());
    return kExitRefused;
  }
  if (as_json) {
    json out = res;
    out["file"] = file;
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  const json& m = res.value("manifest", json::object());
  std::cout << "backup written to " << file << ": " << size << " bytes, history schema version "
            << m.value("schema_version", 0) << ", created " << m.value("created_utc", std::string()) << "\n";
  for (const json& f : m.value("files", json::array()))
    std::cout << "  " << f.value("name", std::string()) << "  " << f.value("size", 0) << " bytes  sha256 "
              << f.value("sha256", std::string()) << "\n";
  return kExitOk;
}

}  // namespace eqd::cli
