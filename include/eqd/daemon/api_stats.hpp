#pragma once
/// @file api_stats.hpp
/// Counts of the control API's requests by operation and result (issue #18 item 17): every request
/// that gets an answer is counted, whether the control thread decided it or the API thread refused it
/// first (parse errors, permissions, unknown names, busy, timeouts). Written by the control API,
/// exported by the metrics collector as eqd_control_api_requests_total{operation,result}.
/// Thread-safety: count() from any thread (the API's); value() from any thread (scrapes). Relaxed atomics.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace eqd::daemon {

class ApiRequestStats {
 public:
  /// Operations as the wire names them; "unparsed" for a line that was not a request.
  static constexpr std::array<std::string_view, 12> kOperations = {"hello",  "status",  "channels", "controllers",
                                                                   "assign", "release", "set",      "adopt",
                                                                   "forget", "audit",   "backup",   "unparsed"};
  /// "ok", every error code of the protocol (control/protocol.hpp), and "other" for anything else.
  /// ("busy" and "idle" are also sent, as "unparsed", to connections refused or closed for idling.)
  static constexpr std::array<std::string_view, 20> kResults = {"ok",
                                                                "too_large",
                                                                "malformed",
                                                                "bad_request",
                                                                "unsupported_version",
                                                                "unknown_command",
                                                                "unknown_channel",
                                                                "unknown_bus",
                                                                "forbidden",
                                                                "refused_running",
                                                                "refused_fault",
                                                                "invalid",
                                                                "busy",
                                                                "timeout",
                                                                "stalled",
                                                                "unknown_controller",
                                                                "not_adopted",
                                                                "unavailable",
                                                                "idle",
                                                                "other"};

  /// Counts one answered request. An operation or result not in the tables counts as "unparsed" /
  /// "other". Never throws, never allocates.
  void count(std::string_view operation, std::string_view result) noexcept {
    counts_[index(kOperations, operation) * kResults.size() + index(kResults, result)].fetch_add(
        1, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t value(std::size_t operation, std::size_t result) const noexcept {
    return counts_[operation * kResults.size() + result].load(std::memory_order_relaxed);
  }

 private:
  template <std::size_t N>
  static std::size_t index(const std::array<std::string_view, N>& names, std::string_view name) noexcept {
    for (std::size_t i = 0; i < N; ++i)
      if (names[i] == name) return i;
    return N - 1;  // "unparsed" / "other"
  }
  std::array<std::atomic<std::uint64_t>, kOperations.size() * kResults.size()> counts_{};
};

}  // namespace eqd::daemon
