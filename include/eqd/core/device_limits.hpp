#pragma once
/// @file device_limits.hpp
/// A channel's own power limits as its device reports them (SunSpec storage: 124 WChaMax, 802
/// WChaRteMax / WDisChaRteMax), and the one-word slot in which its link hands them to the control
/// thread. They change rarely (a device's rating, a battery management system's derating), so they
/// travel apart from the Sample, which must stay one cache line.

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace eqd::core {

/// What a device reports of its own power limits: battery-side magnitudes in W, the same terms as
/// BufferLimits::max_charge_W / max_discharge_W. NaN: not reported (the configured limit alone
/// applies). Trivially copyable; thread-safety as plain data.
struct DeviceLimits {
  float max_charge_W = std::numeric_limits<float>::quiet_NaN();
  float max_discharge_W = std::numeric_limits<float>::quiet_NaN();
};
static_assert(sizeof(DeviceLimits) == 8, "DeviceLimits travels as one atomic word (DeviceLimitsSlot)");

/// A limit in W as DeviceLimits holds it: never above `limit_W` (a float rounded up would let the
/// allocator ask a fraction of a watt beyond the device's limit); NaN for NaN or +infinity (the device
/// gives none); a negative value counts as 0 W. Any thread.
[[nodiscard]] inline float device_limit_float(double limit_W) noexcept {
  if (std::isnan(limit_W) || limit_W == std::numeric_limits<double>::infinity())
    return std::numeric_limits<float>::quiet_NaN();
  if (!(limit_W > 0.0)) return 0.0F;
  if (limit_W >= static_cast<double>(std::numeric_limits<float>::max())) return std::numeric_limits<float>::max();
  const auto f = static_cast<float>(limit_W);
  return static_cast<double>(f) > limit_W ? std::nextafter(f, 0.0F) : f;
}

/// One channel's DeviceLimits, both in one atomic word, so that a reader always sees a pair that was
/// stored together, without a retry loop. Thread-safety: store() from one thread at a time (the
/// channel's link); load() and bits() from any thread. Wait-free, never blocks.
class DeviceLimitsSlot {
 public:
  DeviceLimitsSlot() noexcept : bits_(pack(DeviceLimits{})) {}
  explicit DeviceLimitsSlot(const DeviceLimits& l) noexcept : bits_(pack(l)) {}
  DeviceLimitsSlot(const DeviceLimitsSlot&) = delete;
  DeviceLimitsSlot& operator=(const DeviceLimitsSlot&) = delete;

  /// Publish new limits. The owning link's thread.
  void store(const DeviceLimits& l) noexcept { bits_.store(pack(l), std::memory_order_release); }
  /// The limits last stored (all NaN before the first store). Any thread.
  [[nodiscard]] DeviceLimits load() const noexcept { return unpack(bits()); }
  /// The raw word: changes exactly when the limits' bits do. The control thread compares it with the
  /// word of its last read and decodes only on a change. Any thread.
  [[nodiscard]] std::uint64_t bits() const noexcept { return bits_.load(std::memory_order_acquire); }

  [[nodiscard]] static std::uint64_t pack(const DeviceLimits& l) noexcept { return std::bit_cast<std::uint64_t>(l); }
  [[nodiscard]] static DeviceLimits unpack(std::uint64_t w) noexcept { return std::bit_cast<DeviceLimits>(w); }

 private:
  std::atomic<std::uint64_t> bits_;
};

}  // namespace eqd::core
