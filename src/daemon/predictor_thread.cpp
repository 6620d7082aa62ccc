// eqd's predictor thread and its learned.bin. See predictor_thread.hpp.
#include "eqd/daemon/predictor_thread.hpp"

#include <spdlog/spdlog.h>

#include <boost/crc.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
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
}  // namespace

std::string encode_learned(const core::Predictor& p, const Directory& dir) {
  std::string out(kMagic, sizeof kMagic);
  put(out, kVersion);
  put(out, kLayout);
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
  if (bytes.size() < sizeof kMagic + 4 * sizeof(std::uint32_t) ||
      std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    r.error = "not a learned-forecasts file (bad magic or too short)";
    return r;
  }
  std::uint32_t stored_crc = 0;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - sizeof stored_crc, sizeof stored_crc);
  const std::string_view body = bytes.substr(0, bytes.size() - sizeof stored_crc);
  if (crc32_of(body) != stored_crc) {
    r.error = "CRC mismatch (truncated or damaged)";
    return r;
  }
  Cursor c{body, sizeof kMagic};
  const auto version = c.get<std::uint32_t>();
  const auto layout = c.get<std::uint32_t>();
  const auto count = c.get<std::uint32_t>();
  if (version != kVersion) {
    r.error = "version " + std::to_string(version) + " (this eqd reads " + std::to_string(kVersion) + ")";
    return r;
  }
  if (layout != kLayout) {
    r.error = "written on another architecture";
    return r;
  }
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
  if (!c.ok || c.at != body.size()) {
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
      stat_(core.bus_count()) {}

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
  stop_.reset();
  thread_ = std::thread([this] { run(); });
  return r;
}

void PredictorThread::stop() {
  if (!thread_.joinable()) return;
  stop_.request();
  thread_.join();
  (void)save();
}

bool PredictorThread::save() noexcept {
  if (path_.empty()) return true;
  try {
    util::write_atomically(path_, encode_learned(predictor_, dir_));
    stats_.saves.fetch_add(1, std::memory_order_relaxed);
    return true;
  } catch (const std::exception& e) {
    // Learning goes on in memory; the next save tries again. Control is never affected.
    if (stats_.save_errors.fetch_add(1, std::memory_order_relaxed) % 60 == 0)
      spdlog::warn("learned forecasts: cannot save {}: {}", path_, e.what());
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
