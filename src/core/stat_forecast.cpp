// Statistical short-term forecast of a bus's free power: fit (predictor thread), evaluation (control
// thread). See stat_forecast.hpp.
#include "eqd/core/stat_forecast.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace eqd::core {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t kNsPerS = 1'000'000'000;
constexpr int kMaxHorizon_s = static_cast<int>(StatModel::kSlots) - 1;
// Seconds of scores before the gate may open: a skill over fewer is noise.
constexpr int kMinScored = 60;
// The control thread tries the model's slot this often (a write in progress takes ns; a preempted
// writer must not delay the cycle).
constexpr int kReadAttempts = 4;

// Solves (R + lambda I) theta = r by Cholesky (3 x 3, row-major). False: not positive definite.
template <std::size_t N>
bool solve(const std::array<double, N * N>& R, const std::array<double, N>& r, double lambda,
           std::array<double, N>& theta) noexcept {
  std::array<double, N * N> L{};
  for (std::size_t i = 0; i < N; ++i) {
    for (std::size_t j = 0; j <= i; ++j) {
      double v = R[i * N + j] + (i == j ? lambda : 0.0);
      for (std::size_t k = 0; k < j; ++k) v -= L[i * N + k] * L[j * N + k];
      if (i == j) {
        if (!(v > 0.0)) return false;
        L[i * N + i] = std::sqrt(v);
      } else {
        L[i * N + j] = v / L[j * N + j];
      }
    }
  }
  std::array<double, N> z{};
  for (std::size_t i = 0; i < N; ++i) {
    double v = r[i];
    for (std::size_t k = 0; k < i; ++k) v -= L[i * N + k] * z[k];
    z[i] = v / L[i * N + i];
  }
  for (std::size_t i = N; i-- > 0;) {
    double v = z[i];
    for (std::size_t k = i + 1; k < N; ++k) v -= L[k * N + i] * theta[k];
    theta[i] = v / L[i * N + i];
  }
  return true;
}
}  // namespace

void stat_evaluate(const StatModel& m, double x_W, double x1_W, double x2_W, double mean_W, double lo_W, double hi_W,
                   double* delta_W) noexcept {
  const int n = static_cast<int>(std::min<std::uint32_t>(m.horizon_s, kMaxHorizon_s));
  delta_W[0] = 0.0;
  const double s = m.scale_W;
  if (!(s > 0.0) || !std::isfinite(x_W)) {
    for (int h = 1; h <= n; ++h) delta_W[h] = 0.0;
    return;
  }
  const double phi[StatModel::kFeatures] = {(x_W - x1_W) / s, (x1_W - x2_W) / s, (x_W - mean_W) / s};
  for (int h = 1; h <= n; ++h) {
    const auto& c = m.coef[static_cast<std::size_t>(h)];
    double y = 0.0;
    for (int i = 0; i < StatModel::kFeatures; ++i) y += static_cast<double>(c[static_cast<std::size_t>(i)]) * phi[i];
    delta_W[h] = std::clamp(x_W + m.gain * y * s, lo_W, hi_W) - x_W;
  }
}

StatFitter::StatFitter(const StatFitParams& p) : p_(p) {
  p_.horizon_s = std::clamp(p_.horizon_s, 1, kMaxHorizon_s);
  p_.gate_h_s = std::clamp(p_.gate_h_s, 1, p_.horizon_s);
  const auto ring = static_cast<std::size_t>(kRing);
  x_.assign(ring, 0.0);
  mean_.assign(ring, 0.0);
  scale_.assign(ring, 0.0);
  made_.assign(ring, kNaN);
  const auto nh = static_cast<std::size_t>(p_.horizon_s) + 1;
  sums_.assign(nh, Mat{});
  wsum_.assign(nh, 0.0);
  r_.assign(nh, Vec{});
  theta_.assign(nh, Vec{});
  delta_.assign(static_cast<std::size_t>(kMaxHorizon_s) + 1, 0.0);
}

double StatFitter::skill() const noexcept { return scored_ > 0 && mae_p_ > 0.0 ? 1.0 - mae_f_ / mae_p_ : kNaN; }

StatFitter::Vec StatFitter::features(std::int64_t t) const noexcept {
  const double s = scale_[at(t)];
  const double inv = s > 0.0 ? 1.0 / s : 0.0;
  return {(x_at(t) - x_at(t - 1)) * inv, (x_at(t - 1) - x_at(t - 2)) * inv, (x_at(t) - mean_[at(t)]) * inv};
}

void StatFitter::range(double& lo_W, double& hi_W) const noexcept {
  lo_W = hi_W = x_at(last_t_);
  for (std::int64_t k = 1; k < std::min<std::int64_t>(n_, kRangeS); ++k) {
    lo_W = std::min(lo_W, x_at(last_t_ - k));
    hi_W = std::max(hi_W, x_at(last_t_ - k));
  }
}

void StatFitter::observe(std::int64_t t, double x_W) noexcept {
  if (t < 0 || !std::isfinite(x_W)) {
    n_ = 0;  // no value this second: the history restarts at the next one
    return;
  }
  if (last_t_ >= 0 && t != last_t_ + 1) n_ = 0;  // a gap: start the history again (the fit is kept)
  last_t_ = t;
  x_[at(t)] = x_W;
  const double d = n_ > 0 ? x_W - x_at(t - 1) : 0.0;
  if (n_ == 0) {
    mean_now_ = x_W;
    scale_now_ = 0.0;
  } else {
    mean_now_ += (x_W - mean_now_) / std::max(1.0, std::min(static_cast<double>(n_), p_.level_tau_s));
    scale_now_ += (std::abs(d) - scale_now_) / std::min(static_cast<double>(n_), 300.0);
  }
  mean_[at(t)] = mean_now_;
  scale_[at(t)] = scale_now_;
  ++n_;
  score(t, x_W);
  fit(t, x_W);
  forecast();
  made_[at(t)] = x_W + delta_[static_cast<std::size_t>(p_.gate_h_s)];
  const double sk = skill();
  // Shut before warm-up and while unscored; else open above skill_on, shut below skill_off.
  if (n_ < p_.warmup_s || scored_ < kMinScored || !std::isfinite(sk) || (gate_open_ && sk < p_.skill_off))
    gate_open_ = false;
  else if (!gate_open_ && sk > p_.skill_on)
    gate_open_ = true;
}

// The forecast made gate_h_s ago against persistence over the same gate_h_s.
void StatFitter::score(std::int64_t t, double x_W) noexcept {
  const int g = p_.gate_h_s;
  if (n_ <= g) return;
  const double f = made_[at(t - g)];
  if (!std::isfinite(f)) return;
  const double a = 1.0 / p_.gate_memory_s;
  mae_f_ += a * (std::abs(x_W - f) - mae_f_);
  mae_p_ += a * (std::abs(x_W - x_at(t - g)) - mae_p_);
  ++scored_;
}

// Exponentially weighted least squares per horizon: the pair (phi(t - h), x(t) - x(t - h)) is complete
// at t; its R is the one of t - h (the ring sums_ holds the last horizon + 1 seconds' sums).
void StatFitter::fit(std::int64_t t, double x_W) noexcept {
  constexpr std::int64_t kOrder = 2;
  if (n_ <= kOrder + 1) return;
  const double lam = p_.forget;
  const auto nr = static_cast<std::int64_t>(sums_.size());
  const auto slot = static_cast<std::size_t>(t % nr);
  const auto prev = static_cast<std::size_t>((t - 1) % nr);
  const bool chain = n_ > kOrder + 2;  // the previous second's sum belongs to this history
  const Vec phi = features(t);
  for (std::size_t i = 0; i < kNf; ++i)
    for (std::size_t j = 0; j < kNf; ++j)
      sums_[slot][i * kNf + j] = (chain ? lam * sums_[prev][i * kNf + j] : 0.0) + phi[i] * phi[j];
  wsum_[slot] = (chain ? lam * wsum_[prev] : 0.0) + 1.0;
  for (int h = 1; h <= p_.horizon_s; ++h) {
    if (n_ <= kOrder + 2 + h) break;
    const std::int64_t t0 = t - h;
    const double s = scale_[at(t0)];
    if (!(s > 0.0)) continue;
    const Vec f0 = features(t0);
    const double y = (x_W - x_at(t0)) / s;
    Vec& r = r_[static_cast<std::size_t>(h)];
    for (std::size_t i = 0; i < kNf; ++i) r[i] = lam * r[i] + f0[i] * y;
    const auto s0 = static_cast<std::size_t>(t0 % nr);
    Vec th{};
    if (solve<kNf>(sums_[s0], r, p_.ridge * std::max(wsum_[s0], 1.0), th)) theta_[static_cast<std::size_t>(h)] = th;
  }
}

void StatFitter::forecast() noexcept {
  std::fill(delta_.begin(), delta_.end(), 0.0);
  if (n_ < p_.warmup_s) return;
  const StatModel m = model();
  const std::int64_t t = last_t_;
  stat_evaluate(m, x_at(t), x_at(t - 1), x_at(t - 2), m.mean_W, m.lo_W, m.hi_W, delta_.data());
}

StatModel StatFitter::model() const noexcept {
  StatModel m;
  if (last_t_ < 0) return m;
  m.made_s = last_t_;  // made, even when too early to be usable: the fit is alive
  m.horizon_s = static_cast<std::uint32_t>(p_.horizon_s);
  if (n_ < 3) return m;
  m.usable = gate_open_;
  m.skill_open = gate_open_;
  m.mean_W = mean_[at(last_t_)];
  m.scale_W = scale_[at(last_t_)];
  range(m.lo_W, m.hi_W);
  m.gain = p_.gain;
  m.level_tau_s = p_.level_tau_s;
  for (int h = 1; h <= p_.horizon_s; ++h)
    for (std::size_t i = 0; i < kNf; ++i)
      m.coef[static_cast<std::size_t>(h)][i] = static_cast<float>(theta_[static_cast<std::size_t>(h)][i]);
  return m;
}

StatFitterState StatFitter::save() const {
  StatFitterState s;
  s.horizon_s = p_.horizon_s;
  s.gate_h_s = p_.gate_h_s;
  if (last_t_ < 0 || n_ == 0) return s;
  s.n = n_;
  s.scored = scored_;
  s.gate_open = gate_open_;
  s.mean_now_W = mean_now_;
  s.scale_now_W = scale_now_;
  s.mae_forecast_W = mae_f_;
  s.mae_persistence_W = mae_p_;
  // Only the seconds of this history: older ring entries are from before a gap, never read again.
  const std::int64_t m = std::min(n_, kRing);
  for (std::int64_t k = 0; k < m; ++k) {
    const std::size_t i = at(last_t_ - k);
    s.x_W.push_back(x_[i]);
    s.mean_W.push_back(mean_[i]);
    s.scale_W.push_back(scale_[i]);
    s.made_W.push_back(made_[i]);
  }
  const auto nr = static_cast<std::int64_t>(sums_.size());
  for (std::int64_t k = 0; k < std::min(n_, nr); ++k) {
    const auto i = static_cast<std::size_t>((last_t_ - k) % nr);
    s.sums.insert(s.sums.end(), sums_[i].begin(), sums_[i].end());
    s.weights.push_back(wsum_[i]);
  }
  for (std::size_t h = 0; h < theta_.size(); ++h) {
    s.r.insert(s.r.end(), r_[h].begin(), r_[h].end());
    s.theta.insert(s.theta.end(), theta_[h].begin(), theta_[h].end());
  }
  return s;
}

bool StatFitter::restore(const StatFitterState& s, std::int64_t next_t_s) noexcept {
  const auto nr = static_cast<std::int64_t>(sums_.size());
  const auto nh = theta_.size();
  if (s.horizon_s != p_.horizon_s || s.gate_h_s != p_.gate_h_s || s.n <= 0 || next_t_s < 1 || s.scored < 0)
    return false;
  const auto m = static_cast<std::size_t>(std::min(s.n, kRing));
  const auto mr = static_cast<std::size_t>(std::min(s.n, nr));
  if (s.x_W.size() != m || s.mean_W.size() != m || s.scale_W.size() != m || s.made_W.size() != m ||
      s.sums.size() != mr * kNf * kNf || s.weights.size() != mr || s.r.size() != nh * kNf || s.theta.size() != nh * kNf)
    return false;
  const auto finite = [](const std::vector<double>& v) {
    return std::all_of(v.begin(), v.end(), [](double d) { return std::isfinite(d); });
  };
  const bool made_ok = std::all_of(s.made_W.begin(), s.made_W.end(), [](double d) { return !std::isinf(d); });
  if (!finite(s.x_W) || !finite(s.mean_W) || !finite(s.scale_W) || !made_ok || !finite(s.sums) || !finite(s.weights) ||
      !finite(s.r) || !finite(s.theta) || !std::isfinite(s.mean_now_W) || !(s.scale_now_W >= 0.0) ||
      !(s.mae_forecast_W >= 0.0) || !(s.mae_persistence_W >= 0.0) ||
      !std::isfinite(s.scale_now_W + s.mae_forecast_W + s.mae_persistence_W))
    return false;
  const std::int64_t last = next_t_s - 1;
  // The new clock may be younger than the history (a restart soon after boot): no second before its 0.
  const std::int64_t keep = std::min(s.n, last + 1);
  std::fill(made_.begin(), made_.end(), kNaN);
  for (std::int64_t k = 0; k < std::min<std::int64_t>(static_cast<std::int64_t>(m), keep); ++k) {
    const std::size_t i = at(last - k);
    const auto j = static_cast<std::size_t>(k);
    x_[i] = s.x_W[j];
    mean_[i] = s.mean_W[j];
    scale_[i] = s.scale_W[j];
    made_[i] = s.made_W[j];
  }
  for (Mat& R : sums_) R.fill(0.0);
  std::fill(wsum_.begin(), wsum_.end(), 0.0);
  for (std::int64_t k = 0; k < std::min<std::int64_t>(static_cast<std::int64_t>(mr), keep); ++k) {
    const auto i = static_cast<std::size_t>((last - k) % nr);
    const auto j = static_cast<std::size_t>(k);
    std::copy_n(s.sums.begin() + static_cast<std::ptrdiff_t>(j * kNf * kNf), kNf * kNf, sums_[i].begin());
    wsum_[i] = s.weights[j];
  }
  for (std::size_t h = 0; h < nh; ++h) {
    std::copy_n(s.r.begin() + static_cast<std::ptrdiff_t>(h * kNf), kNf, r_[h].begin());
    std::copy_n(s.theta.begin() + static_cast<std::ptrdiff_t>(h * kNf), kNf, theta_[h].begin());
  }
  std::fill(delta_.begin(), delta_.end(), 0.0);
  last_t_ = last;
  n_ = keep;
  mean_now_ = s.mean_now_W;
  scale_now_ = s.scale_now_W;
  mae_f_ = s.mae_forecast_W;
  mae_p_ = s.mae_persistence_W;
  scored_ = s.scored;
  gate_open_ = s.gate_open;
  return true;
}

void StatPath::reset() noexcept {
  x_s_.fill(-1);
  last_s_ = -1;
  have_ = false;
}

const double* StatPath::update(std::int64_t now_ns, double x_W, const Seqlock<StatModel>& slot,
                               int horizon_s) noexcept {
  // Read once per second only: the model is ~1.5 KB, the cycle runs every 100 ms.
  if (now_ns >= 0 && now_ns / kNsPerS != last_s_) {
    StatModel m;
    if (slot.try_load(m, kReadAttempts)) model_ = m;
  }
  return update(now_ns, x_W, model_, horizon_s);
}

const double* StatPath::update(std::int64_t now_ns, double x_W, const StatModel& m, int horizon_s) noexcept {
  if (now_ns < 0) return nullptr;
  const std::int64_t sec = now_ns / kNsPerS;
  if (sec == last_s_) return have_ ? delta_W_.data() : nullptr;
  last_s_ = sec;
  have_ = false;
  if (!std::isfinite(x_W)) return nullptr;
  const auto k = [](std::int64_t s) { return static_cast<std::size_t>(s % 3); };
  x_W_[k(sec)] = x_W;
  x_s_[k(sec)] = sec;
  // The model must be usable, made for this horizon, and fresh: a fit older than 2 s is "no path".
  if (!m.usable || m.made_s < 0 || sec - m.made_s > 2 || sec < m.made_s || static_cast<int>(m.horizon_s) != horizon_s ||
      horizon_s < 1 || horizon_s > kMaxHorizon_s)
    return nullptr;
  if (sec < 2 || x_s_[k(sec - 1)] != sec - 1 || x_s_[k(sec - 2)] != sec - 2) return nullptr;
  // The mean and the range one step on to this second's value (the model is a second old at most
  // when the predictor thread keeps up: one EWMA step is what it would have done).
  const double mean_W = sec > m.made_s ? m.mean_W + (x_W - m.mean_W) / std::max(1.0, m.level_tau_s) : m.mean_W;
  const double lo_W = std::min(m.lo_W, x_W), hi_W = std::max(m.hi_W, x_W);
  stat_evaluate(m, x_W, x_W_[k(sec - 1)], x_W_[k(sec - 2)], mean_W, lo_W, hi_W, delta_W_.data());
  have_ = true;
  return delta_W_.data();
}

}  // namespace eqd::core
