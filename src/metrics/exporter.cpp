// The /metrics HTTP endpoint (see exporter.hpp).
#include "eqd/metrics/exporter.hpp"

#include <prometheus/exposer.h>

#include <stdexcept>

#include "eqd/daemon/daemon.hpp"

namespace eqd::metrics {

namespace {
// Two workers: a slow or stuck client (a browser, a curl left open) cannot hold up Prometheus.
constexpr std::size_t kHttpThreads = 2;
}  // namespace

Exporter::Exporter(std::shared_ptr<Collector> collector, const std::string& listen) : collector_(std::move(collector)) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(listen, kHttpThreads);
  } catch (const std::exception& e) {
    // civetweb's message alone ("null context when constructing CivetServer") does not say where.
    throw std::runtime_error("metrics: cannot listen on " + listen + " (" + e.what() + ")");
  }
  const std::vector<int> ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? 0 : static_cast<std::uint16_t>(ports.front());
  exposer_->RegisterCollectable(collector_);
}

Exporter::~Exporter() {
  // Stop the HTTP workers before the collector can go away.
  exposer_.reset();
}

std::unique_ptr<Exporter> start_exporter(const daemon::Daemon& d, const config::MetricsConfig& cfg) {
  if (!cfg.enabled) return nullptr;
  auto collector = std::make_shared<Collector>(sources_from(d), CollectorOptions{cfg.per_channel});
  return std::make_unique<Exporter>(std::move(collector), cfg.listen);
}

}  // namespace eqd::metrics
