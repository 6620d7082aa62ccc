#pragma once
// Helpers shared by the control unit tests: a small rig config and a temporary directory.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "eqd/config/config.hpp"

namespace eqd::control::test {

/// Bus main (cab1/1..4, buffer cab1/4 from config) and bus aux (allow_any_tau, cab2/1..2). The
/// controllers point at a closed loopback port: every channel stays offline.
inline config::Config small_rig(const std::string& state_dir, const std::string& socket) {
  const std::string yaml =
      "state_dir: " + state_dir +
      "\n"
      "api: {socket: " +
      socket +
      ", group: nosuchgroup-eqd-test}\n"
      "metrics: {enabled: false}\n"
      "control_loop: {period_ms: 20, shutdown_timeout_ms: 200}\n"
      "buses:\n"
      "  - name: main\n"
      "  - name: aux\n"
      "    allow_any_tau: true\n"
      "controllers:\n"
      "  - {name: cab1, host: 127.0.0.1, port: 1, channels: 4, bus: main, backoff_initial_ms: 1000}\n"
      "  - {name: cab2, host: 127.0.0.1, port: 1, channels: 2, bus: aux, backoff_initial_ms: 1000}\n"
      "equalization:\n"
      "  - {channel: cab1/4, max_charge_W: 1000, max_discharge_W: 1000, v_min_V: 44, v_max_V: 56}\n";
  return config::parse_config(yaml, "control-test.yaml");
}

/// A fresh directory under /tmp, removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/eqd-control-test-XXXXXX";
    const char* p = mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace eqd::control::test
