#pragma once
/// @file valley_fill.hpp
/// Valley filling (issue #17): ahead of a caps window of a bus's target schedule, charge the buffers to
/// the energy that window needed on earlier days. The control thread measures each caps window's need
/// (WindowNeeds: the energy the buffers had to give to keep the net power within the window's caps),
/// tracks the buffers' stored energy (EnergyGauge) and plans the charge (plan_fill()); the charge
/// reaches the law as BusParams::fill_W, so the damping, the caps outside the window, the buffers'
/// windows and every other safety rule apply to it as to any aim. docs/control.md "Valley filling".

#include <array>
#include <cstdint>
#include <limits>

#include "eqd/core/allocator.hpp"
#include "eqd/core/params.hpp"
#include "eqd/core/schedule.hpp"

namespace eqd::core {

/// The needs of a bus's caps windows on the last kDays occurrences of each: the energy (J, bus side)
/// the buffers had to deliver to hold the net power at the window's import cap, measured only over an
/// occurrence seen from its start to its end. Thread-safety: not thread-safe; the control thread's,
/// one per bus. No allocation.
class WindowNeeds {
 public:
  static constexpr std::size_t kDays = 7;  ///< occurrences kept per window: a week of a daily window
  /// Bins of an occurrence's recorded profile, each a 48th of the window (3 h: 3.75 minutes): fine
  /// enough for a level planned against the 15-minute demand, small enough to keep a week of every
  /// window (16 x 7 x 48 floats, 21.5 KB per bus).
  static constexpr std::size_t kProfileBins = 48;
  /// The free power's mean per bin over an occurrence (W, bus side); NaN: a bin not seen (an older
  /// history without profiles).
  using Profile = std::array<float, kProfileBins>;

  /// Called every cycle. `active`: the occurrence active now (nullptr: none) and whether its window is
  /// a caps window; need_W: the discharge the aim asks for now (max(0, -desired), bus side); free_W:
  /// the bus's free power now (bus side), recorded into the occurrence's profile.
  void observe(const WindowOccurrence* active, bool caps_window, std::int64_t now_ns, double dt_s, double need_W,
               double free_W = std::numeric_limits<double>::quiet_NaN()) noexcept;
  /// The largest need of window w kept (J), or NaN when none was seen whole yet.
  [[nodiscard]] double largest_J(int w) const noexcept;
  /// The smallest need of window w kept (J), or NaN when none was seen whole yet.
  [[nodiscard]] double smallest_J(int w) const noexcept;
  /// Occurrences of window w kept (0..kDays).
  [[nodiscard]] int seen(int w) const noexcept;
  /// Records a need directly (a restored history, tests), with its profile (nullptr: none known).
  /// w outside 0..kMaxScheduleWindows-1 is ignored.
  void record(int w, double need_J, const Profile* profile = nullptr) noexcept;
  /// The k-th kept need of window w, oldest first (k < seen(w)); NaN outside. For persistence.
  [[nodiscard]] double kept_J(int w, int k) const noexcept;
  /// The k-th kept profile of window w, oldest first (k < seen(w)), or nullptr.
  [[nodiscard]] const Profile* kept_profile(int w, int k) const noexcept;
  /// Incremented by every record(): a reader tells a changed history without comparing it.
  [[nodiscard]] std::uint32_t records() const noexcept { return records_; }

 private:
  [[nodiscard]] std::size_t slot(int w, int k) const noexcept;

  /// largest_J() / smallest_J() of window w.
  [[nodiscard]] double extreme_J(int w, bool largest) const noexcept;

  std::array<std::array<double, kDays>, kMaxScheduleWindows> need_J_{};
  std::array<std::array<Profile, kDays>, kMaxScheduleWindows> profile_W_{};
  std::array<std::uint8_t, kMaxScheduleWindows> count_{};
  std::array<std::uint8_t, kMaxScheduleWindows> head_{};
  std::uint32_t records_ = 0;
  // The occurrence being measured.
  int window_ = -1;
  std::int64_t start_ns_ = 0, end_ns_ = 0;
  double sum_J_ = 0.0;
  bool whole_ = false;
  std::array<double, kProfileBins> bin_J_{}, bin_s_{};  // the occurrence's profile being measured
};

/// The estimate of one buffer's stored energy within its voltage window (J, battery side): from the
/// window position when first seen (a rough estimate: voltage under load), then counted from its
/// measured power, and set to full or empty whenever the buffer reaches the top or bottom of its
/// window. Thread-safety: not thread-safe; the control thread's. No allocation.
struct EnergyGauge {
  double stored_J = 0.0;
  bool known = false;
  /// One cycle of a buffer with capacity capacity_J: its window state and position after this cycle's
  /// headroom, its measured battery-side power and the time since the last cycle. soc_reported: the
  /// position is the controller's own state of charge in the buffer's SoC window, which is then taken
  /// as it is every cycle (no counting).
  void update(double capacity_J, const WindowState& w, double window_pos, double power_W, double dt_s,
              bool soc_reported = false) noexcept;
};

/// What valley filling plans for a bus now (published in the bus snapshot).
struct FillPlan {
  int window = -1;  ///< the next caps window (index into the schedule's windows), -1: none ahead
  double starts_in_s = std::numeric_limits<double>::quiet_NaN();  ///< until its next start
  /// What it needs stored in the buffers (battery side: its bus-side need / efficiency), margin
  /// included (NaN: unknown).
  double need_J = std::numeric_limits<double>::quiet_NaN();
  double stored_J = 0.0;     ///< the buffers' stored energy (estimate)
  double capacity_J = 0.0;   ///< their capacity (buffers with capacity_Wh)
  double fill_W = 0.0;       ///< the charge asked for now (bus side, >= 0)
  double shortfall_J = 0.0;  ///< need the buffers are not expected to hold at the window's start
  /// While a caps window is active and level_shaving is on: the import level the buffers hold, at or
  /// below the window's cap (W, bus side); NaN: none (the cap itself applies).
  double level_W = std::numeric_limits<double>::quiet_NaN();
};

/// The bus's buffers as valley filling sees them (sums over buffers with a capacity).
struct FillBuffers {
  double stored_J = 0.0;
  double capacity_J = 0.0;
  double charge_rate_W = 0.0;     ///< their rated charge power, bus side
  double discharge_rate_W = 0.0;  ///< their rated discharge power, bus side
  double efficiency = 1.0;        ///< battery energy per bus energy while charging (their mean)
};

/// What valley filling charges for window w (J, bus side; NaN: none seen whole yet): the largest need
/// kept plus a margin of fill_margin x the smallest need kept, and at least fill_margin / 2 x the
/// largest. So needs that grow a little each day raise the target by their growth only, for as long
/// as the smaller need the margin was charged for is kept (a week), where the largest x (1 +
/// fill_margin) charged the margin again on every day's growth; a single need gets the whole margin,
/// a jump is covered by the margin already stored and the next target has it above the jump; a light
/// day in the week does not thin the margin below half. Pure; any thread; no allocation.
double fill_need_J(const WindowNeeds& needs, int w, double fill_margin) noexcept;

/// Plans the charge for the next caps window of `s` after now_ns: its need (fill_need_J(), or
/// p.fill_energy_Wh x (1 + fill_margin) for a window not seen yet), capped at the buffers' capacity;
/// within fill_lead_s of its start, the deficit spread evenly so that it is in the buffers two tau_s
/// before the start. Nothing when valley_fill is off, a window is active, or no buffer has a capacity.
/// Pure; any thread; no allocation.
FillPlan plan_fill(const BusSchedule& s, int active_window, std::int64_t now_ns, const WindowNeeds& needs,
                   const BusParams& p, const FillBuffers& b) noexcept;

/// Inputs of shave_level(): an active caps window and the buffers now.
struct ShaveInput {
  double cap_W = 0.0;        ///< the window's import cap (bus side)
  double elapsed_s = 0.0;    ///< time since the occurrence started
  double window_s = 0.0;     ///< the occurrence's length
  double available_J = 0.0;  ///< what the buffers can deliver to the bus now (stored x efficiency)
  double discharge_W = 0.0;  ///< their rated discharge power, bus side
  double reserve = 0.0;      ///< share of the remaining need at the cap kept back (need_reserve())
};

/// Level shaving (docs/control.md "Shaving below the cap"): the lowest import level the buffers can
/// hold for the rest of an active caps window with what they store beyond its need. need(L) is the
/// energy above L of the window's recorded profiles from now to the end (per bin the highest of the
/// occurrences kept), scaled by the largest ratio of an occurrence's measured need to its profile's
/// (a bin's mean hides the swings the need counts); the level L solves need(L) + reserve x need(cap)
/// = available. Returns cap_W when nothing is spare or no profile is kept; never above cap_W, never
/// below what the buffers' rating holds at the highest bin ahead, never below 0. Pure; any thread;
/// no allocation.
double shave_level(const WindowNeeds& needs, int w, const ShaveInput& in) noexcept;

/// The share of a window's remaining need kept back while shaving below its cap: twice the spread
/// (standard deviation / mean) of the needs kept, within 0.05..fill_margin; all of fill_margin with
/// fewer than three occurrences kept (no spread to learn from yet). Pure; any thread.
double need_reserve(const WindowNeeds& needs, int w, double fill_margin) noexcept;

}  // namespace eqd::core
