#pragma once
// A small driver for ControlCore tests: one bus of test and buffer channels whose samples the test
// writes directly, in virtual time. Buffers follow their commands ideally unless told otherwise.
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "eqd/core/control_core.hpp"

namespace eqd::test {

struct CoreFixture {
  static constexpr std::int64_t kMs = 1'000'000;

  explicit CoreFixture(std::size_t channels, core::BusParams params = {}, std::size_t buses = 1,
                       core::LawFactory make_law = {}) {
    core::CoreConfig cfg;
    cfg.buses.assign(buses, params);
    cfg.make_law = std::move(make_law);
    cfg.channels.resize(channels);
    core = std::make_unique<core::ControlCore>(cfg);
    power.assign(channels, 0.0);
    voltage.assign(channels, 50.0);
    state.assign(channels, core::ChannelState::idle);
    eq_mode.assign(channels, false);
    follow.assign(channels, true);
    fresh.assign(channels, true);
    last_time.assign(channels, 0);
    forecast.assign(channels, std::numeric_limits<float>::quiet_NaN());
    soc.assign(channels, std::numeric_limits<float>::quiet_NaN());
  }

  static core::BufferLimits limits(double max_W = 2000.0) {
    core::BufferLimits l;
    l.max_charge_W = max_W;
    l.max_discharge_W = max_W;
    l.v_min_V = 40.0;
    l.v_max_V = 56.0;
    l.hysteresis_V = 0.5;
    return l;
  }

  /// Publish every channel's sample (the fresh ones) at now, run one cycle, let buffers follow.
  void step() {
    for (std::size_t i = 0; i < power.size(); ++i) {
      const core::Command c = core->command_slot(static_cast<core::ChannelIndex>(i)).load();
      // As a link would: an equalize command older than the liveness bound (default 1 s) is never sent.
      const bool sendable = !c.equalize || now_ns - c.issued_ns <= 1000 * kMs;
      if (follow[i] && c.sequence != 0 && sendable) {
        // An ideal controller: enters/leaves equalization mode and follows the setpoint.
        if (c.equalize && state[i] != core::ChannelState::running && state[i] != core::ChannelState::fault) {
          eq_mode[i] = true;
          state[i] = core::ChannelState::equalizing;
          power[i] = c.setpoint_W;
        } else if (!c.equalize && eq_mode[i]) {
          eq_mode[i] = false;
          state[i] = core::ChannelState::idle;
          power[i] = 0.0;
        }
      }
      if (fresh[i]) last_time[i] = now_ns;
      core::Sample s;
      s.voltage_V = voltage[i];
      s.power_W = power[i];
      s.forecast_W = forecast[i];
      s.soc_pct = soc[i];
      s.current_A = power[i] / voltage[i];
      s.state = state[i];
      s.equalization_mode = eq_mode[i];
      s.valid = true;
      s.receive_time_ns = last_time[i];
      if (fresh[i]) core->sample_slot(static_cast<core::ChannelIndex>(i)).store(s);
    }
    core->cycle(now_ns);
    now_ns += 100 * kMs;
  }
  void run_s(double seconds) {
    for (int k = 0; k < static_cast<int>(seconds * 10.0 + 0.5); ++k) step();
  }

  core::ResponseStatus request(core::Request r) {
    static std::uint64_t next_id = 1;
    r.id = next_id++;
    REQUIRE(core->submit(r));
    step();
    core::Response resp;
    REQUIRE(core->poll_response(resp));
    REQUIRE(resp.id == r.id);
    return resp.status;
  }
  core::ResponseStatus assign(core::ChannelIndex i, core::BufferLimits l = limits()) {
    core::Request r;
    r.kind = core::RequestKind::assign;
    r.channel = i;
    r.limits = l;
    return request(r);
  }
  core::ResponseStatus release(core::ChannelIndex i) {
    core::Request r;
    r.kind = core::RequestKind::release;
    r.channel = i;
    return request(r);
  }

  std::unique_ptr<core::ControlCore> core;
  std::vector<double> power, voltage;
  std::vector<core::ChannelState> state;
  std::vector<bool> eq_mode, follow, fresh;
  std::vector<std::int64_t> last_time;
  std::vector<float> forecast;  ///< announced mean power (Sample::forecast_W); NaN = none
  std::vector<float> soc;       ///< reported state of charge, % (Sample::soc_pct); NaN = none
  std::int64_t now_ns = 1'000'000'000;
};

}  // namespace eqd::test
