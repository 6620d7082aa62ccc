// The /metrics HTTP endpoint (see exporter.hpp).
#include "eqd/metrics/exporter.hpp"

#include <CivetServer.h>
#include <civetweb.h>

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <vector>

#include <spdlog/spdlog.h>

#include "eqd/metrics/text_format.hpp"

namespace eqd::metrics {

namespace {

// civetweb 1.15 (Debian 12) serves one connection per worker thread, from accept to close. Idle
// or slow clients therefore cost a worker each until request_timeout_ms ends them; 16 workers let a
// few of them (up to 15 at once) cost a scrape nothing, and idle workers cost only a stack.
constexpr const char* kHttpThreads = "16";
// In 1.15 this bounds the whole request head from the moment a worker takes the connection (an idle
// or slow-loris client is dropped after it), and each write without progress. A real client sends
// its head in one packet; 2 s also leaves a large exposition ample time on a LAN.
constexpr const char* kRequestTimeout_ms = "2000";
// No keep-alive: a client that keeps its connection open between scrapes would hold a worker.
// Prometheus opens one connection per scrape then, which costs nothing at its scrape rates.
constexpr const char* kKeepAlive = "no";

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
  const std::vector<std::string> options = {
      "listening_ports",   listen,    "num_threads", kHttpThreads, "request_timeout_ms", kRequestTimeout_ms,
      "enable_keep_alive", kKeepAlive};
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

std::unique_ptr<Exporter> start_exporter(const daemon::RigView& rig, const config::MetricsConfig& cfg) {
  if (!cfg.enabled) return nullptr;
  auto collector = std::make_shared<Collector>(sources_from(rig), CollectorOptions{cfg.per_channel});
  return std::make_unique<Exporter>(std::move(collector), cfg.listen);
}

std::string bind_problem(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return {};
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr)
    return {};
  std::string problem;
  const int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  if (fd >= 0) {
    // civetweb binds with SO_REUSEADDR too: the probe fails exactly where civetweb would.
    const int one = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 1) != 0) {
      const int err = errno;
      problem = err == EADDRINUSE      ? "address in use"
                : err == EADDRNOTAVAIL ? "address not available on this host"
                : err == EACCES        ? "permission denied"
                                       : std::strerror(err);
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return problem;
}

struct ExporterService::Shared {
  mutable std::mutex m;
  std::condition_variable cv;
  bool stopping = false;
  EndpointState state;
};

ExporterService::ExporterService(const daemon::RigView& rig, const config::MetricsConfig& cfg,
                                 std::chrono::milliseconds retry,
                                 std::shared_ptr<const daemon::ApiRequestStats> api_requests,
                                 std::shared_ptr<const history::HistoryStats> history)
    : shared_(std::make_shared<Shared>()), listen_(cfg.listen), retry_(retry) {
  shared_->state.enabled = cfg.enabled;
  shared_->state.listen = cfg.listen;
  if (!cfg.enabled) return;
  Sources src = sources_from(rig);
  src.api_requests = std::move(api_requests);
  src.history = std::move(history);
  collector_ = std::make_shared<Collector>(std::move(src), CollectorOptions{cfg.per_channel});
  try_bind();
  if (exporter_) return;
  spdlog::error("metrics: cannot listen on {} ({}); control goes on without metrics; retrying every {} s", listen_,
                state().error, static_cast<double>(retry_.count()) / 1000.0);
  retry_thread_ = std::thread([this] { retry_loop(); });
}

ExporterService::~ExporterService() {
  {
    std::lock_guard lock(shared_->m);
    shared_->stopping = true;
  }
  shared_->cv.notify_all();
  if (retry_thread_.joinable()) retry_thread_.join();
  exporter_.reset();
  std::lock_guard lock(shared_->m);
  shared_->state.listening = false;
  shared_->state.port = 0;
}

void ExporterService::try_bind() {
  // The probe gives the reason in words ("address in use") and keeps civetweb from printing an
  // error of its own on every retry.
  std::string why = bind_problem(listen_);
  if (why.empty()) {
    try {
      exporter_ = std::make_unique<Exporter>(collector_, listen_);
    } catch (const std::exception& e) {
      why = e.what();
    }
  }
  std::lock_guard lock(shared_->m);
  EndpointState& st = shared_->state;
  st.listening = exporter_ != nullptr;
  st.error = exporter_ ? std::string() : why;
  st.retry = exporter_ ? std::chrono::milliseconds(0) : retry_;
  st.port = exporter_ ? exporter_->port() : 0;
}

void ExporterService::retry_loop() {
  std::uint64_t attempts = 1;
  for (;;) {
    {
      std::unique_lock lock(shared_->m);
      if (shared_->cv.wait_for(lock, retry_, [this] { return shared_->stopping; })) return;
    }
    ++attempts;
    try_bind();
    if (exporter_) {
      spdlog::info("metrics: listening on {} now (attempt {}); metrics on http://{}/metrics", listen_, attempts,
                   listen_);
      return;
    }
  }
}

EndpointState ExporterService::state() const {
  std::lock_guard lock(shared_->m);
  return shared_->state;
}

std::function<EndpointState()> ExporterService::state_reader() const {
  return [shared = shared_] {
    std::lock_guard lock(shared->m);
    return shared->state;
  };
}

}  // namespace eqd::metrics
