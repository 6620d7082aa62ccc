#pragma once
/// @file config.hpp
/// eqd's configuration: plain structs filled once from YAML (config/eqd.yaml documents every key),
/// validated as a whole, then adjusted by command-line overrides (`--set key.path=value`).
///
/// Thread-safety: the structs are plain data with no internal synchronisation. The daemon builds one
/// Config at start-up on the main thread and afterwards only shares it as `const`, which is safe from
/// any thread. The free functions are reentrant (no global state but the transport registry, which is
/// filled before the first configuration is read).
///
/// Channel numbers are 1-based everywhere in the configuration ("cab1/1" ... "cab1/16"), the way
/// cyclers label their channels; the register-map stride arithmetic converts to 0-based internally.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "eqd/core/schedule.hpp"
#include "eqd/core/params.hpp"
#include "eqd/io/transport.hpp"

namespace eqd::config {

/// Default location of the configuration file (`eqd --config`).
inline constexpr const char* kDefaultConfigPath = "/etc/eqd/eqd.yaml";

/// A bus's grid meter (buses[].meter; docs/devices.md "Grid meter"): read beside the computed net,
/// never the control input. Plain data.
struct MeterConfig {
  std::string transport;                        ///< meter.transport (required): sunspec | modbus
  std::string host;                             ///< meter.host (required): IP literal or host name
  std::uint16_t port = 502;                     ///< meter.port 1..65535
  int unit_id = 1;                              ///< meter.unit_id 0..247
  int base_address = -1;                        ///< meter.base_address (sunspec): auto (-1) | 0 | 40000 | 50000
  std::optional<eqd::io::modbus::Field> power;  ///< meter.power (modbus, required there): the register
  bool export_positive = false;                 ///< meter.sign: import_positive (false) | export_positive (true)
  double poll_hz = 1.0;                         ///< meter.poll_hz 0.1..10
  int timeout_ms = 500;                         ///< meter.timeout_ms 10..60000
  double tolerance_W = 500.0;                   ///< meter.tolerance_W: |measured - computed| above this is a difference
  double persistence_s = 10.0;  ///< meter.persistence_s: how long before it is a disagreement (and its end)
  int max_age_ms = 5000;        ///< meter.max_age_ms: an older reading is not ok (status, metrics)
  bool trim = false;            ///< meter.trim: add the slow meter trim to the bus's free power (core/meter_trim.hpp)
  double trim_tau_s = 120.0;    ///< meter.trim_tau_s 10..3600: the trim's time constant (and its decay's)
  double trim_max_W = 2000.0;   ///< meter.trim_max_W > 0: bound on |trim|
};

/// One bus: a set of channels whose net power eqd balances together. Plain data.
struct BusConfig {
  std::string name;             ///< buses[].name; unique; letters, digits, '_' and '-'
  eqd::core::BusParams params;  ///< buses[].{target_W, tau_s, deadband_W, ...} (same names)
  bool allow_any_tau = false;   ///< buses[].allow_any_tau: accept tau_s outside 10..20 s (then > 0)
  /// buses[].schedule: windows of local time with their own target or caps (at most
  /// core::kMaxScheduleWindows; the first listed wins an overlap). Empty: the bus's own aim always.
  std::vector<eqd::core::ScheduleWindow> schedule;
  std::optional<MeterConfig> meter;  ///< buses[].meter: none by default
};

/// Where a controller entry came from: the configuration file, the connection cache or mDNS discovery.
enum class ControllerOrigin : std::uint8_t { config, cache, discovery };

/// Default settings of the transport registered as `transport` (empty when there is none). Any
/// thread after the registry is filled (eqd/io/transport.hpp).
[[nodiscard]] eqd::io::SettingsBox transport_defaults(std::string_view transport);

/// One channel controller (cycler cabinet or unit) on one link. Plain data. The keys of its
/// transport (host, port; device, baud; interface, node_id; unit_id, profile ...) live in
/// `settings`, owned by the transport (eqd/io/transport.hpp; e.g. io::modbus::TcpSettings).
struct ControllerConfig {
  std::string name;               ///< controllers[].name; unique; used in channel names "NAME/N"
  std::string transport = "tcp";  ///< controllers[].transport: a registered transport (tcp | rtu | can)
  eqd::io::SettingsBox settings = transport_defaults("tcp");  ///< that transport's keys, resolved profile
  double poll_hz = 10.0;                                      ///< controllers[].poll_hz 0.1..100
  double efficiency = 1.0;                           ///< controllers[].efficiency: its channels' converters, 0.5..1
  int timeout_ms = 200;                              ///< controllers[].timeout_ms: per-request response timeout
  int backoff_initial_ms = 100;                      ///< controllers[].backoff_initial_ms: first reconnect delay
  int backoff_max_ms = 5000;                         ///< controllers[].backoff_max_ms: reconnect delay cap
  std::uint16_t channels = 0;                        ///< controllers[].channels; default: the transport's profile's
                                                     ///< count (16 for the built-in profiles, made for this count)
  std::string bus;                                   ///< controllers[].bus: bus of its channels; default: first bus
  std::map<std::uint16_t, std::string> channel_bus;  ///< controllers[].channel_bus: {N: bus} override
  std::vector<std::uint16_t> ignore_channels;        ///< controllers[].ignore_channels: never sampled
  // Not config keys: set by discovery when it adds cached or discovered controllers (docs/discovery.md).
  ControllerOrigin origin = ControllerOrigin::config;  ///< where this entry came from
  bool read_only = false;                              ///< polled only: eqd sends no command or heartbeat (not adopted)
  /// Discovered, and its bus is not known (none announced, adopted or given by a rule, or one eqd does
  /// not have): `bus` is empty, the controller is read-only and its channels are in no bus's balance.
  bool bus_unknown = false;
  std::string identity;  ///< discovery: serial or mDNS instance name (empty for config)

  /// Bus of channel `number` (1-based): its channel_bus entry, else `bus`.
  [[nodiscard]] const std::string& bus_of(std::uint16_t number) const;
  /// The transport's settings as type S (e.g. io::modbus::TcpSettings), or null for another transport.
  template <class S>
  [[nodiscard]] const S* settings_as() const noexcept {
    return settings.as<S>();
  }
  template <class S>
  [[nodiscard]] S* settings_as() noexcept {
    return settings.as<S>();
  }
};

/// One equalization channel (buffer battery). Plain data.
struct BufferConfig {
  std::string channel;             ///< equalization[].channel: "CONTROLLER/N", N 1-based
  std::string bus;                 ///< equalization[].bus; default: the channel's bus (must match)
  eqd::core::BufferLimits limits;  ///< equalization[].{max_charge_W, ..., hysteresis_V}
};

/// The control thread's timing. Plain data.
struct ControlLoopConfig {
  int period_ms = 100;             ///< control_loop.period_ms: control cycle period
  int shutdown_timeout_ms = 5000;  ///< control_loop.shutdown_timeout_ms: time to release buffers
  /// control_loop.liveness_timeout_ms: the links send heartbeats and equalize commands only while the
  /// control thread completed a cycle within this; a longer gap between cycles is a stall (logged,
  /// counted, shown by eqctl status), after which buffers are commanded only from new samples.
  int liveness_timeout_ms = 1000;
  int realtime_priority = 0;  ///< control_loop.realtime_priority: SCHED_FIFO 1..99 for the control thread; 0 = off
  bool lock_memory = false;   ///< control_loop.lock_memory: mlockall() so the control thread never page-faults
};

/// The local control API (eqctl). Plain data.
struct ApiConfig {
  std::string socket_path = "/run/eqd/eqd.sock";  ///< api.socket: Unix socket path (absolute)
  std::string group = "eqd";              ///< api.group: operators (assign, release), docs/control-api.md "Roles"
  std::string admin_group = "eqd-admin";  ///< api.admin_group: admins besides root (also set, adopt, forget)
  int idle_timeout_ms = 60000;  ///< api.idle_timeout_ms: a connection without a request line for this long is closed
  int max_connections = 64;     ///< api.max_connections: connections at once, all clients together
  int max_connections_per_uid = 8;  ///< api.max_connections_per_uid: connections at once of one uid (root exempt)
  int reserved_connections = 8;     ///< api.reserved_connections: of max_connections, kept for root and api.group
};

/// Prometheus exporter. Plain data.
struct MetricsConfig {
  bool enabled = true;                    ///< metrics.enabled
  std::string listen = "127.0.0.1:9860";  ///< metrics.listen: HOST:PORT of the HTTP exporter
  bool per_channel = true;                ///< metrics.per_channel: export per-channel series too
};

/// One rule of discovery.adopt: discovered controllers whose name matches `match` are adopted (eqd
/// may command them), on `bus` when it is given. Plain data.
struct AdoptRule {
  std::string match;  ///< discovery.adopt[] (a plain pattern) or discovery.adopt[].match: fnmatch(3) glob over names
  std::string bus;    ///< discovery.adopt[].bus: the bus of the controllers it adopts; empty: the one they announce
  friend bool operator==(const AdoptRule&, const AdoptRule&) = default;
};

/// mDNS discovery of controllers, eqd's own announcement and the connection cache
/// (docs/discovery.md). Plain data.
struct DiscoveryConfig {
  bool enabled = false;                                      ///< discovery.enabled: browse, publish and use the cache
  std::vector<std::string> service_types{"_eqd-ctrl._tcp"};  ///< discovery.service_types: browsed
  std::vector<AdoptRule> adopt;        ///< discovery.adopt: which discovered controllers to command, on which bus
  int cache_expiry_s = 7 * 24 * 3600;  ///< discovery.cache_expiry_s: drop entries not seen for this long
  bool publish = true;                 ///< discovery.publish: announce eqd as _eqd._tcp
  int debounce_ms = 2000;              ///< discovery.debounce_ms: quiet time before a handover
};

/// The history database: the audit log (docs/operations.md). Plain data. Read at start only.
struct HistoryConfig {
  bool enabled = true;       ///< history.enabled: keep the history database (the journal gets audit records anyway)
  std::string path;          ///< history.path: the SQLite file (absolute); empty: <state_dir>/history.db
  int retention_days = 730;  ///< history.retention_days: rows older than this are deleted
  /// history.url: a PostgreSQL database (postgresql://...) instead of the SQLite file; empty: SQLite
  std::string url;
  std::string instance;  ///< history.instance: this eqd's name in a shared database; empty: the host name
};

/// The whole configuration. Plain data; build it with load_config(), share it as const.
struct Config {
  std::string source_path;                    ///< file it was read from (or the name given to parse_config)
  std::string log_level = "info";             ///< log_level: trace|debug|info|warn|error|critical|off
  std::string state_dir = "/var/lib/eqd";     ///< state_dir: absolute path for persistent state
  ControlLoopConfig loop;                     ///< control_loop
  ApiConfig api;                              ///< api
  MetricsConfig metrics;                      ///< metrics
  DiscoveryConfig discovery;                  ///< discovery
  HistoryConfig history;                      ///< history
  std::vector<BusConfig> buses;               ///< buses (at least one)
  std::vector<ControllerConfig> controllers;  ///< controllers
  std::vector<BufferConfig> buffers;          ///< equalization
  std::map<std::string, eqd::io::modbus::RegisterMap> maps;  ///< maps: custom register maps by name
  std::map<std::string, eqd::io::can::SignalMap> can_maps;   ///< can_maps: custom CAN signal maps by name
};

/// A configuration error, raised at start-up (the daemon exits with code 2).
/// what() = "FILE:LINE:COLUMN: key.path: message (expected ...)"; LINE and COLUMN are 1-based.
/// For errors without a position (a --set override, a missing file) line and column are 0 and
/// what() = "FILE: key.path: message". Thread-safe to read (immutable).
struct ConfigError : std::runtime_error {
  /// Builds the error and its what() text.
  ConfigError(std::string file, int line, int column, std::string key_path, std::string message);

  std::string file;      ///< file name, or "--set KEY=VALUE" for an override
  int line = 0;          ///< 1-based; 0 when unknown
  int column = 0;        ///< 1-based; 0 when unknown
  std::string key_path;  ///< e.g. "equalization[2].channel" (indices 0-based)
  std::string message;   ///< the bare message, without position and key path
};

/// Largest configuration eqd reads (bytes). The biggest real rig file is a few hundred kB; the bound
/// keeps a wrong path (a log, a disk image) from costing minutes and gigabytes before it fails.
inline constexpr std::size_t kMaxConfigBytes = std::size_t{4} * 1024 * 1024;

/// Reads, parses and validates the file at `path`. Throws ConfigError, also when `path` is not a
/// regular file (directory, device, FIFO, socket) or is larger than kMaxConfigBytes. Main thread,
/// start-up only.
Config load_config(const std::string& path);

/// Parses and validates YAML text; `name_for_errors` is used as the file name in errors and as
/// Config::source_path. Refuses text over kMaxConfigBytes, control characters (a binary file) and a
/// quoted value whose closing quote is missing (see docs/configuration.md, "File"). Throws ConfigError.
Config parse_config(const std::string& yaml_text, const std::string& name_for_errors);

/// Applies "key.path=value" overrides in order (eqd --set), then validates the whole config again.
/// Paths name entries by name: "buses.main.tau_s", "controllers.cab1.poll_hz",
/// "controllers.cab1.channel_bus.3", "equalization.cab1/3.max_charge_W", "metrics.listen".
/// `maps` cannot be overridden. On error throws ConfigError with file = "--set <override>" and
/// `cfg` left partially modified (the daemon exits anyway).
void apply_overrides(Config& cfg, const std::vector<std::string>& overrides);

/// Every key path the parser accepts, in the normalised form "buses[].tau_s",
/// "maps.*" (a map's name), "maps.*.voltage", "maps.*.FIELD.table" (FIELD: any register
/// field of a map, as they all take the same keys). The shipped config/eqd.yaml is tested to
/// contain every one of them.
[[nodiscard]] std::vector<std::string> accepted_key_paths();

/// Edit-distance suggestion: the entry of `candidates` closest to `word` if it is close enough to
/// be a likely typo (or `word` lacks only a unit suffix), else an empty string.
[[nodiscard]] std::string suggest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace eqd::config
