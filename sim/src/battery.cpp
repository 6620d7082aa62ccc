#include "eqd/sim/battery.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace eqd::sim {

OcvTable::OcvTable(std::vector<double> soc, std::vector<double> voltage_V)
    : soc_(std::move(soc)), voltage_V_(std::move(voltage_V)) {
  if (soc_.size() < 2 || soc_.size() != voltage_V_.size())
    throw std::invalid_argument("OCV table needs at least two (soc, voltage_V) points of equal count");
  for (std::size_t i = 0; i < soc_.size(); ++i) {
    if (!(soc_[i] >= 0.0 && soc_[i] <= 1.0)) throw std::invalid_argument("OCV table soc must be within 0..1");
    if (!(voltage_V_[i] > 0.0)) throw std::invalid_argument("OCV table voltage_V must be positive");
    if (i > 0 && !(soc_[i] > soc_[i - 1])) throw std::invalid_argument("OCV table soc must increase strictly");
    if (i > 0 && voltage_V_[i] < voltage_V_[i - 1])
      throw std::invalid_argument("OCV table voltage_V must not decrease with soc");
  }
}

namespace {
OcvTable scaled(const std::vector<double>& soc, const std::vector<double>& cell_V, int cells) {
  std::vector<double> v(cell_V);
  for (double& x : v) x *= static_cast<double>(cells);
  return OcvTable(soc, std::move(v));
}
}  // namespace

// Representative shapes only (typical published cell curves, rounded): enough to give the plant a
// steep knee at both ends and a flat (LFP) or sloped (NMC) middle.
OcvTable OcvTable::lfp(int cells_in_series) {
  return scaled({0.0, 0.05, 0.10, 0.20, 0.30, 0.50, 0.70, 0.90, 0.95, 1.0},
                {2.50, 3.00, 3.18, 3.25, 3.28, 3.30, 3.32, 3.35, 3.40, 3.60}, cells_in_series);
}

OcvTable OcvTable::nmc(int cells_in_series) {
  return scaled({0.0, 0.05, 0.10, 0.20, 0.40, 0.60, 0.80, 0.90, 1.0},
                {3.00, 3.35, 3.48, 3.58, 3.68, 3.80, 3.96, 4.06, 4.20}, cells_in_series);
}

double OcvTable::voltage_V(double soc) const noexcept {
  if (soc <= soc_.front()) return voltage_V_.front();
  if (soc >= soc_.back()) return voltage_V_.back();
  const auto it = std::upper_bound(soc_.begin(), soc_.end(), soc);
  const std::size_t hi = static_cast<std::size_t>(it - soc_.begin());
  const std::size_t lo = hi - 1;
  const double f = (soc - soc_[lo]) / (soc_[hi] - soc_[lo]);
  return voltage_V_[lo] + f * (voltage_V_[hi] - voltage_V_[lo]);
}

Battery::Battery(const BatteryParams& p, OcvTable ocv)
    : params_(p), ocv_(std::move(ocv)), soc_(std::clamp(p.initial_soc, 0.0, 1.0)), capacity_now_Ah_(p.capacity_Ah) {
  ocv_now_V_ = ocv_.voltage_V(soc_);
}

void Battery::step(double current_A, double dt_s) noexcept {
  const double ah = current_A * dt_s / 3600.0;
  if (ah >= 0.0) {
    charged_Ah_ += ah;
    soc_ += ah * params_.coulombic_efficiency / capacity_now_Ah_;
  } else {
    discharged_Ah_ -= ah;
    soc_ += ah / capacity_now_Ah_;
  }
  soc_ = std::clamp(soc_, 0.0, 1.0);
  if (params_.fade_per_cycle > 0.0)
    capacity_now_Ah_ =
        params_.capacity_Ah * std::max(kMinCapacityFraction, 1.0 - params_.fade_per_cycle * equivalent_cycles());
  // Exact solution of dV/dt = I/C1 - V/(R1 C1) for constant I over dt.
  const double tau = params_.r1_ohm * params_.c1_F;
  if (tau > 0.0) {
    if (dt_s != rc_dt_s_) {
      rc_dt_s_ = dt_s;
      rc_decay_ = std::exp(-dt_s / tau);
    }
    v_rc_V_ = v_rc_V_ * rc_decay_ + current_A * params_.r1_ohm * (1.0 - rc_decay_);
  } else {
    v_rc_V_ = current_A * params_.r1_ohm;
  }
  ocv_now_V_ = ocv_.voltage_V(soc_);
}

}  // namespace eqd::sim
