#pragma once
/// @file models.hpp
/// The SunSpec side of the `sunspec` transport, written from the SunSpec model definitions
/// (sunspec/models, json/model_1, 101, 103, 113, 124, 802; docs/devices.md): where the models are, what
/// "not implemented" is, how a scale factor applies, the chain walk with hard limits, and the decoding
/// of one poll into an eqd Sample and of one eqd Command into model 124 registers. No I/O and no
/// libmodbus here: the walk reads through a callback, so it is tested without a device too.
///
/// Thread-safety: pure functions and plain data (share as const).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "eqd/core/sample.hpp"

namespace eqd::io::sunspec {

/// The base addresses a SunSpec device may put its marker at (protocol addresses).
inline constexpr std::uint16_t kBases[] = {0, 40000, 50000};
/// "SunS".
inline constexpr std::uint16_t kMarker0 = 0x5375, kMarker1 = 0x6E53;
/// Hard limits of the walk: a device announcing more models than this is refused (the chain of a
/// storage device has 4 or 5).
inline constexpr int kMaxModels = 64;

/// Offsets inside a model, counted from its first data register (after ID and L), from the definitions.
namespace m1 {
inline constexpr int kMn = 0, kMd = 16, kSN = 48, kMinLength = 65;  // 65: older devices have no Pad
}
/// The inverter models 101 (single phase), 102 (split phase), 103 (three phase): the same layout of
/// their points (json/model_101..103: A, AphA-C, A_SF, PPVph.., PhVph.., V_SF, W, W_SF, ...), L 50.
namespace m103 {
inline constexpr int kW = 12, kW_SF = 13, kLength = 50;
}
/// Their float variants 111, 112, 113: the same points as float32 (no scale factors), L 60.
namespace m113 {
inline constexpr int kW = 20, kLength = 60;  // float32, high word first, no scale factor
}
/// True for the inverter models eqd reads AC power from (101-103, 111-113).
[[nodiscard]] constexpr bool is_inverter_model(std::uint16_t id) noexcept {
  return (id >= 101 && id <= 103) || (id >= 111 && id <= 113);
}
/// True for the float32 inverter models (111-113).
[[nodiscard]] constexpr bool is_float_inverter(std::uint16_t id) noexcept { return id >= 111 && id <= 113; }
namespace m124 {
inline constexpr int kWChaMax = 0, kStorCtl_Mod = 3, kChaState = 6, kInBatV = 8, kOutWRte = 10, kInWRte = 11,
                     kRvrtTms = 13, kWChaMax_SF = 16, kChaState_SF = 20, kInBatV_SF = 22, kInOutWRte_SF = 23,
                     kLength = 24;
}
namespace m802 {
// WChaRteMax / WDisChaRteMax: the battery's nameplate charge / discharge power (DC W), one scale factor.
inline constexpr int kWChaRteMax = 2, kWDisChaRteMax = 3, kSoC = 9, kV = 32, kWChaDisChaMax_SF = 52, kSoC_SF = 54,
                     kV_SF = 57, kMinLength = 62;
}  // namespace m802
/// The meter models 201 (single phase), 202 (split phase), 203 (wye), 204 (delta): the same layout of
/// their first points (json/model_201..204: A, AphA-C, A_SF, PhV..., V_SF, Hz, Hz_SF, W, WphA-C, W_SF).
/// eqd reads the first kRead registers (through W_SF); L is 105 in the definitions.
namespace m20x {
inline constexpr int kHz = 14, kHz_SF = 15, kW = 16, kWphA = 17, kW_SF = 20, kRead = 21;
}
/// True for the meter models eqd reads (201..204).
[[nodiscard]] constexpr bool is_meter_model(std::uint16_t id) noexcept { return id >= 201 && id <= 204; }

/// StorCtl_Mod bits (model 124): CHARGE = bit 0, DISCHARGE = bit 1.
inline constexpr std::uint16_t kStorCtlCharge = 1, kStorCtlDischarge = 2;

/// One model of the chain: its ID, the address of its first data register and its length L.
struct ModelRef {
  std::uint16_t id = 0;
  std::uint32_t address = 0;  ///< first data register (ID register + 2)
  std::uint16_t length = 0;
};

/// What the walk found, or why it failed (`error` non-empty: the device is not usable).
struct Discovery {
  std::uint16_t base = 0;
  std::vector<ModelRef> models;
  std::optional<ModelRef> inverter;  ///< the first of 101-103, 111-113 in the chain
  std::optional<ModelRef> storage;   ///< 124
  std::optional<ModelRef> battery;   ///< 802
  std::optional<ModelRef> common;    ///< 1
  std::optional<ModelRef> meter;     ///< the first of 201..204
  std::string error;
  int error_errno = 0;  ///< the read's errno when the error is a failed read (0: a malformed chain)
};

/// Reads `count` registers at `address` into `dest`; false with errno set on failure.
using ReadFn = std::function<bool(std::uint32_t address, int count, std::uint16_t* dest)>;

/// Finds the marker (at `base`, or at 0, 40000, 50000 in that order when `base` is negative) and
/// walks the chain: at most kMaxModels models, each L checked against the register space left, a
/// chain must end with ID 0xFFFF inside the space, each model eqd reads at least as long as eqd reads
/// it. Fills `models` and the references (common, inverter, storage, battery, meter); requires none of
/// them. Shared by the storage transport and the grid meter (io/meter).
[[nodiscard]] Discovery discover_chain(int base, const ReadFn& read);

/// discover_chain() for a storage device: models 124 and one of 101-103, 111-113 are required. The error names
/// what is wrong ("device lacks model 124 (storage controls); it has models 1, 203").
[[nodiscard]] Discovery discover(int base, const ReadFn& read);

/// discover_chain() for a grid meter: one of 201..204 is required ("device lacks a meter model
/// (201-204); it has models 1, 103, 124").
[[nodiscard]] Discovery discover_meter(int base, const ReadFn& read);

/// A SunSpec scale factor: nullopt when not implemented (0x8000) or outside -10..10 (impossible).
[[nodiscard]] std::optional<int> scale_factor(std::uint16_t raw) noexcept;
/// The string of model 1 (two characters per register, high byte first, NUL-padded).
[[nodiscard]] std::string decode_string(const std::uint16_t* regs, int count);

/// One poll's registers: the inverter model's data, model 124's and (when present) 802's.
struct PollRegisters {
  std::uint16_t inverter_id = 103;  ///< 101-103 (integer + W_SF) or 111-113 (float32)
  const std::uint16_t* inverter = nullptr;
  const std::uint16_t* storage = nullptr;
  const std::uint16_t* battery = nullptr;  ///< null: no model 802
};

/// Why a poll gives no valid sample (kNone: valid).
enum class SampleProblem : std::uint8_t {
  none,
  power_absent,
  bad_scale_factor,
  voltage_absent,
  mode_absent,
  bad_state_of_charge,  ///< 124 ChaState or 802 SoC outside 0..100 %, or its scale factor not implemented
};
[[nodiscard]] const char* to_string(SampleProblem p) noexcept;

/// Decodes one poll. Sign: SunSpec inverter W > 0 is AC power exported, i.e. the battery
/// discharging; eqd's power_W > 0 is charging, so power_W = -W. Returns the problem; on one the
/// sample is left invalid (never a number for the law).
[[nodiscard]] SampleProblem decode_sample(const PollRegisters& r, core::Sample& out) noexcept;

/// Why a meter reading gives no power (none: valid).
enum class MeterProblem : std::uint8_t {
  none,
  power_absent,      ///< W reads "not implemented" (0x8000)
  bad_scale_factor,  ///< W_SF not implemented or outside -10..10
};
[[nodiscard]] const char* to_string(MeterProblem p) noexcept;

/// A meter model's total real power W x 10^W_SF, in the device's sign (SunSpec's definitions do not
/// give one: see docs/devices.md, "Grid meter"), from the model's first m20x::kRead data registers.
struct MeterValue {
  double power_W = 0.0;
  double frequency_Hz = 0.0;  ///< NaN when Hz or Hz_SF is not implemented (optional point)
};
[[nodiscard]] MeterProblem decode_meter(const std::uint16_t* regs, MeterValue& out) noexcept;

/// The device's own power limits, W (magnitudes; +infinity: the device gives none).
struct DeviceLimits {
  double charge_W = 0.0;
  double discharge_W = 0.0;
};
/// The device's limits from model 124 (`storage`) and, when present, model 802 (`battery`, null:
/// none): charge = min(124 WChaMax, 802 WChaRteMax), discharge = min(124 WChaMax, 802 WDisChaRteMax)
/// (eqd's rates are in % of WChaMax in both directions), each x 10^its scale factor. A value or scale
/// factor "not implemented" (or outside -10..10) is absent: that limit does not apply (+infinity).
[[nodiscard]] DeviceLimits device_limits(const std::uint16_t* storage, const std::uint16_t* battery) noexcept;

/// Model 124 registers for one command.
struct StorageWrite {
  std::uint16_t storctl_mod = 0;
  std::uint16_t out_w_rte = 0;  ///< raw, with InOutWRte_SF
  std::uint16_t in_w_rte = 0;
  std::uint16_t rvrt_tms = 0;  ///< InOutWRte_RvrtTms, s
  double setpoint_W = 0.0;     ///< the setpoint encoded (eqd sign), after the device's limits
  bool limited = false;        ///< the setpoint asked was beyond the device's limits (setpoint_W is the limit)
};

/// Encodes an eqd command (setpoint in eqd's sign: > 0 charging) from model 124's present registers
/// (WChaMax, its SF, InOutWRte_SF) and, when present, model 802's (`battery`, null: none). Equalize P:
/// StorCtl_Mod 3 (charge and discharge limits active), InWRte = +P / WChaMax x 100 %, OutWRte =
/// -InWRte (a negative discharge limit forces the charge, and conversely), InOutWRte_RvrtTms = the
/// lease in seconds rounded up. P beyond the device's limits (device_limits()) is clamped to them
/// (`limited`): a setpoint beyond them is never written. Stop: StorCtl_Mod 0 (the device's own mode),
/// rates 0. Returns an error text (nothing to send) when it cannot be encoded: P not finite, WChaMax
/// or a scale factor not implemented, a lease beyond the register (65534 s) or 0.
[[nodiscard]] std::string encode_command(bool equalize, double setpoint_W, std::uint32_t lease_ms,
                                         const std::uint16_t* storage, StorageWrite& out,
                                         const std::uint16_t* battery = nullptr);

/// InOutWRte_RvrtTms for a lease: seconds rounded up; nullopt when the register cannot hold it.
[[nodiscard]] std::optional<std::uint16_t> revert_seconds(std::uint32_t lease_ms) noexcept;

}  // namespace eqd::io::sunspec
