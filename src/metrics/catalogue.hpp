#pragma once
// The metric catalogue of the collector (collector.cpp): one entry per metric family, in the order of
// `Id`. Internal to eqd_metrics; the public view is metric_catalogue() (collector.hpp). Immutable:
// any thread.

#include <array>
#include <cstddef>

#include "eqd/metrics/collector.hpp"

namespace eqd::metrics::detail {

// Index of each family in kCatalogue; the order of both must match (a unit test checks every family
// carries its own value, which a swap would break).
enum Id : std::size_t {
  kBuildInfo,
  kCycleDuration,
  kCycleLateness,
  kCycles,
  kOverruns,
  kLastCycleAge,
  kStalled,
  kStalls,
  kTornReads,
  kRequests,
  kRequestsRefused,
  kApiRequests,
  kPredictorTick,
  kPredictorMemory,
  kPredictorSaveErrors,
  kPredictorTickErrors,
  kHistoryRows,
  kHistoryErrors,
  kHistoryAge,
  kBusNet,
  kBusFree,
  kBusFreeForecast,
  kBusForecastSkill,
  kBusEqCommanded,
  kBusEqMeasured,
  kBusResidual,
  kBusTarget,
  kBusMode,
  kBusActiveWindow,
  kBusDemandQuarter,
  kBusDemandMax,  // issue #17
  kBusFillPower,  // issue #17, valley filling
  kBusStoredEnergy,
  kBusWindowNeed,
  kBusFillShortfall,
  kBusShaveLevel,
  kBusMeterUp,  // issue #19, the grid meter
  kBusMeterPower,
  kBusMeterAge,
  kBusMeterDifference,
  kBusMeterDisagreement,
  kBusMeterDisagreements,
  kBusMeterErrors,
  kBusMeterTrim,
  kBusCapacity,
  kBusStatus,
  kBusChannels,
  kBusEqChannels,
  kBusPendingChannels,
  kBusStaleChannels,
  kBusFaultedChannels,
  kBusOfflineChannels,
  kBusAtWindowLimit,
  kGridImport,
  kGridExport,
  kFreeImport,
  kFreeExport,
  kEqAbsorbed,
  kEqDelivered,
  kPlansApplied,
  kStatPath,
  kCtlUp,
  kCtlPolls,
  kCtlErrors,
  kCtlLatency,
  kCtlSampleAge,
  kCtlPollRate,
  kCtlReconnects,
  kCtlWrites,
  kCtlHeartbeats,
  kCtlRefusedFields,
  kCtlLinkErrors,
  kChVoltage,
  kChCurrent,
  kChPower,
  kChForecast,
  kChLearned,
  kChSkill,
  kChState,
  kChRole,
  kChHealth,
  kChSetpoint,
  kChWindow,
  kCount
};

/// The catalogue, indexed by Id.
extern const std::array<MetricInfo, kCount> kCatalogue;

}  // namespace eqd::metrics::detail
