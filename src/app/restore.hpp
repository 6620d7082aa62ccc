#pragma once
// `eqd --restore FILE` (docs/operations.md "Backup and restore"). Main thread, before anything starts.
#include <string>

#include "eqd/config/config.hpp"

namespace eqd::app {

/// Restores the backup archive `archive` into the installation `cfg` describes (its history database,
/// state_dir and the configuration file it was read from), after checking that no eqd answers on
/// its control socket. Prints what it did (stdout) or why it refused (stderr). Returns the exit
/// status: 0 restored, 1 refused (eqd running, bad archive; nothing changed).
int run_restore(const config::Config& cfg, const std::string& archive);

}  // namespace eqd::app
