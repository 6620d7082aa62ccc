// The per-minute energy history: the accumulator over the snapshots and its sampling thread (energy.hpp).
#include "eqd/history/energy.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "eqd/history/audit.hpp"
#include "eqd/history/store.hpp"

namespace eqd::history {

namespace {

// How often the recorder samples the snapshots: peaks are of these samples, a buffer's energy is
// its measured power integrated over them.
constexpr std::chrono::milliseconds kSamplePeriod{200};
// A gap between two samples longer than this (a stall, a reload) is not integrated over.
constexpr std::int64_t kMaxGap_ms = 1000;

std::int64_t minute_of(std::int64_t now_ms) {
  const std::int64_t m = now_ms / 60'000 - (now_ms % 60'000 < 0 ? 1 : 0);
  return m * 60;
}

// A bus snapshot's cumulative counters in MinuteAccumulator's order.
std::array<double, 8> counters_of(const core::BusSnapshot& b) {
  const core::EnergyCounters& e = b.energy;
  return {e.grid_import_J,
          e.grid_export_J,
          e.free_import_J,
          e.free_export_J,
          e.eq_absorbed_J,
          e.eq_delivered_J,
          static_cast<double>(b.direction_flips),
          b.setpoint_travel_W};
}

}  // namespace

std::optional<EnergyMinute> MinuteAccumulator::sample(const daemon::SnapshotView& view, const daemon::Directory& dir,
                                                      std::int64_t now_ms) {
  const std::size_t nb = std::min(view.bus_count(), dir.buses.size());
  std::vector<core::BusSnapshot> snaps(nb);
  for (std::size_t b = 0; b < nb; ++b) {
    snaps[b] = view.bus(static_cast<core::BusIndex>(b));
    Bus& s = buses_[dir.buses[b]];  // a new bus: base 0, its counters started with its daemon
    const std::array<double, kCounters> now = counters_of(snaps[b]);
    for (std::size_t k = 0; k < kCounters; ++k) {
      if (now[k] < s.now[k]) {  // the counter restarted (a new daemon): keep what it had counted
        s.carry[k] += s.now[k] - s.base[k];
        s.base[k] = 0.0;
      }
      s.now[k] = now[k];
    }
  }
  // The buffers' energy since their last sample belongs to the interval before now.
  const std::size_t nc = std::min(view.channel_count(), dir.channels.size());
  std::vector<std::pair<Buffer*, double>> windows;
  for (std::size_t i = 0; i < nc; ++i) {
    const core::ChannelSnapshot c = view.channel(static_cast<core::ChannelIndex>(i));
    if (c.role == core::Role::test) continue;
    Buffer& buf = buffers_[dir.channels[i].name];
    const core::BusIndex bus = dir.channels[i].bus;
    buf.bus = bus < dir.buses.size() ? dir.buses[bus] : std::string();
    const core::Sample smp = view.sample(static_cast<core::ChannelIndex>(i));
    const double power_W = smp.valid && std::isfinite(smp.power_W) ? smp.power_W : 0.0;
    if (buf.last_ms >= 0 && now_ms > buf.last_ms && now_ms - buf.last_ms <= kMaxGap_ms) {
      const double e_J = power_W * static_cast<double>(now_ms - buf.last_ms) / 1000.0;
      (e_J >= 0.0 ? buf.charged_J : buf.discharged_J) += std::abs(e_J);
    }
    buf.last_ms = now_ms;
    if (c.role == core::Role::equalization && std::isfinite(c.window_pos)) windows.emplace_back(&buf, c.window_pos);
  }
  std::optional<EnergyMinute> done;
  const std::int64_t minute = minute_of(now_ms);
  if (minute_s_ >= 0 && minute != minute_s_) done = finish(minute_s_);
  minute_s_ = minute;
  // This sample's peaks and window positions belong to the minute in progress.
  for (std::size_t b = 0; b < nb; ++b) {
    Bus& s = buses_[dir.buses[b]];
    s.peak_net_W = std::max(s.peak_net_W, std::abs(snaps[b].net_W));
    s.peak_free_W = std::max(s.peak_free_W, std::abs(snaps[b].free_W));
    s.peak_import_W = std::max(s.peak_import_W, snaps[b].net_W);
    s.peak_free_import_W = std::max(s.peak_free_import_W, snaps[b].free_W);
    ++s.samples;
  }
  for (auto& [buf, pos] : windows) {
    buf->window_sum += pos;
    ++buf->window_n;
    if (auto it = buses_.find(buf->bus); it != buses_.end()) {
      it->second.window_sum += pos;
      ++it->second.window_n;
    }
  }
  return done;
}

std::optional<EnergyMinute> MinuteAccumulator::flush() {
  if (minute_s_ < 0) return std::nullopt;
  return finish(minute_s_);
}

EnergyMinute MinuteAccumulator::finish(std::int64_t minute_s) {
  EnergyMinute m;
  m.minute_s = minute_s;
  for (auto& [name, s] : buses_) {
    if (s.samples == 0) continue;  // not sampled within the minute (gone with a reload)
    std::array<double, kCounters> d{};
    for (std::size_t k = 0; k < kCounters; ++k) d[k] = s.carry[k] + s.now[k] - s.base[k];
    BusMinute b;
    b.bus = name;
    b.energy = core::EnergyCounters{d[0], d[1], d[2], d[3], d[4], d[5]};
    b.flips = static_cast<std::uint64_t>(std::llround(d[6]));
    b.setpoint_travel_W = d[7];
    b.peak_net_W = s.peak_net_W;
    b.peak_free_W = s.peak_free_W;
    b.peak_import_W = s.peak_import_W;
    b.peak_free_import_W = s.peak_free_import_W;
    if (s.window_n > 0) b.window_pos = s.window_sum / s.window_n;
    b.samples = s.samples;
    m.buses.push_back(std::move(b));
    s.base = s.now;
    s.carry = {};
    s.peak_net_W = s.peak_free_W = s.peak_import_W = s.peak_free_import_W = s.window_sum = 0.0;
    s.window_n = s.samples = 0;
  }
  for (auto it = buffers_.begin(); it != buffers_.end();) {
    Buffer& b = it->second;
    if (b.charged_J > 0.0 || b.discharged_J > 0.0 || b.window_n > 0) {
      BufferMinute r{it->first, b.bus, b.charged_J, b.discharged_J, std::nullopt};
      if (b.window_n > 0) r.window_pos = b.window_sum / b.window_n;
      m.buffers.push_back(std::move(r));
    }
    b.charged_J = b.discharged_J = b.window_sum = 0.0;
    b.window_n = 0;
    ++it;
  }
  return m;
}

EnergyRecorder::EnergyRecorder(HistoryStore& store) : store_(store) {}

EnergyRecorder::~EnergyRecorder() { stop(); }

void EnergyRecorder::attach(const daemon::SnapshotView& view, const daemon::Directory& dir) {
  std::lock_guard lock(m_);
  view_ = &view;
  dir_ = &dir;
}

void EnergyRecorder::detach() {
  std::lock_guard lock(m_);  // waits for a sample in progress
  // One last sample, so that what the counters hold now is in the history (a stop writes it, a reload
  // goes on from it).
  if (view_ != nullptr && thread_.joinable())
    if (std::optional<EnergyMinute> m = acc_.sample(*view_, *dir_, now_utc_ms()))
      (void)store_.record_energy(std::move(*m));
  view_ = nullptr;
  dir_ = nullptr;
}

void EnergyRecorder::start() {
  std::lock_guard lock(m_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
}

void EnergyRecorder::stop() {
  {
    std::lock_guard lock(m_);
    stopping_ = true;
    view_ = nullptr;
    dir_ = nullptr;
  }
  cv_.notify_all();
  if (!thread_.joinable()) return;
  thread_.join();
  if (std::optional<EnergyMinute> m = acc_.flush()) (void)store_.record_energy(std::move(*m));
}

void EnergyRecorder::run() {
  std::unique_lock lock(m_);
  while (!stopping_) {
    cv_.wait_for(lock, kSamplePeriod, [this] { return stopping_; });
    if (stopping_ || view_ == nullptr) continue;
    std::optional<EnergyMinute> m = acc_.sample(*view_, *dir_, now_utc_ms());
    if (!m) continue;
    lock.unlock();  // the store only queues it; attach/detach need not wait for that
    (void)store_.record_energy(std::move(*m));
    lock.lock();
  }
}

}  // namespace eqd::history
