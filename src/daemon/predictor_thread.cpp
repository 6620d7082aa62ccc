// eqd's predictor thread and its learned.bin. See predictor_thread.hpp.
#include "eqd/daemon/predictor_thread.hpp"

#include <spdlog/spdlog.h>

#include <boost/crc.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <optional>
#include <utility>
#include <vector>

#include "eqd/daemon/clock.hpp"
#include "eqd/util/atomic_file.hpp"

namespace eqd::daemon {

namespace {
constexpr char kMagic[8] = {'E', 'Q', 'D', 'L', 'E', 'A', 'R', 'N'};
constexpr std::uint32_t kVersion = 1;
// The learners' bytes are in host layout: a file written on another architecture is refused whole.
constexpr std::uint32_t kLayout = (static_cast<std::uint32_t>(sizeof(void*)) << 24) | 0x00010203u;

template <class T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

struct Cursor {
  std::string_view in;
  std::size_t at = 0;
  bool ok = true;
  template <class T>
  T get() {
    T v{};
    if (!ok || in.size() - at < sizeof(T)) {
      ok = false;
      return v;
    }
    std::memcpy(&v, in.data() + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  std::string_view take(std::size_t n) {
    if (!ok || in.size() - at < n) {
      ok = false;
      return {};
    }
    const std::string_view s = in.substr(at, n);
    at += n;
    return s;
  }
};

std::uint32_t crc32_of(std::string_view bytes) {
  boost::crc_32_type crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

// Both files: magic, version, layout, ..., CRC-32 of all before it.
std::string start_file(const char (&magic)[8], std::uint32_t version) {
  std::string out(magic, sizeof magic);
  put(out, version);
  put(out, kLayout);
  return out;
}

// The checks both files share (magic and size, CRC, version, layout). Empty and `c` on the first word
// after the layout, or what is wrong (`what`: the file's kind, for the message).
std::string open_file(std::string_view bytes, const char (&magic)[8], std::uint32_t version, std::size_t min_size,
                      const char* what, Cursor& c) {
  if (bytes.size() < min_size || std::memcmp(bytes.data(), magic, sizeof magic) != 0)
    return std::string("not a ") + what + " file (bad magic or too short)";
  std::uint32_t stored_crc = 0;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - sizeof stored_crc, sizeof stored_crc);
  const std::string_view body = bytes.substr(0, bytes.size() - sizeof stored_crc);
  if (crc32_of(body) != stored_crc) return "CRC mismatch (truncated or damaged)";
  c = Cursor{body, sizeof magic};
  const auto found = c.get<std::uint32_t>();
  const auto layout = c.get<std::uint32_t>();
  if (found != version) return "version " + std::to_string(found) + " (this eqd reads " + std::to_string(version) + ")";
  if (layout != kLayout) return "written on another architecture";
  return {};
}

// stat_forecast.bin: its own file rather than a version 2 of learned.bin. Its state is per bus and
// good for minutes, learned.bin's per channel and for days; a new learned.bin version would make an
// older eqd refuse (and move aside) days of learning after a downgrade, and a damaged statistical
// state must not cost the learned one.
constexpr char kStatMagic[8] = {'E', 'Q', 'D', 'S', 'T', 'A', 'T', 'F'};
constexpr std::uint32_t kStatVersion = 1;
// A file written this far in the future (wall clock stepped back) is not trusted either.
constexpr std::int64_t kStatFutureSlack_s = 60;

void put_vec(std::string& out, const std::vector<double>& v) {
  put(out, static_cast<std::uint32_t>(v.size()));
  for (double d : v) put(out, d);
}

std::vector<double> get_vec(Cursor& c) {
  const auto n = c.get<std::uint32_t>();
  std::vector<double> v;
  // Bounded by what is left: a damaged count cannot make it allocate more than the file holds.
  if (!c.ok || n > (c.in.size() - c.at) / sizeof(double)) {
    c.ok = false;
    return v;
  }
  v.resize(n);
  for (double& d : v) d = c.get<double>();
  return v;
}

void put_bus_state(std::string& out, const core::StatForecasts::BusState& s) {
  const core::StatFitterState& f = s.fit;
  put(out, f.horizon_s);
  put(out, f.gate_h_s);
  put(out, f.n);
  put(out, f.scored);
  put(out, static_cast<std::uint8_t>(f.gate_open));
  for (double d : {f.mean_now_W, f.scale_now_W, f.mae_forecast_W, f.mae_persistence_W}) put(out, d);
  for (const auto* v : {&f.x_W, &f.mean_W, &f.scale_W, &f.made_W, &f.sums, &f.weights, &f.r, &f.theta})
    put_vec(out, *v);
  put(out, s.gate.plan_score_W);
  put(out, s.gate.adaptive_score_W);
  put(out, s.gate.rated_W);
  put(out, s.gate.scored);
  put(out, static_cast<std::uint8_t>(s.gate.open));
}

bool get_bus_state(std::string_view blob, core::StatForecasts::BusState& s) {
  Cursor c{blob};
  core::StatFitterState& f = s.fit;
  f.horizon_s = c.get<std::int32_t>();
  f.gate_h_s = c.get<std::int32_t>();
  f.n = c.get<std::int64_t>();
  f.scored = c.get<std::int32_t>();
  f.gate_open = c.get<std::uint8_t>() != 0;
  for (double* d : {&f.mean_now_W, &f.scale_now_W, &f.mae_forecast_W, &f.mae_persistence_W}) *d = c.get<double>();
  for (auto* v : {&f.x_W, &f.mean_W, &f.scale_W, &f.made_W, &f.sums, &f.weights, &f.r, &f.theta}) *v = get_vec(c);
  s.gate.plan_score_W = c.get<double>();
  s.gate.adaptive_score_W = c.get<double>();
  s.gate.rated_W = c.get<double>();
  s.gate.scored = c.get<std::int64_t>();
  s.gate.open = c.get<std::uint8_t>() != 0;
  return c.ok && c.at == blob.size();
}

}  // namespace

std::uint64_t stat_fingerprint(const core::BusParams& p, const Directory& dir, core::BusIndex b) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&h](const void* data, std::size_t n) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ bytes[i]) * 0x100000001b3ULL;
  };
  const std::int64_t horizon = std::lround(p.forecast_horizon_s);
  mix(&horizon, sizeof horizon);
  for (double d : {p.tau_s, p.slew_W_per_s, p.target_W}) mix(&d, sizeof d);
  std::vector<std::string_view> names;
  for (const ChannelInfo& c : dir.channels)
    if (c.bus == b) names.emplace_back(c.name);
  std::sort(names.begin(), names.end());
  for (std::string_view n : names) {
    mix(n.data(), n.size());
    mix("\n", 1);  // a separator: {"ab", "c"} and {"a", "bc"} differ
  }
  return h;
}

std::string encode_stat(const core::StatForecasts& s, const core::ControlCore& core, const Directory& dir,
                        std::int64_t now_unix_s) {
  std::string out = start_file(kStatMagic, kStatVersion);
  put(out, now_unix_s);
  std::uint32_t count = 0;
  const std::size_t count_at = out.size();
  put(out, count);
  std::string blob;
  for (std::size_t b = 0; b < dir.buses.size() && b < core.bus_count(); ++b) {
    const std::optional<core::StatForecasts::BusState> st = s.save(b);
    if (!st) continue;
    const auto bi = static_cast<core::BusIndex>(b);
    blob.clear();
    put_bus_state(blob, *st);
    const std::string& name = dir.buses[b];
    put(out, static_cast<std::uint16_t>(name.size()));
    out.append(name);
    put(out, stat_fingerprint(core.bus(bi).params, dir, bi));
    put(out, static_cast<std::uint32_t>(blob.size()));
    out.append(blob);
    ++count;
  }
  std::memcpy(out.data() + count_at, &count, sizeof count);
  put(out, crc32_of(out));
  return out;
}

StatLoad decode_stat(std::string_view bytes, core::StatForecasts& s, const core::ControlCore& core,
                     const Directory& dir, std::int64_t now_unix_s) {
  StatLoad r;
  r.existed = true;
  Cursor c{};
  r.error = open_file(bytes, kStatMagic, kStatVersion,
                      sizeof kStatMagic + 3 * sizeof(std::uint32_t) + sizeof(std::int64_t), "statistical-forecasts", c);
  if (!r.error.empty()) return r;
  const auto saved_s = c.get<std::int64_t>();
  const auto count = c.get<std::uint32_t>();
  r.age_s = now_unix_s - saved_s;
  if (r.age_s > kStatMaxAge_s || r.age_s < -kStatFutureSlack_s) {
    r.stale = true;  // a valid file, only too old to trust: left in place, overwritten at the next save
    return r;
  }
  std::vector<std::pair<core::BusIndex, core::StatForecasts::BusState>> held;
  for (std::uint32_t k = 0; k < count && c.ok; ++k) {
    const auto name_len = c.get<std::uint16_t>();
    const std::string_view name = c.take(name_len);
    const auto fingerprint = c.get<std::uint64_t>();
    const auto blob_len = c.get<std::uint32_t>();
    const std::string_view blob = c.take(blob_len);
    if (!c.ok) break;
    const auto b = dir.find_bus(name);
    if (!b || *b >= core.bus_count()) {
      ++r.unknown;
      continue;
    }
    const core::BusParams p = core.bus(*b).params;
    if (!core::stat_forecast_acts(p) || stat_fingerprint(p, dir, *b) != fingerprint) {
      ++r.changed;
      continue;
    }
    core::StatForecasts::BusState st;
    if (!get_bus_state(blob, st)) {
      ++r.refused;
      continue;
    }
    held.emplace_back(*b, std::move(st));
  }
  if (!c.ok || c.at != c.in.size()) {
    r.error = "entries do not match the bus count";
    r.restored = r.changed = r.unknown = r.refused = 0;
    return r;
  }
  for (auto& [b, st] : held) {
    if (s.restore(b, std::move(st)))
      ++r.restored;
    else
      ++r.refused;
  }
  return r;
}

std::string encode_learned(const core::Predictor& p, const Directory& dir) {
  std::string out = start_file(kMagic, kVersion);
  std::uint32_t count = 0;
  const std::size_t count_at = out.size();
  put(out, count);
  std::vector<std::uint8_t> blob;
  for (std::size_t i = 0; i < p.channel_count() && i < dir.channels.size(); ++i) {
    if (p.channel(i).memory_bytes() == 0) continue;  // nothing learned
    blob.clear();
    p.channel(i).save(blob);
    const std::string& name = dir.channels[i].name;
    put(out, static_cast<std::uint16_t>(name.size()));
    out.append(name);
    put(out, static_cast<std::uint32_t>(blob.size()));
    out.append(reinterpret_cast<const char*>(blob.data()), blob.size());
    ++count;
  }
  std::memcpy(out.data() + count_at, &count, sizeof count);
  put(out, crc32_of(out));
  return out;
}

LearnedLoad decode_learned(std::string_view bytes, core::Predictor& p, const Directory& dir) {
  LearnedLoad r;
  r.existed = true;
  Cursor c{};
  r.error = open_file(bytes, kMagic, kVersion, sizeof kMagic + 4 * sizeof(std::uint32_t), "learned-forecasts", c);
  if (!r.error.empty()) return r;
  const auto count = c.get<std::uint32_t>();
  for (std::uint32_t k = 0; k < count && c.ok; ++k) {
    const auto name_len = c.get<std::uint16_t>();
    const std::string_view name = c.take(name_len);
    const auto blob_len = c.get<std::uint32_t>();
    const std::string_view blob = c.take(blob_len);
    if (!c.ok) break;
    const auto idx = dir.find_channel(name);
    if (!idx || *idx >= p.channel_count()) {
      ++r.unknown;
      continue;
    }
    const std::span<const std::uint8_t> span(reinterpret_cast<const std::uint8_t*>(blob.data()), blob.size());
    if (p.channel(*idx).load(span))
      ++r.restored;
    else
      ++r.refused;
  }
  if (!c.ok || c.at != c.in.size()) {
    r.error = "entries do not match the channel count";
    for (std::size_t i = 0; i < p.channel_count(); ++i) p.channel(i).reset();
    r.restored = r.unknown = r.refused = 0;
  }
  return r;
}

PredictorThread::PredictorThread(core::ControlCore& core, const Directory& dir, std::string path, int save_period_s)
    : core_(core),
      dir_(dir),
      path_(std::move(path)),
      save_period_s_(std::max(1, save_period_s)),
      predictor_(core.channel_count()),
      stat_(core.bus_count()) {
  if (!path_.empty()) stat_path_ = (std::filesystem::path(path_).parent_path() / "stat_forecast.bin").string();
}

PredictorThread::~PredictorThread() { stop(); }

LearnedLoad PredictorThread::start() {
  LearnedLoad r;
  if (thread_.joinable()) return r;
  if (!path_.empty()) {
    std::ifstream in(path_, std::ios::binary);
    if (in) {
      std::stringstream buf;
      buf << in.rdbuf();
      const std::string bytes = buf.str();
      r = decode_learned(bytes, predictor_, dir_);
      if (!r.error.empty()) {
        try {
          r.moved_aside_to = util::move_aside(path_, "corrupt");
          spdlog::error("learned forecasts {}: {}; moved it to {}; learning starts anew", path_, r.error,
                        r.moved_aside_to);
        } catch (const std::exception& e) {
          spdlog::error("learned forecasts {}: {}; {}; learning starts anew", path_, r.error, e.what());
        }
      } else {
        spdlog::info("learned forecasts: restored {} channel(s) from {}{}{}", r.restored, path_,
                     r.unknown ? fmt::format(", {} of channels no longer configured dropped", r.unknown) : "",
                     r.refused ? fmt::format(", {} unreadable (those learn anew)", r.refused) : "");
      }
    }
  }
  load_stat();
  stop_.reset();
  thread_ = std::thread([this] { run(); });
  return r;
}

namespace {
std::int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

void PredictorThread::load_stat() {
  stat_load_ = {};
  if (stat_path_.empty()) return;
  std::ifstream in(stat_path_, std::ios::binary);
  if (!in) return;
  std::stringstream buf;
  buf << in.rdbuf();
  StatLoad& r = stat_load_;
  r = decode_stat(buf.str(), stat_, core_, dir_, unix_now_s());
  if (!r.error.empty()) {
    r.moved_aside_to = util::move_aside_for_log(stat_path_, "corrupt");
    spdlog::error("statistical forecasts {}: {}; moved it to {}; they warm up anew (60 s, 120 s for the shadow gate)",
                  stat_path_, r.error, r.moved_aside_to);
  } else if (r.stale) {
    spdlog::info("statistical forecasts {}: written {} s ago (not used after {} s); they warm up anew", stat_path_,
                 r.age_s, kStatMaxAge_s);
  } else {
    spdlog::info("statistical forecasts: restored {} bus(es) from {} ({} s old){}{}{}", r.restored, stat_path_, r.age_s,
                 r.changed ? fmt::format(", {} whose settings or channels changed warm up anew", r.changed) : "",
                 r.unknown ? fmt::format(", {} of buses no longer configured dropped", r.unknown) : "",
                 r.refused ? fmt::format(", {} unreadable (those warm up anew)", r.refused) : "");
  }
}

void PredictorThread::stop() {
  if (!thread_.joinable()) return;
  stop_.request();
  thread_.join();
  (void)save();
}

bool PredictorThread::save() noexcept {
  const bool stat_ok = save_stat();
  if (path_.empty()) return stat_ok;
  try {
    util::write_atomically(path_, encode_learned(predictor_, dir_));
    stats_.saves.fetch_add(1, std::memory_order_relaxed);
    return stat_ok;
  } catch (const std::exception& e) {
    // Learning goes on in memory; the next save tries again. Control is never affected.
    if (stats_.save_errors.fetch_add(1, std::memory_order_relaxed) % 60 == 0)
      spdlog::warn("learned forecasts: cannot save {}: {}", path_, e.what());
    return false;
  }
}

bool PredictorThread::save_stat() noexcept {
  if (stat_path_.empty()) return true;
  bool any = false;
  for (std::size_t b = 0; b < core_.bus_count() && !any; ++b) any = stat_.save(b).has_value();
  if (!any) {
    // Nothing to keep: no file, so that no older state outlives a bus turning it off.
    std::error_code ec;
    std::filesystem::remove(stat_path_, ec);
    return true;
  }
  try {
    util::write_atomically(stat_path_, encode_stat(stat_, core_, dir_, unix_now_s()));
    return true;
  } catch (const std::exception& e) {
    // The fits go on in memory; a restart before the next good save warms them up anew.
    if (stats_.save_errors.fetch_add(1, std::memory_order_relaxed) % 60 == 0)
      spdlog::warn("statistical forecasts: cannot save {}: {}", stat_path_, e.what());
    return false;
  }
}

void PredictorThread::run() noexcept {
  auto next_save = std::chrono::steady_clock::now() + std::chrono::seconds(save_period_s_);
  for (;;) {
    // Wake just after the next whole second of the monotonic clock the core runs on: one tick per second.
    const std::int64_t now = monotonic_ns();
    if (stop_.wait_for(std::chrono::nanoseconds(1'000'000'000 - now % 1'000'000'000 + 1'000'000))) return;
    const std::int64_t t0 = monotonic_ns();
    try {
      predictor_.tick(t0, core_);
    } catch (const std::exception& e) {
      if (stats_.tick_errors.fetch_add(1, std::memory_order_relaxed) % 60 == 0)
        spdlog::error("learned forecasts: a tick failed ({}); forecasts pause, control is unaffected", e.what());
    }
    try {
      // After the learned predictor, on the same second: the control thread reads the model at the first
      // cycle of the next second and evaluates it on its own newest free power (stat_forecast.hpp).
      stat_.tick(t0, core_);
    } catch (const std::exception& e) {  // a fitter's allocation (a bus opting in): its model goes stale
      if (stats_.tick_errors.fetch_add(1, std::memory_order_relaxed) % 60 == 0)
        spdlog::error("statistical forecasts: a tick failed ({}); their paths pause, control is unaffected", e.what());
    }
    const std::int64_t dt = monotonic_ns() - t0;
    stats_.ticks.fetch_add(1, std::memory_order_relaxed);
    stats_.last_tick_ns.store(dt, std::memory_order_relaxed);
    if (dt > stats_.max_tick_ns.load(std::memory_order_relaxed))
      stats_.max_tick_ns.store(dt, std::memory_order_relaxed);
    if (stats_.ticks.load(std::memory_order_relaxed) % 60 == 1)
      stats_.memory_bytes.store(predictor_.memory_bytes(), std::memory_order_relaxed);
    if (std::chrono::steady_clock::now() >= next_save) {
      (void)save();
      next_save = std::chrono::steady_clock::now() + std::chrono::seconds(save_period_s_);
    }
  }
}

}  // namespace eqd::daemon
