#pragma once
/// @file txt.hpp
/// DNS-SD TXT records of eqd's services (docs/discovery.md): parsing a controller's announcement
/// (`_eqd-ctrl._tcp`) and building the records that eqsim and eqd publish.
///
/// Thread-safety: pure functions of their arguments; any thread.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eqd::discovery {

/// Service type eqd publishes itself under.
inline constexpr const char* kEqdServiceType = "_eqd._tcp";
/// Default service type of channel controllers.
inline constexpr const char* kControllerServiceType = "_eqd-ctrl._tcp";
/// TXT format version written and understood (key `txtvers`).
inline constexpr int kTxtVersion = 1;
/// Largest channel count accepted from a TXT record (a typo must not make eqd plan 60000 channels).
inline constexpr int kMaxAnnouncedChannels = 1024;

/// A resolved DNS-SD service as Avahi reports it: no interpretation yet. Plain data.
struct ResolvedService {
  std::string instance;   ///< service instance name, e.g. "cab3"
  std::string type;       ///< e.g. "_eqd-ctrl._tcp"
  std::string domain;     ///< e.g. "local"
  std::string host_name;  ///< e.g. "cycler3.local"
  std::string address;    ///< IPv4 address text (resolved with AVAHI_PROTO_INET)
  std::uint16_t port = 0;
  std::vector<std::string> txt;  ///< raw "key=value" (or "key") strings
};

/// What a controller announces, after checking. Plain data.
struct ControllerAnnouncement {
  std::string name;      ///< eqd's controller name: TXT `name`, else the instance name made valid
  std::string identity;  ///< TXT `serial`, else the instance name: follows the controller across addresses
  std::string service_type;
  std::string host;  ///< IPv4 address to connect to
  std::uint16_t port = 0;
  int unit_id = 1;                      ///< TXT `unit` (0..247)
  std::string profile = "eqd-default";  ///< TXT `profile`
  std::uint16_t channels = 0;           ///< TXT `channels` (1..kMaxAnnouncedChannels)
  /// TXT `bus`: the bus its channels are on, as the controller names it; empty when it announces none.
  /// Only a syntactically valid name gets here; whether eqd has that bus is decided later (merge).
  std::string bus;
};

/// Result of parse_controller(): an announcement or the reason it was refused.
struct ParsedAnnouncement {
  std::optional<ControllerAnnouncement> announcement;
  std::string error;  ///< non-empty when refused: names the key and what was expected
};

/// Splits raw TXT strings into key -> value (keys lower-cased; a key without '=' maps to "";
/// per RFC 6763 the first occurrence of a key wins). Any thread.
[[nodiscard]] std::map<std::string, std::string> txt_map(const std::vector<std::string>& txt);

/// Checks a controller's announcement (`transport`, `unit`, `profile`, `channels`, `name`,
/// `serial`, `bus`, `txtvers`). Never throws; bad input gives an error text. Any thread.
[[nodiscard]] ParsedAnnouncement parse_controller(const ResolvedService& s);

/// True for a valid controller, profile or bus name in a TXT record or the cache: 1..64 letters,
/// digits, '_' and '-'. Any thread.
[[nodiscard]] bool is_valid_name(std::string_view s);

/// A valid eqd controller name from an mDNS instance name: letters, digits, '_' and '-' kept,
/// everything else becomes '-'; empty if nothing is left. Any thread.
[[nodiscard]] std::string sanitize_name(std::string_view instance);

/// TXT strings a controller publishes (eqsim uses this); `bus` empty: no `bus` key. Any thread.
[[nodiscard]] std::vector<std::string> controller_txt(const std::string& name, const std::string& serial, int unit_id,
                                                      const std::string& profile, std::uint16_t channels,
                                                      const std::string& bus = {});

/// TXT strings eqd publishes for itself: version, buses (comma-separated, cut to fit one 255-byte
/// string), metrics port (0 when disabled) and the control socket. Any thread.
[[nodiscard]] std::vector<std::string> eqd_txt(const std::string& version, const std::vector<std::string>& buses,
                                               std::uint16_t metrics_port, const std::string& control_socket);

}  // namespace eqd::discovery
