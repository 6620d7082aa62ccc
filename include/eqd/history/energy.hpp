#pragma once
/// @file energy.hpp
/// The per-minute energy history (issue #16, "Energy history"): per bus and UTC minute, grid import and
/// export with and without equalization, energy into and out of the buffers, peak |net| and |free|
/// power, direction flips, setpoint travel and the buffers' mean window position; per buffer, the
/// energy it took and gave. Built off the control thread from the control core's published snapshots
/// (daemon::SnapshotView), written by the history writer (store.hpp) when each minute ends: a crash
/// loses at most the minute in progress.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <condition_variable>
#include <vector>

#include "eqd/core/snapshot.hpp"
#include "eqd/daemon/directory.hpp"
#include "eqd/daemon/views.hpp"

namespace eqd::history {

class HistoryStore;

/// One bus's minute. Plain data.
struct BusMinute {
  std::string bus;
  core::EnergyCounters energy{};     ///< energy exchanged within the minute (differences of the bus's counters)
  double peak_net_W = 0.0;           ///< largest |net power| sampled within the minute
  double peak_free_W = 0.0;          ///< largest |free power| sampled within the minute
  double peak_import_W = 0.0;        ///< largest net power drawn from the grid (net > 0; 0: none drawn)
  double peak_free_import_W = 0.0;   ///< the same without equalization: largest free power > 0
  std::uint64_t flips = 0;           ///< direction flips of the law within the minute
  double setpoint_travel_W = 0.0;    ///< total setpoint movement within the minute
  std::optional<double> window_pos;  ///< the buffers' mean window position (0 v_min .. 1 v_max); none: no buffer
  int samples = 0;                   ///< snapshot samples the minute's peaks and means come from
};

/// One buffer's minute. Plain data.
struct BufferMinute {
  std::string channel;
  std::string bus;
  double charged_J = 0.0;            ///< energy into the battery (measured power > 0, integrated)
  double discharged_J = 0.0;         ///< energy out of it
  std::optional<double> window_pos;  ///< mean window position within the minute
};

/// One UTC minute of the whole rig. Plain data.
struct EnergyMinute {
  std::int64_t minute_s = 0;  ///< start of the minute, UTC s since 1970 (a multiple of 60)
  std::vector<BusMinute> buses;
  std::vector<BufferMinute> buffers;
};

/// Turns samples of the snapshots into finished minutes. Pure: no thread, no clock, no I/O; the
/// EnergyRecorder drives it, tests feed it. Bus and channel state is kept by name, so a reload
/// (another view and directory, the same names, the bus counters carried over) loses nothing.
/// Thread-safety: not thread-safe; one caller at a time.
class MinuteAccumulator {
 public:
  /// Samples every bus and buffer of `view` at UTC `now_ms`. When `now_ms` is in a later minute than
  /// the previous sample, returns the minute that ended (counters up to this sample), else nullopt.
  /// A bus seen for the first time counts from 0 (its counters started with its daemon), and the
  /// minute of the first sample is returned like the others (partial: from eqd's start), so that a
  /// bus's rows add up to its counters.
  std::optional<EnergyMinute> sample(const daemon::SnapshotView& view, const daemon::Directory& dir,
                                     std::int64_t now_ms);
  /// The minute in progress as it stands (up to the last sample), e.g. when eqd stops; nullopt
  /// before the first sample. Sampling may go on: the rest of the minute is then counted apart.
  std::optional<EnergyMinute> flush();

 private:
  /// The bus's cumulative counters: the six energies, direction flips, setpoint travel.
  static constexpr std::size_t kCounters = 8;
  struct Bus {
    // Per counter: its value at the minute's start, its last value, and what it counted within the
    // minute before it restarted (a new daemon after a reload counts flips and travel from 0 again).
    std::array<double, kCounters> base{}, now{}, carry{};
    double peak_net_W = 0.0, peak_free_W = 0.0, peak_import_W = 0.0, peak_free_import_W = 0.0;
    double window_sum = 0.0;
    int window_n = 0;
    int samples = 0;
  };
  struct Buffer {
    std::string bus;
    double charged_J = 0.0, discharged_J = 0.0;
    double window_sum = 0.0;
    int window_n = 0;
    double last_power_W = 0.0;
    std::int64_t last_ms = -1;
  };
  EnergyMinute finish(std::int64_t minute_s);

  std::int64_t minute_s_ = -1;  ///< the minute in progress; -1 before the first sample
  std::map<std::string, Bus> buses_;
  std::map<std::string, Buffer> buffers_;
};

/// Samples the running rig 5 times a second on a thread of its own and hands each finished minute to
/// the history store. attach() / detach() around a reload's handover (the daemon is replaced); what
/// was accumulated is kept. Thread-safety: attach(), detach(), start() and stop() from the main
/// thread; the sampling thread reads the view only while attached (detach() waits for a read in progress).
class EnergyRecorder {
 public:
  /// `store` must outlive the recorder.
  explicit EnergyRecorder(HistoryStore& store);
  ~EnergyRecorder();
  EnergyRecorder(const EnergyRecorder&) = delete;
  EnergyRecorder& operator=(const EnergyRecorder&) = delete;

  /// Reads `view` and `dir` from now on (both must stay valid until detach()).
  void attach(const daemon::SnapshotView& view, const daemon::Directory& dir);
  /// Takes a last sample (while started), then stops reading the view (returns once no read is in
  /// progress).
  void detach();
  void start();
  /// Stops sampling and hands the minute in progress to the store (a restart within the same minute
  /// adds to its row). Idempotent.
  void stop();

 private:
  void run();

  HistoryStore& store_;
  std::mutex m_;
  std::condition_variable cv_;
  const daemon::SnapshotView* view_ = nullptr;  ///< guarded by m_
  const daemon::Directory* dir_ = nullptr;      ///< guarded by m_
  bool stopping_ = false;
  MinuteAccumulator acc_;  ///< sampling thread (under m_)
  std::thread thread_;
};

}  // namespace eqd::history
