// Benchmark of eqd's Modbus I/O against eqsim-style servers, figures as ratios to baselines measured in
// the same run (docs/benchmarks.md):
//  1. throughput: a free-running Poller vs a bare libmodbus read loop, same server, same registers
//     (goal >= 0.9x);
//  2. scale: how many controllers x 16 channels one eqd (control loop + one poller per controller)
//     keeps at 10 Hz, and the eqd-side CPU it costs (the servers run in a child process);
//  3. isolation: the p99 delay that one stalled controller adds to another controller's polls
//     (goal <= 1 ms).
// Usage: bench_io [--seconds S] [--max-controllers N]
#include <modbus/modbus.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "eqd/core/control_core.hpp"
#include "eqd/daemon/control_loop.hpp"
#include "eqd/io/modbus/codec.hpp"
#include "eqd/io/modbus/poller.hpp"
#include "modbus_server.hpp"

using namespace eqd;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::vector<sim::ServedController> make_controllers(std::size_t n, std::uint16_t base_port) {
  std::vector<sim::ServedController> v;
  for (std::size_t c = 0; c < n; ++c) {
    sim::ServedController sc;
    sc.name = "c" + std::to_string(c);
    sc.port = static_cast<std::uint16_t>(base_port + c);
    auto backend = std::make_shared<sim::FakeControllerBackend>(16);
    for (std::size_t k = 0; k < 16; ++k) backend->set_test_power(k, 100.0 * static_cast<double>(k) - 800.0);
    sc.backend = backend;
    sc.map.channel_count = 16;
    sc.heartbeat_timeout_ms = 0;
    v.push_back(std::move(sc));
  }
  return v;
}

core::CoreConfig core_config(std::size_t channels) {
  core::CoreConfig cfg;
  cfg.buses.resize(1);
  cfg.channels.resize(channels);
  return cfg;
}

io::modbus::PollerConfig poller_config(const std::string& name, std::uint16_t port, double hz, std::size_t first) {
  io::modbus::PollerConfig pc;
  pc.name = name;
  pc.host = "127.0.0.1";
  pc.port = port;
  pc.poll_hz = hz;
  pc.heartbeat_period_ms = 0;
  for (std::size_t k = 0; k < 16; ++k) pc.channel_slots.push_back(static_cast<core::ChannelIndex>(first + k));
  return pc;
}

// 1. Poller (free-running) vs bare loop, same server, same planned status reads.
void bench_throughput(double seconds) {
  sim::ModbusServer server(make_controllers(1, 0));
  server.start();
  const std::uint16_t port = server.port(0);
  const auto plan = io::modbus::plan_status_reads(io::modbus::default_profile(16), {});

  modbus_t* ctx = modbus_new_tcp("127.0.0.1", port);
  modbus_set_slave(ctx, 1);
  if (modbus_connect(ctx) != 0) {
    std::printf("throughput: cannot connect: %s\n", modbus_strerror(errno));
    return;
  }
  std::vector<std::uint16_t> regs(125);
  std::uint64_t bare = 0;
  auto t0 = Clock::now();
  while (seconds_since(t0) < seconds) {
    for (const auto& r : plan) {
      const int rc = r.table == io::modbus::Table::input
                         ? modbus_read_input_registers(ctx, r.address, r.count, regs.data())
                         : modbus_read_registers(ctx, r.address, r.count, regs.data());
      if (rc == r.count) ++bare;
    }
  }
  const double bare_rate = static_cast<double>(bare) / seconds_since(t0);
  modbus_close(ctx);
  modbus_free(ctx);

  core::ControlCore core(core_config(16));
  io::modbus::Poller poller(poller_config("c0", port, 100000.0, 0),
                            io::modbus::slots_from_core(core, poller_config("c0", port, 1, 0).channel_slots));
  poller.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // connect
  const auto s0 = poller.stats();
  t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const auto s1 = poller.stats();
  const double el = seconds_since(t0);
  poller.stop();
  server.stop();
  const double poller_rate = static_cast<double>(s1.polls_ok - s0.polls_ok) * static_cast<double>(plan.size()) / el;
  std::printf("throughput (16 channels = %zu read requests per poll):\n", plan.size());
  std::printf("  bare libmodbus loop      %8.0f transactions/s\n", bare_rate);
  std::printf("  poller, free-running     %8.0f transactions/s   ratio %.2f\n", poller_rate, poller_rate / bare_rate);
  const double read_us =
      (s1.latency.sum_s - s0.latency.sum_s) / static_cast<double>(s1.latency.count - s0.latency.count) * 1e6;
  const double cycle_us = el / static_cast<double>(s1.polls - s0.polls) * 1e6;
  std::printf("  poller cycle %.1f us, of which read phase %.1f us (bare: %.1f us for the same reads)\n", cycle_us,
              read_us, 1e6 * static_cast<double>(plan.size()) / bare_rate);
}

// 2. How many controllers at 10 Hz: servers in a child process, eqd side (core + control loop +
// pollers) in this one; CPU from getrusage of this process only.
void bench_scale(std::size_t max_controllers, double seconds) {
  std::printf("scale at 10 Hz (16 channels per controller; servers in a child process):\n");
  std::printf("  %11s %9s %14s %12s %10s\n", "controllers", "channels", "min achieved", "eqd CPU %", "overruns");
  for (std::size_t n : {8ul, 32ul, 64ul, 128ul, 256ul}) {
    if (n > max_controllers) break;
    const std::uint16_t base = 21000;
    int pipefd[2];
    if (pipe(pipefd) != 0) return;
    const pid_t child = fork();
    if (child == 0) {
      close(pipefd[0]);
      sim::ModbusServer server(make_controllers(n, base));
      server.start();
      char ok = 1;
      if (write(pipefd[1], &ok, 1) != 1) _exit(1);
      pause();  // until killed
      _exit(0);
    }
    close(pipefd[1]);
    char ready = 0;
    if (read(pipefd[0], &ready, 1) != 1) {
      std::printf("  %11zu: servers did not start\n", n);
      waitpid(child, nullptr, 0);
      close(pipefd[0]);
      break;
    }
    close(pipefd[0]);
    {
      core::ControlCore core(core_config(16 * n));
      daemon::ControlLoop loop(core, std::chrono::milliseconds(100));
      std::vector<std::unique_ptr<io::modbus::Poller>> pollers;
      for (std::size_t c = 0; c < n; ++c) {
        auto pc = poller_config("c" + std::to_string(c), static_cast<std::uint16_t>(base + c), 10.0, 16 * c);
        pollers.push_back(
            std::make_unique<io::modbus::Poller>(pc, io::modbus::slots_from_core(core, pc.channel_slots)));
      }
      loop.start();
      for (auto& p : pollers) p->start();
      std::this_thread::sleep_for(std::chrono::seconds(2));  // connect, settle the rate estimate
      std::vector<std::uint64_t> polls0;
      for (auto& p : pollers) polls0.push_back(p->stats().polls_ok);
      std::uint64_t over0 = 0;
      for (auto& p : pollers) over0 += p->stats().overruns;
      const double cpu0 = cpu_seconds();
      const auto t0 = Clock::now();
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
      const double el = seconds_since(t0);
      const double cpu = cpu_seconds() - cpu0;
      double min_hz = 1e9;
      std::uint64_t over = 0;
      for (std::size_t c = 0; c < n; ++c) {
        const auto st = pollers[c]->stats();
        min_hz = std::min(min_hz, static_cast<double>(st.polls_ok - polls0[c]) / el);
        over += st.overruns;
      }
      for (auto& p : pollers) p->stop();
      loop.stop();
      std::printf("  %11zu %9zu %11.2f Hz %11.1f %10llu\n", n, 16 * n, min_hz, 100.0 * cpu / el,
                  static_cast<unsigned long long>(over - over0));
    }
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  }
}

// 3. Stall isolation: controller B polled at 100 Hz; its poll intervals with controller A healthy,
// then with A stalled (no answers). The difference of the p99 intervals is what A's stall adds to B.
double p99_interval_ms(const core::ControlCore& core, core::ChannelIndex slot, double seconds) {
  std::vector<double> iv;
  std::uint32_t last_seq = core.sample_slot(slot).load().sequence;
  std::int64_t last_t = 0;
  const auto t0 = Clock::now();
  while (seconds_since(t0) < seconds) {
    const core::Sample s = core.sample_slot(slot).load();
    if (s.sequence != last_seq) {
      if (last_t != 0) iv.push_back(static_cast<double>(s.receive_time_ns - last_t) / 1e6);
      last_seq = s.sequence;
      last_t = s.receive_time_ns;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (iv.empty()) return -1.0;
  std::sort(iv.begin(), iv.end());
  return iv[static_cast<std::size_t>(0.99 * static_cast<double>(iv.size() - 1))];
}

void bench_stall(double seconds) {
  sim::ModbusServer server(make_controllers(2, 0));
  server.start();
  core::ControlCore core(core_config(32));
  auto pa = poller_config("a", server.port(0), 100.0, 0);
  auto pb = poller_config("b", server.port(1), 100.0, 16);
  pa.timeout_ms = 200;
  io::modbus::Poller a(pa, io::modbus::slots_from_core(core, pa.channel_slots));
  io::modbus::Poller b(pb, io::modbus::slots_from_core(core, pb.channel_slots));
  a.start();
  b.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const double healthy = p99_interval_ms(core, 16, seconds);
  server.controller(0).inject_stall(std::chrono::milliseconds(static_cast<int>(seconds * 1000 + 500)));
  const double stalled = p99_interval_ms(core, 16, seconds);
  const auto sa = a.stats();
  a.stop();
  b.stop();
  server.stop();
  std::printf("stall isolation (B at 100 Hz = 10 ms period; A stalled, %llu timeouts):\n",
              static_cast<unsigned long long>(sa.timeouts));
  std::printf("  p99 poll interval of B: A healthy %.3f ms, A stalled %.3f ms, added %.3f ms\n", healthy, stalled,
              stalled - healthy);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3.0;
  std::size_t max_controllers = 128;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = std::stod(argv[++i]);
    else if (!std::strcmp(argv[i], "--max-controllers") && i + 1 < argc)
      max_controllers = std::stoul(argv[++i]);
  }
  bench_throughput(seconds);
  bench_stall(seconds);
  bench_scale(max_controllers, seconds);
  return 0;
}
