#pragma once
/// @file history_commands.hpp
/// eqctl's commands on the daemon's history: `audit`, `report` and `backup` (main.cpp parses their
/// options and calls these), and the exit codes and error printing they share with main.cpp.
/// Thread-safety: reentrant (each call has its own Client).
#include <string>

#include <nlohmann/json.hpp>

#include "client.hpp"

namespace eqd::cli {

/// Exit codes (docs/eqctl.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

/// Options of `eqctl audit`.
struct AuditArgs {
  std::string since, user, channel;
  int limit = 50;
};

/// Options of `eqctl report`.
struct ReportArgs {
  std::string from, to, by = "day", bus, tariff, format = "table";
  double capacity_kWh = 0.0;
  bool capacity_given = false;
};

/// Prints an error response (stderr; also stdout with --json) and returns the exit code for it.
int report_error(const nlohmann::json& resp, bool as_json);

/// `eqctl audit`: records newest first from eqd, printed oldest first.
int run_audit(Client& client, const AuditArgs& args, bool as_json);
/// `eqctl report`: per period and bus, what equalization saved.
int run_report(Client& client, const ReportArgs& a, bool as_json);
/// `eqctl backup FILE`: the archive eqd passes, written to FILE.
int run_backup(Client& client, const std::string& file, bool as_json);

}  // namespace eqd::cli
