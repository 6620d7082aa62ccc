// eqd's discovery manager (see manager.hpp).
#include "eqd/discovery/manager.hpp"

#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "eqd/io/modbus/transport.hpp"

#include "eqd/discovery/txt.hpp"

namespace eqd::discovery {

namespace {

// last_seen of connected controllers changes every tick; writing the file for that alone would
// wear flash storage for nothing, so such refreshes are saved at most this often.
constexpr std::int64_t kRefreshSave_s = 60;
// A burst that never goes quiet (a flapping announcement) still gets applied after this many
// debounce periods.
constexpr int kMaxDebouncePeriods = 5;

std::int64_t system_unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::uint16_t port_of(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return 0;
  try {
    return static_cast<std::uint16_t>(std::stoi(listen.substr(colon + 1)));
  } catch (const std::exception&) {
    return 0;
  }
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace

DiscoveryManager::DiscoveryManager(const config::Config& base, Wake wake, UnixNow unix_now)
    : base_(base),
      wake_(std::move(wake)),
      unix_now_(unix_now ? std::move(unix_now) : UnixNow(&system_unix_now)),
      cache_path_((std::filesystem::path(base.state_dir) / kCacheFileName).string()) {
  CacheLoad loaded = load_cache(cache_path_);
  if (!loaded.warning.empty()) spdlog::error("discovery: {}", loaded.warning);
  const std::int64_t now_s = unix_now_();
  for (const std::string& gone : expire(loaded.records, now_s, base_.discovery.cache_expiry_s)) {
    spdlog::info("discovery: cached controller {} not seen for more than {} s: dropped from the cache", gone,
                 base_.discovery.cache_expiry_s);
    dirty_ = true;
  }
  for (ControllerRecord& r : loaded.records) {
    Known k;
    k.record = std::move(r);
    k.saved = true;
    known_.emplace(k.record.name, std::move(k));
  }
  if (!loaded.moved_to.empty() || dirty_) save(now_s);
  publish_names();
}

DiscoveryManager::~DiscoveryManager() { stop(); }

std::vector<KnownController> DiscoveryManager::known_list() const {
  std::vector<KnownController> out;
  for (const auto& [name, k] : known_) out.push_back(KnownController{k.record, k.origin});
  return out;
}

config::Config DiscoveryManager::desired() const {
  MergeResult m = merge_controllers(base_, known_list());
  return std::move(m.config);
}

std::string DiscoveryManager::signature(const config::Config& cfg) {
  // What a handover would change: the non-configured controllers' endpoints, shapes and adoption.
  // Not their source: a cached controller that discovery confirms is not worth a handover.
  std::string s;
  for (const config::ControllerConfig& c : cfg.controllers) {
    if (c.origin == config::ControllerOrigin::config) continue;
    const auto* tcp = c.settings_as<io::modbus::TcpSettings>();
    s += c.name + "|" + c.transport + "|" +
         (tcp != nullptr
              ? tcp->host + "|" + std::to_string(tcp->port) + "|" + std::to_string(tcp->unit_id) + "|" + tcp->profile
              : std::string("|||")) +
         "|" + std::to_string(c.channels) + "|" + (c.read_only ? "ro" : "rw") + "|" + (c.bus_unknown ? "?" : c.bus) +
         "\n";
  }
  return s;
}

void DiscoveryManager::warn_merge(const MergeResult& m, const std::string& prefix) {
  for (const std::string& s : m.skipped) warn_once(prefix + s);
  for (const std::string& s : m.notes) warn_once(s);
}

config::Config DiscoveryManager::initial_config() {
  MergeResult m = merge_controllers(base_, known_list());
  warn_merge(m, "cached controller ");
  std::size_t added = 0;
  for (const auto& c : m.config.controllers) added += c.origin != config::ControllerOrigin::config ? 1 : 0;
  if (added > 0)
    spdlog::info("discovery: {} controller(s) from the connection cache {} are connected at once", added, cache_path_);
  return std::move(m.config);
}

bool DiscoveryManager::start_mdns() {
  auto session = std::make_unique<MdnsSession>();
  const std::string err = session->start([this](const MdnsEvent& ev) { post(ev); },
                                         [this](const MdnsStatus& st) {
                                           {
                                             std::lock_guard<std::mutex> lock(mutex_);
                                             if (stopped_) return;
                                             statuses_.push_back(st);
                                           }
                                           if (wake_) wake_();
                                         });
  if (!err.empty()) {
    // Said once, at start: eqd keeps running from the configuration file and the cache.
    spdlog::warn(
        "discovery is off: cannot run Avahi's client ({}); running from the configuration file and the "
        "connection cache ({} cached controller(s)); restart eqd to try again",
        err, known_.size());
    return false;
  }
  if (base_.discovery.publish) {
    std::vector<std::string> buses;
    for (const auto& b : base_.buses) buses.push_back(b.name);
    const std::uint16_t metrics_port = base_.metrics.enabled ? port_of(base_.metrics.listen) : 0;
    PublishedService self{"eqd on " + host_name(), kEqdServiceType, metrics_port,
                          eqd_txt(EQD_DISCOVERY_VERSION, buses, metrics_port, base_.api.socket_path)};
    if (const std::string e = session->publish({self}); !e.empty())
      spdlog::warn("discovery: cannot publish eqd: {}", e);
  }
  for (const std::string& type : base_.discovery.service_types) {
    if (const std::string e = session->browse(type); !e.empty()) spdlog::warn("discovery: {}", e);
  }
  const bool up = session->connected();
  if (up) {
    spdlog::info("discovery is on: browsing {} controller service type(s){}", base_.discovery.service_types.size(),
                 base_.discovery.publish ? ", publishing eqd as _eqd._tcp" : "");
  } else {
    // Said once: the session connects by itself when avahi-daemon appears (and says so then).
    spdlog::warn(
        "discovery is off: cannot reach avahi-daemon over the system D-Bus ({}); running from the "
        "configuration file and the connection cache ({} cached controller(s)); discovery starts by itself "
        "once avahi-daemon runs",
        session->not_connected_reason(), known_.size());
  }
  mdns_ = std::move(session);
  return up;
}

void DiscoveryManager::post(const MdnsEvent& ev) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return;
    events_.push_back(ev);
  }
  if (wake_) wake_();
}

void DiscoveryManager::warn_once(const std::string& text) {
  if (warned_.insert(text).second) spdlog::warn("discovery: {}", text);
}

void DiscoveryManager::handle(const MdnsEvent& ev, std::int64_t now_s) {
  if (ev.kind == MdnsEvent::Kind::resolve_failed) {
    spdlog::debug("discovery: cannot resolve {} ({}): {}", ev.service.instance, ev.service.type, ev.error);
    return;
  }
  if (ev.kind == MdnsEvent::Kind::removed) {
    // Withdrawn: keep polling it (a controller rebooting withdraws, then comes back); expiry drops it.
    for (auto& [name, k] : known_)
      if (k.record.identity == ev.service.instance || sanitize_name(ev.service.instance) == name) k.announced = false;
    return;
  }
  const ParsedAnnouncement p = parse_controller(ev.service);
  if (!p.announcement) {
    warn_once("ignored: " + p.error);
    return;
  }
  const ControllerAnnouncement& a = *p.announcement;
  for (const auto& c : base_.controllers) {
    if (c.name != a.name) continue;
    const auto* tcp = c.settings_as<io::modbus::TcpSettings>();
    if (tcp == nullptr || tcp->host != a.host || tcp->port != a.port)
      warn_once("controller " + a.name + " is configured at a different endpoint than it announces (" + a.host + ":" +
                std::to_string(a.port) + "); the configuration wins");
    return;
  }
  // The same controller is recognised by its identity (serial), whatever address it has now.
  auto it = std::find_if(known_.begin(), known_.end(),
                         [&](const auto& kv) { return kv.second.record.identity == a.identity; });
  if (it == known_.end()) {
    if (known_.count(a.name) != 0) {
      warn_once("controller name " + a.name + " is announced by two controllers (identities " +
                known_.at(a.name).record.identity + " and " + a.identity + "); the second is ignored");
      return;
    }
    Known k;
    k.record.name = a.name;
    k.record.identity = a.identity;
    k.record.first_seen_s = now_s;
    it = known_.emplace(a.name, std::move(k)).first;
    spdlog::info("discovery: found controller {} at {}:{} unit {} ({} channel(s), profile {}); read-only until adopted",
                 a.name, a.host, a.port, a.unit_id, a.channels, a.profile);
  }
  Known& k = it->second;
  ControllerRecord& r = k.record;
  if (!r.host.empty() && (r.host != a.host || r.port != a.port || r.unit_id != a.unit_id))
    spdlog::info("discovery: controller {} moved from {}:{} unit {} to {}:{} unit {}", r.name, r.host, r.port,
                 r.unit_id, a.host, a.port, a.unit_id);
  if (!r.host.empty() && r.bus != a.bus)
    spdlog::info("discovery: controller {} now announces {} (was {})", r.name,
                 a.bus.empty() ? "no bus" : "bus " + a.bus, r.bus.empty() ? "none" : r.bus);
  const bool changed = r.host != a.host || r.port != a.port || r.unit_id != a.unit_id || r.profile != a.profile ||
                       r.channels != a.channels || r.service_type != a.service_type || r.bus != a.bus;
  r.host = a.host;
  r.port = a.port;
  r.unit_id = a.unit_id;
  r.profile = a.profile;
  r.channels = a.channels;
  r.service_type = a.service_type;
  r.bus = a.bus;
  r.last_seen_s = now_s;
  k.announced = true;
  k.origin = config::ControllerOrigin::discovery;
  if (changed && k.saved) dirty_ = true;
}

std::optional<config::Config> DiscoveryManager::tick(const std::vector<LinkState>& links, Clock::time_point now) {
  const std::int64_t now_s = unix_now_();
  std::deque<MdnsEvent> events;
  std::deque<Request> requests;
  std::deque<MdnsStatus> statuses;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    events.swap(events_);
    requests.swap(requests_);
    statuses.swap(statuses_);
  }
  for (const MdnsStatus& st : statuses) report_status(st);
  for (const MdnsEvent& ev : events) handle(ev, now_s);
  for (const Request& rq : requests) apply_request(rq);
  note_connections(links, now_s);
  for (auto& [name, k] : known_)
    if (k.announced) k.record.last_seen_s = now_s;
  expire_known(now_s);
  if (dirty_ || (now_s - last_save_s_ >= kRefreshSave_s && !known_.empty())) save(now_s);
  publish_names();
  return handover_due(now);
}

// Each change of the link to avahi-daemon is said once; the session reconnects by itself.
void DiscoveryManager::report_status(const MdnsStatus& st) {
  switch (st.kind) {
    case MdnsStatus::Kind::lost:
      spdlog::warn(
          "discovery is off: {}; running from the configuration file and the connection cache; "
          "reconnecting by itself",
          st.text);
      // What was announced is unknown until the new browsers report it again (a controller that left
      // meanwhile sends no removal): nothing counts as announced, so that expiry works.
      for (auto& [name, k] : known_) k.announced = false;
      break;
    case MdnsStatus::Kind::connected:
      spdlog::info("discovery is on again: connected to avahi-daemon; browsing {} controller service type(s){}",
                   base_.discovery.service_types.size(), base_.discovery.publish ? " and publishing eqd again" : "");
      break;
    case MdnsStatus::Kind::problem:
      warn_once("avahi: " + st.text);
      break;
  }
}

// An adopt or forget from the control API (queued by adopt()/forget()).
void DiscoveryManager::apply_request(const Request& rq) {
  auto it = known_.find(rq.name);
  if (it == known_.end()) return;  // forgotten in the meantime
  if (rq.adopt) {
    ControllerRecord& r = it->second.record;
    r.adopted = true;
    if (!rq.bus.empty()) r.adopted_bus = rq.bus;
    const BusChoice bus = choose_bus(base_, r);
    if (bus.bus.empty())
      spdlog::warn(
          "discovery: controller {} adopted, but its bus is not known: it stays read-only and in no bus's "
          "balance until it is (`eqctl controllers adopt {} --bus BUS`)",
          rq.name, rq.name);
    else
      spdlog::info("discovery: controller {} adopted on bus {}: eqd may command it from the next handover", rq.name,
                   bus.bus);
  } else {
    spdlog::info("discovery: controller {} forgotten: removed from the connection cache", rq.name);
    known_.erase(it);
  }
  dirty_ = true;
}

// Record successful connections: that is what makes a controller worth a cache entry.
void DiscoveryManager::note_connections(const std::vector<LinkState>& links, std::int64_t now_s) {
  for (const LinkState& l : links) {
    auto it = known_.find(l.name);
    if (it == known_.end() || !l.connected) continue;
    Known& k = it->second;
    k.record.last_connected_s = now_s;
    k.record.last_seen_s = now_s;
    if (!k.saved) {
      k.saved = true;
      dirty_ = true;
      spdlog::info("discovery: controller {} connected; cached in {}", l.name, cache_path_);
    }
  }
}

void DiscoveryManager::expire_known(std::int64_t now_s) {
  std::vector<ControllerRecord> records;
  records.reserve(known_.size());
  for (const auto& [name, k] : known_) records.push_back(k.record);
  for (const std::string& gone : expire(records, now_s, base_.discovery.cache_expiry_s)) {
    spdlog::info("discovery: controller {} not seen for more than {} s: dropped", gone, base_.discovery.cache_expiry_s);
    known_.erase(gone);
    dirty_ = true;
  }
}

// The configuration to hand over to, once what discovery wants has been quiet for the debounce time
// (or has kept changing for too long); nothing while it equals what runs.
std::optional<config::Config> DiscoveryManager::handover_due(Clock::time_point now) {
  const config::Config want = desired();
  const std::string sig = signature(want);
  if (sig != desired_signature_) {
    desired_signature_ = sig;
    last_change_at_ = now;
  }
  if (sig == applied_signature_) {
    changed_at_.reset();
    return std::nullopt;
  }
  if (!changed_at_) changed_at_ = now;
  const auto debounce = std::chrono::milliseconds(base_.discovery.debounce_ms);
  const bool quiet = !last_change_at_ || now - *last_change_at_ >= debounce;
  const bool overdue = now - *changed_at_ >= kMaxDebouncePeriods * debounce;
  if (!quiet && !overdue) return std::nullopt;
  MergeResult m = merge_controllers(base_, known_list());
  warn_merge(m, "controller ");
  return std::move(m.config);
}

std::optional<DiscoveryManager::Clock::time_point> DiscoveryManager::due() const {
  if (!changed_at_) return std::nullopt;
  const auto debounce = std::chrono::milliseconds(base_.discovery.debounce_ms);
  const Clock::time_point quiet = last_change_at_ ? *last_change_at_ + debounce : *changed_at_;
  return std::min(quiet, *changed_at_ + kMaxDebouncePeriods * debounce);
}

config::Config DiscoveryManager::set_base(const config::Config& base) {
  base_ = base;
  MergeResult m = merge_controllers(base_, known_list());
  warn_merge(m, "controller ");
  publish_names();
  return std::move(m.config);
}

void DiscoveryManager::applied(const config::Config& running) {
  applied_signature_ = signature(running);
  changed_at_.reset();
}

void DiscoveryManager::publish_names() {
  std::map<std::string, NameInfo> names;
  for (const auto& c : base_.controllers) names[c.name].configured = true;
  for (const auto& [name, k] : known_) {
    if (names.count(name) != 0) continue;
    NameInfo& n = names[name];
    n.adopted = k.record.adopted || matches_adopt_rule(name, base_.discovery.adopt);
    n.adopted_bus = k.record.adopted ? k.record.adopted_bus : std::string();
    n.bus = choose_bus(base_, k.record).bus;
  }
  std::vector<std::string> buses;
  for (const auto& b : base_.buses) buses.push_back(b.name);
  std::lock_guard<std::mutex> lock(mutex_);
  names_ = std::move(names);
  bus_names_ = std::move(buses);
  debounce_ms_ = base_.discovery.debounce_ms;
}

ChangeResult DiscoveryManager::adopt(const std::string& name, const std::string& bus) {
  const std::string unknown_bus_hint =
      "; it stays read-only and in no bus's balance until its bus is known: give it "
      "one with `eqctl controllers adopt " +
      name + " --bus BUS`";
  std::string on_bus;
  int debounce_ms = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = names_.find(name);
    if (it == names_.end()) {
      std::string known;
      for (const auto& [n, info] : names_)
        if (!info.configured) known += (known.empty() ? "" : ", ") + n;
      return {false, "unknown_controller",
              "no discovered or cached controller " + name + " (known: " + (known.empty() ? "none" : known) + ")"};
    }
    if (it->second.configured)
      return {false, "invalid", "controller " + name + " is in the configuration file: eqd already commands it"};
    if (!bus.empty() && std::find(bus_names_.begin(), bus_names_.end(), bus) == bus_names_.end()) {
      std::string list;
      for (const auto& b : bus_names_) list += (list.empty() ? "" : ", ") + b;
      return {false, "unknown_bus", "unknown bus \"" + bus + "\" (buses: " + list + ")"};
    }
    NameInfo& n = it->second;
    if (n.adopted && (bus.empty() || bus == n.bus)) {
      if (n.bus.empty())
        return {true, "", "controller " + name + " is already adopted, but its bus is not known" + unknown_bus_hint};
      return {true, "", "controller " + name + " is already adopted, on bus " + n.bus};
    }
    n.adopted = true;
    if (!bus.empty()) n.adopted_bus = n.bus = bus;
    on_bus = n.bus;
    requests_.push_back(Request{true, name, bus});
    debounce_ms = debounce_ms_;
  }
  if (wake_) wake_();
  if (on_bus.empty()) return {true, "", "controller " + name + " adopted, but its bus is not known" + unknown_bus_hint};
  return {true, "",
          "controller " + name + " adopted on bus " + on_bus +
              ": eqd may command it after the handover (within about " +
              std::to_string(debounce_ms / 1000.0).substr(0, 3) + " s); its channels can then be assigned"};
}

ChangeResult DiscoveryManager::forget(const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = names_.find(name);
    if (it == names_.end()) return {false, "unknown_controller", "no discovered or cached controller " + name};
    if (it->second.configured)
      return {false, "invalid",
              "controller " + name + " is in the configuration file (" + base_.source_path + "): remove it there"};
    names_.erase(it);
    requests_.push_back(Request{false, name, {}});
  }
  if (wake_) wake_();
  return {
      true, "",
      "controller " + name +
          " forgotten: removed from the connection cache and no longer polled (it comes back if it announces itself "
          "again)"};
}

void DiscoveryManager::save(std::int64_t now_s) {
  std::vector<ControllerRecord> records;
  for (const auto& [name, k] : known_)
    if (k.saved) records.push_back(k.record);
  const std::string err = save_cache(cache_path_, records);
  if (!err.empty()) {
    warn_once("cannot save the connection cache: " + err);
    return;
  }
  dirty_ = false;
  last_save_s_ = now_s;
}

void DiscoveryManager::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (mdns_) mdns_->stop();
  mdns_.reset();
  if (!known_.empty() || dirty_) save(unix_now_());
}

}  // namespace eqd::discovery
