#pragma once
/// @file peak_bench.hpp
/// The peak-shaving part of bench_laws (issue #17): on scenarios with a target schedule or a tariff,
/// no equalization, eqd as the scenario configures it, and an OpenEMS-style peak shaver swept over its
/// thresholds, compared on the demand figure (highest 15-minute average import), the energy through
/// the buffers and the cost. Benchmark code only.

#include <filesystem>
#include <vector>

#include "eqd/sim/scenario.hpp"

namespace eqd::bench {

/// A scenario with a wall clock and something to measure on it: a bus with a target schedule, or a tariff.
bool is_peak_scenario(const sim::Scenario& s);

/// Runs the peak-shaving comparison on every scenario (jobs worker threads), prints a Markdown table per
/// scenario and writes out_dir/peak.csv. Throws on a failed run.
void run_peak_bench(const std::vector<sim::Scenario>& scenarios, unsigned jobs, const std::filesystem::path& out_dir);

}  // namespace eqd::bench
