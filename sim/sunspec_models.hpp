#pragma once
/// @file sunspec_models.hpp
/// The SunSpec information models the simulator serves, as small tables of points (name, offset,
/// size, type, access, mandatory, units, scale-factor point), transcribed from the SunSpec Alliance's
/// JSON model definitions (sunspec/models, json/model_<ID>.json; see sunspec_models.cpp and
/// docs/devices.md). Only the simulator uses them: the tests decode registers from the
/// specification's offsets written out in the test, never through these tables, so a slip here shows
/// up as a disagreement.
/// Thread-safety: immutable constant data; every function is thread-safe.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace eqd::sim::sunspec {

/// SunSpec point types used by the served models.
enum class PointType : std::uint8_t {
  uint16,
  int16,
  acc32,
  enum16,
  bitfield16,
  sunssf,
  string,
  pad,
  uint32,
  int32,
  bitfield32,
  float32
};

/// One point of a model. `offset` counts from the model's ID register (ID = 0, L = 1, first point = 2).
struct Point {
  std::string_view name;
  std::uint16_t offset;
  std::uint16_t size;  ///< registers
  PointType type;
  bool writable;   ///< access RW in the definition
  bool mandatory;  ///< "M" in the definition
  std::string_view units;
  std::string_view sf;  ///< name of the scale-factor point of the same model, empty = none
};

/// One model: ID, its length L (registers after the ID and L registers) and its points in order.
struct ModelDef {
  std::uint16_t id;
  std::string_view name;
  std::uint16_t length;
  std::span<const Point> points;
  /// The point called `point`, or nullptr.
  [[nodiscard]] const Point* find(std::string_view point) const noexcept;
};

/// The definition of model `id`, or nullptr when the simulator does not serve it.
[[nodiscard]] const ModelDef* find_model(std::uint16_t id) noexcept;

/// IDs of every model find_model() knows: 1, 101, 103, 113, 124, 201, 203, 204, 802.
[[nodiscard]] std::span<const std::uint16_t> served_model_ids() noexcept;

/// Register `word` (0-based) of the "not implemented" value of type `t`: int16/sunssf/pad 0x8000,
/// uint16/enum16/bitfield16 0xFFFF, int32 0x80000000, uint32/bitfield32 0xFFFFFFFF, acc32 0,
/// float32 0x7FC00000 (NaN), string all 0x0000 (SunSpec Information Model specification, data types).
[[nodiscard]] std::uint16_t not_implemented_word(PointType t, std::size_t word) noexcept;

/// The SunSpec marker "SunS" at the base address: two registers.
inline constexpr std::uint16_t kMarker0 = 0x5375;
inline constexpr std::uint16_t kMarker1 = 0x6E53;
/// ID of the end of the model chain (followed by L = 0).
inline constexpr std::uint16_t kEndModelId = 0xFFFF;

}  // namespace eqd::sim::sunspec
