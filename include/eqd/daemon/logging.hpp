#pragma once
/// @file logging.hpp
/// eqd's logging: the journal (with structured fields such as CONTROLLER=, CHANNEL=, BUS=) when
/// systemd connected stderr to it, stderr otherwise; and a rate limiter so that a controller that
/// fails every poll cannot flood the log.
///
/// Structured fields travel next to spdlog, not through it: log_with() puts them in a thread-local
/// list for the duration of one spdlog call, and the JournalSink reads that list. This works because
/// the "eqd" logger is synchronous (sinks run on the calling thread). Never log from the control
/// thread's cycle (house rule); the start of that thread is fine.

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eqd/config/config.hpp"
#include "eqd/io/error.hpp"

struct iovec;

namespace eqd::daemon::logging {

/// One journal field. `name`: upper-case letters, digits and '_', not starting with '_' (journal
/// rule); others are dropped by the sink. Plain data; views must outlive the log call.
struct Field {
  std::string_view name;
  std::string_view value;
};

/// True when stderr is the journal: $JOURNAL_STREAM ("DEVICE:INODE", set by systemd) names the
/// same file as fd 2. A child whose stderr was redirected keeps the variable but fails this test,
/// which is why the variable alone is not enough. Any thread.
[[nodiscard]] bool stderr_is_journal() noexcept;

/// Where init() sends log records.
enum class Target { automatic, journal, stderr_only };

/// Installs the default logger "eqd" (synchronous) with the journal sink or a stderr sink and sets
/// its level from `level` (trace|debug|info|warn|error|critical|off). Main thread, at start-up.
void init(const std::string& level, Target target = Target::automatic);

/// Sets the level of the default logger. Main thread (e.g. after a reload).
void set_level(const std::string& level);

/// RAII: the fields attached to every record logged on this thread while it lives (nesting adds).
class ScopedFields {
 public:
  explicit ScopedFields(std::initializer_list<Field> fields);
  ~ScopedFields();
  ScopedFields(const ScopedFields&) = delete;
  ScopedFields& operator=(const ScopedFields&) = delete;

 private:
  std::size_t previous_size_;
};

/// The fields currently attached on this thread (see ScopedFields). This thread only.
[[nodiscard]] const std::vector<Field>& current_fields() noexcept;

/// Logs through the default logger with journal fields. Any thread.
template <class... Args>
void log_with(spdlog::level::level_enum level, std::initializer_list<Field> fields,
              spdlog::format_string_t<Args...> fmt, Args&&... args) {
  ScopedFields scope(fields);
  spdlog::log(level, fmt, std::forward<Args>(args)...);
}

/// syslog priority of an spdlog level (journal PRIORITY=). Pure.
[[nodiscard]] int journal_priority(spdlog::level::level_enum level) noexcept;

/// spdlog sink writing each record to the journal as MESSAGE=, PRIORITY=, SYSLOG_IDENTIFIER= plus
/// the thread's fields. Thread-safe (spdlog's base_sink serialises on its mutex).
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  /// Receives the assembled fields; default sd_journal_sendv. Tests pass a capturing writer.
  using Writer = std::function<int(const struct iovec* iov, int n)>;

  explicit JournalSink(std::string identifier = "eqd", Writer writer = {});

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  std::string identifier_;
  Writer writer_;
  std::vector<std::string> scratch_;  ///< reused per record (under the sink's mutex)
};

/// Lets the first occurrence of a key through and counts the repeats for `window`; the next
/// occurrence after the window (or flush()) yields one summary "N more in the last M s".
/// Thread-safe (one mutex; never used on the control thread).
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  /// A summary of suppressed repeats. Plain data.
  struct Summary {
    std::string key;
    std::uint64_t suppressed = 0;  ///< repeats not logged
    double span_s = 0.0;           ///< from the logged occurrence to the last repeat
    std::string last_message;      ///< text of the last suppressed repeat
  };

  /// Outcome of admit(). Plain data.
  struct Decision {
    bool log = false;                ///< log this occurrence
    std::optional<Summary> summary;  ///< repeats of the previous window, to log first
  };

  explicit RateLimiter(std::chrono::milliseconds window) : window_(window) {}

  /// Registers one occurrence of `key` at `now` with its message text.
  Decision admit(const std::string& key, std::string_view message, Clock::time_point now);
  /// Summaries of windows that ended before `now` and had repeats; those keys start afresh.
  std::vector<Summary> flush(Clock::time_point now);

 private:
  struct Entry {
    Clock::time_point window_start;
    Clock::time_point last;
    std::uint64_t suppressed = 0;
    std::string last_message;
  };
  std::chrono::milliseconds window_;
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

/// Controller error log: rate-limited per controller, with CONTROLLER=, CHANNEL= and BUS= fields.
/// Thread-safe: report() from I/O threads, flush() from the main thread.
class ControllerErrorLog {
 public:
  explicit ControllerErrorLog(std::chrono::milliseconds window = std::chrono::seconds(60)) : limiter_(window) {}

  /// One error of `controller` (channel 1-based, 0 for the controller as a whole; `bus` may be
  /// empty) with its link error code (journal field LINK_ERROR=<name>, io/error.hpp). Logs it at warn
  /// level unless a repeat within the window; an empty code is a notice, logged at info.
  void report(const std::string& controller, std::uint16_t channel, const std::string& bus, std::error_code code,
              std::string_view message, RateLimiter::Clock::time_point now = RateLimiter::Clock::now());
  /// Logs the summaries of ended windows. Call periodically (the main loop does, every second).
  void flush(RateLimiter::Clock::time_point now = RateLimiter::Clock::now());

 private:
  static void log_summary(const RateLimiter::Summary& s);
  RateLimiter limiter_;
};

/// The process-wide controller error log (pollers report into it). Any thread.
ControllerErrorLog& controller_errors();

/// A PollerConfig::on_error callback for `controller` of `cfg` that reports into controller_errors()
/// with the controller's (or the channel's) bus. The callback is thread-safe.
io::LinkErrorHook controller_error_reporter(const config::Config& cfg, const std::string& controller);

}  // namespace eqd::daemon::logging
