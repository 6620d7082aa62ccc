// The lock-free table between the predictor's thread and its readers. See predictor.hpp.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>

#include "eqd/core/predictor.hpp"

namespace eqd::core {

namespace {
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
float to_f(std::uint32_t bits) noexcept { return std::bit_cast<float>(bits); }
std::uint32_t bits_of(float f) noexcept { return std::bit_cast<std::uint32_t>(f); }
}  // namespace

LearnedForecasts::LearnedForecasts(std::size_t channels, std::size_t buses)
    : n_(channels),
      nb_(buses),
      forecast_(std::make_unique<std::atomic<std::uint64_t>[]>(channels)),
      skill_(std::make_unique<std::atomic<std::uint32_t>[]>(channels)),
      in_use_(std::make_unique<std::atomic<std::uint8_t>[]>(channels)),
      in_path_(std::make_unique<std::atomic<std::uint64_t>[]>(channels)),
      bus_skill_(std::make_unique<std::atomic<std::uint32_t>[]>(buses)),
      ahead_(std::make_unique<Seqlock<LearnedAhead>[]>(buses)) {
  for (std::size_t i = 0; i < channels; ++i) {
    forecast_[i].store(bits_of(kNaN), std::memory_order_relaxed);
    skill_[i].store(bits_of(kNaN), std::memory_order_relaxed);
    in_use_[i].store(0, std::memory_order_relaxed);
    in_path_[i].store(0, std::memory_order_relaxed);
  }
  for (std::size_t b = 0; b < buses; ++b) bus_skill_[b].store(bits_of(kNaN), std::memory_order_relaxed);
}

LearnedForecast LearnedForecasts::forecast(std::size_t i) const noexcept {
  const std::uint64_t bits = forecast_[i].load(std::memory_order_relaxed);
  return {to_f(static_cast<std::uint32_t>(bits)), static_cast<std::uint32_t>(bits >> 32)};
}

void LearnedForecasts::publish(std::size_t i, float power_W, std::int64_t made_s) noexcept {
  const std::uint64_t bits = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(made_s)) << 32) | bits_of(power_W);
  forecast_[i].store(bits, std::memory_order_relaxed);
}

float LearnedForecasts::skill(std::size_t i) const noexcept { return to_f(skill_[i].load(std::memory_order_relaxed)); }
bool LearnedForecasts::in_use(std::size_t i) const noexcept { return in_use_[i].load(std::memory_order_relaxed) != 0; }
void LearnedForecasts::set_skill(std::size_t i, float skill, bool in_use) noexcept {
  skill_[i].store(bits_of(skill), std::memory_order_relaxed);
  in_use_[i].store(in_use ? 1 : 0, std::memory_order_relaxed);
}
bool LearnedForecasts::in_path(std::size_t i, std::int64_t made_s) const noexcept {
  if (made_s < 0) return false;
  const std::uint64_t v = in_path_[i].load(std::memory_order_acquire);
  const auto marked_s = static_cast<std::int64_t>(v >> 2);
  if (marked_s == made_s) return (v & 2U) != 0;
  if (marked_s == made_s + 1) return (v & 1U) != 0;  // already marked for the next path: the bit it kept
  return false;
}
void LearnedForecasts::mark_path(std::size_t i, std::int64_t made_s, bool in) noexcept {
  const std::uint64_t before = in_path_[i].load(std::memory_order_relaxed);
  const bool was = static_cast<std::int64_t>(before >> 2) == made_s - 1 && (before & 2U) != 0;
  in_path_[i].store(
      (static_cast<std::uint64_t>(std::max<std::int64_t>(made_s, 0)) << 2) | (in ? 2U : 0U) | (was ? 1U : 0U),
      std::memory_order_release);
}
float LearnedForecasts::bus_skill(std::size_t b) const noexcept {
  return to_f(bus_skill_[b].load(std::memory_order_relaxed));
}
void LearnedForecasts::set_bus_skill(std::size_t b, float skill) noexcept {
  bus_skill_[b].store(bits_of(skill), std::memory_order_relaxed);
}

}  // namespace eqd::core
