#include "eqd/daemon/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <cstdio>
#include <cstdlib>

namespace eqd::daemon::logging {

namespace {

thread_local std::vector<Field> t_fields;

bool valid_field_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64 || name.front() == '_') return false;
  for (char c : name)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  // These the sink sets itself; a caller's copy would make the record ambiguous.
  return name != "MESSAGE" && name != "PRIORITY" && name != "SYSLOG_IDENTIFIER";
}

}  // namespace

bool stderr_is_journal() noexcept {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(2, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

void init(const std::string& level, Target target) {
  const bool journal = target == Target::journal || (target == Target::automatic && stderr_is_journal());
  std::shared_ptr<spdlog::logger> logger;
  if (journal) {
    logger = std::make_shared<spdlog::logger>("eqd", std::make_shared<JournalSink>());
  } else {
    logger = std::make_shared<spdlog::logger>("eqd", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  }
  spdlog::drop("eqd");
  spdlog::set_default_logger(logger);
  set_level(level);
}

void set_level(const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }

ScopedFields::ScopedFields(std::initializer_list<Field> fields) : previous_size_(t_fields.size()) {
  t_fields.insert(t_fields.end(), fields.begin(), fields.end());
}

ScopedFields::~ScopedFields() { t_fields.resize(previous_size_); }

const std::vector<Field>& current_fields() noexcept { return t_fields; }

int journal_priority(spdlog::level::level_enum level) noexcept {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;
    case spdlog::level::info:
      return 6;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::err:
      return 3;
    case spdlog::level::critical:
      return 2;
    default:
      return 6;
  }
}

JournalSink::JournalSink(std::string identifier, Writer writer)
    : identifier_(std::move(identifier)), writer_(std::move(writer)) {
  if (!writer_) writer_ = [](const struct iovec* iov, int n) { return sd_journal_sendv(iov, n); };
}

void JournalSink::sink_it_(const spdlog::details::log_msg& msg) {
  scratch_.clear();
  scratch_.push_back("MESSAGE=" + std::string(msg.payload.data(), msg.payload.size()));
  scratch_.push_back("PRIORITY=" + std::to_string(journal_priority(msg.level)));
  scratch_.push_back("SYSLOG_IDENTIFIER=" + identifier_);
  for (const Field& f : current_fields()) {
    if (!valid_field_name(f.name) || f.value.empty()) continue;
    std::string s;
    s.reserve(f.name.size() + 1 + f.value.size());
    s.append(f.name).append("=").append(f.value);
    scratch_.push_back(std::move(s));
  }
  std::vector<struct iovec> iov(scratch_.size());
  for (std::size_t i = 0; i < scratch_.size(); ++i) {
    iov[i].iov_base = scratch_[i].data();
    iov[i].iov_len = scratch_[i].size();
  }
  // A journal that cannot take the record has nowhere better to report it: drop it silently rather
  // than block or throw on a logging path.
  (void)writer_(iov.data(), static_cast<int>(iov.size()));
}

RateLimiter::Decision RateLimiter::admit(const std::string& key, std::string_view message, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  Decision d;
  auto it = entries_.find(key);
  if (it != entries_.end() && now - it->second.window_start < window_) {
    ++it->second.suppressed;
    it->second.last = now;
    it->second.last_message.assign(message);
    return d;
  }
  if (it != entries_.end() && it->second.suppressed > 0) {
    const Entry& e = it->second;
    d.summary =
        Summary{key, e.suppressed, std::chrono::duration<double>(e.last - e.window_start).count(), e.last_message};
  }
  entries_[key] = Entry{now, now, 0, std::string(message)};
  d.log = true;
  return d;
}

std::vector<RateLimiter::Summary> RateLimiter::flush(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  std::vector<Summary> out;
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    if (now - e.window_start < window_) {
      ++it;
      continue;
    }
    if (e.suppressed > 0)
      out.push_back(Summary{it->first, e.suppressed, std::chrono::duration<double>(e.last - e.window_start).count(),
                            e.last_message});
    // Forget the key: its next occurrence is news again and is logged in full.
    it = entries_.erase(it);
  }
  return out;
}

void ControllerErrorLog::report(const std::string& controller, std::uint16_t channel, const std::string& bus,
                                std::error_code code, std::string_view message, RateLimiter::Clock::time_point now) {
  const RateLimiter::Decision d = limiter_.admit(controller, message, now);
  if (d.summary) log_summary(*d.summary);
  if (!d.log) return;
  // The poller's text already names the controller (and channel); the fields make it searchable:
  // journalctl CONTROLLER=cab1, journalctl LINK_ERROR=timeout.
  const spdlog::level::level_enum level = code ? spdlog::level::warn : spdlog::level::info;
  const std::string code_name(code.category() == io::link_category() ? io::link_errc_name(code.value())
                                                                     : std::string_view{});
  if (channel == 0) {
    log_with(level, {{"CONTROLLER", controller}, {"BUS", bus}, {"LINK_ERROR", code_name}}, "{}", message);
  } else {
    const std::string channel_name = controller + "/" + std::to_string(channel);
    log_with(level, {{"CONTROLLER", controller}, {"CHANNEL", channel_name}, {"BUS", bus}, {"LINK_ERROR", code_name}},
             "{}", message);
  }
}

void ControllerErrorLog::flush(RateLimiter::Clock::time_point now) {
  for (const RateLimiter::Summary& s : limiter_.flush(now)) log_summary(s);
}

void ControllerErrorLog::log_summary(const RateLimiter::Summary& s) {
  log_with(spdlog::level::warn, {{"CONTROLLER", s.key}}, "{}: {} more error(s) in the last {:.0f} s (last: {})", s.key,
           s.suppressed, s.span_s, s.last_message);
}

ControllerErrorLog& controller_errors() {
  // One per process, like the default logger it writes to: pollers of successive configurations
  // (reload handover) report into the same window, so a reload does not reset the flood guard.
  static ControllerErrorLog log;
  return log;
}

io::LinkErrorHook controller_error_reporter(const config::Config& cfg, const std::string& controller) {
  config::ControllerConfig found;
  for (const auto& c : cfg.controllers)
    if (c.name == controller) found = c;
  // A discovered controller whose bus is not known has none (BUS= empty), not the first bus.
  if (found.bus.empty() && !found.bus_unknown && !cfg.buses.empty()) found.bus = cfg.buses.front().name;
  return [controller, default_bus = found.bus, channel_bus = found.channel_bus](
             std::uint16_t channel, std::error_code code, const char* message) {
    const auto it = channel == 0 ? channel_bus.end() : channel_bus.find(channel);
    controller_errors().report(controller, channel, it == channel_bus.end() ? default_bus : it->second, code, message);
  };
}

}  // namespace eqd::daemon::logging
