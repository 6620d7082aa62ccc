#pragma once
/// @file converter.hpp
/// The power converter of one channel: dead time, first-order response, current/power/voltage limits
/// and efficiency between the battery side and the bus side.

#include <array>
#include <cstddef>
#include <cstdint>

#include "eqd/sim/battery.hpp"

namespace eqd::sim {

/// Converter parameters (rig YAML: `converter:`). Magnitudes are positive.
struct ConverterParams {
  double max_charge_A = 100.0;      ///< max_charge_A
  double max_discharge_A = 100.0;   ///< max_discharge_A
  double max_charge_W = 5000.0;     ///< max_charge_W (battery side)
  double max_discharge_W = 5000.0;  ///< max_discharge_W (battery side)
  double v_max_V = 4.2;             ///< v_max_V: charging stops here (CV)
  double v_min_V = 2.5;             ///< v_min_V: discharging stops here
  double tau_conv_s = 0.5;          ///< tau_conv_s: first-order response of the current loop
  double dead_time_s = 0.2;         ///< dead_time_s: delay between a command and its effect
  double efficiency = 0.95;         ///< efficiency (0..1]: bus = battery/eff when charging, *eff discharging
};

/// What the converter is asked to regulate.
enum class TargetKind : std::uint8_t { off = 0, current = 1, power = 2 };

/// One request to the converter. `cv_V`/`min_V` tighten the converter's own voltage limits (a CC-CV
/// step holds its voltage; 0 = use the converter's limit).
struct Target {
  TargetKind kind = TargetKind::off;
  double value = 0.0;  ///< A or W (battery side), signed
  double cv_V = 0.0;
  double min_V = 0.0;
};

/// Outcome of one converter step.
struct ConverterOutput {
  double current_A = 0.0;
  double voltage_V = 0.0;        ///< battery terminal voltage
  double power_W = 0.0;          ///< battery side (what the channel controller reports)
  double bus_power_W = 0.0;      ///< bus side (what the grid meter sees)
  bool voltage_limited = false;  ///< a voltage limit (CV or v_min) is holding the current back
};

/// Converter of one channel. Thread-safety: not thread-safe; owned by the rig's thread.
/// The dead time is a fixed ring of past targets (no allocation per step); dt must be constant for a
/// given converter (the number of delayed steps is derived from the first dt).
class Converter {
 public:
  /// Longest dead time representable: kDelaySlots * dt. 0.1 s steps give 102 s.
  static constexpr std::size_t kDelaySlots = 1024;

  explicit Converter(const ConverterParams& p);

  /// Advance by dt_s with a new request; steps the battery with the resulting current.
  ConverterOutput step(const Target& t, Battery& battery, double dt_s) noexcept;
  /// Force the output to 0 A at once (fault, emergency stop) and forget queued targets.
  void trip() noexcept;

  [[nodiscard]] const ConverterParams& params() const noexcept { return params_; }
  [[nodiscard]] double current_A() const noexcept { return current_A_; }

  /// Bus-side power for a battery-side power (efficiency applied in the physical direction).
  [[nodiscard]] static double bus_side_W(double battery_W, double efficiency) noexcept {
    return battery_W >= 0.0 ? battery_W / efficiency : battery_W * efficiency;
  }

 private:
  ConverterParams params_;
  std::array<Target, kDelaySlots> ring_{};
  std::size_t head_ = 0;
  std::size_t delay_steps_ = 0;
  double delay_dt_s_ = -1.0;
  double alpha_ = 1.0;  ///< first-order factor for delay_dt_s_ (exp cached: dt is constant)
  double current_A_ = 0.0;
};

}  // namespace eqd::sim
