// Persistence of assignments and runtime bus parameters. See state_store.hpp for the precedence rule.
#include "eqd/control/state_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "eqd/control/protocol.hpp"
#include "eqd/util/atomic_file.hpp"

namespace eqd::control {

using nlohmann::json;

bool operator==(const PersistedChannel& a, const PersistedChannel& b) noexcept {
  if (a.assigned != b.assigned) return false;
  for (const LimitField& f : kLimitFields)
    if (a.limits.*f.limit != b.limits.*f.limit) return false;
  return true;
}

namespace {
// Position of the row named `name` in core::kRuntimeParams (= in PersistedBusParams::values).
std::optional<std::size_t> row_index(std::string_view name) noexcept {
  const core::RuntimeParam* r = core::find_runtime_param(name);
  if (r == nullptr) return std::nullopt;
  return static_cast<std::size_t>(r - core::kRuntimeParams.data());
}
}  // namespace

std::optional<double> PersistedBusParams::get(std::string_view name) const noexcept {
  const auto i = row_index(name);
  return i ? values[*i] : std::nullopt;
}

bool PersistedBusParams::set(std::string_view name, double v) noexcept {
  const auto i = row_index(name);
  if (i) values[*i] = v;
  return i.has_value();
}

std::string state_to_text(const PersistedState& s) {
  json channels = json::object();
  for (const auto& [name, c] : s.channels)
    channels[name] = json{{"assigned", c.assigned}, {"limits", limits_to_json(c.limits)}};
  json buses = json::object();
  for (const auto& [name, b] : s.buses) {
    json p = json::object();
    for (std::size_t i = 0; i < core::kRuntimeParams.size(); ++i)
      if (b.values[i]) p[core::kRuntimeParams[i].name] = runtime_value_json(core::kRuntimeParams[i], *b.values[i]);
    buses[name] = p;
  }
  json j{{"version", kStateFormatVersion}, {"channels", channels}, {"buses", buses}};
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

namespace {
// A run-time parameter's value in the state file: a name of a choice, true/false for a flag, a finite
// number otherwise. nullopt: not a value of that row.
std::optional<double> row_value(const core::RuntimeParam& r, const json& f) {
  if (r.choice != nullptr) {
    const int i = f.is_string() ? core::find_runtime_choice(r, f.get<std::string>()) : -1;
    return i < 0 ? std::nullopt : std::optional<double>(i);
  }
  if (r.flag) return f.is_boolean() ? std::optional<double>(f.get<bool>() ? 1.0 : 0.0) : std::nullopt;
  return f.is_number() && std::isfinite(f.get<double>()) ? std::optional<double>(f.get<double>()) : std::nullopt;
}
std::string row_expected(const core::RuntimeParam& r) {
  if (r.choice != nullptr) return "one of: " + choice_names(r);
  return r.flag ? "true or false" : "a finite number";
}
}  // namespace

PersistedState state_from_text(std::string_view text, std::vector<std::string>* skipped) {
  const json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) throw std::invalid_argument("not valid JSON");
  if (!j.is_object()) throw std::invalid_argument("top level must be an object");
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_integer() || v->get<int>() != kStateFormatVersion)
    throw std::invalid_argument("\"version\" must be " + std::to_string(kStateFormatVersion));
  // Without a place to report skips, a bad entry fails the whole text (the strict reading).
  auto skip = [skipped](const std::string& what) {
    if (skipped == nullptr) throw std::invalid_argument(what);
    skipped->push_back(what);
  };
  PersistedState s;
  if (auto it = j.find("channels"); it != j.end()) {
    if (!it->is_object()) {
      skip("\"channels\" must be an object; every channel entry skipped");
    } else {
      for (const auto& [name, c] : it->items()) {
        if (!c.is_object()) {
          skip("channels." + name + ": must be an object; entry skipped");
          continue;
        }
        PersistedChannel pc;
        auto a = c.find("assigned");
        if (a == c.end() || !a->is_boolean()) {
          skip("channels." + name + ".assigned: must be true or false; entry skipped");
          continue;
        }
        pc.assigned = a->get<bool>();
        if (auto l = c.find("limits"); l != c.end()) {
          try {
            limits_from_json(*l, pc.limits);
          } catch (const std::invalid_argument& e) {
            if (pc.assigned) {
              skip("channels." + name + "." + e.what() + "; entry skipped");
              continue;
            }
            // The release is what matters: losing it would put a released config buffer back into
            // equalization. Its limits were only the default for a later assign.
            skip("channels." + name + "." + e.what() + "; limits dropped, the release is kept");
            pc.limits = core::BufferLimits{};
          }
        }
        s.channels[name] = pc;
      }
    }
  }
  if (auto it = j.find("buses"); it != j.end()) {
    if (!it->is_object()) {
      skip("\"buses\" must be an object; every bus entry skipped");
    } else {
      for (const auto& [name, b] : it->items()) {
        if (!b.is_object()) {
          skip("buses." + name + ": must be an object; entry skipped");
          continue;
        }
        PersistedBusParams p;
        for (const core::RuntimeParam& r : core::kRuntimeParams) {
          auto f = b.find(r.name);
          if (f == b.end()) continue;
          if (const std::optional<double> value = row_value(r, *f))
            p.set(r.name, *value);
          else
            skip("buses." + name + "." + r.name + ": must be " + row_expected(r) +
                 "; skipped (config's value applies)");
        }
        s.buses[name] = p;
      }
    }
  }
  return s;
}

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::string utc_stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

StateStore::StateStore(std::string dir) : dir_(std::move(dir)), path_(dir_ + "/state.json") {}

LoadResult StateStore::load() {
  LoadResult r;
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    if (errno != ENOENT)
      spdlog::warn("state file {}: cannot read ({}); starting from config only", path_, std::strerror(errno));
    return r;
  }
  r.existed = true;
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  try {
    r.state = state_from_text(text, &r.skipped);
  } catch (const std::invalid_argument& e) {
    r.error = e.what();
    std::string aside;
    try {
      aside = util::move_aside(path_, "corrupt");  // a second corruption within the second keeps both copies
    } catch (const std::system_error& moving) {
      throw std::system_error(moving.code(),
                              "state file " + path_ + " is corrupt (" + r.error + ") and cannot be moved aside");
    }
    r.moved_aside_to = aside;
    r.state = PersistedState{};
    spdlog::error("state file {} is corrupt ({}); moved it to {} and started from config only", path_, r.error, aside);
    return r;
  }
  if (r.skipped.empty()) return r;
  // Keep the evidence, then rewrite with what was kept: the next load is clean, and the API's next
  // save cannot silently drop entries that were never set aside.
  std::string aside = path_ + ".bad-entries-" + utc_stamp();
  for (int k = 1; ::access(aside.c_str(), F_OK) == 0; ++k)
    aside = path_ + ".bad-entries-" + utc_stamp() + "-" + std::to_string(k);
  {
    const int fd = ::open(aside.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    bool ok = fd >= 0;
    for (std::size_t done = 0; ok && done < text.size();) {
      const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) done += static_cast<std::size_t>(n);
    }
    ok = ok && ::fsync(fd) == 0;
    const int err = errno;
    if (fd >= 0) ::close(fd);
    if (!ok) {
      ::unlink(aside.c_str());
      errno = err;
      throw_errno("state file " + path_ + " has bad entries (" + r.skipped.front() +
                  ") and cannot be copied aside to " + aside);
    }
  }
  r.copied_to = aside;
  for (const std::string& why : r.skipped) spdlog::error("state file {}: {}", path_, why);
  spdlog::error("state file {}: {} bad entr{} skipped, {} channel(s) and {} bus(es) kept; the original is in {}", path_,
                r.skipped.size(), r.skipped.size() == 1 ? "y" : "ies", r.state.channels.size(), r.state.buses.size(),
                aside);
  try {
    save(r.state);
  } catch (const std::system_error& e) {
    spdlog::warn("state file {}: cannot rewrite it with the kept entries ({}); it is read again at the next start",
                 path_, e.what());
  }
  return r;
}

void StateStore::save(const PersistedState& s) {
  if (::mkdir(dir_.c_str(), 0750) != 0 && errno != EEXIST) throw_errno("cannot create state directory " + dir_);
  // Temporary file, fsync, rename, fsync of the directory: the old file or the whole new one.
  util::write_atomically(path_, state_to_text(s));
}

std::vector<std::string> apply_state(const PersistedState& s, const config::Config& cfg, daemon::RigPlan& plan) {
  std::vector<std::string> notes;
  for (const auto& [name, pc] : s.channels) {
    auto idx = plan.directory.find_channel(name);
    if (!idx) {
      notes.push_back("persisted channel " + name +
                      " is not in the configuration; kept in the state file, not applied");
      continue;
    }
    core::ChannelConfig& ch = plan.core.channels[*idx];
    if (pc.assigned) {
      if (const char* why = core::validate(pc.limits)) {
        notes.push_back("persisted assignment of " + name + " has invalid limits (" + why + "); not applied");
        continue;
      }
      ch.assigned = true;
      ch.limits = pc.limits;
      notes.push_back("restored assignment of " + name + " (persisted limits)");
    } else if (ch.assigned) {
      ch.assigned = false;
      notes.push_back("equalization channel " + name + " from config stays released (persisted release)");
    }
  }
  for (const auto& [name, pb] : s.buses) {
    auto b = plan.directory.find_bus(name);
    if (!b) {
      notes.push_back("persisted parameters of bus " + name + " do not match a configured bus; not applied");
      continue;
    }
    core::BusParams p = plan.core.buses[*b];
    for (std::size_t i = 0; i < core::kRuntimeParams.size(); ++i)
      if (pb.values[i]) core::set_runtime_value(core::kRuntimeParams[i], p, *pb.values[i]);
    const bool allow_any_tau = *b < cfg.buses.size() && cfg.buses[*b].allow_any_tau;
    if (const char* why = core::validate(p, allow_any_tau)) {
      notes.push_back("persisted parameters of bus " + name + " are invalid (" + why + "); config values kept");
      continue;
    }
    plan.core.buses[*b] = p;
    notes.push_back("restored runtime parameters of bus " + name);
  }
  return notes;
}

daemon::PlanHook plan_hook(const PersistedState& s, const config::Config& cfg) {
  return [&s, &cfg](daemon::RigPlan& plan) {
    for (const std::string& note : apply_state(s, cfg, plan)) spdlog::info("state: {}", note);
  };
}

}  // namespace eqd::control
