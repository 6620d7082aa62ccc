#pragma once
// Test helper: a value a row of the run-time parameter table accepts that differs from `now`, so that
// a test can set every row and see the change (used by the config, state-file and control API tests).
#include "eqd/core/params.hpp"

namespace eqd::test {

/// A flag toggled, a choice moved to another index, a number moved to 12 or 13 — or, for a row bounded
/// below 12 (fill_margin: 0..5), to the middle of its range (a quarter of it if that is `now`).
inline double other_runtime_value(const core::RuntimeParam& row, double now) noexcept {
  if (row.flag || row.choice != nullptr) return now != 0.0 ? 0.0 : 1.0;
  const double other = now == 12.0 ? 13.0 : 12.0;
  if (other <= row.max) return other;
  const double mid = 0.5 * (row.min + row.max);
  return now == mid ? 0.5 * mid : mid;
}

}  // namespace eqd::test
