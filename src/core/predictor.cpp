// Learned forecasts of test channels from their own history. See predictor.hpp and docs/control.md.
#include "eqd/core/predictor.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "eqd/core/control_core.hpp"

namespace eqd::core {

namespace {
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr std::uint32_t kMaxHorizon_s = 120;  // ForecastPath::kMaxHorizon_s
/// A gap without samples longer than this forgets the channel: its history no longer lines up in time
/// well enough to replay (the pattern ring would hold minutes of invented power).
constexpr std::int64_t kMaxGap_s = 300;
/// How far a step's expected duration may drift from its last one (fade shortens steps by far less
/// per cycle; a larger change is a different program, which the skill gate catches).
constexpr double kMaxDrift = 0.2;
constexpr std::uint32_t kMagic = 0x52505145;  // "EQPR"
constexpr std::uint32_t kVersion = 2;         // 2: the pattern ring's own count (pat_n_)

// Plain binary writer/reader for save()/load(): host layout (the file never leaves its machine; the
// daemon's file header records the layout so that a file from another architecture is refused).
struct Writer {
  std::vector<std::uint8_t>& out;
  template <class T>
  void pod(const T& v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
  }
  void floats(const std::vector<float>& v) {
    pod(static_cast<std::uint32_t>(v.size()));
    const auto* p = reinterpret_cast<const std::uint8_t*>(v.data());
    out.insert(out.end(), p, p + v.size() * sizeof(float));
  }
};
struct Reader {
  std::span<const std::uint8_t> in;
  std::size_t at = 0;
  bool ok = true;
  template <class T>
  T pod() {
    T v{};
    if (!ok || in.size() - at < sizeof(T)) {
      ok = false;
      return v;
    }
    std::memcpy(&v, in.data() + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  void floats(std::vector<float>& v, std::size_t max) {
    const auto n = pod<std::uint32_t>();
    if (!ok || n > max || (in.size() - at) / sizeof(float) < n) {
      ok = false;
      return;
    }
    v.resize(n);
    if (n == 0) return;  // an empty vector's data() may be null, which memcpy must not get
    std::memcpy(v.data(), in.data() + at, n * sizeof(float));
    at += n * sizeof(float);
  }
};
}  // namespace

// ---- ChannelPredictor -------------------------------------------------------------------------

double ChannelPredictor::StepTrace::expected_s() const noexcept {
  const double last = dur_last_s;
  if (dur_prev_s == 0) return last;
  // Linear drift between the last two occurrences (capacity fade shortens a CP discharge a little
  // every cycle), bounded so that one odd occurrence does not throw the next forecast far off.
  const double drifted = last + (last - static_cast<double>(dur_prev_s));
  return std::clamp(drifted, last * (1.0 - kMaxDrift), last * (1.0 + kMaxDrift));
}

float ChannelPredictor::StepTrace::at(double t_s) const noexcept {
  if (W.empty()) return kNaN;
  const double k = std::max(0.0, t_s) / static_cast<double>(res_s);
  const auto i = static_cast<std::size_t>(k);
  if (i + 1 >= W.size()) return W.back();
  const double frac = k - static_cast<double>(i);
  return static_cast<float>(W[i] + frac * (W[i + 1] - W[i]));
}

void ChannelPredictor::reset() {
  *this = ChannelPredictor{};  // releases every buffer: a reset channel costs nothing
}

void ChannelPredictor::release_pattern() {
  ring_.clear();
  ring_.shrink_to_fit();
  err_.clear();
  err_.shrink_to_fit();
  best_lag_ = 0;
  pat_n_ = 0;
}

void ChannelPredictor::rebase() {
  // What needs an unbroken timeline goes: the pattern history and its lag errors (the phase of the
  // repetition is unknown after a gap), the forecasts waiting to be scored, the step in progress (its
  // elapsed time is unknown, so it is not recorded). What each step did, when it ends and what follows,
  // and the skill and gate stay: a restart in the middle of a week-long test forecasts again as soon as
  // the next step starts.
  release_pattern();
  std::fill(made_.begin(), made_.end(), kNaN);
  cur_step_ = Sample::kNoStep;
  cur_cycle_ = Sample::kNoIndex;
  in_step_s_ = 0;
  rec_.W.clear();
  rec_.res_s = 1;
  rec_from_start_ = false;
  count_ = 0;
  last_t_ = std::numeric_limits<std::int64_t>::min();
}

double ChannelPredictor::skill() const noexcept {
  if (scored_ < horizon_s_ || scored_ == 0) return std::numeric_limits<double>::quiet_NaN();
  // Persistence that is (nearly) perfect leaves nothing to gain: below the floor both errors are noise.
  const double floor_W = 0.01 * scale_W_ + 1.0;
  return 1.0 - mae_f_ / std::max(mae_p_, floor_W);
}

std::size_t ChannelPredictor::memory_bytes() const noexcept {
  std::size_t b =
      (made_.capacity() + seen_.capacity() + ring_.capacity() + err_.capacity() + rec_.W.capacity()) * sizeof(float);
  b += traces_.capacity() * sizeof(StepTrace);
  for (const StepTrace& t : traces_) b += t.W.capacity() * sizeof(float);
  return b;
}

const ChannelPredictor::StepTrace* ChannelPredictor::find(std::uint16_t step) const noexcept {
  for (const StepTrace& t : traces_)
    if (t.step == step) return &t;
  return nullptr;
}

void ChannelPredictor::score(const PredictorParams& p, float x, std::uint32_t horizon_s) noexcept {
  const double ax = std::abs(static_cast<double>(x));
  // Plain averages while few values are in, then exponential weighting: no start-up bias either way.
  const double wa = std::max(1.0 / static_cast<double>(count_ + 1), 1.0 / p.skill_tau_s);
  scale_W_ += wa * (ax - scale_W_);
  if (count_ < horizon_s) return;
  const std::size_t k = static_cast<std::size_t>((count_ - horizon_s) % kScoreRing);
  const float before = seen_[k];
  // Seconds for which the method made no forecast (nothing learned yet, a step overdue) say nothing of
  // its skill: scored, they would only dilute it towards 0 and keep a good predictor off for long.
  if (std::isnan(made_[k])) return;
  const float f = made_[k];
  const double w = std::max(1.0 / static_cast<double>(scored_ + 1), 1.0 / p.skill_tau_s);
  const double ef = std::abs(static_cast<double>(f) - x), ep = std::abs(static_cast<double>(before) - x);
  mae_f_ += w * (ef - mae_f_);
  mae_p_ += w * (ep - mae_p_);
  // The same over an eighth of the window: a predictor that turns bad (the program changed) is
  // switched off within minutes, while the reported skill keeps its longer, steadier memory.
  const double wf = std::max(1.0 / static_cast<double>(scored_ + 1), 8.0 / p.skill_tau_s);
  fast_f_ += wf * (ef - fast_f_);
  fast_p_ += wf * (ep - fast_p_);
  ++scored_;
  const double s = skill();
  if (std::isnan(s)) return;
  const double fast = 1.0 - fast_f_ / std::max(fast_p_, 0.01 * scale_W_ + 1.0);
  // Hysteresis, and a minimum of scored seconds: one lucky minute does not open the gate.
  if (!gate_open_ && s > p.skill_on && fast > p.skill_on && scored_ >= 4ULL * horizon_s)
    gate_open_ = true;
  else if (gate_open_ && (fast < p.skill_off || s < p.skill_off))
    gate_open_ = false;
}

void ChannelPredictor::push_pattern(const PredictorParams& p, float x) {
  const std::uint32_t R = std::max<std::uint32_t>(p.ring_s, 2 * kMaxHorizon_s);
  const std::uint32_t max_lag = std::min(p.max_lag_s, R - 1);
  if (ring_.size() != R || err_.size() != max_lag) {
    ring_.assign(R, 0.0F);
    err_.assign(max_lag, 0.0F);
    pat_n_ = 0;  // a new ring knows no lag yet
    best_lag_ = 0;
  }
  const std::uint64_t n = pat_n_++;  // index of this sample in the ring's own timeline
  const auto pos = static_cast<std::uint32_t>(n % R);
  const auto lags = static_cast<std::uint32_t>(std::min<std::uint64_t>(n, max_lag));
  const auto a = static_cast<float>(std::exp(-1.0 / p.match_tau_s));
  const float b = 1.0F - a;
  float* e = err_.data();
  const float* r = ring_.data();
  // Lags 1..pos read ring positions pos-1..0, lags pos+1.. read R-1 downwards: two straight loops.
  const std::uint32_t first = std::min(lags, pos);
  for (std::uint32_t L = 1; L <= first; ++L) e[L - 1] = a * e[L - 1] + b * std::abs(x - r[pos - L]);
  for (std::uint32_t L = first + 1; L <= lags; ++L) e[L - 1] = a * e[L - 1] + b * std::abs(x - r[R + pos - L]);
  ring_[pos] = x;

  // The lag that repeats best, bias-corrected for how many comparisons it has had (n - L + 1):
  // an EWMA started at 0 after m terms is (1 - a^m) of its true level. Searched every kSearchEvery_s
  // seconds only: the period of a program does not change from one second to the next, and the search
  // costs twice the update (docs/benchmarks.md, bench_predictor).
  constexpr std::uint64_t kSearchEvery_s = 5;
  if (best_lag_ != 0 && n % kSearchEvery_s != 0) return;
  best_lag_ = 0;
  if (lags == 0 || n + 1 < p.min_overlap_s) return;
  double best = std::numeric_limits<double>::infinity();
  const double ad = a;
  for (int pass = 0; pass < 2; ++pass) {
    // Descending L: m = n - L + 1 grows, a^m shrinks by a each step.
    double pw = std::exp(-static_cast<double>(n - lags + 1) / p.match_tau_s);
    const double tol = pass == 0 ? 0.0 : best * 1.02 + 1e-3 * scale_W_;
    // Only lags of at least the horizon: a shorter one forecasts through its multiple (k·L >= horizon),
    // and scored at its own length it would win on any smooth signal (|x(t) - x(t-1)| is small) while
    // forecasting no better than persistence, hiding the real period (a flip every 300 s costs lag 1
    // one second of error, lag 30 thirty).
    const std::uint32_t min_lag = std::max<std::uint32_t>(1, horizon_s_);
    for (std::uint32_t L = lags; L >= min_lag; --L, pw *= ad) {
      if (n - L + 1 < p.min_overlap_s) continue;
      const double sc = static_cast<double>(e[L - 1]) / std::max(1e-12, 1.0 - pw);
      if (pass == 0)
        best = std::min(best, sc);
      else if (sc <= tol)
        best_lag_ = L;  // keeps the smallest such lag: a multiple of the period is no better
    }
  }
}

void ChannelPredictor::push_step(const PredictorParams& p, float x, std::uint32_t cycle, std::uint16_t step) {
  if (step != cur_step_ || cycle != cur_cycle_) {
    if (cur_step_ != Sample::kNoStep) {
      // The occurrence that just ended becomes its step's trace (if it was seen from its start).
      StepTrace* t = const_cast<StepTrace*>(find(cur_step_));
      if (t == nullptr && rec_from_start_) {
        if (traces_.size() >= p.max_steps) {
          t = &*std::min_element(traces_.begin(), traces_.end(),
                                 [](const StepTrace& a, const StepTrace& b) { return a.seen < b.seen; });
          *t = StepTrace{};
        } else {
          t = &traces_.emplace_back();
        }
        t->step = cur_step_;
      }
      if (t != nullptr) {
        t->next_step = step;
        t->seen = ++stamp_;
        if (rec_from_start_) {
          t->dur_prev_s = t->dur_last_s;
          t->dur_last_s = in_step_s_ + 1;
          t->res_s = rec_.res_s;
          // An exact copy: the recording buffer keeps its capacity for the next step (no regrowth),
          // and the trace holds no slack (memory per channel is budgeted, docs/benchmarks.md).
          t->W.assign(rec_.W.begin(), rec_.W.end());
          t->W.shrink_to_fit();
        }
      }
    }
    // The very first second may be mid-step, unless the program was seen starting.
    rec_from_start_ = cur_step_ != Sample::kNoStep || count_ > 0 || program_started_;
    program_started_ = false;
    cur_step_ = step;
    cur_cycle_ = cycle;
    in_step_s_ = 0;
    rec_.W.clear();
    rec_.res_s = 1;
  } else {
    ++in_step_s_;
  }
  if (in_step_s_ % rec_.res_s == 0) {
    if (rec_.W.capacity() < p.trace_cap + 1) rec_.W.reserve(p.trace_cap + 1);  // once: never more than this
    rec_.W.push_back(x);
    if (rec_.W.size() > p.trace_cap) {
      // Keep every other sample at twice the period: a long CC-CV charge costs at most trace_cap floats.
      std::size_t j = 0;
      for (std::size_t i = 0; i < rec_.W.size(); i += 2) rec_.W[j++] = rec_.W[i];
      rec_.W.resize(j);
      rec_.res_s *= 2;
    }
  }
}

float ChannelPredictor::predict_step(std::uint32_t horizon_s) const noexcept {
  if (!rec_from_start_) return kNaN;  // seen from mid-step (start-up, after a gap): its elapsed time is unknown
  const StepTrace* t = find(cur_step_);
  if (t == nullptr || t->dur_last_s == 0) return kNaN;
  double D = t->expected_s();
  const double e = in_step_s_;
  if (e >= D) return kNaN;  // overdue: when it ends is unknown, so persistence
  double at = e + horizon_s;
  // Walk into the following steps (short ones may be skipped over within the horizon).
  for (int depth = 0; depth < 8; ++depth) {
    if (at < D) return t->at(at);
    at -= D;
    t = find(t->next_step);
    if (t == nullptr || t->dur_last_s == 0) return kNaN;
    D = t->expected_s();
  }
  return kNaN;
}

float ChannelPredictor::step_forecast(const PredictorParams& p, float x, std::uint32_t horizon_s) {
  // A step seen for the first time has no trace to replay, but it may repeat within itself (a pulse
  // step's levels, a drive profile looped until a cutoff): while the present step has no trace, the
  // pattern matcher runs on its own timeline and forecasts; once every step it meets has a trace, its
  // buffers are released (step-keyed channels then cost what their traces cost).
  // (A step with a trace but seen from mid-way, after a restart, waits for its end as before: its
  // trace will serve from the next step on, and the ring would be learned for nothing.)
  const bool traced = find(cur_step_) != nullptr;
  if (!traced) {
    PredictorParams q = p;
    q.ring_s = p.step_ring_s;
    q.max_lag_s = p.step_max_lag_s;
    push_pattern(q, x);
  } else if (!ring_.empty()) {
    release_pattern();
  }
  const float f = predict_step(horizon_s);
  return std::isnan(f) && !traced ? predict_pattern(horizon_s) : f;
}

float ChannelPredictor::predict_pattern(std::uint32_t horizon_s) const noexcept {
  const std::uint32_t L = best_lag_;
  if (L == 0) return kNaN;
  const std::uint64_t k = (horizon_s + L - 1) / L;  // whole periods back so that the value is known
  const std::uint64_t back = k * L - horizon_s;     // seconds before now (the sample just pushed, index count_)
  const auto R = static_cast<std::uint64_t>(ring_.size());
  if (pat_n_ == 0 || back >= R || back > pat_n_ - 1) return kNaN;
  return ring_[static_cast<std::size_t>((pat_n_ - 1 - back) % R)];
}

float ChannelPredictor::observe(const PredictorParams& p, std::int64_t t_s, float power_W, std::uint32_t cycle,
                                std::uint16_t step, std::uint32_t horizon_s) {
  horizon_s = std::clamp<std::uint32_t>(horizon_s, 1, kMaxHorizon_s);
  const bool has_step = step != Sample::kNoStep;
  if (!std::isfinite(power_W)) return kNaN;
  if (horizon_s != horizon_s_ || has_step != step_mode_) {
    // A program that starts now (seconds without a step, then a step) is seen from its first step's
    // start: that step's occurrence is recorded, not skipped as one joined mid-way.
    const bool starts_now = has_step && !step_mode_ && count_ > 0 && horizon_s == horizon_s_;
    if (count_ > 0 || memory_bytes() != 0) reset();  // another horizon or kind of history: start over
    program_started_ = starts_now;
  } else if (last_t_ != std::numeric_limits<std::int64_t>::min() &&
             (t_s <= last_t_ - kMaxGap_s || t_s - last_t_ > kMaxGap_s)) {
    rebase();  // a long gap, or eqd restarted (another clock): keep what was learned, not the timeline
  }
  if (count_ > 0 && t_s <= last_t_) return kNaN;  // same second again (or the clock went back a little)
  horizon_s_ = horizon_s;
  step_mode_ = has_step;
  if (made_.empty()) {
    made_.assign(kScoreRing, kNaN);
    seen_.assign(kScoreRing, 0.0F);
  }
  // Fill a short gap with the last power, so that the rings stay one slot per second.
  const std::int64_t fill = count_ == 0 ? 0 : t_s - last_t_ - 1;
  float f = kNaN;
  for (std::int64_t g = 0; g <= fill; ++g) {
    const bool filler = g < fill;
    const float x = filler ? last_W_ : power_W;
    score(p, x, horizon_s);
    if (step_mode_) {
      push_step(p, x, filler ? cur_cycle_ : cycle, filler ? cur_step_ : step);
      f = step_forecast(p, x, horizon_s);
    } else {
      push_pattern(p, x);
      f = predict_pattern(horizon_s);
    }
    const auto k = static_cast<std::size_t>(count_ % kScoreRing);
    made_[k] = f;
    seen_[k] = x;
    ++count_;
  }
  last_t_ = t_s;
  last_W_ = power_W;
  // While the gate is open the channel always counts as announcing (what the method cannot tell is its
  // present power): the bus path then sees one steady set of announcing channels instead of one that
  // changes at every step boundary, which would move its median by whole channels.
  if (!gate_open_) return kNaN;
  return std::isnan(f) ? power_W : f;
}

void ChannelPredictor::save(std::vector<std::uint8_t>& out) const {
  Writer w{out};
  w.pod(kMagic);
  w.pod(kVersion);
  w.pod(last_t_);
  w.pod(last_W_);
  w.pod(horizon_s_);
  w.pod(static_cast<std::uint8_t>(step_mode_));
  w.pod(static_cast<std::uint8_t>(gate_open_));
  w.pod(count_);
  w.floats(made_);
  w.floats(seen_);
  w.pod(mae_f_);
  w.pod(mae_p_);
  w.pod(scale_W_);
  w.pod(fast_f_);
  w.pod(fast_p_);
  w.pod(scored_);
  w.floats(ring_);
  w.floats(err_);
  w.pod(best_lag_);
  w.pod(pat_n_);
  w.pod(static_cast<std::uint32_t>(traces_.size()));
  for (const StepTrace& t : traces_) {
    w.pod(t.step);
    w.pod(t.next_step);
    w.pod(t.res_s);
    w.pod(t.dur_last_s);
    w.pod(t.dur_prev_s);
    w.pod(t.seen);
    w.floats(t.W);
  }
  w.pod(rec_.res_s);
  w.floats(rec_.W);
  w.pod(cur_cycle_);
  w.pod(cur_step_);
  w.pod(in_step_s_);
  w.pod(static_cast<std::uint8_t>(rec_from_start_));
  w.pod(stamp_);
}

bool ChannelPredictor::load(std::span<const std::uint8_t> in) {
  reset();
  Reader r{in};
  constexpr std::size_t kMaxFloats = 1U << 22;  // far above any valid buffer: a corrupt length is refused
  ChannelPredictor c;
  if (r.pod<std::uint32_t>() != kMagic) return false;
  const auto version = r.pod<std::uint32_t>();
  if (version != kVersion && version != 1) return false;
  c.last_t_ = r.pod<std::int64_t>();
  c.last_W_ = r.pod<float>();
  c.horizon_s_ = r.pod<std::uint32_t>();
  c.step_mode_ = r.pod<std::uint8_t>() != 0;
  c.gate_open_ = r.pod<std::uint8_t>() != 0;
  c.count_ = r.pod<std::uint64_t>();
  r.floats(c.made_, kScoreRing);
  r.floats(c.seen_, kScoreRing);
  c.mae_f_ = r.pod<double>();
  c.mae_p_ = r.pod<double>();
  c.scale_W_ = r.pod<double>();
  c.fast_f_ = r.pod<double>();
  c.fast_p_ = r.pod<double>();
  c.scored_ = r.pod<std::uint64_t>();
  r.floats(c.ring_, kMaxFloats);
  r.floats(c.err_, kMaxFloats);
  c.best_lag_ = r.pod<std::uint32_t>();
  // Version 1 kept no count of its own for the ring: it ran from the learner's first second.
  c.pat_n_ = version >= 2 ? r.pod<std::uint64_t>() : (c.ring_.empty() ? 0 : c.count_);
  const auto nt = r.pod<std::uint32_t>();
  if (!r.ok || nt > 4096) return false;
  c.traces_.resize(nt);
  for (StepTrace& t : c.traces_) {
    t.step = r.pod<std::uint16_t>();
    t.next_step = r.pod<std::uint16_t>();
    t.res_s = r.pod<std::uint32_t>();
    t.dur_last_s = r.pod<std::uint32_t>();
    t.dur_prev_s = r.pod<std::uint32_t>();
    t.seen = r.pod<std::uint64_t>();
    r.floats(t.W, kMaxFloats);
    if (t.res_s == 0) r.ok = false;
  }
  c.rec_.res_s = r.pod<std::uint32_t>();
  r.floats(c.rec_.W, kMaxFloats);
  c.cur_cycle_ = r.pod<std::uint32_t>();
  c.cur_step_ = r.pod<std::uint16_t>();
  c.in_step_s_ = r.pod<std::uint32_t>();
  c.rec_from_start_ = r.pod<std::uint8_t>() != 0;
  c.stamp_ = r.pod<std::uint64_t>();
  // Consistency: sizes that the code relies on (ring indexing, the score rings), and finite numbers.
  const bool rings_ok =
      (c.made_.empty() && c.seen_.empty()) || (c.made_.size() == kScoreRing && c.seen_.size() == kScoreRing);
  const bool pattern_ok = (c.ring_.empty() && c.err_.empty() && c.best_lag_ == 0 && c.pat_n_ == 0) ||
                          (!c.ring_.empty() && c.err_.size() < c.ring_.size() && c.best_lag_ <= c.err_.size());
  const bool nums_ok = std::isfinite(c.mae_f_) && std::isfinite(c.mae_p_) && std::isfinite(c.scale_W_) &&
                       std::isfinite(c.fast_f_) && std::isfinite(c.fast_p_) && std::isfinite(c.last_W_) &&
                       c.horizon_s_ <= kMaxHorizon_s && c.rec_.res_s != 0;
  if (!r.ok || r.at != in.size() || !rings_ok || !pattern_ok || !nums_ok) return false;
  *this = std::move(c);
  return true;
}

// ---- Predictor --------------------------------------------------------------------------------

double Predictor::BusGate::skill() const noexcept {
  if (scored < horizon_s || scored == 0) return std::numeric_limits<double>::quiet_NaN();
  return 1.0 - mae_f / std::max(mae_p, 0.01 * scale_W + 1.0);
}

void Predictor::BusGate::update(const PredictorParams& p, std::int64_t now_s, double free_W, double predicted_W,
                                std::uint32_t horizon) {
  if (horizon != horizon_s) {
    *this = BusGate{};
    horizon_s = horizon;
  }
  const std::int64_t h = std::max<std::int64_t>(1, horizon / 2);
  const auto slot = [](std::int64_t s) { return static_cast<std::size_t>(s % static_cast<std::int64_t>(kRing)); };
  const double wa = 1.0 / (p.skill_tau_s / 2.0);
  scale_W += std::max(wa, 1.0 / static_cast<double>(scored + 1)) * (std::abs(free_W) - scale_W);
  if (now_s >= h && at[slot(now_s - h)] == now_s - h) {
    const double w = std::max(1.0 / static_cast<double>(scored + 1), wa);
    mae_f += w * (std::abs(static_cast<double>(predicted[slot(now_s - h)]) - free_W) - mae_f);
    mae_p += w * (std::abs(static_cast<double>(seen[slot(now_s - h)]) - free_W) - mae_p);
    ++scored;
    const double s = skill();
    if (!std::isnan(s)) {
      if (!open && s > p.skill_on && scored >= 4ULL * horizon)
        open = true;
      else if (open && s < p.skill_off)
        open = false;
    }
  }
  predicted[slot(now_s)] = static_cast<float>(predicted_W);
  seen[slot(now_s)] = static_cast<float>(free_W);
  at[slot(now_s)] = now_s;
}

Predictor::Predictor(std::size_t channels, PredictorParams p) : p_(p), ch_(channels) {}

std::size_t Predictor::memory_bytes() const noexcept {
  std::size_t b = ch_.capacity() * sizeof(ChannelPredictor);
  for (const ChannelPredictor& c : ch_) b += c.memory_bytes();
  return b;
}

void Predictor::tick(std::int64_t now_ns, ControlCore& core) {
  constexpr std::int64_t kNsPerS = 1'000'000'000;
  constexpr std::int64_t kMaxSampleAge_ns = 5 * kNsPerS;
  const std::int64_t now_s = now_ns / kNsPerS;
  if (now_s == last_s_) return;
  last_s_ = now_s;
  LearnedForecasts& out = core.learned();
  const std::size_t nb = core.bus_count();
  bus_free_W_.assign(nb, 0.0);
  ahead_.assign(nb, LearnedAhead{});
  if (gates_.size() != nb) gates_.assign(nb, BusGate{});
  // Per bus: is learning on, and for which horizon (the bus's ForecastPath horizon).
  std::vector<std::uint32_t> horizon(nb, 0);
  for (std::size_t b = 0; b < nb; ++b) {
    const BusParams bp = core.bus(static_cast<BusIndex>(b)).params;
    if (bp.learn_forecast && bp.use_forecast)
      horizon[b] = static_cast<std::uint32_t>(std::lround(bp.forecast_horizon_s));
  }
  const std::size_t n = std::min(ch_.size(), core.channel_count());
  for (std::size_t i = 0; i < n; ++i) {
    ChannelPredictor& cp = ch_[i];
    const ChannelSnapshot cs = core.channel(static_cast<ChannelIndex>(i));
    if (cs.bus >= nb || horizon[cs.bus] == 0 || cs.role != Role::test) {
      // Not learning (a buffer, a channel of no bus, learning off): nothing kept, nothing published.
      if (cp.memory_bytes() != 0) cp.reset();
      out.publish(i, kNaN, now_s);
      out.set_skill(i, kNaN, false);
      out.mark_path(i, now_s, false);
      continue;
    }
    const Sample s = core.sample_slot(static_cast<ChannelIndex>(i)).load();
    const bool usable = s.valid && s.receive_time_ns > 0 && now_ns - s.receive_time_ns <= kMaxSampleAge_ns &&
                        s.state != ChannelState::offline && s.state != ChannelState::equalizing &&
                        !std::isfinite(s.forecast_W);  // an announcement wins: nothing to learn for it
    float f = kNaN;
    if (usable) f = cp.observe(p_, now_s, static_cast<float>(s.power_W), s.cycle_index, s.step_index, horizon[cs.bus]);
    out.publish(i, f, now_s);
    out.set_skill(i, static_cast<float>(cp.skill()), cp.gate_open());
    if (s.valid && s.receive_time_ns > 0 && s.state != ChannelState::equalizing)
      bus_free_W_[cs.bus] += to_bus_W(s.power_W, static_cast<double>(core.efficiency(static_cast<ChannelIndex>(i))));
    out.mark_path(i, now_s, usable && cp.gate_open());
    if (usable && cp.gate_open()) {
      // The channel's expected change, second by second, bus side (its converter's efficiency), into
      // its bus's path; where the method has nothing for a second, no change (persistence).
      LearnedAhead& a = ahead_[cs.bus];
      const double eff = static_cast<double>(core.efficiency(static_cast<ChannelIndex>(i)));
      const double now_bus_W = to_bus_W(s.power_W, eff);
      a.present_W += now_bus_W;
      for (std::uint32_t h = 1; h <= horizon[cs.bus] && h < LearnedAhead::kSlots; ++h) {
        const float fh = cp.forecast_ahead(h);
        if (std::isfinite(fh)) a.delta_W[h] += static_cast<float>(to_bus_W(static_cast<double>(fh), eff) - now_bus_W);
      }
      ++a.channels;
    }
  }
  for (std::size_t b = 0; b < nb; ++b) {
    LearnedAhead& a = ahead_[b];
    BusGate& g = gates_[b];
    if (horizon[b] == 0) {
      g = BusGate{};
    } else {
      const std::uint32_t h = std::max<std::uint32_t>(1, horizon[b] / 2);
      g.update(p_, now_s, bus_free_W_[b], bus_free_W_[b] + static_cast<double>(a.delta_W[h]), horizon[b]);
    }
    out.set_bus_skill(b, static_cast<float>(g.skill()));
    a.made_s = now_s;
    a.horizon_s = horizon[b];
    if (!g.open) a.channels = 0;  // scored, not used: the core sees nothing learned
    out.publish_ahead(b, a);
  }
}

}  // namespace eqd::core
