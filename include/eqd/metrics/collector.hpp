#pragma once
/// @file collector.hpp
/// Prometheus metrics of eqd, built at scrape time from the control core's lock-free snapshots, the
/// rig directory and the controller links' statistics, read through daemon::RigView (views.hpp). Nothing here runs on
/// the control thread: the control thread only publishes its snapshot (and its own cycle histograms, CycleStats); the
/// collector reads them through seqlocks when Prometheus asks. docs/metrics.md lists every metric.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "eqd/core/control_core.hpp"
#include "eqd/daemon/directory.hpp"
#include "eqd/daemon/api_stats.hpp"
#include "eqd/daemon/views.hpp"
#include "eqd/history/store.hpp"
#include "eqd/io/link.hpp"

namespace eqd::metrics {

/// Kind of a metric in the exposition. Plain data.
enum class MetricKind : std::uint8_t { gauge, counter, histogram };

/// Which entity a metric describes (decides its labels).
enum class MetricScope : std::uint8_t { control, bus, controller, channel };

/// One entry of the catalogue of exported metric families. Immutable static data; any thread.
struct MetricInfo {
  const char* name;  ///< full family name, e.g. "eqd_bus_net_power_watts"
  MetricKind kind;
  MetricScope scope;
  const char* unit;    ///< base unit ("watts", "joules", "seconds", ...) or "" for counts and enums
  const char* labels;  ///< label names, comma separated (documentation and tests)
  const char* help;
};

/// Every metric family the collector can export, in exposition order. Any thread.
[[nodiscard]] const std::vector<MetricInfo>& metric_catalogue();

/// What the collector reads. Every member is read from scrape threads, so each must be safe to call
/// from any thread concurrently with the control and poller threads (seqlock reads, atomics).
struct Sources {
  /// Required: the control thread's published state (a daemon::CoreSnapshots over a bare core in
  /// tests and benchmarks).
  std::shared_ptr<const daemon::SnapshotView> snapshots;
  const daemon::Directory* directory = nullptr;  ///< required; names of buses/controllers/channels
  /// Statistics of controller c (same order as directory->controllers); false: no link for it.
  /// Empty: no controller series at all.
  std::function<bool(std::size_t controller, io::LinkStats& out)> controller_stats;
  /// Periods the control loop skipped; empty: the series is not exported.
  std::function<std::uint64_t()> control_overruns;
  /// Monotonic clock of samples' receive_time_ns; empty: daemon::monotonic_ns.
  std::function<std::int64_t()> now_ns;
  /// The control API's request counts (eqd_control_api_requests_total); null: not exported.
  std::shared_ptr<const daemon::ApiRequestStats> api_requests;
  /// The history writer's counters (eqd_history_*); null: not exported.
  std::shared_ptr<const history::HistoryStats> history;
  /// Bus b's grid meter (eqd_bus_meter_*); empty, or a bus without one: no series.
  std::function<daemon::MeterView(core::BusIndex b)> meter;
};

/// Sources of a running rig (the Daemon in eqd). `rig` must outlive the collector. Main thread.
[[nodiscard]] Sources sources_from(const daemon::RigView& rig);

/// Options of the collector (from config::MetricsConfig).
struct CollectorOptions {
  bool per_channel = true;  ///< metrics.per_channel: export the eqd_channel_* families
};

/// prometheus-cpp Collectable over eqd's snapshots.
/// Thread-safety: Collect() is const and lock-free (seqlock and atomic reads only, plus allocation of
/// the result); any number of scrape threads may call it concurrently. Never called by, and never
/// blocks, the control thread. Construct on the main thread (it precomputes every label set).
class Collector final : public prometheus::Collectable {
 public:
  /// Throws std::invalid_argument if src.snapshots or src.directory is null.
  Collector(Sources src, CollectorOptions opt);

  /// The metric families now. Scrape threads (the Exporter's HTTP workers, tests, benchmarks).
  [[nodiscard]] std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  using Labels = std::vector<prometheus::ClientMetric::Label>;

  void collect_control(std::vector<prometheus::MetricFamily>& out, std::int64_t now_ns) const;
  void collect_history(std::vector<prometheus::MetricFamily>& out) const;
  void collect_buses(std::vector<prometheus::MetricFamily>& out) const;
  void collect_controllers(std::vector<prometheus::MetricFamily>& out, std::int64_t now_ns) const;
  /// eqd_controller_link_errors_total from the controllers' stats (`have[c]`: controller c has stats).
  void collect_link_errors(std::vector<prometheus::MetricFamily>& out, const std::vector<io::LinkStats>& st,
                           const std::vector<bool>& have) const;
  void collect_channels(std::vector<prometheus::MetricFamily>& out) const;

  Sources src_;
  CollectorOptions opt_;
  std::vector<Labels> bus_labels_;         ///< {bus}
  std::vector<Labels> controller_labels_;  ///< {controller}
  std::vector<Labels> channel_labels_;     ///< {bus, channel}
};

}  // namespace eqd::metrics
