// law_digest: the differential hash harness of the control core. Runs scenario files against the real
// ControlCore in the virtual-time harness and prints, per scenario and law, a 64-bit FNV-1a hash of every
// recorded signal of every bus (bit for bit: free, commanded and measured power, residual, grid meter,
// every buffer's setpoint, power, voltage and mode) and of the run's metrics.
//
// Two builds of the core that print the same digests commanded the same watts at the same instants on
// every scenario: a refactoring of the law or the core (issue #13) must leave them unchanged, and a
// change of the law's behaviour shows up here first. Usage:
//   law_digest SCENARIO.yaml...            print "<hash> <scenario>/<law>" lines
//   law_digest --check FILE SCENARIO.yaml... compare with a file of such lines; exit 1 on a difference
// See docs/architecture.md ("Adding a control law").
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "eqd/core/bus_law.hpp"
#include "eqd/sim/harness.hpp"
#include "eqd/sim/rig.hpp"
#include "eqd/sim/scenario.hpp"

namespace {

using namespace eqd;

struct Fnv {
  std::uint64_t h = 1469598103934665603ULL;
  void bytes(const void* p, std::size_t n) noexcept {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t k = 0; k < n; ++k) h = (h ^ b[k]) * 1099511628211ULL;
  }
  void f64(double v) noexcept {
    const auto bits = std::bit_cast<std::uint64_t>(v);
    bytes(&bits, sizeof bits);
  }
  template <class T>
  void all(const std::vector<T>& v) noexcept {
    const std::uint64_t n = v.size();
    bytes(&n, sizeof n);
    for (const T& x : v) {
      if constexpr (std::is_same_v<T, double>)
        f64(x);
      else
        bytes(&x, sizeof x);
    }
  }
};

// Every registered law, each on every bus of the scenario (whatever the file or the default says).
constexpr core::LawKind kLaws[] = {core::LawKind::damped, core::LawKind::adaptive};

std::string name_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  const auto dot = base.rfind(".yaml");
  return dot == std::string::npos ? base : base.substr(0, dot);
}

std::uint64_t digest(const std::string& path, core::LawKind kind) {
  sim::Scenario s = sim::load_scenario(path);
  for (sim::BusSpec& b : s.rig.buses) b.params.law = kind;
  sim::Rig rig(s.rig);
  sim::ControlCoreLaw law(sim::make_core_config(rig));
  sim::Harness h(rig, law, s.harness, s.events);
  h.run();
  Fnv f;
  for (std::size_t b = 0; b < rig.bus_count(); ++b) {
    const sim::BusTrace& t = h.trace(b);
    for (const auto* v : {&t.t_s, &t.free_W, &t.eq_commanded_W, &t.eq_measured_W, &t.residual_W, &t.grid_net_W,
                          &t.grid_free_W, &t.setpoint_W, &t.buffer_power_W, &t.buffer_voltage_V})
      f.all(*v);
    f.all(t.buffer_equalizing);
    const sim::BusMetrics m = h.metrics(b);
    for (double v : {m.grid_import_J, m.grid_export_J, m.residual_rms_W, m.residual_peak_W, m.direction_flips,
                     m.setpoint_travel_W, m.window_margin_min_V})
      f.f64(v);
    const core::BusSnapshot snap = law.core().bus(static_cast<core::BusIndex>(b));
    for (double v : {snap.desired_W, snap.eq_commanded_W, snap.setpoint_travel_W}) f.f64(v);
    f.bytes(&snap.updates, sizeof snap.updates);
    f.bytes(&snap.direction_flips, sizeof snap.direction_flips);
  }
  return f.h;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  std::string check;
  for (int k = 1; k < argc; ++k) {
    if (std::strcmp(argv[k], "--check") == 0 && k + 1 < argc) {
      check = argv[++k];
    } else if (argv[k][0] == '-') {
      std::fprintf(stderr, "law_digest: unknown option %s\nusage: law_digest [--check FILE] SCENARIO.yaml...\n",
                   argv[k]);
      return 2;
    } else {
      files.emplace_back(argv[k]);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: law_digest [--check FILE] SCENARIO.yaml...\n");
    return 2;
  }
  std::map<std::string, std::string> expected;
  if (!check.empty()) {
    std::ifstream in(check);
    if (!in) {
      std::fprintf(stderr, "law_digest: cannot read %s\n", check.c_str());
      return 2;
    }
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream ls(line);
      std::string hash, name;
      if (ls >> hash >> name) expected[name] = hash;
    }
  }
  int differ = 0;
  for (const std::string& path : files) {
    for (const core::LawKind law : kLaws) {
      char hex[17];
      try {
        std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(digest(path, law)));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "law_digest: %s: %s\n", path.c_str(), e.what());
        return 2;
      }
      const std::string name = name_of(path) + "/" + core::to_string(law);
      std::printf("%s %s\n", hex, name.c_str());
      if (!check.empty()) {
        const auto it = expected.find(name);
        if (it == expected.end()) {
          std::fprintf(stderr, "law_digest: %s: no expected digest in %s\n", name.c_str(), check.c_str());
          ++differ;
        } else if (it->second != hex) {
          std::fprintf(stderr, "law_digest: %s: digest %s, expected %s: the core commands differently\n", name.c_str(),
                       hex, it->second.c_str());
          ++differ;
        }
      }
    }
  }
  return differ == 0 ? 0 : 1;
}
