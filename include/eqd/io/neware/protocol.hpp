#pragma once
/// @file protocol.hpp
/// The Neware BTS side of the `neware` transport: the TCP/XML exchange of the BTS test software's API
/// as its open-source clients use it (docs/devices.md, "Neware BTS": facts and sources). Messages are
/// one XML document `<bts version="1.0"><cmd>NAME</cmd>...</bts>`, ended by "\n\n#\r\n"; replies name
/// `NAME_resp`. eqd sends only `connect` (the API session), `getdevinfo` (devices and channels) and
/// `inquire` (each channel's voltage, current, working state, step and cycle): never a command that acts
/// on a channel (start, stop, pause, continue, ...).
///
/// XML: a small parser of exactly this narrow format (elements, attributes, text, the five predefined
/// entities and numeric character references; a declaration and comments skipped), strictly bounded in
/// size, depth, element and attribute count. No DTD, no external entities, no namespaces. eqd has no
/// XML library as a dependency and needs none for this.
///
/// Thread-safety: pure functions and plain data (share as const).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eqd/core/sample.hpp"

namespace eqd::io::neware {

/// Every message (request and reply) ends with this.
inline constexpr std::string_view kTerminator = "\n\n#\r\n";
/// A reply longer than this is refused (and the connection closed): a getdevinfo reply of a server
/// with 1000 channels is about 100 KiB.
inline constexpr std::size_t kMaxReplyBytes = 1U << 20;

/// Bounds of the parser.
struct XmlLimits {
  std::size_t max_bytes = kMaxReplyBytes;
  int max_depth = 8;
  std::size_t max_elements = 20000;
  std::size_t max_attributes = 64;  ///< per element
  std::size_t max_name = 64;        ///< element and attribute names
};

/// One element: name, attributes in document order, its text (character data directly inside it,
/// entities resolved, surrounding whitespace trimmed) and its child elements.
struct XmlElement {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;
  std::string text;
  std::vector<XmlElement> children;
  /// The attribute's value, or null.
  [[nodiscard]] const std::string* attribute(std::string_view key) const noexcept;
  /// The first child of that name, or null.
  [[nodiscard]] const XmlElement* child(std::string_view child_name) const noexcept;
};

/// The root element of one document, or an error naming what and where (byte offset).
struct XmlDocument {
  XmlElement root;
  std::string error;  ///< empty: parsed
};
[[nodiscard]] XmlDocument parse_xml(std::string_view text, const XmlLimits& limits = {});

/// One channel of a BTS server: device type, device id, sub-device (unit) id, channel id.
struct ChannelAddress {
  int devtype = 0;
  int devid = 0;
  int subdevid = 0;
  int chlid = 0;
  friend bool operator==(const ChannelAddress&, const ChannelAddress&) = default;
};
/// "27-21-1-3".
[[nodiscard]] std::string to_string(const ChannelAddress& a);

/// Requests, each a whole message with its terminator. Attribute and text values are escaped.
[[nodiscard]] std::string connect_request(const std::string& username, const std::string& password);
[[nodiscard]] std::string getdevinfo_request();
/// `inquire` for `channels` (aux="0": no auxiliary channel; barcode="0": no barcode wanted). `ips`:
/// each channel's ip attribute as getdevinfo listed it (the unit's middle machine); missing or empty
/// entries are sent as 127.0.0.1, as the older public clients always do.
[[nodiscard]] std::string inquire_request(const std::vector<ChannelAddress>& channels,
                                          const std::vector<std::string>& ips = {});

/// Splits a received message at its terminator: the document before it, or nullopt while the
/// terminator has not arrived. A '#' followed by "\r\n" ends a message; what precedes it must be the
/// document (whitespace around it is ignored).
[[nodiscard]] std::optional<std::string_view> message_body(std::string_view received) noexcept;

/// Empty when `doc` is a reply `<bts><cmd>CMD_resp</cmd>...` to `cmd`, else why not.
[[nodiscard]] std::string check_reply(const XmlDocument& doc, std::string_view cmd);

/// Empty when a connect reply says `<result>ok</result>`, else why not.
[[nodiscard]] std::string connect_problem(const XmlDocument& doc);

/// One channel of a getdevinfo reply (`<middle><channel ip devtype devid subdevid Channelid>`).
struct DevChannel {
  ChannelAddress address;
  std::string ip;
};
/// The channels a getdevinfo reply lists, or an error (a channel element with missing or non-numeric
/// ids, more than kMaxReplyBytes worth of them cannot arrive). `error` empty: ok.
struct DevInfo {
  std::vector<DevChannel> channels;
  std::string error;
};
[[nodiscard]] DevInfo parse_devinfo(const XmlDocument& doc);

/// The vendor's working state of a channel (`workstatus` of inquire, text of getchlstatus).
enum class WorkStatus : std::uint8_t { working, stop, finish, protect, pause, unknown };
[[nodiscard]] WorkStatus parse_work_status(std::string_view text) noexcept;
/// eqd's state for a vendor state: working -> running, pause -> paused, stop and finish -> idle,
/// protect -> fault. unknown has none (the sample is invalid).
[[nodiscard]] std::optional<core::ChannelState> to_channel_state(WorkStatus s) noexcept;

/// One `<inquire .../>` record of an inquire reply, as text (decoded by decode_record()).
struct InquireRecord {
  ChannelAddress address;  ///< from dev="devtype-devid-subdevid-chlid-aux"
  std::string workstatus, voltage, current, power, step_id, cycle_id, step_type;
  bool has_power = false;
};
/// The records of an inquire reply, or an error (a record whose dev attribute is not
/// "T-D-S-C[-A]" of numbers is an error of the whole reply: eqd could not tell whose it is).
struct InquireReply {
  std::vector<InquireRecord> records;
  std::string error;
};
[[nodiscard]] InquireReply parse_inquire(const XmlDocument& doc);

/// Why a record does not make a valid sample.
enum class RecordProblem : std::uint8_t {
  none,
  unknown_state,  ///< workstatus none of working/stop/finish/protect/pause
  bad_voltage,    ///< missing, "--", not a number or beyond +-1000 V
  bad_current,    ///< missing, "--", not a number or beyond +-10000 A
  bad_power,      ///< a power attribute that is not a number or beyond +-10 MW
  bad_step,       ///< step_id or cycle_id present but not a count the sample can hold (sample kept)
  missing,        ///< the reply has no record for the channel (set by the link)
};
[[nodiscard]] const char* to_string(RecordProblem p) noexcept;

/// Decodes a record into `out` (voltage_V, current_A, power_W, state, step_index, cycle_index, valid).
/// Sign: the BTS reports current > 0 while charging (its cc/cv steps) and < 0 while discharging (dc),
/// which is eqd's sign. power_W is the record's power where it has one, else voltage x current. A
/// bad_step leaves the sample valid with the program position not reported; any other problem leaves
/// it invalid. Returns the first problem.
[[nodiscard]] RecordProblem decode_record(const InquireRecord& r, core::Sample& out) noexcept;

}  // namespace eqd::io::neware
