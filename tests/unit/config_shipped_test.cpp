// The shipped config/eqd.yaml and config/examples/: they parse, document every accepted key, and
// their defaults match the code's.
#include <cmath>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <set>

#include "config_test_util.hpp"
#include "../fakes/transport_settings.hpp"

using namespace eqd::config;

namespace {

const std::string kShipped = std::string(EQD_SOURCE_DIR) + "/config/eqd.yaml";

// Key paths of a YAML tree in accepted_key_paths() form: list items "[]", names of maps "*",
// keys of any register field of a map "FIELD".
void collect(const YAML::Node& node, const std::string& path, std::set<std::string>& out) {
  if (node.IsSequence()) {
    for (const auto& item : node) collect(item, path + "[]", out);
    return;
  }
  if (!node.IsMap()) return;
  // channel_bus entries are data ({N: bus}), not keys.
  if (path.size() >= 12 && path.compare(path.size() - 12, 12, ".channel_bus") == 0) return;
  const bool named_children = path == "maps" || path == "can_maps";
  const bool field_of_map =
      path.rfind("maps.*.", 0) == 0 && path != "maps.*.range" && std::count(path.begin(), path.end(), '.') == 2;
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string p;
    if (named_children)
      p = path + ".*";
    else if (field_of_map)
      p = "maps.*.FIELD." + it->first.Scalar();
    else
      p = (path.empty() ? "" : path + ".") + it->first.Scalar();
    out.insert(p);
    collect(it->second, p, out);
  }
}

}  // namespace

TEST_CASE("shipped eqd.yaml parses and is valid", "[config][shipped]") {
  const Config cfg = load_config(kShipped);
  CHECK(cfg.source_path == kShipped);
  REQUIRE(cfg.buses.size() == 1);
  REQUIRE(cfg.controllers.size() == 5);
  CHECK(cfg.controllers[4].transport == "neware");
  CHECK(cfg.controllers[3].transport == "sunspec");
  CHECK(cfg.controllers[2].transport == "can");
  CHECK(cfg.controllers[1].transport == "rtu");
  CHECK(eqd::test::modbus_of(cfg.controllers[1]).map.name == "example-rtu");
  REQUIRE(cfg.buffers.size() == 1);
  CHECK(cfg.buffers[0].bus == "main");
}

TEST_CASE("shipped eqd.yaml contains every accepted key", "[config][shipped]") {
  std::set<std::string> in_file;
  collect(YAML::LoadFile(kShipped), "", in_file);
  // A target schedule changes what a bus does at certain hours: the shipped file names it in a comment
  // and the peak-shaving example carries its keys (no window in a default configuration).
  std::set<std::string> in_peak;
  collect(YAML::LoadFile(std::string(EQD_SOURCE_DIR) + "/config/examples/eqd-peak.yaml"), "", in_peak);
  for (const std::string& key : in_peak)
    if (key.rfind("buses[].schedule", 0) == 0) in_file.insert(key);
  // Likewise a grid meter (issue #19): named in a comment, its keys in the meter example.
  std::set<std::string> in_meter;
  collect(YAML::LoadFile(std::string(EQD_SOURCE_DIR) + "/config/examples/eqd-meter.yaml"), "", in_meter);
  for (const std::string& key : in_meter)
    if (key.rfind("buses[].meter", 0) == 0) in_file.insert(key);
  for (const std::string& key : accepted_key_paths()) {
    INFO("key " << key << " is accepted by the parser but not documented in config/eqd.yaml");
    CHECK(in_file.count(key) == 1);
  }
  // And the other way round: the walk above must normalise like the parser, else the check is void.
  const auto accepted = accepted_key_paths();
  for (const std::string& key : in_file) {
    INFO("key " << key << " in config/eqd.yaml is not in accepted_key_paths()");
    CHECK(std::find(accepted.begin(), accepted.end(), key) != accepted.end());
  }
}

TEST_CASE("shipped eqd.yaml values are the code's defaults", "[config][shipped]") {
  const Config cfg = load_config(kShipped);
  const Config def;
  CHECK(cfg.log_level == def.log_level);
  CHECK(cfg.state_dir == def.state_dir);
  CHECK(cfg.loop.period_ms == def.loop.period_ms);
  CHECK(cfg.loop.shutdown_timeout_ms == def.loop.shutdown_timeout_ms);
  CHECK(cfg.api.socket_path == def.api.socket_path);
  CHECK(cfg.api.group == def.api.group);
  CHECK(cfg.metrics.enabled == def.metrics.enabled);
  CHECK(cfg.metrics.listen == def.metrics.listen);
  CHECK(cfg.metrics.per_channel == def.metrics.per_channel);
  CHECK(cfg.history.enabled == def.history.enabled);
  CHECK(def.history.path.empty());  // not given: <state_dir>/history.db, which the file spells out
  CHECK(cfg.history.path == def.state_dir + "/history.db");
  CHECK(cfg.history.retention_days == def.history.retention_days);

  const eqd::core::BusParams bp;
  const auto& p = cfg.buses[0].params;
  CHECK(p.target_W == bp.target_W);
  CHECK(p.tau_s == bp.tau_s);
  CHECK(p.deadband_W == bp.deadband_W);
  CHECK(p.slew_W_per_s == bp.slew_W_per_s);
  CHECK(p.flip_dwell_s == bp.flip_dwell_s);
  CHECK(p.update_interval_s == bp.update_interval_s);
  CHECK(p.trim_tau_s == bp.trim_tau_s);
  CHECK(p.trim_max_fraction == bp.trim_max_fraction);
  CHECK(p.hold_max_s == bp.hold_max_s);
  CHECK(p.max_age_ms == bp.max_age_ms);
  CHECK(p.lease_ms == bp.lease_ms);
  CHECK(cfg.buses[0].allow_any_tau == BusConfig{}.allow_any_tau);

  // The TCP controller shows the defaults of every key it uses.
  const ControllerConfig dc;
  const eqd::io::modbus::TcpSettings dtcp;
  const eqd::io::modbus::RtuSettings drtu;
  const ControllerConfig& c = cfg.controllers[0];
  CHECK(c.transport == dc.transport);
  CHECK(eqd::test::tcp_of(c).port == dtcp.port);
  CHECK(eqd::test::tcp_of(c).unit_id == dtcp.unit_id);
  CHECK(eqd::test::tcp_of(c).profile == dtcp.profile);
  CHECK(c.poll_hz == dc.poll_hz);
  CHECK(c.timeout_ms == dc.timeout_ms);
  CHECK(c.backoff_initial_ms == dc.backoff_initial_ms);
  CHECK(c.backoff_max_ms == dc.backoff_max_ms);
  CHECK(c.channels == eqd::test::tcp_of(c).map.channel_count);
  // The RTU controller shows the serial defaults.
  const auto& r = eqd::test::rtu_of(cfg.controllers[1]);
  CHECK(r.baud == drtu.baud);
  CHECK(r.parity == drtu.parity);
  CHECK(r.data_bits == drtu.data_bits);
  CHECK(r.stop_bits == drtu.stop_bits);
}

TEST_CASE("example eqd-meter.yaml parses: a SunSpec meter and a register meter", "[config][shipped]") {
  const Config cfg = load_config(std::string(EQD_SOURCE_DIR) + "/config/examples/eqd-meter.yaml");
  REQUIRE(cfg.buses.size() == 2);
  REQUIRE(cfg.buses[0].meter);
  REQUIRE(cfg.buses[1].meter);
  const MeterConfig def;
  const MeterConfig& s = *cfg.buses[0].meter;
  CHECK(s.transport == "sunspec");
  CHECK(s.base_address == -1);
  CHECK_FALSE(s.power);
  // The SunSpec meter shows the defaults.
  CHECK(s.port == def.port);
  CHECK(s.unit_id == def.unit_id);
  CHECK(s.export_positive == def.export_positive);
  CHECK(s.poll_hz == def.poll_hz);
  CHECK(s.timeout_ms == def.timeout_ms);
  CHECK(s.tolerance_W == def.tolerance_W);
  CHECK(s.persistence_s == def.persistence_s);
  CHECK(s.max_age_ms == def.max_age_ms);
  CHECK(s.trim == def.trim);
  CHECK(s.trim_tau_s == def.trim_tau_s);
  CHECK(s.trim_max_W == def.trim_max_W);
  const MeterConfig& r = *cfg.buses[1].meter;
  CHECK(r.transport == "modbus");
  CHECK(r.export_positive);
  REQUIRE(r.power);
  CHECK(r.power->address == 30775);
  CHECK(r.power->type == eqd::io::modbus::DataType::i32);
}

TEST_CASE("example eqd-peak.yaml parses: caps mode and a target schedule", "[config][shipped]") {
  const Config cfg = load_config(std::string(EQD_SOURCE_DIR) + "/config/examples/eqd-peak.yaml");
  REQUIRE(cfg.buses.size() == 1);
  const BusConfig& b = cfg.buses[0];
  CHECK(b.params.mode == eqd::core::BusMode::caps);
  CHECK(b.params.import_limit_W == 25000.0);
  REQUIRE(b.schedule.size() == 3);
  CHECK(b.schedule[0].days == 0x1f);
  CHECK(b.schedule[0].start_min == 17 * 60);
  CHECK(b.schedule[0].end_min == 20 * 60);
  CHECK(b.schedule[0].mode == eqd::core::BusMode::caps);
  CHECK(b.schedule[0].import_limit_W == 15000.0);
  CHECK(std::isnan(b.schedule[0].export_limit_W));  // the bus's own
  CHECK(b.schedule[1].days == 0x7f);
  CHECK(b.schedule[1].end_min == 6 * 60);
  CHECK(b.schedule[1].mode == eqd::core::BusMode::balance);
  CHECK(b.schedule[1].target_W == 6000.0);
  CHECK(b.schedule[2].days == 0x60);
  CHECK(b.schedule[2].export_limit_W == 3000.0);
  CHECK(std::isnan(b.schedule[2].import_limit_W));
}

TEST_CASE("example eqd-rtu.yaml parses: RTU controller with a custom map", "[config][shipped]") {
  const Config cfg = load_config(std::string(EQD_SOURCE_DIR) + "/config/examples/eqd-rtu.yaml");
  REQUIRE_FALSE(cfg.controllers.empty());
  const ControllerConfig& c = cfg.controllers[0];
  CHECK(c.transport == "rtu");
  const auto& m = eqd::test::rtu_of(c);
  CHECK(m.profile != eqd::io::modbus::kDefaultProfileName);
  CHECK(cfg.maps.count(m.profile) == 1);
  CHECK(m.map.name == m.profile);
  CHECK_FALSE(cfg.buffers.empty());
}

TEST_CASE("the controller keys docs/modbus-profile.md names for a Modbus link are accepted", "[config][shipped]") {
  std::ifstream in(std::string(EQD_SOURCE_DIR) + "/docs/modbus-profile.md");
  REQUIRE(in);
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string lower = doc;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  const auto at = lower.find("keys of a controller's modbus link");
  REQUIRE(at != std::string::npos);
  const auto start = doc.find("): ", at);
  REQUIRE(start != std::string::npos);
  const auto end = doc.find(". ", start);
  REQUIRE(end != std::string::npos);
  const std::string list = doc.substr(start, end - start);
  const auto accepted = accepted_key_paths();
  int keys = 0;
  for (auto tick = list.find('`'); tick != std::string::npos; tick = list.find('`', tick + 1)) {
    const auto close = list.find('`', tick + 1);
    REQUIRE(close != std::string::npos);
    const std::string key = list.substr(tick + 1, close - tick - 1);
    tick = close;
    INFO("docs/modbus-profile.md names `" << key << "` as a controller key, but the configuration rejects it");
    CHECK(std::find(accepted.begin(), accepted.end(), "controllers[]." + key) != accepted.end());
    ++keys;
  }
  CHECK(keys >= 10);
}
