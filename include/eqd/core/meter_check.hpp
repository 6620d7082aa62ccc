#pragma once
/// @file meter_check.hpp
/// The grid meter check of one bus (issue #19): the meter's measured grid power against the net power
/// eqd computes from its channels' samples. A difference beyond `tolerance_W` that lasts
/// `persistence_s` is a disagreement (a channel that is not sampled, a load nobody configured, a meter
/// with the wrong sign); it ends when the difference has stayed within the tolerance for
/// `persistence_s` again, so a difference hovering at the tolerance gives one episode, not many. The
/// persistence also absorbs the skew between the meter's sampling and the channels'. The computed net
/// stays the control input: this only reports (the opt-in meter trim, meter_trim.hpp, filters it).
///
/// Thread-safety: MeterCheck is plain state, owned by one thread (the meter's I/O thread in eqd); no
/// I/O, no allocation.

#include <cstdint>

namespace eqd::core {

/// Settings of the check. Plain data.
struct MeterCheckParams {
  double tolerance_W = 500.0;   ///< |measured - computed| above this is a difference
  double persistence_s = 10.0;  ///< how long a difference (and its end) must last
};

/// What one update changed.
enum class MeterEvent : std::uint8_t {
  none,
  disagreement_started,  ///< a difference lasted persistence_s: report it (once per episode)
  disagreement_ended,    ///< within the tolerance again for persistence_s
};

class MeterCheck {
 public:
  explicit MeterCheck(MeterCheckParams p = {}) noexcept : p_(p) {}

  /// One comparison at now_ns (any monotonic clock, non-decreasing). `comparable` false (no valid
  /// meter reading, or no computed net yet): nothing is judged, a pending difference or end is
  /// forgotten, an episode in progress stays (it ends only after persistence_s of agreement).
  MeterEvent update(std::int64_t now_ns, bool comparable, double measured_W, double computed_W) noexcept;

  [[nodiscard]] bool disagreement() const noexcept { return disagreement_; }
  /// Episodes started so far.
  [[nodiscard]] std::uint64_t episodes() const noexcept { return episodes_; }
  /// measured - computed of the last comparable update (0 before one).
  [[nodiscard]] double difference_W() const noexcept { return difference_W_; }
  [[nodiscard]] const MeterCheckParams& params() const noexcept { return p_; }

 private:
  MeterCheckParams p_;
  bool disagreement_ = false;
  std::int64_t change_since_ns_ = -1;  ///< since when the state has been contradicted (-1: it is not)
  std::uint64_t episodes_ = 0;
  double difference_W_ = 0.0;
};

}  // namespace eqd::core
