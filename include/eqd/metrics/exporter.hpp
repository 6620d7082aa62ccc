#pragma once
/// @file exporter.hpp
/// The HTTP endpoint (/metrics) that Prometheus scrapes: a civetweb server whose worker threads run
/// one eqd Collector and write its families with write_text() (text format 0.0.4). It replaces
/// prometheus-cpp's Exposer, whose TextSerializer cost most of a large scrape. The control thread
/// is never involved.

#include <cstdint>
#include <memory>
#include <string>

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

/// Builds the collector for a started daemon and serves it at cfg.listen; nullptr when
/// cfg.enabled is false. Throws std::runtime_error as Exporter. Main thread.
[[nodiscard]] std::unique_ptr<Exporter> start_exporter(const daemon::Daemon& d, const config::MetricsConfig& cfg);

}  // namespace eqd::metrics
