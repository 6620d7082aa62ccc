#pragma once
/// @file state_store.hpp
/// Persisted assignments and runtime bus parameters (Config::state_dir/state.json), written
/// atomically after every accepted change and applied to the rig plan at start.
///
/// Precedence at start (docs/control-api.md, "Persistence"): a channel's persisted entry (assigned
/// with its limits, or released) overrides config's `equalization:` entry for it; persisted bus
/// parameters (core::kRuntimeParams: tau_s, deadband_W, target_W, use_forecast, learn_forecast) override
/// config's. Entries naming channels
/// or buses that the current config does not know are kept in the file (the rig may come back) but
/// not applied.

#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eqd/config/config.hpp"
#include "eqd/core/params.hpp"
#include "eqd/daemon/rig.hpp"

namespace eqd::control {

/// One channel's persisted state: assigned (with these limits) or released (limits kept as the
/// default for its next assign). Plain data.
struct PersistedChannel {
  bool assigned = false;
  core::BufferLimits limits{};
};

/// Bus parameters changed at run time, one optional value per row of core::kRuntimeParams (a flag
/// as 0 or 1); unset ones follow config. Plain data.
struct PersistedBusParams {
  std::array<std::optional<double>, core::kRuntimeParams.size()> values{};
  /// The value of parameter `name`; nullopt when unset or not a run-time parameter.
  [[nodiscard]] std::optional<double> get(std::string_view name) const noexcept;
  /// Sets parameter `name` (a row of core::kRuntimeParams; false for any other name).
  bool set(std::string_view name, double v) noexcept;
  bool operator==(const PersistedBusParams&) const = default;
};

/// Everything that survives a restart. Plain data; not synchronised.
struct PersistedState {
  std::map<std::string, PersistedChannel> channels;  ///< by channel name "CONTROLLER/N"
  std::map<std::string, PersistedBusParams> buses;   ///< by bus name
  bool operator==(const PersistedState&) const = default;
};
bool operator==(const PersistedChannel& a, const PersistedChannel& b) noexcept;

/// File format version written in "version".
inline constexpr int kStateFormatVersion = 1;

/// Serialises `s` (pretty JSON, stable order). Any thread.
[[nodiscard]] std::string state_to_text(const PersistedState& s);
/// Parses a state file's text. A file that cannot be read as a whole (not JSON, not an object, a
/// missing or other "version") throws std::invalid_argument naming what is wrong. A single bad entry
/// does not: it is skipped (a bus parameter: that parameter only) and described in `skipped`
/// ("channels.cab1/1.assigned: must be true or false; entry skipped"), and every valid entry is kept.
/// A released channel whose limits are bad stays released (an operator's release is never lost), its
/// limits dropped (zero: the next assign takes config's or the given ones). Any thread.
[[nodiscard]] PersistedState state_from_text(std::string_view text, std::vector<std::string>* skipped = nullptr);

/// Result of StateStore::load().
struct LoadResult {
  PersistedState state;
  bool existed = false;              ///< a state file was there
  std::string moved_aside_to;        ///< non-empty when the file was corrupt and was renamed to this path
  std::string error;                 ///< why it was corrupt
  std::vector<std::string> skipped;  ///< entries (or bus parameters) skipped, one message each
  std::string copied_to;             ///< with `skipped`: the untouched original, copied to this path
};

/// Reads and writes `<dir>/state.json`. Thread-safety: none; use from one thread at a time (the main
/// thread at start, then the API's io thread).
class StateStore {
 public:
  /// `dir`: the state directory (Config::state_dir).
  explicit StateStore(std::string dir);

  /// Reads the state file. A missing file is an empty state; a corrupt one is renamed to
  /// `state.json.corrupt-<UTC timestamp>` (logged as an error) and an empty state is returned.
  /// A file with bad entries keeps its valid ones: each skipped entry is logged (naming the entry and
  /// field), the original is copied to `state.json.bad-entries-<UTC timestamp>`, and state.json is
  /// rewritten with the valid entries (so the next load is clean and a later save loses nothing that
  /// was not kept aside). Throws std::system_error only if a corrupt file cannot be moved aside or a
  /// file with bad entries cannot be copied (then eqd must not start and overwrite it).
  LoadResult load();
  /// Writes atomically: temporary file, fsync, rename over state.json, fsync of the directory.
  /// Creates the directory if missing. Throws std::system_error naming the path and step.
  void save(const PersistedState& s);

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

/// Applies `s` to a rig plan built from `cfg` (the Daemon PlanHook). Returns one human-readable line
/// per applied or skipped entry for the log. Main thread, before the core is built.
std::vector<std::string> apply_state(const PersistedState& s, const config::Config& cfg, daemon::RigPlan& plan);

/// A daemon::PlanHook (for the Daemon's constructor) that applies `s` and logs each note. `s` and
/// `cfg` must outlive the call.
[[nodiscard]] daemon::PlanHook plan_hook(const PersistedState& s, const config::Config& cfg);

}  // namespace eqd::control
