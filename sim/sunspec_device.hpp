#pragma once
/// @file sunspec_device.hpp
/// A simulated SunSpec device served over Modbus TCP on 127.0.0.1 (libmodbus), written from the
/// SunSpec specification (models from sunspec/models' JSON definitions, docs/devices.md) and
/// independent of any eqd client code: the SunSpec transport is tested against it, so a misreading
/// of the specification on either side shows up as a disagreement.
///
/// What it serves (holding registers only: FC3 read, FC6 and FC16 write):
/// - the marker "SunS" (0x5375 0x6E53) at the base address (0, 40000 or 50000), then the model chain:
///   for each model its ID, its length L and L registers, ended by ID 0xFFFF, L 0. Every other
///   address is ILLEGAL_DATA_ADDRESS (0x02);
/// - **storage** kind: models 1 (common), 103 (three-phase inverter: AC power; or 113, its float32
///   twin), 124 (basic storage controls) and optionally 802 (battery); the device follows the charge/discharge rate a
///   client writes through model 124 (StorCtl_Mod, InWRte, OutWRte, ramp and revert timeout) over a simple battery
///   (capacity, state of charge, charge/discharge limits);
/// - **meter** kind: models 1 and 201, 203 or 204, whose power and energy accumulators follow a power
///   value the owner sets (set_meter_power_W).
///
/// Writes: every register of the write must belong to a writable, implemented point (else 0x02), every
/// written value must be in the point's range (else ILLEGAL_DATA_VALUE 0x03); a refused write changes
/// nothing. Signs follow SunSpec: model 103 W > 0 = AC power exported = the battery discharging
/// (eqd's convention is the opposite: eqd power_W = -W); meter W > 0 = power imported from the grid.
/// InOutWRte_RvrtTms (s, 0 = none) restarts with every write of StorCtl_Mod, InWRte, OutWRte or itself.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace eqd::sim::sunspec {

/// What the device is.
enum class DeviceKind : std::uint8_t { storage, meter };

/// How the model chain ends (fault injection for clients' chain walkers).
enum class ChainEnd : std::uint8_t {
  marker,     ///< ID 0xFFFF, L 0 (the specification)
  missing,    ///< nothing after the last model: reading there is ILLEGAL_DATA_ADDRESS
  loop_back,  ///< a last model whose L, in 16-bit address arithmetic, leads back to the first model
  endless,    ///< models (ID 64999) fill the register space to 65535 without an end marker
};

/// The battery of a storage device. Plain value (not thread-safe; copied into the device).
struct StorageSpec {
  double capacity_Wh = 10000.0;
  double soc_pct = 50.0;            ///< initial state of charge
  double max_charge_W = 5000.0;     ///< WChaMax's initial value and upper bound; 802 WChaRteMax
  double max_discharge_W = 5000.0;  ///< 802 WDisChaRteMax; discharging is also bounded by WChaMax
  /// 802 WChaRteMax when below max_charge_W (0: max_charge_W): a battery rated for less charge power
  /// than its inverter's WChaMax; charging is then bounded by it too.
  double battery_charge_W = 0.0;
  double battery_voltage_V = 400.0;  ///< 124 InBatV, 802 V (constant); Ah = Wh / this
  double ramp_pct_per_s = 100.0;     ///< initial WChaGra and WDisChaGra (% of WChaMax per second)
  bool battery_model = true;         ///< serve model 802 after 124 (when `models` is left empty)
};

/// The meter of a meter device. Plain value (not thread-safe; copied into the device).
struct MeterSpec {
  std::uint16_t model = 203;  ///< 201 (single phase), 203 (wye) or 204 (delta)
  double voltage_V = 230.0;   ///< line-to-neutral; line-to-line = x sqrt(3)
  double frequency_Hz = 50.0;
  double import_Wh = 1000.0;  ///< initial TotWhImp (an acc32 of 0 would read as "not accumulated")
  double export_Wh = 1000.0;  ///< initial TotWhExp
};

/// Faults for tests (all off by default). Plain value (not thread-safe; copied into the device).
struct FaultOptions {
  /// Points served as "not implemented" (and refused on write with 0x02): "Name" (every model that
  /// has it) or "ID.Name" (e.g. "124.InWRte").
  std::vector<std::string> absent_points;
  bool optional_absent = false;  ///< every point that is not mandatory is "not implemented"
  bool omit_marker = false;      ///< the two marker registers read 0x0000 0x0000
  ChainEnd chain_end = ChainEnd::marker;
  int bad_length_index = -1;  ///< model (index in the chain) whose L register reads `bad_length`
  std::uint16_t bad_length = 0xFFFE;
  std::uint32_t scale_factor_toggle_ms = 0;  ///< > 0: every scale factor alternates sf, sf+1 at this period
  std::uint32_t reply_delay_ms = 0;          ///< every reply is sent this late (a slow device)
  /// > 0: a read's reply trickles out one byte every this many ms (a slowloris device: each byte comes
  /// within a per-byte timeout, the whole reply takes (9 + 2 x registers) x this).
  std::uint32_t trickle_byte_ms = 0;
};

/// One device to serve. Plain value (not thread-safe; copied into the device).
struct DeviceConfig {
  std::string name = "sunspec";  ///< for messages
  DeviceKind kind = DeviceKind::storage;
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;      ///< 0 = any free port (see SunSpecDevice::port())
  std::uint8_t unit_id = 1;    ///< requests for other unit ids get no reply; 1 DA's initial value
  std::uint16_t base = 40000;  ///< address of the marker: 0, 40000 or 50000
  /// Models in chain order; empty = the kind's default: storage 1, 103, 124 (+ 802), meter 1, meter.model.
  /// Model 1 must come first; storage needs 101, 103 or 113, and 124; meter one of 201/203/204.
  std::vector<std::uint16_t> models;
  std::string manufacturer = "eqd-sim";  ///< model 1 Mn
  std::string model_name;                ///< model 1 Md ("storage" / "meter" when empty)
  std::string options = "sim";           ///< model 1 Opt
  std::string version = "1.0";           ///< model 1 Vr
  std::string serial = "SIM-0001";       ///< model 1 SN
  /// Scale factors other than the defaults: {"W_SF", 1} (every model with that point) or
  /// {"124.InOutWRte_SF", -2}.
  std::vector<std::pair<std::string, int>> scale_factors;
  StorageSpec storage;
  MeterSpec meter;
  FaultOptions faults;
};

/// What the device does now (SunSpec signs: storage power_W > 0 = discharging, meter > 0 = import).
/// Plain value: a copy made under the device's lock (SunSpecDevice::state()).
struct DeviceState {
  double power_W = 0.0;
  double soc_pct = 0.0;               ///< storage
  double import_Wh = 0.0;             ///< meter (and storage: AC energy imported)
  double export_Wh = 0.0;             ///< meter (and storage: AC energy exported)
  std::uint16_t storctl_mod = 0;      ///< storage: StorCtl_Mod as served
  std::uint64_t reverts = 0;          ///< storage: rate controls reverted after InOutWRte_RvrtTms
  std::uint64_t requests = 0;         ///< frames for this unit
  std::uint64_t writes = 0;           ///< accepted writes
  std::uint64_t rejected_writes = 0;  ///< writes refused with an exception
};

namespace detail {
class DeviceImage;
}

/// One SunSpec device on its own TCP port, served by one thread (select() over any number of
/// clients). Thread-safety: construct/start/stop/destroy from one thread; every other member is
/// thread-safe (the register image has its own mutex), so a test or eqsim's plant thread may set the
/// meter power while the serving thread answers.
class SunSpecDevice {
 public:
  /// Checks the configuration and binds the port now (throws std::invalid_argument for a bad
  /// configuration, std::runtime_error naming the device and port when it cannot listen).
  explicit SunSpecDevice(DeviceConfig config);
  ~SunSpecDevice();
  SunSpecDevice(const SunSpecDevice&) = delete;
  SunSpecDevice& operator=(const SunSpecDevice&) = delete;

  /// Start the serving thread (idempotent).
  void start();
  /// Stop serving, close every socket, join the thread (idempotent; within ~20 ms plus a reply delay).
  void stop();
  /// The port it listens on (the chosen one when configured 0).
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

  /// Meter: the power through the meter from now on, W (> 0 = import from the grid), split equally
  /// over the phases. Any thread (eqsim sets it every second).
  void set_meter_power_W(double power_W);
  /// Storage: set the state of charge (tests). Any thread.
  void set_soc_pct(double soc_pct);
  /// Change a scale factor now, e.g. ("W_SF", 2) or ("124.InOutWRte_SF", -1); any int16 value, also
  /// an impossible one. Values are re-encoded with it; writable points keep their raw registers (their
  /// meaning changes, as on a device that changes a scale factor). Any thread.
  void set_scale_factor(const std::string& point, int value);
  /// A copy of the state and counters. Any thread.
  [[nodiscard]] DeviceState state() const;
  /// Address of the ID register of each model of the chain, in order (what a chain walk must find).
  [[nodiscard]] std::vector<std::uint16_t> model_addresses() const;

 private:
  void serve();
  std::shared_ptr<detail::DeviceImage> image_;
  void* ctx_ = nullptr;  // modbus_t*, kept opaque so that this header needs no libmodbus include
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::uint32_t reply_delay_ms_ = 0;
  std::atomic<bool> running_{false};
  std::thread thread_;
};

}  // namespace eqd::sim::sunspec
