// Name lookups of the rig (see directory.hpp).
#include "eqd/daemon/directory.hpp"

#include <algorithm>

namespace eqd::daemon {

const char* to_string(ControllerSource s) noexcept {
  switch (s) {
    case ControllerSource::config:
      return "config";
    case ControllerSource::cache:
      return "cache";
    case ControllerSource::discovery:
      return "discovery";
  }
  return "unknown";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::optional<core::ChannelIndex> Directory::find_channel(std::string_view name) const {
  auto it = by_name.find(std::string(name));
  if (it == by_name.end()) return std::nullopt;
  return it->second;
}

std::optional<core::BusIndex> Directory::find_bus(std::string_view name) const {
  for (std::size_t b = 0; b < buses.size(); ++b)
    if (buses[b] == name) return static_cast<core::BusIndex>(b);
  return std::nullopt;
}

std::optional<std::uint16_t> Directory::find_controller(std::string_view name) const {
  for (std::size_t c = 0; c < controllers.size(); ++c)
    if (controllers[c].name == name) return static_cast<std::uint16_t>(c);
  return std::nullopt;
}

std::vector<std::string> Directory::suggest_channels(std::string_view name, std::size_t max) const {
  std::vector<std::pair<std::size_t, const std::string*>> scored;
  scored.reserve(channels.size());
  for (const ChannelInfo& c : channels) scored.emplace_back(edit_distance(name, c.name), &c.name);
  const std::size_t keep = std::min(max, scored.size());
  std::partial_sort(
      scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(keep), scored.end(),
      [](const auto& x, const auto& y) { return x.first < y.first || (x.first == y.first && *x.second < *y.second); });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < keep; ++i)
    if (scored[i].first <= std::max<std::size_t>(3, name.size() / 2)) out.push_back(*scored[i].second);
  return out;
}

}  // namespace eqd::daemon
