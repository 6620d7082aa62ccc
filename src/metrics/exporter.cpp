// The /metrics HTTP endpoint (see exporter.hpp).
#include "eqd/metrics/exporter.hpp"

#include <CivetServer.h>
#include <civetweb.h>

#include <stdexcept>
#include <vector>

#include "eqd/daemon/daemon.hpp"
#include "eqd/metrics/text_format.hpp"

namespace eqd::metrics {

namespace {

// Two workers: a slow or stuck client (a browser, a curl left open) cannot hold up Prometheus.
constexpr const char* kHttpThreads = "2";
// A client that stops reading must not pin a worker for ever.
constexpr const char* kRequestTimeout_ms = "10000";

// GET /metrics: collect, write the text, send it. Runs on civetweb's worker threads only.
class MetricsHandler final : public CivetHandler {
 public:
  explicit MetricsHandler(const Collector& collector) : collector_(collector) {}

  bool handleGet(CivetServer*, mg_connection* conn) override {
    // One buffer per worker thread, reused by every scrape it serves: after the first scrape its
    // capacity fits the exposition and writing allocates nothing. Workers die with the server.
    thread_local std::string text;
    write_text(collector_.Collect(), text);
    mg_send_http_ok(conn, kTextContentType, static_cast<long long>(text.size()));
    // A client that went away is its own problem; nothing to report to it.
    mg_write(conn, text.data(), text.size());
    return true;
  }

 private:
  const Collector& collector_;
};

}  // namespace

// Declared here so that only this file sees civetweb. The handler outlives the server (members are
// destroyed in reverse order), so no worker can call into a destroyed handler.
struct Exporter::Server {
  MetricsHandler handler;
  CivetServer http;

  Server(const Collector& c, const std::vector<std::string>& options) : handler(c), http(options) {
    http.addHandler("/metrics", handler);
  }
};

Exporter::Exporter(std::shared_ptr<Collector> collector, const std::string& listen) : collector_(std::move(collector)) {
  if (!collector_) throw std::invalid_argument("metrics: exporter needs a collector");
  const std::vector<std::string> options = {"listening_ports", listen,           "num_threads",
                                            kHttpThreads,      "request_timeout_ms", kRequestTimeout_ms};
  try {
    server_ = std::make_unique<Server>(*collector_, options);
  } catch (const std::exception& e) {
    // civetweb's message alone ("null context when constructing CivetServer") does not say where.
    throw std::runtime_error("metrics: cannot listen on " + listen + " (" + e.what() + ")");
  }
  const std::vector<int> ports = server_->http.getListeningPorts();
  port_ = ports.empty() ? 0 : static_cast<std::uint16_t>(ports.front());
}

Exporter::~Exporter() {
  // Stop the HTTP workers (CivetServer joins them) before the collector can go away.
  server_.reset();
}

std::unique_ptr<Exporter> start_exporter(const daemon::Daemon& d, const config::MetricsConfig& cfg) {
  if (!cfg.enabled) return nullptr;
  auto collector = std::make_shared<Collector>(sources_from(d), CollectorOptions{cfg.per_channel});
  return std::make_unique<Exporter>(std::move(collector), cfg.listen);
}

}  // namespace eqd::metrics
