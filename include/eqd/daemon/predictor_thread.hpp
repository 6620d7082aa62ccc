#pragma once
/// @file predictor_thread.hpp
/// eqd's predictor thread: learns every test channel's power from its own history once per second
/// (core::Predictor) and publishes the forecasts the control thread reads lock-free; keeps what it
/// learned in `state_dir/learned.bin` across restarts (docs/control.md, "Learned forecasts").

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

#include "eqd/core/control_core.hpp"
#include "eqd/core/predictor.hpp"
#include "eqd/core/stat_forecasts.hpp"
#include "eqd/daemon/directory.hpp"
#include "eqd/daemon/stop_signal.hpp"

namespace eqd::daemon {

/// What restoring learned.bin gave. Plain data.
struct LearnedLoad {
  bool existed = false;
  std::size_t restored = 0;  ///< channels whose learned state was restored
  std::size_t unknown = 0;   ///< entries for channels this configuration does not have (dropped)
  std::size_t refused = 0;   ///< entries whose state did not load (that channel starts learning anew)
  std::string error;         ///< the whole file was unreadable (moved aside; learning restarts)
  std::string moved_aside_to;
};

/// File format of learned.bin: "EQDLEARN", version, layout (pointer size, byte order), channel count,
/// then per channel its name and ChannelPredictor::save() bytes, then a CRC-32 of all that. Names, not
/// indices: a configuration change keeps what each channel learned. Any thread (pure functions).
std::string encode_learned(const core::Predictor& p, const Directory& dir);
/// Restore into p by channel name. A file that fails the format or CRC checks sets `error` and restores
/// nothing; an entry that fails only its own checks is refused alone.
LearnedLoad decode_learned(std::string_view bytes, core::Predictor& p, const Directory& dir);

/// Statistics of the predictor thread (atomics). Any thread.
struct PredictorStats {
  std::atomic<std::uint64_t> ticks{0};
  std::atomic<std::int64_t> last_tick_ns{0};  ///< duration of the last tick
  std::atomic<std::int64_t> max_tick_ns{0};
  std::atomic<std::uint64_t> memory_bytes{0};  ///< heap held by the learners
  std::atomic<std::uint64_t> saves{0};
  std::atomic<std::uint64_t> save_errors{0};
  std::atomic<std::uint64_t> tick_errors{
      0};  ///< ticks that threw (e.g. out of memory): learning paused, control unaffected
};

/// Owns the predictor thread. Thread-safety: start()/stop() from the owner (main) thread; stats() from
/// any thread. The control thread never waits for it: a late or missing forecast is "nothing announced".
class PredictorThread {
 public:
  /// path: learned.bin (empty: nothing persisted). save_period_s: how often learned state is written
  /// (and at stop), so a crash loses at most that much learning.
  PredictorThread(core::ControlCore& core, const Directory& dir, std::string path, int save_period_s = 300);
  ~PredictorThread();
  PredictorThread(const PredictorThread&) = delete;
  PredictorThread& operator=(const PredictorThread&) = delete;

  /// Restore learned.bin (a corrupt file is moved aside and logged), then start the thread.
  LearnedLoad start();
  /// Stop and join, then save. Idempotent.
  void stop();
  /// Write learned.bin now (owner thread, only while the thread is stopped, or from the thread itself).
  bool save() noexcept;

  [[nodiscard]] const PredictorStats& stats() const noexcept { return stats_; }

 private:
  void run() noexcept;

  core::ControlCore& core_;
  const Directory& dir_;
  std::string path_;
  int save_period_s_;
  core::Predictor predictor_;
  /// The statistical forecasts' fits (buses with law planned and stat_forecast), ticked after the
  /// learned predictor each second: nothing of them is persisted (they relearn within minutes).
  core::StatForecasts stat_;
  PredictorStats stats_;
  std::thread thread_;
  StopSignal stop_;
};

}  // namespace eqd::daemon
