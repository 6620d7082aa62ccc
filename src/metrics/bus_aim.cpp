// The series of a bus's aim and demand figures. See bus_aim.hpp.
#include "bus_aim.hpp"

#include <cmath>
#include <cstddef>

namespace eqd::metrics::detail {

namespace {
void series(prometheus::MetricFamily& f, const std::vector<prometheus::ClientMetric::Label>& labels, const char* name,
            const char* value, double v) {
  prometheus::ClientMetric& m = f.metric.emplace_back();
  m.label = labels;
  m.label.push_back({name, value});
  m.gauge.value = v;
}
}  // namespace

void add_aim_series(prometheus::MetricFamily& mode, prometheus::MetricFamily& quarter, prometheus::MetricFamily& peak,
                    const core::BusSnapshot& s, const std::vector<prometheus::ClientMetric::Label>& labels) {
  // A state set, as eqd_bus_status: 1 for the mode in force, 0 for the other.
  for (std::size_t m = 0; m < core::kBusModeNames.size(); ++m)
    series(mode, labels, "mode", core::kBusModeNames[m], static_cast<std::size_t>(s.active_mode) == m ? 1.0 : 0.0);
  if (std::isfinite(s.demand_quarter_W)) {
    prometheus::ClientMetric& m = quarter.metric.emplace_back();
    m.label = labels;
    m.gauge.value = s.demand_quarter_W;
  }
  if (std::isfinite(s.demand_max_day_W)) series(peak, labels, "period", "day", s.demand_max_day_W);
  if (std::isfinite(s.demand_max_month_W)) series(peak, labels, "period", "month", s.demand_max_month_W);
}

void add_fill_series(prometheus::MetricFamily& fill, prometheus::MetricFamily& stored, prometheus::MetricFamily& need,
                     prometheus::MetricFamily& shortfall, prometheus::MetricFamily& level, const core::BusSnapshot& s,
                     const std::vector<prometheus::ClientMetric::Label>& labels) {
  auto one = [&](prometheus::MetricFamily& f, double v) {
    prometheus::ClientMetric& m = f.metric.emplace_back();
    m.label = labels;
    m.gauge.value = v;
  };
  one(fill, s.fill.fill_W);
  one(stored, s.fill.stored_J);
  if (std::isfinite(s.fill.need_J)) one(need, s.fill.need_J);
  one(shortfall, s.fill.shortfall_J);
  if (std::isfinite(s.fill.level_W)) one(level, s.fill.level_W);
}

void add_meter_series(prometheus::MetricFamily* f, const daemon::MeterView& m,
                      const std::vector<prometheus::ClientMetric::Label>& labels) {
  if (!m.configured) return;
  auto one = [&](prometheus::MetricFamily& fam, double v, bool counter = false) {
    prometheus::ClientMetric& c = fam.metric.emplace_back();
    c.label = labels;
    (counter ? c.counter.value : c.gauge.value) = v;
  };
  one(f[0], m.ok ? 1.0 : 0.0);
  if (m.ok && std::isfinite(m.status.power_W)) one(f[1], m.status.power_W);
  if (m.age_s >= 0.0) one(f[2], m.age_s);
  if (m.ok && std::isfinite(m.status.difference_W)) one(f[3], m.status.difference_W);
  one(f[4], m.status.disagreement ? 1.0 : 0.0);
  one(f[5], static_cast<double>(m.status.episodes), true);
  one(f[6], static_cast<double>(m.status.errors), true);
  if (m.trim && std::isfinite(m.status.trim_W)) one(f[7], m.status.trim_W);
}

}  // namespace eqd::metrics::detail
