// Unit tests of eqd's systemd integration: journal sink fields, the log rate limiter, the watchdog
// gate and the notifier's messages (captured instead of sent).
#include <sys/uio.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "eqd/daemon/logging.hpp"
#include "realtime.hpp"
#include "systemd_notify.hpp"

namespace lg = eqd::daemon::logging;
using namespace std::chrono_literals;

namespace {

// Records every journal entry as a list of "FIELD=value" strings.
struct JournalCapture {
  std::vector<std::vector<std::string>> entries;
  lg::JournalSink::Writer writer() {
    return [this](const struct iovec* iov, int n) {
      std::vector<std::string> e;
      for (int i = 0; i < n; ++i) e.emplace_back(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      entries.push_back(std::move(e));
      return 0;
    };
  }
};

bool has(const std::vector<std::string>& entry, const std::string& field) {
  for (const auto& f : entry)
    if (f == field) return true;
  return false;
}

std::shared_ptr<spdlog::logger> capture_logger(JournalCapture& cap) {
  auto logger = std::make_shared<spdlog::logger>("eqd", std::make_shared<lg::JournalSink>("eqd-test", cap.writer()));
  logger->set_level(spdlog::level::trace);
  return logger;
}

}  // namespace

TEST_CASE("journal sink writes MESSAGE PRIORITY and the scoped fields", "[systemd][logging]") {
  JournalCapture cap;
  auto logger = capture_logger(cap);
  {
    lg::ScopedFields f{{"CONTROLLER", "cab1"}, {"CHANNEL", "cab1/3"}, {"BUS", "main"}};
    logger->warn("cab1/3: voltage out of range");
  }
  logger->info("plain");
  REQUIRE(cap.entries.size() == 2);
  CHECK(has(cap.entries[0], "MESSAGE=cab1/3: voltage out of range"));
  CHECK(has(cap.entries[0], "PRIORITY=4"));
  CHECK(has(cap.entries[0], "SYSLOG_IDENTIFIER=eqd-test"));
  CHECK(has(cap.entries[0], "CONTROLLER=cab1"));
  CHECK(has(cap.entries[0], "CHANNEL=cab1/3"));
  CHECK(has(cap.entries[0], "BUS=main"));
  // Fields end with their scope.
  CHECK(cap.entries[1].size() == 3);
  CHECK(has(cap.entries[1], "PRIORITY=6"));
}

TEST_CASE("journal sink drops invalid or empty field names and values", "[systemd][logging]") {
  JournalCapture cap;
  auto logger = capture_logger(cap);
  lg::ScopedFields f{{"lower", "x"}, {"_TRUSTED", "x"}, {"PRIORITY", "0"}, {"EMPTY", ""}, {"OK_1", "y"}};
  logger->error("e");
  REQUIRE(cap.entries.size() == 1);
  CHECK(cap.entries[0].size() == 4);
  CHECK(has(cap.entries[0], "OK_1=y"));
  CHECK(has(cap.entries[0], "PRIORITY=3"));
}

TEST_CASE("journal priorities follow syslog", "[systemd][logging]") {
  CHECK(lg::journal_priority(spdlog::level::debug) == 7);
  CHECK(lg::journal_priority(spdlog::level::info) == 6);
  CHECK(lg::journal_priority(spdlog::level::warn) == 4);
  CHECK(lg::journal_priority(spdlog::level::err) == 3);
  CHECK(lg::journal_priority(spdlog::level::critical) == 2);
}

TEST_CASE("rate limiter logs the first occurrence then one summary per window", "[systemd][logging]") {
  lg::RateLimiter rl(10s);
  const auto t0 = lg::RateLimiter::Clock::time_point{} + 1000s;
  auto d = rl.admit("cab1", "refused", t0);
  CHECK(d.log);
  CHECK_FALSE(d.summary);
  for (int i = 1; i <= 50; ++i) CHECK_FALSE(rl.admit("cab1", "refused " + std::to_string(i), t0 + i * 100ms).log);
  // Another controller is not suppressed by cab1's flood.
  CHECK(rl.admit("cab2", "timeout", t0 + 1s).log);
  CHECK(rl.flush(t0 + 9s).empty());
  d = rl.admit("cab1", "refused again", t0 + 12s);
  CHECK(d.log);
  REQUIRE(d.summary);
  CHECK(d.summary->key == "cab1");
  CHECK(d.summary->suppressed == 50);
  CHECK(d.summary->span_s == Approx(5.0));
  CHECK(d.summary->last_message == "refused 50");
}

TEST_CASE("rate limiter flush reports ended windows and forgets them", "[systemd][logging]") {
  lg::RateLimiter rl(10s);
  const auto t0 = lg::RateLimiter::Clock::time_point{} + 1000s;
  (void)rl.admit("cab1", "a", t0);
  (void)rl.admit("cab1", "b", t0 + 1s);
  (void)rl.admit("cab2", "c", t0);  // no repeats: nothing to summarise
  auto s = rl.flush(t0 + 11s);
  REQUIRE(s.size() == 1);
  CHECK(s[0].suppressed == 1);
  CHECK(rl.flush(t0 + 30s).empty());
  CHECK(rl.admit("cab1", "d", t0 + 31s).log);
}

TEST_CASE("controller error log floods are summarised with the controller field", "[systemd][logging]") {
  JournalCapture cap;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(capture_logger(cap));
  lg::ControllerErrorLog log(60s);
  const auto t0 = lg::RateLimiter::Clock::time_point{} + 1000s;
  for (int i = 0; i < 1000; ++i)
    log.report("cab1", 3, "main", eqd::io::LinkErrc::value_refused, "cab1/3: voltage nan", t0 + i * 10ms);
  log.flush(t0 + 61s);
  spdlog::set_default_logger(previous);
  REQUIRE(cap.entries.size() == 2);
  CHECK(has(cap.entries[0], "CHANNEL=cab1/3"));
  CHECK(has(cap.entries[0], "BUS=main"));
  CHECK(has(cap.entries[0], "LINK_ERROR=value_refused"));  // journalctl LINK_ERROR=value_refused
  CHECK(has(cap.entries[0], "PRIORITY=4"));                // warning
  CHECK(has(cap.entries[1], "CONTROLLER=cab1"));
  CHECK(has(cap.entries[1], "MESSAGE=cab1: 999 more error(s) in the last 10 s (last: cab1/3: voltage nan)"));
}

TEST_CASE("a link notice without an error code is logged at info, without a LINK_ERROR field", "[systemd][logging]") {
  JournalCapture cap;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(capture_logger(cap));
  lg::ControllerErrorLog log(60s);
  log.report("st1", 0, "main", std::error_code{}, "st1 SunSpec device Acme/ES-5/42");
  spdlog::set_default_logger(previous);
  REQUIRE(cap.entries.size() == 1);
  CHECK(has(cap.entries[0], "CONTROLLER=st1"));
  CHECK(has(cap.entries[0], "PRIORITY=6"));  // info
  for (const auto& field : cap.entries[0]) CHECK(field.rfind("LINK_ERROR=", 0) == std::string::npos);
}

TEST_CASE("watchdog gate feeds only when the control loop advanced", "[systemd][watchdog]") {
  eqd::app::WatchdogGate g;
  int loop_a = 0;
  int loop_b = 0;
  CHECK_FALSE(g.should_feed(&loop_a, 0));  // not cycled yet
  CHECK(g.should_feed(&loop_a, 3));
  CHECK_FALSE(g.should_feed(&loop_a, 3));  // stuck
  CHECK_FALSE(g.should_feed(&loop_a, 3));
  CHECK(g.should_feed(&loop_a, 4));
  // Reload: a new loop starts from 0 and counts once it cycled.
  CHECK_FALSE(g.should_feed(&loop_b, 0));
  CHECK(g.should_feed(&loop_b, 1));
  CHECK_FALSE(g.should_feed(&loop_b, 1));
}

TEST_CASE("main loop tick is half the watchdog interval within bounds", "[systemd][watchdog]") {
  using eqd::app::tick_interval;
  CHECK(tick_interval(0us, 1000ms) == 1000ms);
  CHECK(tick_interval(10s, 1000ms) == 1000ms);
  CHECK(tick_interval(1s, 1000ms) == 500ms);
  CHECK(tick_interval(1us, 1000ms) == 1ms);
}

TEST_CASE("notifier sends READY RELOADING STOPPING WATCHDOG and STATUS only on change", "[systemd][notify]") {
  std::vector<std::string> sent;
  eqd::app::Notifier n([&](std::string_view t) { sent.emplace_back(t); }, 10s);
  n.ready("2 bus(es)");
  n.status("2 bus(es)");
  n.status("3 bus(es)");
  n.watchdog();
  n.reloading("reloading x");
  n.stopping("stopping");
  REQUIRE(sent.size() == 5);
  CHECK(sent[0] == "READY=1\nSTATUS=2 bus(es)");
  CHECK(sent[1] == "STATUS=3 bus(es)");
  CHECK(sent[2] == "WATCHDOG=1");
  CHECK(sent[3] == "RELOADING=1\nSTATUS=reloading x");
  CHECK(sent[4] == "STOPPING=1\nSTATUS=stopping");
  eqd::app::Notifier no_watchdog([&](std::string_view t) { sent.emplace_back(t); }, 0us);
  no_watchdog.watchdog();
  CHECK(sent.size() == 5);
}

TEST_CASE("realtime off changes nothing but the thread name", "[systemd][realtime]") {
  const auto o = eqd::daemon::apply_realtime("eqd-test", 0, false);
  CHECK(o.priority_error == 0);
  CHECK(o.lock_error == 0);
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  CHECK(std::string(name) == "eqd-test");
}
