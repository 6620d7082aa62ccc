#pragma once
/// @file exporter.hpp
/// The HTTP endpoint (/metrics) that Prometheus scrapes: a civetweb server whose worker threads run
/// one eqd Collector and write its families with write_text() (text format 0.0.4). It replaces
/// prometheus-cpp's Exposer, whose TextSerializer cost most of a large scrape. The control thread
/// is never involved.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "eqd/config/config.hpp"
#include "eqd/metrics/collector.hpp"

namespace eqd::metrics {

/// Default listen address, the same as config::MetricsConfig::listen: loopback only, because the
/// exporter has no authentication (docs/metrics.md documents the port).
inline constexpr const char* kDefaultListen = "127.0.0.1:9860";

/// Owns the HTTP server and the collector it serves.
/// Thread-safety: construct and destroy on the owner (main) thread; port() from any thread.
class Exporter {
 public:
  /// Binds `listen` (HOST:PORT; PORT 0 picks a free port, for tests) and serves /metrics.
  /// Throws std::runtime_error naming the address if it cannot listen there.
  Exporter(std::shared_ptr<Collector> collector, const std::string& listen);
  /// Stops serving: joins the HTTP worker threads (a scrape in progress completes first).
  ~Exporter();
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  /// The port actually bound (differs from the configured one only for port 0). Any thread.
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

 private:
  struct Server;  // civetweb stays out of this header

  std::shared_ptr<Collector> collector_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
};

/// Builds the collector for a started rig (the Daemon in eqd; it must outlive the exporter) and
/// serves it at cfg.listen; nullptr when cfg.enabled is false. Throws std::runtime_error as
/// Exporter. Main thread.
[[nodiscard]] std::unique_ptr<Exporter> start_exporter(const daemon::RigView& rig, const config::MetricsConfig& cfg);

/// How often ExporterService tries again to bind metrics.listen while it cannot.
inline constexpr std::chrono::milliseconds kBindRetry{5000};

/// What the metrics endpoint is doing now. Plain data.
struct EndpointState {
  bool enabled = false;                ///< metrics.enabled
  bool listening = false;              ///< bound and serving
  std::string listen;                  ///< metrics.listen
  std::string error;                   ///< why not listening ("address in use"); empty when listening or disabled
  std::chrono::milliseconds retry{0};  ///< retry period while not listening
  std::uint16_t port = 0;              ///< the port bound (for metrics.listen with port 0); 0 while not listening
};

/// The metrics endpoint as a service that control never depends on: it binds at construction if it
/// can; otherwise it logs the reason once, retries every `retry` on a thread of its own and logs
/// once more when it succeeds. Nothing here throws for a busy or unavailable address.
/// Thread-safety: construct and destroy on the main thread; state() and the reader from any thread.
class ExporterService {
 public:
  /// `rig` (the Daemon in eqd) must be started and outlive the service. With cfg.enabled false
  /// nothing is served.
  /// api_requests: the control API's request counts to export (null: none); history: the history
  /// writer's counters (null: none).
  ExporterService(const daemon::RigView& rig, const config::MetricsConfig& cfg,
                  std::chrono::milliseconds retry = kBindRetry,
                  std::shared_ptr<const daemon::ApiRequestStats> api_requests = nullptr,
                  std::shared_ptr<const history::HistoryStats> history = nullptr);
  /// Stops retrying and serving (joins the retry thread, then the HTTP workers).
  ~ExporterService();
  ExporterService(const ExporterService&) = delete;
  ExporterService& operator=(const ExporterService&) = delete;

  /// The endpoint's state now. Any thread.
  [[nodiscard]] EndpointState state() const;
  /// A reader of the state that stays valid after the service is gone (then it reports the last
  /// state), for holders with a lifetime of their own such as the control API. Any thread.
  [[nodiscard]] std::function<EndpointState()> state_reader() const;

 private:
  struct Shared;
  void try_bind();
  void retry_loop();

  std::shared_ptr<Shared> shared_;
  std::shared_ptr<Collector> collector_;
  std::string listen_;
  std::chrono::milliseconds retry_;
  std::unique_ptr<Exporter> exporter_;  ///< written by the constructor or the retry thread, once
  std::thread retry_thread_;
};

/// Why `listen` (HOST:PORT) cannot be bound now, as a short phrase ("address in use"), found by
/// binding a probe socket; empty if a probe binds (or the address cannot be resolved). Any thread.
[[nodiscard]] std::string bind_problem(const std::string& listen);

}  // namespace eqd::metrics
