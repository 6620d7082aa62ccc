// Audit records as JSON and as one log line (see audit.hpp).
#include "eqd/history/audit.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <vector>

namespace eqd::history {

using nlohmann::json;

json to_json(const AuditRecord& r) {
  json j{{"id", r.id},           {"time_ms", r.time_ms},
         {"command", r.command}, {"uid", r.uid < 0 ? json(nullptr) : json(r.uid)},
         {"user", r.user},       {"pid", r.pid < 0 ? json(nullptr) : json(r.pid)},
         {"role", r.role},       {"request", r.request},
         {"ok", r.ok},           {"message", r.message},
         {"before", r.before},   {"after", r.after}};
  j["channel"] = r.channel.empty() ? json(nullptr) : json(r.channel);
  j["bus"] = r.bus.empty() ? json(nullptr) : json(r.bus);
  j["controller"] = r.controller.empty() ? json(nullptr) : json(r.controller);
  j["result"] = r.ok ? std::string("ok") : r.error_code;
  return j;
}

std::string summary(const AuditRecord& r) {
  std::string who = "uid " + (r.uid < 0 ? std::string("?") : std::to_string(r.uid));
  std::string detail = r.user;
  if (!r.role.empty()) detail += (detail.empty() ? "" : ", ") + r.role;
  if (r.pid >= 0) detail += (detail.empty() ? "pid " : ", pid ") + std::to_string(r.pid);
  if (!detail.empty()) who += " (" + detail + ")";
  std::string what = r.command;
  if (!r.channel.empty())
    what += " " + r.channel;
  else if (!r.controller.empty())
    what += " controller " + r.controller;
  else if (!r.bus.empty())
    what += " bus " + r.bus;
  std::string result = r.ok ? std::string("ok") : "refused (" + r.error_code + ")";
  if (!r.ok && !r.message.empty()) result += ": " + r.message;
  return "audit: " + who + " " + what + ": " + result;
}

std::string user_name(uid_t uid) {
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(static_cast<std::size_t>(size > 0 ? size : 4096));
  passwd pw{};
  passwd* found = nullptr;
  for (;;) {
    const int rc = ::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    break;
  }
  return found != nullptr && found->pw_name != nullptr ? std::string(found->pw_name) : std::string();
}

std::int64_t now_utc_ms() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace eqd::history
