// Statistical short-term forecast of a bus's free power (benchmark prototype). See stat_forecast.hpp.
#include "laws/stat_forecast.hpp"

#include <algorithm>
#include <limits>

namespace eqd::bench {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

StatForecaster::StatForecaster(const StatForecastParams& p) : p_(p) {
  p_.order = std::clamp(p_.order, 1, kMaxOrder);
  p_.horizon_s = std::clamp(p_.horizon_s, 1, kMaxHorizon);
  p_.gate_h_s = std::clamp(p_.gate_h_s, 1, p_.horizon_s);
  const bool direct = p_.method == StatForecastParams::Method::direct;
  nf_ = p_.order + (direct && p_.level_tau_s > 0.0 ? 1 : 0);
  const std::size_t nr = direct ? static_cast<std::size_t>(p_.horizon_s + 1) : 1;
  R_.assign(nr, std::vector<double>(static_cast<std::size_t>(nf_ * nf_), 0.0));
  wsum_.assign(nr, 0.0);
  const std::size_t nh = direct ? static_cast<std::size_t>(p_.horizon_s + 1) : 1;
  r_.assign(nh, std::array<double, kMaxFeatures>{});
  rw_.assign(nh, 0.0);
  theta_.assign(nh, std::array<double, kMaxFeatures>{});
  made_.fill(kNaN);
}

double StatForecaster::skill() const noexcept { return scored_ > 0 && mae_p_ > 0.0 ? 1.0 - mae_f_ / mae_p_ : kNaN; }

void StatForecaster::features(std::int64_t t, std::array<double, kMaxFeatures>& phi) const noexcept {
  const double s = scale_ring_[static_cast<std::size_t>(t % kRing)];
  const double inv = s > 0.0 ? 1.0 / s : 0.0;
  for (int i = 0; i < p_.order; ++i) phi[static_cast<std::size_t>(i)] = (x_at(t - i) - x_at(t - i - 1)) * inv;
  if (nf_ > p_.order)
    phi[static_cast<std::size_t>(p_.order)] = (x_at(t) - mean_ring_[static_cast<std::size_t>(t % kRing)]) * inv;
}

bool StatForecaster::solve(const double* R, const double* r, double wsum, double* theta) const noexcept {
  // Cholesky of R + ridge * wsum * I, then two triangular solves. nf <= 25: a few thousand flops.
  std::array<double, kMaxFeatures * kMaxFeatures> L{};
  const int n = nf_;
  const double lambda = p_.ridge * std::max(wsum, 1.0);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j <= i; ++j) {
      double v = R[i * n + j] + (i == j ? lambda : 0.0);
      for (int k = 0; k < j; ++k) v -= L[static_cast<std::size_t>(i * n + k)] * L[static_cast<std::size_t>(j * n + k)];
      if (i == j) {
        if (!(v > 0.0)) return false;
        L[static_cast<std::size_t>(i * n + i)] = std::sqrt(v);
      } else {
        L[static_cast<std::size_t>(i * n + j)] = v / L[static_cast<std::size_t>(j * n + j)];
      }
    }
  }
  std::array<double, kMaxFeatures> z{};
  for (int i = 0; i < n; ++i) {
    double v = r[i];
    for (int k = 0; k < i; ++k) v -= L[static_cast<std::size_t>(i * n + k)] * z[static_cast<std::size_t>(k)];
    z[static_cast<std::size_t>(i)] = v / L[static_cast<std::size_t>(i * n + i)];
  }
  for (int i = n - 1; i >= 0; --i) {
    double v = z[static_cast<std::size_t>(i)];
    for (int k = i + 1; k < n; ++k) v -= L[static_cast<std::size_t>(k * n + i)] * theta[k];
    theta[i] = v / L[static_cast<std::size_t>(i * n + i)];
  }
  return true;
}

void StatForecaster::observe(std::int64_t t, double x) {
  if (last_t_ >= 0 && t != last_t_ + 1) n_ = 0;  // a gap: start the history again (the fit is kept)
  last_t_ = t;
  const std::size_t k = static_cast<std::size_t>(t % kRing);
  ring_[k] = x;
  const double d = n_ > 0 ? x - x_at(t - 1) : 0.0;
  if (n_ == 0) {
    mean_ = x;
    scale_ = 0.0;
  } else {
    mean_ += (x - mean_) / std::max(1.0, std::min(static_cast<double>(n_), p_.level_tau_s));
    scale_ += (std::abs(d) - scale_) / std::min(static_cast<double>(n_), 300.0);
  }
  mean_ring_[k] = mean_;
  scale_ring_[k] = scale_;
  ++n_;

  // Score the forecast made gate_h_s ago against persistence over the same gate_h_s.
  const int g = p_.gate_h_s;
  if (n_ > g) {
    const double f = made_[static_cast<std::size_t>((t - g) % kRing)];
    if (std::isfinite(f)) {
      const double a = 1.0 / p_.gate_memory_s;
      mae_f_ += a * (std::abs(x - f) - mae_f_);
      mae_p_ += a * (std::abs(x - x_at(t - g)) - mae_p_);
      ++scored_;
    }
  }

  // Fit: exponentially weighted least squares, solved afresh.
  const double lam = p_.forget;
  std::array<double, kMaxFeatures> phi{};
  const auto add_outer = [this, lam](std::vector<double>& R, double& w, const std::vector<double>& prev, double wprev,
                                     const std::array<double, kMaxFeatures>& f) {
    for (int i = 0; i < nf_; ++i)
      for (int j = 0; j < nf_; ++j)
        R[static_cast<std::size_t>(i * nf_ + j)] = lam * prev[static_cast<std::size_t>(i * nf_ + j)] +
                                                   f[static_cast<std::size_t>(i)] * f[static_cast<std::size_t>(j)];
    w = lam * wprev + 1.0;
  };
  if (p_.method == StatForecastParams::Method::iterated && n_ > p_.order + 1) {
    features(t - 1, phi);
    const double s = scale_ring_[static_cast<std::size_t>((t - 1) % kRing)];
    if (s > 0.0) {
      add_outer(R_[0], wsum_[0], R_[0], wsum_[0], phi);
      for (int i = 0; i < nf_; ++i)
        r_[0][static_cast<std::size_t>(i)] =
            lam * r_[0][static_cast<std::size_t>(i)] + phi[static_cast<std::size_t>(i)] * d / s;
      std::array<double, kMaxFeatures> th{};
      if (solve(R_[0].data(), r_[0].data(), wsum_[0], th.data())) theta_[0] = th;
    }
  } else if (p_.method == StatForecastParams::Method::direct && n_ > p_.order + 1) {
    const int H = p_.horizon_s;
    const std::size_t nr = R_.size();
    features(t, phi);
    const std::size_t slot = static_cast<std::size_t>(t % static_cast<std::int64_t>(nr));
    const std::size_t prev = static_cast<std::size_t>((t - 1) % static_cast<std::int64_t>(nr));
    if (n_ > p_.order + 2)
      add_outer(R_[slot], wsum_[slot], R_[prev], wsum_[prev], phi);
    else
      add_outer(R_[slot], wsum_[slot], std::vector<double>(static_cast<std::size_t>(nf_ * nf_), 0.0), 0.0, phi);
    // Horizon h: the pair (phi(t - h), x(t) - x(t - h)) is complete now; its R is the one of t - h.
    for (int h = 1; h <= H; ++h) {
      const std::int64_t t0 = t - h;
      if (n_ <= p_.order + 2 + h) break;
      const double s = scale_ring_[static_cast<std::size_t>(t0 % kRing)];
      if (!(s > 0.0)) continue;
      std::array<double, kMaxFeatures> f0{};
      features(t0, f0);
      const double y = (x - x_at(t0)) / s;
      auto& r = r_[static_cast<std::size_t>(h)];
      for (int i = 0; i < nf_; ++i)
        r[static_cast<std::size_t>(i)] = lam * r[static_cast<std::size_t>(i)] + f0[static_cast<std::size_t>(i)] * y;
      const std::size_t s0 = static_cast<std::size_t>(t0 % static_cast<std::int64_t>(nr));
      std::array<double, kMaxFeatures> th{};
      if (solve(R_[s0].data(), r.data(), wsum_[s0], th.data())) theta_[static_cast<std::size_t>(h)] = th;
    }
  }
  forecast();
  made_[k] = x + delta_[static_cast<std::size_t>(g)];

  const double sk = skill();
  const bool scored = scored_ >= 60 && warm();
  if (p_.skill_on <= -1.0)
    gate_open_ = warm();
  else if (!scored || !std::isfinite(sk))
    gate_open_ = false;
  else if (gate_open_ && sk < p_.skill_off)
    gate_open_ = false;
  else if (!gate_open_ && sk > p_.skill_on)
    gate_open_ = true;
}

void StatForecaster::forecast() noexcept {
  delta_.fill(0.0);
  const std::int64_t t = last_t_;
  if (!warm() || p_.method == StatForecastParams::Method::persistence) return;
  const double s = scale_ring_[static_cast<std::size_t>(t % kRing)];
  if (!(s > 0.0)) return;
  std::array<double, kMaxFeatures> phi{};
  features(t, phi);
  const int H = p_.horizon_s;
  // A forecast never leaves the range the value took over the last kRangeS seconds: a fit that
  // extrapolates wildly after a step (measured on learn_mixed before this bound: skill -2 at 10 s)
  // cannot move the path further than the load itself went.
  double lo = x_at(t), hi = lo;
  for (std::int64_t k = 1; k < std::min<std::int64_t>(n_, kRangeS); ++k) {
    lo = std::min(lo, x_at(t - k));
    hi = std::max(hi, x_at(t - k));
  }
  const double x = x_at(t);
  if (p_.method == StatForecastParams::Method::mean) {
    const double m = mean_ring_[static_cast<std::size_t>(t % kRing)];
    for (int h = 1; h <= H; ++h) delta_[static_cast<std::size_t>(h)] = std::clamp(x + p_.gain * (m - x), lo, hi) - x;
    return;
  }
  if (p_.method == StatForecastParams::Method::direct) {
    for (int h = 1; h <= H; ++h) {
      double y = 0.0;
      for (int i = 0; i < nf_; ++i)
        y += theta_[static_cast<std::size_t>(h)][static_cast<std::size_t>(i)] * phi[static_cast<std::size_t>(i)];
      delta_[static_cast<std::size_t>(h)] = std::clamp(x + p_.gain * y * s, lo, hi) - x;
    }
    return;
  }
  // Iterated: predicted differences fed back as regressors (phi holds scaled differences, newest first).
  double sum = 0.0;
  for (int h = 1; h <= H; ++h) {
    double y = 0.0;
    for (int i = 0; i < nf_; ++i) y += theta_[0][static_cast<std::size_t>(i)] * phi[static_cast<std::size_t>(i)];
    for (int i = nf_ - 1; i > 0; --i) phi[static_cast<std::size_t>(i)] = phi[static_cast<std::size_t>(i - 1)];
    phi[0] = y;
    sum += y * s;
    delta_[static_cast<std::size_t>(h)] = std::clamp(x + p_.gain * sum, lo, hi) - x;
  }
}

}  // namespace eqd::bench
