// The law registry and the mode every law honours (bus_law.hpp).
#include "eqd/core/bus_law.hpp"

#include <algorithm>
#include <cstring>

#include "eqd/core/adaptive_law.hpp"
#include "eqd/core/planned_law.hpp"
#include "eqd/core/equalizer.hpp"

namespace eqd::core {

namespace {
constexpr double kNsPerS = 1e9;

// The registry: one entry per law. Adding a law = its file, one LawKind value, one line here.
struct LawEntry {
  LawKind kind;
  const char* name;
};
constexpr LawEntry kLaws[] = {
    {LawKind::damped, "damped"},
    {LawKind::adaptive, "adaptive"},
    {LawKind::planned, "planned"},
};
}  // namespace

const char* to_string(LawKind k) noexcept {
  for (const LawEntry& e : kLaws)
    if (e.kind == k) return e.name;
  return "unknown";
}

bool parse_law_kind(const char* name, LawKind& out) noexcept {
  if (name == nullptr) return false;
  for (const LawEntry& e : kLaws) {
    if (std::strcmp(e.name, name) == 0) {
      out = e.kind;
      return true;
    }
  }
  return false;
}

const char* law_names() noexcept { return "damped, adaptive, planned"; }

std::unique_ptr<BusLaw> make_bus_law(LawKind k) {
  switch (k) {
    case LawKind::damped:
      return std::make_unique<DampedLaw>();
    case LawKind::adaptive:
      return std::make_unique<AdaptiveLaw>();
    // Without a plan board it never plans (the adaptive law); ControlCore builds it with its board.
    case LawKind::planned:
      return std::make_unique<PlannedLaw>();
  }
  return nullptr;
}

double Capacity::clamp(double v) const noexcept { return std::clamp(v, lo_W, hi_W); }

Capacity capacity_of(const LawInput& in) noexcept {
  return Capacity{-std::max(0.0, in.capacity_discharge_W), std::max(0.0, in.capacity_charge_W)};
}

double slew(double from, double to, double max_step) noexcept {
  return from + std::clamp(to - from, -max_step, max_step);
}

int sign_of(double v, double eps) noexcept { return v > eps ? 1 : (v < -eps ? -1 : 0); }

BusStatus bus_mode(bool any_fresh, bool any_test_stale, std::int64_t now_ns, const BusParams& p,
                   std::int64_t& hold_since_ns) noexcept {
  if (!any_fresh) return BusStatus::ramp_down;
  if (!any_test_stale) {
    hold_since_ns = -1;
    return BusStatus::ok;
  }
  // Hold on unknown test data, for at most hold_max_s.
  if (hold_since_ns < 0) hold_since_ns = now_ns;
  const double held_s = static_cast<double>(now_ns - hold_since_ns) / kNsPerS;
  return held_s > p.hold_max_s ? BusStatus::ramp_down : BusStatus::holding;
}

}  // namespace eqd::core
