#pragma once
/// @file render.hpp
/// Human-readable tables of eqctl's reading commands, from the "result" object of a response.
/// Missing or mistyped fields print as "-" (a newer or older daemon must not crash eqctl).
/// Pure functions; any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace eqd::cli {

/// A table with a header row; columns are padded to the widest cell, numbers right-aligned.
[[nodiscard]] std::string format_table(const std::vector<std::string>& header,
                                       const std::vector<std::vector<std::string>>& rows);
/// `eqctl status`.
[[nodiscard]] std::string render_status(const nlohmann::json& result);
/// `eqctl channels`.
[[nodiscard]] std::string render_channels(const nlohmann::json& result);
/// `eqctl controllers`.
[[nodiscard]] std::string render_controllers(const nlohmann::json& result);
/// Power with a unit: "1.23 kW", "-450 W".
[[nodiscard]] std::string format_power(double power_W);
/// Energy in kWh with three decimals, from J.
[[nodiscard]] std::string format_energy_kWh(double energy_J);

/// eqctl's option for a limit's wire name: "max_charge_W" -> "--max-charge-W".
[[nodiscard]] std::string limit_flag(const std::string& wire_name);
/// The sentence for an `assign` result: the daemon's message, except for an already assigned channel,
/// where the limits before and after (`previous_limits`, `limits`) say whether anything changed and
/// which options did.
[[nodiscard]] std::string describe_assign(const nlohmann::json& result);
/// The sentence for a `set` result: what was set (`names`, in the order given) and the bus's
/// parameters now.
[[nodiscard]] std::string describe_set(const nlohmann::json& result, const std::vector<std::string>& names);
/// The message of an error response's "error" object as eqctl prints it: limit fields the daemon
/// asks for (`missing`) are named by their eqctl options.
[[nodiscard]] std::string describe_error(const nlohmann::json& error);

/// `eqctl watch`'s first line: what is shown, from where, when, how often.
[[nodiscard]] std::string watch_header(const std::string& socket, const std::string& time_text, double interval_s);
/// Fits a screen of text to a terminal of `rows` x `cols`: lines cut at `cols`, and at most `rows`
/// lines (the last one says how many were left out), without a final newline, so that printing it
/// from the top left never scrolls the first line away.
[[nodiscard]] std::string fit_screen(const std::string& text, int rows, int cols);

/// `eqctl audit`: one row per record of `records` (in the order given): time (UTC), user, role,
/// command, target (channel, controller or bus), result; at most 80 columns.
[[nodiscard]] std::string render_audit(const nlohmann::json& records);
/// "2026-12-03 17:40:12" (UTC) of a time in ms since 1970.
[[nodiscard]] std::string format_utc_ms(std::int64_t time_ms);
/// `--since`: a duration back from `now_ms` (90s, 30m, 24h, 7d) or an ISO-8601 date or time in UTC
/// (2026-12-03, 2026-12-03T17:40, 2026-12-03T17:40:12Z) as UTC ms; nullopt when it is neither.
[[nodiscard]] std::optional<std::int64_t> parse_since(const std::string& text, std::int64_t now_ms);

}  // namespace eqd::cli
