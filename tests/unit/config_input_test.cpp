// Hostile or broken configuration input: a quote that is never closed, binary files, huge files,
// files that are not files, hosts that are not hosts. Each error names file:line:column or the file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config_test_util.hpp"
#include "../fakes/transport_settings.hpp"

using namespace eqd::config;
using eqd::config::test::parse_error;
namespace fs = std::filesystem;

namespace {

// Line 5 holds the host; the buffers follow it, as in the issue's file.
std::string with_host_line(const std::string& host_line) {
  return "buses:\n"                     // 1
         "  - name: main\n"             // 2
         "controllers:\n"               // 3
         "  - name: cab1\n"             // 4
         + host_line +                  // 5
         "    port: 502\n"              // 6
         "equalization:\n"              // 7
         "  - channel: cab1/16\n"       // 8
         "    max_charge_W: 1000\n"     // 9
         "    max_discharge_W: 1000\n"  // 10
         "    v_min_V: 40\n"            // 11
         "    v_max_V: 56\n";           // 12
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "eqd-config-input-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

ConfigError load_error(const std::string& path) {
  try {
    (void)load_config(path);
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("expected a ConfigError, the file was accepted: " << path);
  return ConfigError("", 0, 0, "", "");
}

}  // namespace

TEST_CASE("an unterminated double quote is an error at the quote, not a host made of the file", "[config][input]") {
  // yaml-cpp 0.7 alone accepts this text when it ends with a line break (the case of every editor).
  const std::string text = with_host_line("    host: \"127.0.0.1\n");
  const ConfigError e = parse_error(text);
  CHECK(e.line == 5);
  CHECK(e.column == 11);
  CHECK(e.key_path == "controllers[0].host");
  CHECK_THAT(e.message, Catch::Contains("no closing \"") && Catch::Contains("end of the file"));
  CHECK_THAT(std::string(e.what()), Catch::StartsWith("t.yaml:5:11: controllers[0].host: "));

  SECTION("also without a final line break") {
    std::string t = text;
    t.pop_back();
    const ConfigError e2 = parse_error(t);
    CHECK(e2.line == 5);
    CHECK(e2.column == 11);
  }
  SECTION("also with trailing blank lines and comments") {
    const ConfigError e2 = parse_error(text + "\n\n# end\n");
    CHECK(e2.line == 5);
  }
}

TEST_CASE("an unterminated single quote is an error at the quote", "[config][input]") {
  const ConfigError e = parse_error(with_host_line("    host: '127.0.0.1\n"));
  CHECK(e.line == 5);
  CHECK(e.column == 11);
  CHECK_THAT(e.message, Catch::Contains("no closing '"));
}

TEST_CASE("a quote closed by a later, unrelated quote is refused at the opening quote", "[config][input]") {
  // Parses as YAML: host = "127.0.0.1 port: 502 ... description: " and the buffer entries vanish.
  const std::string text =
      "buses:\n"
      "  - name: main\n"
      "controllers:\n"
      "  - name: cab1\n"
      "    host: \"127.0.0.1\n"
      "    port: 502\n"
      "log_level: \"info\"\n";
  const ConfigError e = parse_error(text);
  CHECK(e.line == 5);
  CHECK(e.column == 11);
  CHECK(e.key_path == "controllers[0].host");
  CHECK_THAT(e.message, Catch::Contains("runs on to line 7") && Catch::Contains("closing \" missing"));
}

TEST_CASE("well-formed quoted values still parse", "[config][input]") {
  const std::string text = with_host_line("    host: \"cab1.lab\"   # a \"comment\" with 'quotes'\n") +
                           "log_level: 'info'\n"
                           "state_dir: \"/var/lib/e\\\"qd\"\n"
                           "api:\n"
                           "  socket: '/run/eqd/e''q.sock'\n"
                           "  group: 'eqd'\n";
  Config cfg;
  try {
    cfg = parse_config(text, "t.yaml");
  } catch (const ConfigError& e) {
    FAIL(e.what());
  }
  CHECK(eqd::test::tcp_of(cfg.controllers[0]).host == "cab1.lab");
  CHECK(cfg.state_dir == "/var/lib/e\"qd");
  CHECK(cfg.api.socket_path == "/run/eqd/e'q.sock");
}

TEST_CASE("hosts must be IP literals or RFC 1123 host names", "[config][input]") {
  SECTION("accepted") {
    for (const char* host : {"127.0.0.1", "192.168.10.21", "::1", "fe80::1", "cab1", "cab-1.lab.example",
                             "cab1.lab.example.", "10gw", "a1.b2"}) {
      INFO(host);
      CHECK_NOTHROW(parse_config(with_host_line(std::string("    host: \"") + host + "\"\n"), "t.yaml"));
    }
  }
  SECTION("refused, naming the key path and the value") {
    for (const char* host : {"127.0.0.1 and some words: here", "999.1.1.1", "127.1", "-cab1", "cab1-", "a..b", "cab_1",
                             "host:502", "[::1]", "http://cab1"}) {
      INFO(host);
      const ConfigError e = parse_error(with_host_line(std::string("    host: \"") + host + "\"\n"));
      CHECK(e.line == 5);
      CHECK(e.key_path == "controllers[0].host");
      CHECK_THAT(e.message, Catch::Contains(std::string("got '") + host + "'") &&
                                Catch::Contains("IPv4 or IPv6 address or an RFC 1123 host name"));
    }
    const std::string long_label(64, 'a');
    CHECK(parse_error(with_host_line("    host: " + long_label + ".lab\n")).key_path == "controllers[0].host");
  }
  SECTION("a huge value is cut in the message") {
    const std::string huge(5000, 'x');
    const ConfigError e = parse_error(with_host_line("    host: \"" + huge + " y\"\n"));
    CHECK(e.message.size() < 300);
    CHECK_THAT(e.message, Catch::Contains("(5002 characters)"));
  }
}

TEST_CASE("metrics.listen takes an IP literal and a port", "[config][input]") {
  CHECK_NOTHROW(parse_config(std::string(test::kBase) + "metrics:\n  listen: \"[::1]:9860\"\n", "t.yaml"));
  CHECK_NOTHROW(parse_config(std::string(test::kBase) + "metrics:\n  listen: 0.0.0.0:9860\n", "t.yaml"));
  for (const char* l : {"localhost:9860", "127.0.0.1 x:9860", "::1:9860", "127.0.0.1:0"}) {
    INFO(l);
    const ConfigError e = parse_error(std::string(test::kBase) + "metrics:\n  listen: \"" + l + "\"\n");
    CHECK(e.key_path == "metrics.listen");
  }
}

TEST_CASE("control characters are refused at their position", "[config][input]") {
  std::string text = with_host_line("    host: cab1\n");
  text.insert(text.find("port") + 2, std::string(1, '\0'));
  const ConfigError e = parse_error(text);
  CHECK(e.line == 6);
  CHECK(e.column == 7);
  CHECK_THAT(e.message, Catch::Contains("control character 0x00"));
  CHECK(parse_error("buses:\n  - name: m\x01\n").line == 2);
}

TEST_CASE("the configuration size is bounded", "[config][input]") {
  std::string text = test::kBase;
  text += "#" + std::string(kMaxConfigBytes, ' ') + "\n";
  const ConfigError e = parse_error(text);
  CHECK(e.line == 0);
  CHECK_THAT(e.message, Catch::Contains("at most 4194304 bytes"));
}

TEST_CASE("load_config refuses what is not a regular file, quickly", "[config][input]") {
  TempDir dir;
  const auto t0 = std::chrono::steady_clock::now();
  SECTION("a character device that never ends") {
    const ConfigError e = load_error("/dev/zero");
    CHECK(e.file == "/dev/zero");
    CHECK_THAT(e.message, Catch::Contains("is a character device, not a regular file"));
  }
  SECTION("a directory") { CHECK_THAT(load_error(dir.path.string()).message, Catch::Contains("is a directory")); }
  SECTION("a FIFO without a writer (would block a plain open)") {
    const fs::path fifo = dir.path / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THAT(load_error(fifo.string()).message, Catch::Contains("is a FIFO"));
  }
  SECTION("a regular file over the bound") {
    const fs::path big = dir.path / "big.yaml";
    {
      std::ofstream out(big);
      out << test::kBase << "#" << std::string(kMaxConfigBytes, ' ') << "\n";
    }
    const ConfigError e = load_error(big.string());
    CHECK_THAT(e.message, Catch::Contains("bytes (a configuration may have at most 4194304 bytes"));
  }
  SECTION("a symbolic link to a regular file is read") {
    const fs::path real = dir.path / "real.yaml";
    std::ofstream(real) << test::kBase;
    fs::create_symlink(real, dir.path / "link.yaml");
    CHECK(load_config((dir.path / "link.yaml").string()).controllers.size() == 1);
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
}

TEST_CASE("physical bounds: every power, voltage and current, in the file and in core::validate",
          "[config][input][bounds]") {
  struct Case {
    const char* where;  // "bus" or "buffer" or "range"
    const char* key;
    const char* value;
  };
  const Case cases[] = {
      {"bus", "target_W", "1e308"},        {"bus", "target_W", "-10000001"},
      {"bus", "deadband_W", "2e7"},        {"bus", "slew_W_per_s", "1e300"},
      {"buffer", "max_charge_W", "1e308"}, {"buffer", "max_discharge_W", "10000001"},
      {"buffer", "max_charge_A", "10001"}, {"buffer", "max_discharge_A", "1e9"},
      {"buffer", "v_max_V", "2001"},       {"buffer", "hysteresis_V", "5000"},
  };
  for (const Case& c : cases) {
    INFO(c.where << " " << c.key << " = " << c.value);
    std::string text = test::kBase;
    const std::string line = std::string(c.key) + ": " + c.value + "\n";
    if (std::string(c.where) == "bus") {
      text.insert(text.find("controllers:"), "    " + line);
    } else if (const auto at = text.find("    " + std::string(c.key) + ": "); at != std::string::npos) {
      text.replace(at, text.find('\n', at) + 1 - at, "    " + line);  // kBase sets it already
    } else {
      text += "    " + line;
    }
    const ConfigError e = parse_error(text);
    CHECK_THAT(e.key_path, Catch::EndsWith(c.key));
    CHECK_THAT(e.message, Catch::Contains("is out of range"));
  }
  SECTION("the bounds themselves are accepted") {
    std::string text = test::kBase;
    text.insert(text.find("controllers:"), "    target_W: -1e7\n    deadband_W: 1e7\n");
    const std::string big = "    max_charge_A: 10000\n    max_discharge_A: 10000\n";
    text.replace(text.find("    max_charge_W: 1000\n"), 22, "    max_charge_W: 1e7\n" + big);
    text.replace(text.find("    v_max_V: 56\n"), 16, "    v_max_V: 2000\n");
    CHECK_NOTHROW(parse_config(text, "t.yaml"));
  }
  SECTION("a map's plausible range too") {
    const ConfigError e = parse_error(std::string(test::kBase) +
                                      "maps:\n  m:\n    voltage: {address: 0}\n    current: {address: 1}\n"
                                      "    state: {address: 2}\n    cmd_enable: {table: holding, address: 0}\n"
                                      "    cmd_setpoint: {table: holding, address: 1}\n"
                                      "    range: {power_abs_max_W: 1e12}\n");
    CHECK(e.key_path == "maps.m.range.power_abs_max_W");
  }
  SECTION("--set overrides are bounded the same way") {
    Config cfg = parse_config(test::kBase, "t.yaml");
    const ConfigError e = test::override_error(cfg, "buses.main.target_W=1e308");
    CHECK(e.key_path == "buses.main.target_W");
    CHECK_THAT(e.message, Catch::Contains("expected -1e+07..1e+07 W"));
  }
  SECTION("core::validate, used by the control API and the state file, names the key") {
    eqd::core::BusParams p;
    p.target_W = 1e308;
    CHECK_THAT(std::string(eqd::core::validate(p, false)), Catch::StartsWith("target_W: must be within"));
    p.target_W = -1e7;
    CHECK(eqd::core::validate(p, false) == nullptr);
    p.deadband_W = 1.5e7;
    CHECK_THAT(std::string(eqd::core::validate(p, false)), Catch::StartsWith("deadband_W:"));
    eqd::core::BufferLimits l;
    l.max_charge_W = 1000;
    l.max_discharge_W = 1000;
    l.v_min_V = 40;
    l.v_max_V = 56;
    CHECK(eqd::core::validate(l) == nullptr);
    l.max_charge_W = 1e308;
    CHECK_THAT(std::string(eqd::core::validate(l)), Catch::StartsWith("max_charge_W: must be within 0..1e7 W"));
    l.max_charge_W = 1000;
    l.max_discharge_A = 2e4;
    CHECK_THAT(std::string(eqd::core::validate(l)), Catch::StartsWith("max_discharge_A:"));
    l.max_discharge_A = 0;
    l.v_max_V = 1e6;
    CHECK_THAT(std::string(eqd::core::validate(l)), Catch::StartsWith("v_max_V: must be within 0..2000 V"));
  }
}
