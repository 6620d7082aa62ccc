#pragma once
/// @file peer_laws.hpp
/// Peer control laws re-implemented from their published behaviour, behind the harness's BusLaw
/// interface, so that they see the same samples and drive the same buffers as eqd's core:
/// an evcc-style 30 s full-error stepper with enable/disable delays, an OpenEMS-style 1 s PID, and
/// "no equalization". Benchmark code only: it allocates at construction, never in cycle().

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eqd/core/allocator.hpp"
#include "eqd/core/control_core.hpp"
#include "eqd/core/sample.hpp"
#include "eqd/sim/harness.hpp"

namespace eqd::bench {

/// What a peer law sees of one bus at one update (all bus side, W; positive = into the batteries).
struct BusView {
  double now_s = 0.0;
  double target_W = 0.0;
  double free_W = 0.0;              ///< test channels, bus side (same conversion as eqd's core)
  double eq_measured_W = 0.0;       ///< buffers in equalization mode, bus side
  double capacity_charge_W = 0.0;   ///< sum of buffers' charge headroom, bus side (>= 0)
  double capacity_discharge_W = 0.0;///< sum of buffers' discharge headroom, bus side (>= 0, magnitude)
  double rated_W = 0.0;             ///< sum of max(charge, discharge) ratings, bus side
  [[nodiscard]] double net_W() const noexcept { return free_W + eq_measured_W; }
};

/// Common plumbing of the peer laws: keeps the latest sample of every channel, computes the bus view
/// with eqd's own headroom rules (compute_headroom: window, hysteresis, taper), calls the peer's
/// decision at its own period and splits the total with eqd::core::allocate, so that only the
/// decision rule differs between laws. Thread-safety: one thread (the harness's).
class PeerLaw : public sim::BusLaw {
 public:
  /// period_s: how often the peer decides (its own loop period); the harness cycles more often.
  PeerLaw(const core::CoreConfig& cfg, double period_s);
  void on_sample(std::size_t i, const core::Sample& s) noexcept override;
  void cycle(std::int64_t now_ns) noexcept override;
  [[nodiscard]] core::Command command(std::size_t i) const noexcept override { return commands_[i]; }

 protected:
  /// The peer's decision: the new total equalization power of bus b (bus side). Called every period_s.
  /// `previous_W` is the total it commanded last time (already clamped to capacity).
  virtual double decide(std::size_t b, const BusView& v, double previous_W) noexcept = 0;

 private:
  struct Bus_ {
    std::vector<std::size_t> buffers;
    std::vector<core::WindowState> windows;
    std::vector<core::Headroom> headroom;  ///< bus side, scratch
    std::vector<double> out_W, scratch;
    double command_W = 0.0;
    double target_W = 0.0;
    std::uint32_t lease_ms = 5000;
  };
  void publish(std::size_t i, bool equalize, double setpoint_W) noexcept;

  std::vector<core::ChannelConfig> channels_;
  std::vector<core::Sample> samples_;
  std::vector<std::uint8_t> is_buffer_;
  std::vector<core::Command> commands_;
  std::vector<Bus_> buses_;
  double period_s_;
  std::int64_t next_update_ns_ = 0;
};

/// evcc-style stepper. Every 30 s the buffers' total is set to the full current error (the previous
/// total plus target - net), with evcc's enable/disable delays: the buffers start only after the demand
/// (|full-error total| >= threshold) persisted for enable_delay_s, and stop only after it stayed below
/// the threshold for disable_delay_s (meanwhile they keep the minimum power, as evcc keeps a charger at
/// its minimum current).
class EvccStepperLaw final : public PeerLaw {
 public:
  struct Params {
    double period_s = 30.0;          ///< evcc's default site `interval`
    double enable_delay_s = 60.0;    ///< evcc's default PV-mode `enable.delay` (1 min)
    double disable_delay_s = 180.0;  ///< evcc's default PV-mode `disable.delay` (3 min)
    /// Minimum power as a fraction of the bus rating: evcc's minimum is 6 A of a 16..32 A charger
    /// (19..38 %); 10 % is kinder to the stepper and still representative.
    double min_fraction = 0.10;
  };
  EvccStepperLaw(const core::CoreConfig& cfg, const Params& p);
  [[nodiscard]] const char* name() const noexcept override { return "evcc-step"; }

 private:
  double decide(std::size_t b, const BusView& v, double previous_W) noexcept override;
  struct State_ {
    bool enabled = false;
    double demand_since_s = -1.0;    ///< first tick with demand while disabled
    double no_demand_since_s = -1.0; ///< first tick without demand while enabled
  };
  Params p_;
  std::vector<State_> state_;
};

/// OpenEMS-style PID filter at 1 s: output = Kp·e + Ki·Σe + Kd·(−Δ measured), e = desired − measured
/// equalization power (= target − net), derivative on the measurement as OpenEMS does, integral clamped
/// so that Ki·Σe stays within the buffers' capacity (anti-windup), output clamped to capacity.
/// Optionally a first-order low-pass on the output (not in OpenEMS: a benchmark variant that trades
/// response for fewer flips, so the peer's frontier is not judged on its shakiest form only).
class PidLaw final : public PeerLaw {
 public:
  struct Params {
    double period_s = 1.0;
    double kp = 0.3, ki = 0.3, kd = 0.1;  ///< OpenEMS PidFilter defaults
    /// Time constant of the output low-pass (s); 0 = none (OpenEMS). Each period the command moves by
    /// 1 − exp(−period_s / output_tau_s) of its distance to the PID output.
    double output_tau_s = 0.0;
  };
  PidLaw(const core::CoreConfig& cfg, const Params& p);
  [[nodiscard]] const char* name() const noexcept override { return "pid"; }

 private:
  double decide(std::size_t b, const BusView& v, double previous_W) noexcept override;
  struct State_ {
    double error_sum = 0.0;
    double last_measured_W = 0.0;
    double filtered_W = 0.0;  ///< low-pass state (the command before clamping)
    bool first = true;
  };
  Params p_;
  std::vector<State_> state_;
};

/// What-if, not a peer: a bare feed-forward law, desired = target − free through `stages` cascaded
/// first-order stages of tau_s / stages each (mean delay tau_s), updated every period_s, nothing else
/// (no deadband, no flip dwell, no trim, no update gating, no slew limit). Against eqd's core at the
/// same tau it shows what eqd's extras cost or buy.
class FeedForwardLaw final : public PeerLaw {
 public:
  struct Params {
    double period_s = 1.0;
    double tau_s = 15.0;
    int stages = 2;
  };
  FeedForwardLaw(const core::CoreConfig& cfg, const Params& p);
  [[nodiscard]] const char* name() const noexcept override { return "feed-forward"; }

 private:
  double decide(std::size_t b, const BusView& v, double previous_W) noexcept override;
  Params p_;
  std::vector<std::vector<double>> stage_W_;  ///< [bus][stage]
};

/// Buffers stay idle: never commanded. The grid sees the free power.
class NoEqualizationLaw final : public sim::BusLaw {
 public:
  void on_sample(std::size_t, const core::Sample&) noexcept override {}
  void cycle(std::int64_t) noexcept override {}
  [[nodiscard]] core::Command command(std::size_t) const noexcept override { return core::Command{}; }
  [[nodiscard]] const char* name() const noexcept override { return "none"; }
};

}  // namespace eqd::bench
