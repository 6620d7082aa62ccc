#pragma once
// The series of a bus's aim in force and its demand figures (issue #17), for Collector::collect_buses
// (collector.cpp keeps the catalogue and the other families). Private to the metrics library.
#include <prometheus/metric_family.h>

#include <vector>

#include "eqd/core/snapshot.hpp"
#include "eqd/daemon/views.hpp"

namespace eqd::metrics::detail {

/// Appends bus `s`'s series to the families eqd_bus_mode (`mode`), the quarter-hour average import
/// (`quarter`) and its maxima (`peak`); a demand figure is left out while NaN (none yet). Any thread.
void add_aim_series(prometheus::MetricFamily& mode, prometheus::MetricFamily& quarter, prometheus::MetricFamily& peak,
                    const core::BusSnapshot& s, const std::vector<prometheus::ClientMetric::Label>& labels);

/// Appends bus `s`'s valley-filling series (docs/control.md "Valley filling") to the families of the
/// charge now (`fill`), the buffers' stored energy (`stored`), the next caps window's need (`need`, left
/// out while not known), the expected shortfall (`shortfall`) and level shaving's import level
/// (`level`, left out while no caps window is active). Any thread.
void add_fill_series(prometheus::MetricFamily& fill, prometheus::MetricFamily& stored, prometheus::MetricFamily& need,
                     prometheus::MetricFamily& shortfall, prometheus::MetricFamily& level, const core::BusSnapshot& s,
                     const std::vector<prometheus::ClientMetric::Label>& labels);

/// Appends a bus's grid-meter series (issue #19) to the eight families starting at `f`: up, power, age,
/// difference, disagreement, disagreements_total, errors_total, trim. Nothing for a bus without a meter;
/// power and difference only while it is up, age once it has read, trim only with meter.trim. Any
/// thread.
void add_meter_series(prometheus::MetricFamily* f, const daemon::MeterView& m,
                      const std::vector<prometheus::ClientMetric::Label>& labels);

}  // namespace eqd::metrics::detail
