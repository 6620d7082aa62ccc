#pragma once
/// @file median.hpp
/// The median of a scratch array, for the path's centred median (ForecastPath) and the planner's
/// refinement off its grid (HorizonPlanner): one definition of "median" in the core.

#include <algorithm>
#include <cstddef>

namespace eqd::core {

/// The median of first[0..n) (n >= 1; an even count gives the mean of the two middle values). Reorders
/// the values (partial selection, O(n)); never allocates or throws. Any thread, on its own array.
inline double median_in_place(double* first, std::size_t n) noexcept {
  double* mid = first + n / 2;
  std::nth_element(first, mid, first + n);
  if (n % 2 != 0) return *mid;
  return 0.5 * (*mid + *std::max_element(first, mid));  // the largest of the lower half
}

}  // namespace eqd::core
