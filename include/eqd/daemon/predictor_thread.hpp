#pragma once
/// @file predictor_thread.hpp
/// eqd's predictor thread: learns every test channel's power from its own history once per second
/// (core::Predictor) and publishes the forecasts the control thread reads lock-free; keeps what it
/// learned in `state_dir/learned.bin` across restarts (docs/control.md, "Learned forecasts"). Fits the
/// statistical forecasts of the buses that ask (core::StatForecasts) and keeps their state in
/// `state_dir/stat_forecast.bin` (docs/control.md, "Statistical forecasts").

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

/// What restoring stat_forecast.bin gave. Plain data.
struct StatLoad {
  bool existed = false;
  std::int64_t age_s = 0;    ///< how long ago it was written (wall clock)
  bool stale = false;        ///< older than kStatMaxAge_s, or written in the future: nothing restored
  std::size_t restored = 0;  ///< buses whose fit and shadow-plan gate continue (at their first tick)
  std::size_t changed = 0;   ///< buses whose settings changed, or that no longer use it (they warm up anew)
  std::size_t unknown = 0;   ///< entries for buses this configuration does not have (dropped)
  std::size_t refused = 0;   ///< entries whose state did not load (that bus warms up anew)
  std::string error;         ///< the whole file was unreadable (moved aside; every bus warms up anew)
  std::string moved_aside_to;
};

/// A statistical state older than this is not used (docs/control.md, "Statistical forecasts"): twice
/// the gates' 300 s memory. By then the scores that held a gate open describe a lab that has moved on
/// (its statistics move within minutes; the fit forgets in ~100 s), and a warm-up (60 s, the shadow
/// gate 120 s) costs less than the downtime already did.
inline constexpr std::int64_t kStatMaxAge_s = 600;

/// What must not change for a bus's statistical state to be used again: the horizon, tau_s, slew,
/// target and the names of the bus's channels (the free power's sources). FNV-1a. Any thread.
std::uint64_t stat_fingerprint(const core::BusParams& p, const Directory& dir, core::BusIndex b);

/// File format of stat_forecast.bin: "EQDSTATF", version, layout, the wall-clock second it was written,
/// bus count, then per bus its name, its stat_fingerprint() and its fit's and shadow-plan gate's state
/// (core::StatForecasts::BusState), then a CRC-32 of all that. Any thread (pure functions).
std::string encode_stat(const core::StatForecasts& s, const core::ControlCore& core, const Directory& dir,
                        std::int64_t now_unix_s);
/// Hold each entry for its bus (by name) in s, restored at the bus's first tick. Nothing is restored
/// from a file older than kStatMaxAge_s at now_unix_s (stale), nor for a bus whose fingerprint differs
/// or that no longer has stat_forecast with law planned (changed). A file that fails the format or CRC
/// checks sets `error`; an entry that fails only its own checks is refused alone.
StatLoad decode_stat(std::string_view bytes, core::StatForecasts& s, const core::ControlCore& core,
                     const Directory& dir, std::int64_t now_unix_s);

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
  /// path: learned.bin (empty: nothing persisted); the statistical forecasts' state goes beside it, to
  /// stat_forecast.bin. save_period_s: how often both are written (and at stop), so a crash loses at
  /// most that much learning.
  PredictorThread(core::ControlCore& core, const Directory& dir, std::string path, int save_period_s = 300);
  ~PredictorThread();
  PredictorThread(const PredictorThread&) = delete;
  PredictorThread& operator=(const PredictorThread&) = delete;

  /// Restore learned.bin and stat_forecast.bin (a corrupt file is moved aside and logged), then start
  /// the thread. What the second gave: stat_load().
  LearnedLoad start();
  /// Stop and join, then save. Idempotent.
  void stop();
  /// Write learned.bin and stat_forecast.bin now (owner thread, only while the thread is stopped, or
  /// from the thread itself). False if either failed.
  bool save() noexcept;

  [[nodiscard]] const PredictorStats& stats() const noexcept { return stats_; }
  [[nodiscard]] const StatLoad& stat_load() const noexcept { return stat_load_; }
  /// The statistical forecasts (read only while the thread is stopped: tests).
  [[nodiscard]] const core::StatForecasts& stat_forecasts() const noexcept { return stat_; }

 private:
  void run() noexcept;
  void load_stat();
  bool save_stat() noexcept;

  core::ControlCore& core_;
  const Directory& dir_;
  std::string path_;
  std::string stat_path_;  ///< stat_forecast.bin beside path_ (empty: not persisted)
  int save_period_s_;
  core::Predictor predictor_;
  /// The statistical forecasts' fits (buses with law planned and stat_forecast), ticked after the
  /// learned predictor each second; kept in stat_forecast.bin (a restart within kStatMaxAge_s skips
  /// their 60 s warm-up and the shadow gate's 120 s of scoring).
  core::StatForecasts stat_;
  StatLoad stat_load_;
  PredictorStats stats_;
  std::thread thread_;
  StopSignal stop_;
};

}  // namespace eqd::daemon
