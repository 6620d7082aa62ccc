#pragma once
/// @file sunspec_image.hpp
/// The register image of one simulated SunSpec device: layout of the model chain, encoding of points
/// with their scale factors and "not implemented" values, validation of writes, and the storage and
/// meter behaviour (sunspec_device.hpp says what is served). Private to sunspec_device.cpp and
/// sunspec_image.cpp.
/// Thread-safety: DeviceImage locks its own mutex in every public member; any thread.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sunspec_device.hpp"
#include "sunspec_models.hpp"

namespace eqd::sim::sunspec::detail {

using Clock = std::chrono::steady_clock;

/// Outcome of a write request, as a Modbus exception code (0 = accepted and applied).
enum class WriteResult : std::uint8_t { ok = 0, illegal_address = 0x02, illegal_value = 0x03 };

/// One model of the chain as served.
struct Instance {
  const ModelDef* def = nullptr;
  std::uint32_t start = 0;    ///< address of its ID register
  std::vector<bool> present;  ///< per point of def->points: implemented
};

class DeviceImage {
 public:
  /// Lays out the chain and fills every register (throws std::invalid_argument on a bad config).
  explicit DeviceImage(DeviceConfig config);

  [[nodiscard]] const DeviceConfig& config() const noexcept { return cfg_; }
  /// First served address (the marker) and one past the last.
  [[nodiscard]] std::uint32_t first_address() const noexcept { return cfg_.base; }
  [[nodiscard]] std::uint32_t end_address() const noexcept { return end_; }

  /// Advance the simulation to `now` and encode every value; then copy registers [address,
  /// address + count) (inside the served range) to `out`. Serving thread.
  void read(Clock::time_point now, std::uint32_t address, std::uint32_t count, std::uint16_t* out);
  /// Validate a write of `values` at `address` as a whole and apply it, or change nothing.
  WriteResult write(Clock::time_point now, std::uint32_t address, const std::vector<std::uint16_t>& values);
  /// Advance the simulation (revert timeouts, ramps, energy). Serving thread, every few ms.
  void tick(Clock::time_point now);
  void count_request();

  void set_meter_power_W(double power_W);
  void set_soc_pct(double soc_pct);
  void set_scale_factor(const std::string& point, int value);
  [[nodiscard]] DeviceState state() const;
  [[nodiscard]] std::vector<std::uint16_t> model_addresses() const;

 private:
  struct ScaleFactor {
    std::uint32_t address;
    int value;  ///< as configured; the register may show value + 1 while toggling
  };

  void layout();
  void mark_absent();
  void fill_static();
  void set_default_scale_factors();
  void encode_dynamic();
  void encode_storage();
  void encode_meter();
  void advance(Clock::time_point now);
  void advance_storage(double dt_s, Clock::time_point now);

  Instance* instance(std::uint16_t id) noexcept;
  std::uint16_t* reg(std::uint32_t address) noexcept { return &regs_[address - cfg_.base]; }
  /// Encode `value` (engineering units) into point `name` of model `id` with its scale factor; absent
  /// points keep their "not implemented" value.
  void put(std::uint16_t id, std::string_view name, double value);
  void put_raw(std::uint16_t id, std::string_view name, std::uint32_t raw);
  void put_string(std::uint16_t id, std::string_view name, const std::string& text);
  /// Decoded value of a 16-bit point (scaled); `fallback` when absent or not implemented.
  [[nodiscard]] double get(std::uint16_t id, std::string_view name, double fallback) const;
  [[nodiscard]] int scale_of(const Instance& in, const Point& p) const;
  [[nodiscard]] WriteResult check_value(const Instance& in, const Point& p, const std::vector<std::uint16_t>& cand,
                                        std::uint32_t cand_base) const;

  DeviceConfig cfg_;
  mutable std::mutex mutex_;
  std::vector<std::uint16_t> regs_;  // [base, end_)
  std::uint32_t end_ = 0;
  std::vector<Instance> models_;
  std::vector<ScaleFactor> scale_factors_;
  bool toggled_ = false;
  Clock::time_point last_{};
  Clock::time_point start_{};
  DeviceState st_{};

  // storage
  double charge_W_ = 0.0;  // eqd's sign inside: + = charging; served as W = -charge_W_
  double ramp_from_W_ = 0.0, ramp_to_W_ = 0.0;
  Clock::time_point ramp_start_{};
  Clock::time_point last_rate_write_{};
  // meter
  double meter_W_ = 0.0;
};

}  // namespace eqd::sim::sunspec::detail
