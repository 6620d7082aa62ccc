#pragma once
/// @file fake_rig.hpp
/// A rig behind the daemon's view interfaces (daemon::RigView, daemon::RequestSink) with no Daemon,
/// no control thread and no links: what the control API (or metrics) reads is what the test set, and
/// the requests it submits are answered by a small model of the control core that the test can
/// overrule. Fault injection is explicit: answer_next() (a refusal or any status the core may give),
/// fill_queue() (submit() fails: "busy"), hold_responses() (the control thread never answers: the
/// API times out), stall() (the control thread is stalled), set_sample() (a channel running a test,
/// in fault, ...), set_link() (a controller connected or not), make_read_only() (a discovered
/// controller). Names and buses come from the configuration as eqd plans them (daemon::plan_rig), so
/// a test speaks of "cab1/2" and "main" as with a real daemon.
///
/// The model of the control core (what a request does when nothing is injected):
/// - assign: a test channel whose sample says running or fault is refused (refused_running,
///   refused_fault); otherwise it becomes a buffer, `pending` while its controller's link is down,
///   else `equalization` (ok); a channel that is a buffer already answers `already` (limits updated).
/// - release: a buffer becomes a test channel (ok); a test channel answers `already`.
/// - set_params: the bus takes the parameters (ok). stop_all, resume: ok.
/// Every request is also recorded (requests()).
///
/// Thread-safety: every member from any thread (one mutex; a fake may block, there is no control
/// thread to hold up), except make_read_only() and directory(): change the directory before the
/// fake is handed to a server, as a real directory never changes while eqd runs.

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "eqd/config/config.hpp"
#include "eqd/core/control_core.hpp"
#include "eqd/daemon/rig.hpp"
#include "eqd/daemon/views.hpp"

namespace eqd::test {

class FakeRig final : public daemon::RigView, public daemon::RequestSink {
 public:
  static constexpr std::int64_t kMs = 1'000'000;

  /// The rig of `cfg`: configured equalization channels are buffers (pending: every link starts
  /// down), every channel is offline with an empty sample, no control cycle has run yet.
  explicit FakeRig(config::Config cfg) : cfg_(std::move(cfg)) {
    daemon::RigPlan plan = daemon::plan_rig(cfg_);
    dir_ = std::move(plan.directory);
    buses_.resize(plan.core.buses.size());
    for (std::size_t b = 0; b < buses_.size(); ++b) buses_[b].params = plan.core.buses[b];
    channels_.resize(plan.core.channels.size());
    samples_.resize(plan.core.channels.size());
    for (std::size_t i = 0; i < channels_.size(); ++i) {
      channels_[i].bus = plan.core.channels[i].bus;
      if (plan.core.channels[i].assigned) {
        channels_[i].role = core::Role::pending;
        channels_[i].limits = plan.core.channels[i].limits;
      }
    }
    links_.resize(dir_.controllers.size());
    liveness_ns_ = static_cast<std::int64_t>(cfg_.loop.liveness_timeout_ms) * kMs;
  }

  // ---- What the test sets -------------------------------------------------------------------

  /// One control cycle completes now: `set` is accepted from the first one on.
  void cycle() {
    const std::lock_guard<std::mutex> lock(m_);
    ++stats_.cycles;
    stats_.last_cycle_ns = now_;
  }
  /// Bus b's law (not a run-time parameter: the configuration's, as a test wants it).
  void set_law(core::BusIndex b, core::LawKind law) {
    const std::lock_guard<std::mutex> lock(m_);
    buses_[b].params.law = law;
  }
  /// Moves the clock (RigView::now_ns) on.
  void advance(std::chrono::nanoseconds d) {
    const std::lock_guard<std::mutex> lock(m_);
    now_ += d.count();
  }
  /// The control thread is stalled (true) or cycles again (false; a stall then counts as over).
  void stall(bool stalled) {
    const std::lock_guard<std::mutex> lock(m_);
    if (stalled_ && !stalled) ++stats_.stalls;
    stalled_ = stalled;
  }
  /// Channel `name`'s latest sample.
  void set_sample(const std::string& name, const core::Sample& s) {
    const std::lock_guard<std::mutex> lock(m_);
    samples_.at(index_of(name)) = s;
  }
  /// Bus b's grid meter (configured = true: the bus has one).
  void set_meter(core::BusIndex b, const daemon::MeterView& v) {
    const std::lock_guard<std::mutex> lock(m_);
    if (meters_.size() <= b) meters_.resize(b + 1);
    meters_[b] = v;
  }
  /// Controller `name`'s link: connected or not, with these statistics.
  void set_link(const std::string& controller, bool connected, io::LinkStats stats = {}) {
    const auto c = dir_.find_controller(controller);
    if (!c) throw std::invalid_argument("fake rig: unknown controller " + controller);
    const std::lock_guard<std::mutex> lock(m_);
    stats.connected = connected;
    links_.at(*c) = stats;
  }
  /// Controller `name` as discovered and not adopted (read-only); with `bus_unknown`, its bus is not
  /// known either. Before the fake is handed to a server.
  void make_read_only(const std::string& controller, bool bus_unknown = false) {
    const auto c = dir_.find_controller(controller);
    if (!c) throw std::invalid_argument("fake rig: unknown controller " + controller);
    dir_.controllers[*c].read_only = true;
    dir_.controllers[*c].bus_unknown = bus_unknown;
    dir_.controllers[*c].source = daemon::ControllerSource::discovery;
  }
  /// Controller `name` on a transport that cannot command (io::Transport::commands() false, e.g.
  /// neware). Before the fake is handed to a server.
  void make_test_only(const std::string& controller, const std::string& transport = "neware") {
    const auto c = dir_.find_controller(controller);
    if (!c) throw std::invalid_argument("fake rig: unknown controller " + controller);
    dir_.controllers[*c].commands = false;
    dir_.controllers[*c].transport = transport;
  }

  // ---- Fault injection on requests -----------------------------------------------------------

  /// The next request is answered `s` whatever the model would say (and changes nothing). Queued:
  /// call it twice for the next two requests.
  void answer_next(core::ResponseStatus s) {
    const std::lock_guard<std::mutex> lock(m_);
    injected_.push_back(s);
  }
  /// The request queue is full (submit() fails) until fill_queue(false).
  void fill_queue(bool full) {
    const std::lock_guard<std::mutex> lock(m_);
    queue_full_ = full;
  }
  /// The control thread keeps its answers (poll_response() finds none) until hold_responses(false).
  void hold_responses(bool hold) {
    const std::lock_guard<std::mutex> lock(m_);
    hold_ = hold;
  }

  // ---- What the test reads back --------------------------------------------------------------

  /// Every request submitted so far, in order.
  [[nodiscard]] std::vector<core::Request> requests() const {
    const std::lock_guard<std::mutex> lock(m_);
    return requests_;
  }
  /// Channel `name` as the fake's core holds it now.
  [[nodiscard]] core::ChannelSnapshot channel_named(const std::string& name) const {
    const std::lock_guard<std::mutex> lock(m_);
    return channels_.at(index_of(name));
  }

  // ---- daemon::RigView -----------------------------------------------------------------------

  [[nodiscard]] std::size_t bus_count() const noexcept override { return buses_.size(); }
  [[nodiscard]] std::size_t channel_count() const noexcept override { return channels_.size(); }
  [[nodiscard]] core::BusSnapshot bus(core::BusIndex b) const noexcept override {
    const std::lock_guard<std::mutex> lock(m_);
    return buses_[b];
  }
  [[nodiscard]] core::ChannelSnapshot channel(core::ChannelIndex i) const noexcept override {
    const std::lock_guard<std::mutex> lock(m_);
    return channels_[i];
  }
  [[nodiscard]] daemon::MeterView meter(core::BusIndex b) const noexcept override {
    const std::lock_guard<std::mutex> lock(m_);
    return b < meters_.size() ? meters_[b] : daemon::MeterView{};
  }
  [[nodiscard]] core::Sample sample(core::ChannelIndex i) const noexcept override {
    const std::lock_guard<std::mutex> lock(m_);
    return samples_[i];
  }
  [[nodiscard]] core::CycleStats cycle_stats() const noexcept override {
    const std::lock_guard<std::mutex> lock(m_);
    return stats_;
  }
  [[nodiscard]] daemon::StallView stall(std::int64_t now_ns) const noexcept override {
    const std::lock_guard<std::mutex> lock(m_);
    daemon::StallView v;
    v.bound_s = static_cast<double>(liveness_ns_) * 1e-9;
    v.stalls = stats_.stalls + (stalled_ ? 1 : 0);
    v.stalled = stalled_;
    if (stats_.cycles > 0) v.cycle_age_s = static_cast<double>(now_ns - stats_.last_cycle_ns) * 1e-9;
    return v;
  }
  [[nodiscard]] std::size_t link_count() const noexcept override { return links_.size(); }
  [[nodiscard]] bool link_connected(std::size_t c) const noexcept override {
    const std::lock_guard<std::mutex> lock(m_);
    return c < links_.size() && links_[c].connected;
  }
  bool link_stats(std::size_t c, io::LinkStats& out) const override {
    const std::lock_guard<std::mutex> lock(m_);
    if (c >= links_.size()) return false;
    out = links_[c];
    return true;
  }
  [[nodiscard]] double link_poll_hz(std::size_t c) const noexcept override {
    return c < cfg_.controllers.size() ? cfg_.controllers[c].poll_hz : 0.0;
  }
  [[nodiscard]] const daemon::Directory& directory() const noexcept override { return dir_; }
  [[nodiscard]] const config::Config& config() const noexcept override { return cfg_; }
  [[nodiscard]] std::uint64_t control_overruns() const noexcept override { return 0; }
  [[nodiscard]] std::int64_t now_ns() const noexcept override {
    const std::lock_guard<std::mutex> lock(m_);
    return now_;
  }

  // ---- daemon::RequestSink -------------------------------------------------------------------

  [[nodiscard]] bool submit(const core::Request& r) override {
    const std::lock_guard<std::mutex> lock(m_);
    if (queue_full_) return false;
    requests_.push_back(r);
    ++stats_.requests;
    core::ResponseStatus st = core::ResponseStatus::ok;
    if (!injected_.empty()) {
      st = injected_.front();
      injected_.pop_front();
    } else {
      st = apply(r);
    }
    if (st != core::ResponseStatus::ok && st != core::ResponseStatus::pending && st != core::ResponseStatus::already)
      ++stats_.requests_refused;
    responses_.push_back(core::Response{r.id, st});
    return true;
  }
  [[nodiscard]] bool poll_response(core::Response& out) override {
    const std::lock_guard<std::mutex> lock(m_);
    if (hold_ || responses_.empty()) return false;
    out = responses_.front();
    responses_.pop_front();
    return true;
  }

 private:
  core::ChannelIndex index_of(const std::string& name) const {
    const auto i = dir_.find_channel(name);
    if (!i) throw std::invalid_argument("fake rig: unknown channel " + name);
    return *i;
  }

  // The model of the core (see the file comment). Under m_.
  core::ResponseStatus apply(const core::Request& r) {
    using core::ResponseStatus;
    switch (r.kind) {
      case core::RequestKind::assign: {
        if (r.channel >= channels_.size()) return ResponseStatus::refused_invalid;
        core::ChannelSnapshot& c = channels_[r.channel];
        if (c.role != core::Role::test) {
          c.limits = r.limits;
          return ResponseStatus::already;
        }
        const core::ChannelState state = samples_[r.channel].state;
        if (state == core::ChannelState::running) return ResponseStatus::refused_running;
        if (state == core::ChannelState::fault) return ResponseStatus::refused_fault;
        const bool up = links_[dir_.channels[r.channel].controller].connected;
        c.role = up ? core::Role::equalization : core::Role::pending;
        c.limits = r.limits;
        return up ? ResponseStatus::ok : ResponseStatus::pending;
      }
      case core::RequestKind::release: {
        if (r.channel >= channels_.size()) return ResponseStatus::refused_invalid;
        core::ChannelSnapshot& c = channels_[r.channel];
        if (c.role == core::Role::test) return ResponseStatus::already;
        c.role = core::Role::test;
        return ResponseStatus::ok;
      }
      case core::RequestKind::set_params:
        if (r.bus >= buses_.size()) return ResponseStatus::refused_invalid;
        buses_[r.bus].params = r.params;
        return ResponseStatus::ok;
      case core::RequestKind::stop_all:
      case core::RequestKind::resume:
        return ResponseStatus::ok;
    }
    return ResponseStatus::refused_invalid;
  }

  config::Config cfg_;
  daemon::Directory dir_;
  mutable std::mutex m_;
  std::vector<core::BusSnapshot> buses_;
  std::vector<daemon::MeterView> meters_;
  std::vector<core::ChannelSnapshot> channels_;
  std::vector<core::Sample> samples_;
  std::vector<io::LinkStats> links_;
  core::CycleStats stats_{};
  std::int64_t now_ = 1'000 * kMs;
  std::int64_t liveness_ns_ = 1'000 * kMs;
  bool stalled_ = false;
  bool queue_full_ = false;
  bool hold_ = false;
  std::deque<core::ResponseStatus> injected_;
  std::deque<core::Response> responses_;
  std::vector<core::Request> requests_;
};

}  // namespace eqd::test
