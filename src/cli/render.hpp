#pragma once
/// @file render.hpp
/// Human-readable tables of eqctl's reading commands, from the "result" object of a response.
/// Missing or mistyped fields print as "-" (a newer or older daemon must not crash eqctl).
/// Pure functions; any thread.

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

}  // namespace eqd::cli
