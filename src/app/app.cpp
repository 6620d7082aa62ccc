#include "eqd/app/app.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <fstream>
#include <iterator>
#include <set>

#include "eqd/control/server.hpp"
#include "eqd/discovery/cache.hpp"
#include "eqd/metrics/exporter.hpp"

namespace eqd::app {

App::App(config::Config cfg) : cfg_(std::move(cfg)), store_(cfg_.state_dir) {}

App::~App() { stop(); }

namespace {

// This host's name: the default history.instance.
std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

// The store's options from history.*: PostgreSQL with history.url, else the SQLite file in state_dir
// unless history.path says otherwise; no database (journal only) with history.enabled false.
history::HistoryOptions history_options(const config::Config& cfg) {
  history::HistoryOptions o;
  if (cfg.history.enabled && !cfg.history.url.empty()) {
    o.url = cfg.history.url;
    o.instance = cfg.history.instance.empty() ? host_name() : cfg.history.instance;
  } else if (cfg.history.enabled) {
    o.path = cfg.history.path.empty() ? cfg.state_dir + "/history.db" : cfg.history.path;
  }
  o.retention_days = cfg.history.retention_days;
  return o;
}

// `eqctl status`'s "history": where the database is, why there is none, what was written and lost.
nlohmann::json history_state(const history::HistoryStore& store) {
  const history::HistoryStats& st = *store.stats();
  nlohmann::json rows = nlohmann::json::object();
  for (std::size_t t = 0; t < st.kTables.size(); ++t)
    rows[std::string(st.kTables[t])] = st.rows_written[t].load(std::memory_order_relaxed);
  const std::string error = store.database_error();
  const std::int64_t last = st.last_write_ms.load(std::memory_order_relaxed);
  return nlohmann::json{
      {"path", store.path().empty() ? nlohmann::json(nullptr) : nlohmann::json(store.path())},
      {"error", error.empty() ? nlohmann::json(nullptr) : nlohmann::json(error)},
      {"rows_written", rows},
      {"unreachable", st.unreachable.load(std::memory_order_relaxed)},
      {"records_lost",
       st.write_errors.load(std::memory_order_relaxed) + st.dropped_queue_full.load(std::memory_order_relaxed)},
      {"last_write_age_s", last > 0 ? nlohmann::json(static_cast<double>(history::now_utc_ms() - last) / 1000.0)
                                    : nlohmann::json(nullptr)}};
}

// The configuration file's text now (it was just parsed from it), for backups; nullopt if unreadable.
std::optional<std::string> read_config_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  return s;
}

// `backup`'s archive: the history database (the store adds it), state.json, the connection cache and
// the running configuration, built on the history writer's thread.
control::BackupHook backup_hook(const std::shared_ptr<history::HistoryStore>& store, const config::Config& cfg,
                                const std::optional<std::string>& config_text) {
  history::BackupJob job;
  job.files.push_back({"state.json", cfg.state_dir + "/state.json", std::nullopt});
  job.files.push_back(
      {"controllers-cache.json", cfg.state_dir + "/" + std::string(discovery::kCacheFileName), std::nullopt});
  if (config_text) job.files.push_back({"eqd.yaml", cfg.source_path, *config_text});
  job.meta.eqd_version = EQD_VERSION;
  job.meta.config_path = cfg.source_path;
  job.temp_dir = cfg.state_dir;
  return [store, job](std::function<void(history::BackupResult)> done) { return store->backup(job, std::move(done)); };
}

}  // namespace

void App::start() {
  config_text_ = read_config_text(cfg_.source_path);
  // A database that cannot be opened never stops eqd: the store then runs without one (logged).
  history_ = std::make_shared<history::HistoryStore>(history_options(cfg_));
  history_->start();
  const control::PersistedState persisted = store_.load().state;
  daemon_ = std::make_unique<daemon::Daemon>(cfg_, control::plan_hook(persisted, cfg_));
  daemon_->start();
  if (cfg_.history.enabled) {
    energy_ = std::make_unique<history::EnergyRecorder>(*history_);
    energy_->start();  // start_services() attaches it to the daemon
  }
  start_services();
  audit_event("start", Requester{::getpid(), ::getuid(), true}, true, "eqd " EQD_VERSION " started", nullptr,
              rig_summary());
}

nlohmann::json App::rig_summary() const {
  nlohmann::json j{{"config", cfg_.source_path}};
  if (daemon_) {
    j["controllers"] = daemon_->directory().controllers.size();
    j["channels"] = daemon_->directory().channels.size();
  }
  return j;
}

void App::audit_event(const char* command, const Requester& from, bool ok, const std::string& message,
                      nlohmann::json before, nlohmann::json after) {
  if (!history_) return;
  history::AuditRecord r;
  r.time_ms = history::now_utc_ms();
  r.command = command;
  if (from.known) {
    r.uid = static_cast<std::int64_t>(from.uid);
    r.pid = static_cast<std::int64_t>(from.pid);
  }
  r.request = nlohmann::json{{"cmd", command}};
  r.ok = ok;
  if (!ok) r.error_code = "failed";
  r.message = message;
  r.before = std::move(before);
  r.after = std::move(after);
  (void)history_->record(std::move(r));
}

void App::start_services() {
  // The energy recorder reads the daemon of the moment: after a reload's handover the new one, whose
  // bus counters carry on from the old one's, so that no minute loses energy.
  if (energy_) energy_->attach(*daemon_, daemon_->directory());
  // Metrics first, for the API's status; a metrics address in use does not stop control (the
  // service retries by itself), so this does not throw for it.
  metrics_ = std::make_unique<metrics::ExporterService>(*daemon_, cfg_.metrics, metrics::kBindRetry, api_stats_,
                                                        history_ ? history_->stats() : nullptr);
  if (metrics_->state().listening) spdlog::info("metrics on http://{}/metrics", cfg_.metrics.listen);
  // The API reads the persisted state as it is on disk now: it is rewritten after every change.
  control::ApiServerOptions opts = control::api_server_options(cfg_.api);
  opts.adopt = adopt_hook_;
  opts.forget = forget_hook_;
  opts.request_stats = api_stats_;
  opts.audit = history_;
  opts.history_state = [store = history_] { return history_state(*store); };
  opts.backup = backup_hook(history_, cfg_, config_text_);
  opts.metrics_state = [read = metrics_->state_reader()] {
    const metrics::EndpointState m = read();
    return control::MetricsEndpointState{m.enabled, m.listening, m.listen, m.error, m.retry};
  };
  api_ = std::make_unique<control::ApiServer>(*daemon_, *daemon_, store_, store_.load().state, std::move(opts));
  api_->start();
}

void App::set_controller_hooks(control::ControllerHook adopt, control::ControllerHook forget) {
  adopt_hook_ = std::move(adopt);
  forget_hook_ = std::move(forget);
}

void App::stop_services() {
  if (energy_) energy_->detach();  // before a reload replaces the daemon it reads
  metrics_.reset();
  if (api_) api_->stop();
  api_.reset();
}

namespace {
// The names of the daemon's channels that are equalization channels now (or pending). Main thread.
std::set<std::string> assigned_buffers(const daemon::Daemon& d) {
  std::set<std::string> out;
  const daemon::Directory& dir = d.directory();
  for (std::size_t i = 0; i < dir.channels.size(); ++i) {
    const core::Role r = d.core().channel(static_cast<core::ChannelIndex>(i)).role;
    if (r == core::Role::equalization || r == core::Role::pending) out.insert(dir.channels[i].name);
  }
  return out;
}
}  // namespace

bool App::reload(const config::Config& next) {
  if (next.state_dir != cfg_.state_dir) {
    spdlog::error("reload refused: state_dir changed ({} -> {}); restart eqd to move the state", cfg_.state_dir,
                  next.state_dir);
    return false;
  }
  // Build the successor before touching anything: a configuration that cannot be planned (or a link
  // that cannot be constructed) leaves the running one alone.
  std::unique_ptr<daemon::Daemon> successor;
  try {
    const control::PersistedState persisted = store_.load().state;
    successor = std::make_unique<daemon::Daemon>(next, control::plan_hook(persisted, next), daemon_->energy_by_bus(),
                                                 daemon_->demand_by_bus());
  } catch (const std::exception& e) {
    spdlog::error("reload refused: {}; keeping the running configuration", e.what());
    return false;
  }
  // Buffers of the old configuration that the new one does not assign must be released explicitly:
  // they would otherwise keep following their last setpoint until their lease expires.
  const std::set<std::string> old_buffers = assigned_buffers(*daemon_);

  stop_services();
  daemon_->detach();
  successor->start();
  daemon_ = std::move(successor);
  cfg_ = next;
  config_text_ = read_config_text(cfg_.source_path);

  // Who leaves equalization through this reload, for one summary line: an operator must see at once
  // that a reload took buffers away (a broken file that silently dropped them once did).
  std::vector<std::string> released, orphaned, unsent;
  std::uint64_t id = 1;
  for (const std::string& name : old_buffers) {
    const auto idx = daemon_->directory().find_channel(name);
    if (!idx) {  // its controller is gone: its heartbeat watchdog releases it
      orphaned.push_back(name);
      continue;
    }
    const core::Role r = daemon_->core().channel(*idx).role;
    if (r == core::Role::equalization || r == core::Role::pending) continue;
    core::Request req;
    req.id = id++;
    req.kind = core::RequestKind::release;
    req.channel = *idx;
    if (daemon_->core().submit(req)) {
      spdlog::info("reload: {} is no longer an equalization channel: releasing it", name);
      released.push_back(name);
    } else {
      unsent.push_back(name);  // request queue full: only its lease ends its last setpoint
    }
  }
  try {
    start_services();
  } catch (const std::exception& e) {
    // Control goes on; only the services are missing. Say so loudly rather than stop the buffers.
    spdlog::critical("reload: services could not start: {} (control continues; restart eqd to restore them)", e.what());
  }
  auto names = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& n : v) s += (s.empty() ? "" : ", ") + n;
    return s;
  };
  std::string gone;
  if (!released.empty())
    gone += "; released " + std::to_string(released.size()) + " equalization channel(s): " + names(released);
  if (!orphaned.empty())
    gone += "; " + std::to_string(orphaned.size()) + " equalization channel(s) left with their controller (its " +
            "watchdog releases them): " + names(orphaned);
  if (!unsent.empty())
    gone += "; could not send the release of " + names(unsent) + " (request queue full: their lease ends them)";
  if (gone.empty()) gone = "; no equalization channel released";
  const auto level = released.empty() && orphaned.empty() && unsent.empty() ? spdlog::level::info : spdlog::level::warn;
  spdlog::log(level, "reload: new configuration active ({} controller(s), {} channel(s)){}",
              daemon_->directory().controllers.size(), daemon_->directory().channels.size(), gone);
  return true;
}

daemon::ShutdownReport App::stop() {
  if (stopped_ || !daemon_) return {};
  stopped_ = true;
  stop_services();
  if (energy_) energy_->stop();  // the minute in progress is written (a restart adds to it)
  daemon::ShutdownReport report = daemon_->shutdown(std::chrono::milliseconds(cfg_.loop.shutdown_timeout_ms));
  if (history_) history_->stop();  // last: it writes what is queued (the stop record included)
  return report;
}

}  // namespace eqd::app
