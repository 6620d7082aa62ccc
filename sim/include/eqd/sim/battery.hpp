#pragma once
/// @file battery.hpp
/// Equivalent-circuit battery: OCV(SOC) table, series resistance R0 and one RC pair (R1, C1).
/// Sign: positive current = charging (energy from the bus into the battery).

#include <cstddef>
#include <string>
#include <vector>

namespace eqd::sim {

/// Piecewise-linear open-circuit voltage as a function of state of charge (0..1).
/// Thread-safety: immutable after construction; share as const across threads.
class OcvTable {
 public:
  /// Points must have strictly increasing soc in [0, 1] and non-decreasing voltage; throws
  /// std::invalid_argument otherwise (a battery whose OCV falls with SOC cannot be simulated sensibly).
  OcvTable(std::vector<double> soc, std::vector<double> voltage_V);

  /// Default lithium-iron-phosphate cell curve (flat plateau near 3.3 V), scaled by `cells_in_series`.
  static OcvTable lfp(int cells_in_series);
  /// Default NMC cell curve (3.0..4.2 V, sloped), scaled by `cells_in_series`.
  static OcvTable nmc(int cells_in_series);

  /// OCV at soc (clamped to the table's ends).
  [[nodiscard]] double voltage_V(double soc) const noexcept;
  [[nodiscard]] const std::vector<double>& soc() const noexcept { return soc_; }
  [[nodiscard]] const std::vector<double>& voltages_V() const noexcept { return voltage_V_; }

 private:
  std::vector<double> soc_;
  std::vector<double> voltage_V_;
};

/// Parameters of one battery (rig YAML: `battery:`).
struct BatteryParams {
  double capacity_Ah = 50.0;          ///< capacity_Ah
  double r0_ohm = 0.01;               ///< r0_ohm: series resistance
  double r1_ohm = 0.005;              ///< r1_ohm: RC-pair resistance
  double c1_F = 2000.0;               ///< c1_F: RC-pair capacitance
  double initial_soc = 0.5;           ///< soc: initial state of charge 0..1
  double coulombic_efficiency = 1.0;  ///< coulombic_efficiency: fraction of charging Ah stored (0..1]
  /// fade_per_cycle: fraction of capacity_Ah lost per equivalent full cycle (Ah charged + discharged over
  /// 2 x capacity_Ah), so that the steps of a cycle-life test that end on a voltage or current shorten
  /// from cycle to cycle. 0 = no ageing. The capacity never falls below kMinCapacityFraction of new.
  double fade_per_cycle = 0.0;
};

/// One battery's state. Thread-safety: not thread-safe; owned and stepped by one thread (the rig's).
class Battery {
 public:
  /// Floor of the faded capacity (of capacity_Ah): a cell at a fifth of its capacity is long retired,
  /// and the floor keeps the SOC integration finite whatever fade_per_cycle a rig asks for.
  static constexpr double kMinCapacityFraction = 0.2;

  Battery(const BatteryParams& p, OcvTable ocv);

  /// Terminal voltage if `current_A` flowed now: OCV(SOC) + I*R0 + V_rc.
  [[nodiscard]] double terminal_voltage_V(double current_A) const noexcept {
    return ocv_now_V_ + current_A * params_.r0_ohm + v_rc_V_;
  }
  /// Open-circuit voltage at the present SOC.
  [[nodiscard]] double ocv_V() const noexcept { return ocv_now_V_; }
  /// Voltage across the RC pair (relaxation memory).
  [[nodiscard]] double v_rc_V() const noexcept { return v_rc_V_; }
  [[nodiscard]] double soc() const noexcept { return soc_; }
  [[nodiscard]] const BatteryParams& params() const noexcept { return params_; }
  /// Ah moved into / out of the battery since construction (both positive).
  [[nodiscard]] double charged_Ah() const noexcept { return charged_Ah_; }
  [[nodiscard]] double discharged_Ah() const noexcept { return discharged_Ah_; }
  /// Equivalent full cycles so far: (charged + discharged Ah) / (2 x capacity_Ah).
  [[nodiscard]] double equivalent_cycles() const noexcept {
    return (charged_Ah_ + discharged_Ah_) / (2.0 * params_.capacity_Ah);
  }
  /// Present capacity: capacity_Ah faded by fade_per_cycle x equivalent_cycles() (= capacity_Ah without fade).
  [[nodiscard]] double capacity_Ah() const noexcept { return capacity_now_Ah_; }

  /// Current that would put the terminal at exactly v_V (used for CV and voltage limits).
  [[nodiscard]] double current_for_voltage_A(double v_V) const noexcept {
    return (v_V - ocv_now_V_ - v_rc_V_) / params_.r0_ohm;
  }

  /// Let current_A flow for dt_s: integrate SOC (coulombic efficiency on charge) against the present
  /// capacity, then fade the capacity by the Ah moved, and step the RC pair (exact exponential step, so
  /// large dt stays stable). SOC saturates at 0 and 1; fade keeps the SOC (the charge lost is the fade's).
  void step(double current_A, double dt_s) noexcept;

 private:
  BatteryParams params_;
  OcvTable ocv_;
  double soc_;
  double v_rc_V_ = 0.0;
  double ocv_now_V_ = 0.0;  ///< OCV(soc_), cached: the converter asks for it several times per step
  double rc_dt_s_ = -1.0;   ///< dt of the cached RC decay factor
  double rc_decay_ = 0.0;
  double charged_Ah_ = 0.0;
  double discharged_Ah_ = 0.0;
  double capacity_now_Ah_ = 0.0;  ///< capacity_Ah after fade
};

}  // namespace eqd::sim
