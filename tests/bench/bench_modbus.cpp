/// @file bench_modbus.cpp
/// Transactions per second: a bare libmodbus read loop vs the Poller, against the same
/// eqd_modbus_server controller in the same process, same register block (16-channel default profile).
/// Usage: bench_modbus [seconds=3]

#include <modbus/modbus.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "eqd/io/modbus/poller.hpp"
#include "modbus_server.hpp"

using namespace eqd::io::modbus;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  auto backend = std::make_shared<eqd::sim::FakeControllerBackend>(16);
  eqd::sim::ServedController sc;
  sc.name = "bench";
  sc.backend = backend;
  eqd::sim::ModbusServer server({sc});
  server.start();
  const RegisterMap map = default_profile(16);
  const auto plan = plan_status_reads(map);

  // 1. Bare libmodbus: the planned requests back to back.
  modbus_t* ctx = modbus_new_tcp("127.0.0.1", server.port(0));
  modbus_set_slave(ctx, 1);
  if (modbus_connect(ctx) != 0) {
    std::fprintf(stderr, "connect failed: %s\n", modbus_strerror(errno));
    return 1;
  }
  std::uint16_t regs[kMaxReadRegisters];
  std::uint64_t bare = 0;
  auto t0 = Clock::now();
  const auto dur = std::chrono::duration<double>(seconds);
  while (Clock::now() - t0 < dur) {
    for (const auto& r : plan) {
      if (modbus_read_input_registers(ctx, r.address, r.count, regs) != r.count) {
        std::fprintf(stderr, "read failed: %s\n", modbus_strerror(errno));
        return 1;
      }
      ++bare;
    }
  }
  const double bare_s = std::chrono::duration<double>(Clock::now() - t0).count();
  modbus_close(ctx);
  modbus_free(ctx);

  // 2. Poller at an unreachable rate (1000 Hz = every cycle overruns): read + decode + publish +
  // command check + stats per cycle; transactions = reads (no commands, no heartbeat).
  std::vector<std::unique_ptr<eqd::core::Seqlock<eqd::core::Sample>>> samples;
  std::vector<std::unique_ptr<eqd::core::Seqlock<eqd::core::Command>>> commands;
  ChannelSlots slots;
  // No commands are written here (and no heartbeat): the control thread is never alive.
  static const std::atomic<std::int64_t> no_control_cycle{0};
  slots.cycle_clock = &no_control_cycle;
  PollerConfig cfg;
  cfg.name = "bench";
  cfg.port = server.port(0);
  cfg.poll_hz = 1000.0;
  cfg.timeout_ms = 500;
  cfg.map = map;
  cfg.heartbeat_period_ms = 0;
  for (int k = 0; k < 16; ++k) {
    samples.push_back(std::make_unique<eqd::core::Seqlock<eqd::core::Sample>>());
    commands.push_back(std::make_unique<eqd::core::Seqlock<eqd::core::Command>>());
    slots.samples.push_back(samples.back().get());
    slots.commands.push_back(commands.back().get());
    cfg.channel_slots.push_back(static_cast<eqd::core::ChannelIndex>(k));
  }
  Poller poller(cfg, slots);
  poller.start();
  while (!poller.connected()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto s0 = poller.stats();
  t0 = Clock::now();
  std::this_thread::sleep_for(dur);
  const auto s1 = poller.stats();
  const double poll_s = std::chrono::duration<double>(Clock::now() - t0).count();
  poller.stop();
  const double cycles = static_cast<double>(s1.polls_ok - s0.polls_ok);
  const double poller_tps = cycles * static_cast<double>(plan.size()) / poll_s;
  const double bare_tps = static_cast<double>(bare) / bare_s;
  std::printf("register block: 16 channels, %zu requests per cycle (", plan.size());
  for (const auto& r : plan) std::printf(" %u@%u", r.count, r.address);
  std::printf(" )\n");
  std::printf("bare libmodbus loop : %8.0f transactions/s (%llu in %.2f s)\n", bare_tps,
              static_cast<unsigned long long>(bare), bare_s);
  std::printf("poller (1000 Hz cfg): %8.0f transactions/s, %.0f cycles/s, achieved %.0f Hz, overruns %llu\n",
              poller_tps, cycles / poll_s, s1.achieved_hz, static_cast<unsigned long long>(s1.overruns - s0.overruns));
  std::printf("poller / bare       : %.2f\n", poller_tps / bare_tps);
  std::printf("poller read-phase latency: mean %.1f us over %llu cycles\n",
              1e6 * s1.latency.sum_s / static_cast<double>(s1.latency.count),
              static_cast<unsigned long long>(s1.latency.count));
  // The poller is rate-limited by design (poll_hz <= 1000); its read phase shows the per-transaction cost.
  const double per_tx_us =
      1e6 * s1.latency.sum_s / static_cast<double>(s1.latency.count) / static_cast<double>(plan.size());
  std::printf("poller read phase   : %.1f us per transaction = %.0f transactions/s equivalent (bare: %.1f us)\n",
              per_tx_us, 1e6 / per_tx_us, 1e6 / bare_tps);
  return 0;
}
