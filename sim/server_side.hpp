#pragma once
/// @file server_side.hpp
/// eqsim's server sides: how eqsim serves its rig, one per eqd transport name (issue #13: a transport
/// owns its eqsim server side too). Each side adds its own command-line options, builds its servers
/// over the plant when its options ask for it, and writes its part of `--write-eqd-config`. eqsim's
/// main knows only this list (`builtin_server_sides()`); adding a transport's simulator = one class
/// here and one line in server_side.cpp.
///
/// Thread-safety: a ServerSide is built, started and stopped by eqsim's main thread; step() runs on
/// that thread with the plant's mutex held. The servers it owns run their own threads (see each).

#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rig_backend.hpp"

namespace eqd::sim {

/// What every side builds on: the plant, where to listen, and the ports taken so far (each side takes
/// the ports after the previous sides', in the order of builtin_server_sides(), so that a rig's ports
/// stay where they were). Plain data, main thread.
struct ServeContext {
  Plant& plant;
  std::string listen_host = "127.0.0.1";
  int base_port = 15020;  ///< 0: every server on a free port the kernel chooses
  std::size_t ports_taken = 0;

  /// The next port in sequence (0 with base_port 0).
  std::uint16_t next_port() {
    const std::size_t n = ports_taken++;
    return base_port == 0 ? std::uint16_t{0} : static_cast<std::uint16_t>(base_port + static_cast<int>(n));
  }
};

/// The pieces of the eqd configuration that `--write-eqd-config` writes, each side adding its own.
struct EqdConfigParts {
  std::string first_bus;     ///< extra keys of the rig's first bus (4-space indented lines)
  std::string controllers;   ///< extra `controllers:` entries
  std::string equalization;  ///< extra `equalization:` entries
};

class ServerSide {
 public:
  virtual ~ServerSide() = default;
  /// The eqd transport name whose device this side plays (`tcp`, `can`, `sunspec`, `neware`).
  [[nodiscard]] virtual const char* transport() const noexcept = 0;
  /// Adds this side's options to eqsim's command line.
  virtual void add_options(CLI::App& app) = 0;
  /// Whether the parsed options ask for this side.
  [[nodiscard]] virtual bool wanted() const = 0;
  /// Builds its servers over ctx.plant (they listen from here on) and prints where they are. Throws
  /// std::exception with a message naming the option at fault.
  virtual void build(ServeContext& ctx) = 0;
  /// Starts serving (after --write-eqd-config is written). May throw like build().
  virtual void start() = 0;
  /// Stops serving; idempotent, also after a failed build or start.
  virtual void stop() = 0;
  /// Once per plant step, the plant's mutex held.
  virtual void step(Plant& /*plant*/) {}

  /// Whether the written eqd configuration can reach the rig's controllers through this side
  /// (controller_keys()), and whether eqd can then command them (their buffers become equalization
  /// entries).
  [[nodiscard]] virtual bool serves_rig_controllers() const { return false; }
  [[nodiscard]] virtual bool commands() const { return true; }
  /// The transport keys of controller c's entry (4-space indented lines, from `transport:`), when
  /// serves_rig_controllers().
  [[nodiscard]] virtual std::string controller_keys(const Rig& /*rig*/, std::size_t /*c*/) const { return {}; }
  /// Devices of its own beside the rig's controllers (SunSpec storage, a meter).
  virtual void add_to_config(const Rig& /*rig*/, EqdConfigParts& /*parts*/) const {}
};

/// Every server side eqsim has, in port order: tcp (always wanted: the rig's controllers over Modbus
/// TCP), sunspec, neware, can.
std::vector<std::unique_ptr<ServerSide>> builtin_server_sides();

/// The side whose transport the written eqd configuration uses for the rig's controllers: the one
/// named `transport` (empty: the last wanted side that serves the rig's controllers and commands them,
/// i.e. can when --can is given, else tcp). Null with a message in `error` when the named one is
/// unknown, not wanted or cannot serve the controllers.
ServerSide* config_side(const std::vector<std::unique_ptr<ServerSide>>& sides, const std::string& transport,
                        std::string& error);

}  // namespace eqd::sim

namespace eqd::sim {

// The built-in sides (server_side.cpp lists them; each in its own file).
std::unique_ptr<ServerSide> make_modbus_tcp_side();  ///< serve_modbus_tcp.cpp: `tcp`
std::unique_ptr<ServerSide> make_sunspec_side();     ///< serve_sunspec.cpp: `sunspec`
std::unique_ptr<ServerSide> make_bts_side();         ///< serve_bts.cpp: `neware`
std::unique_ptr<ServerSide> make_can_side();         ///< serve_can.cpp: `can`

}  // namespace eqd::sim
