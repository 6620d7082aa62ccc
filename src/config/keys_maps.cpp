/// @file keys_maps.cpp
/// The keys of maps (Modbus register maps) and can_maps (CAN signal maps), see keys.cpp.

#include <algorithm>
#include <array>
#include "key_rules.hpp"

namespace eqd::config::detail {

namespace {

template <class E, std::size_t N>
Key<mb::Field> enum_field_key(const char* name, E mb::Field::*member, std::array<std::pair<const char*, E>, N> values) {
  return {name, false, [member, values](mb::Field& f, const YAML::Node& n, const Ctx& c, const std::string& p) {
            const std::string s = read_string(n, c, p);
            std::string expected;
            for (const auto& [text, v] : values) {
              if (s == text) {
                f.*member = v;
                return;
              }
              expected += (expected.empty() ? "" : " | ") + std::string(text);
            }
            fail(c, n.Mark(), p, "got " + quoted(s) + " (expected " + expected + ")");
          }};
}

Key<mb::RegisterMap> map_field(const char* name, mb::Field mb::RegisterMap::*member, bool required) {
  return {name, required, [member](mb::RegisterMap& m, const YAML::Node& n, const Ctx& c, const std::string& p) {
            mb::Field f;
            decode_mapping(n, p, field_keys(), f, c);
            m.*member = f;
          }};
}

Key<mb::RegisterMap> map_opt_field(const char* name, std::optional<mb::Field> mb::RegisterMap::*member) {
  return {name, false, [member](mb::RegisterMap& m, const YAML::Node& n, const Ctx& c, const std::string& p) {
            mb::Field f;
            decode_mapping(n, p, field_keys(), f, c);
            m.*member = f;
          }};
}

}  // namespace

const std::vector<Key<mb::Field>>& field_keys() {
  using T = mb::Field;
  using P = std::pair<const char*, mb::Table>;
  using D = std::pair<const char*, mb::DataType>;
  using W = std::pair<const char*, mb::WordOrder>;
  static const std::vector<Key<T>> k{
      enum_field_key<mb::Table, 2>("table", &T::table,
                                   {P{"input", mb::Table::input}, P{"holding", mb::Table::holding}}),
      int_key<T>(
          "address", [](T& o) -> std::uint16_t& { return o.address; }, 0, 65535, "", true),
      enum_field_key<mb::DataType, 5>(
          "type", &T::type,
          {D{"u16", mb::DataType::u16}, D{"i16", mb::DataType::i16}, D{"u32", mb::DataType::u32},
           D{"i32", mb::DataType::i32}, D{"f32", mb::DataType::f32}}),
      enum_field_key<mb::WordOrder, 2>("word_order", &T::word_order,
                                       {W{"big", mb::WordOrder::big}, W{"little", mb::WordOrder::little}}),
      real_key<T>(
          "scale", [](T& o) -> double& { return o.scale; }, kAny, ""),
      real_key<T>(
          "offset", [](T& o) -> double& { return o.offset; }, kAny, ""),
      int_key<T>(
          "stride", [](T& o) -> std::uint16_t& { return o.stride; }, 0, 65535, ""),
  };
  return k;
}

const std::vector<Key<mb::PlausibleRange>>& range_keys() {
  using T = mb::PlausibleRange;
  static const std::vector<Key<T>> k{
      real_key<T>(
          "voltage_min_V", [](T& o) -> double& { return o.voltage_min_V; }, kSignedVoltage, "V"),
      real_key<T>(
          "voltage_max_V", [](T& o) -> double& { return o.voltage_max_V; }, kSignedVoltage, "V"),
      real_key<T>(
          "current_abs_max_A", [](T& o) -> double& { return o.current_abs_max_A; }, kCurrentPositive, "A"),
      real_key<T>(
          "power_abs_max_W", [](T& o) -> double& { return o.power_abs_max_W; }, kPowerPositive, "W"),
  };
  return k;
}

const std::vector<std::string>& map_field_names() {
  static const std::vector<std::string> k{"voltage",      "current",          "power",           "state",
                                          "fault_code",   "eq_flag",          "sample_counter",  "forecast_power",
                                          "step_index",   "cycle_index",      "cmd_enable",      "cmd_setpoint",
                                          "cmd_lease",    "heartbeat",        "profile_version", "device_channel_count",
                                          "capabilities", "heartbeat_timeout"};
  return k;
}

const std::vector<Key<mb::RegisterMap>>& map_keys() {
  using T = mb::RegisterMap;
  static const std::vector<Key<T>> k{
      int_key<T>(
          "channel_count", [](T& o) -> std::uint16_t& { return o.channel_count; }, 1, 65535, ""),
      map_field("voltage", &T::voltage, true),
      map_field("current", &T::current, true),
      map_opt_field("power", &T::power),
      map_field("state", &T::state, true),
      map_opt_field("fault_code", &T::fault_code),
      map_opt_field("eq_flag", &T::eq_flag),
      map_opt_field("sample_counter", &T::sample_counter),
      map_opt_field("forecast_power", &T::forecast_power),
      map_opt_field("step_index", &T::step_index),
      map_opt_field("cycle_index", &T::cycle_index),
      map_field("cmd_enable", &T::cmd_enable, true),
      map_field("cmd_setpoint", &T::cmd_setpoint, true),
      {"cmd_lease", false,
       [](T& m, const YAML::Node& n, const Ctx& c, const std::string& p) {
         mb::Field f;
         const auto given = decode_mapping(n, p, field_keys(), f, c);
         // The lease is written in ms; a device that counts seconds with no scale would hold a 5000 ms
         // lease for 5000 s. The unit is the device's, so the map must say it rather than default it.
         if (given.count("scale") == 0)
           fail(c, n.Mark(), p,
                "give 'scale' explicitly: the lease is written in ms, so scale is ms per count (1 for a device "
                "that counts ms, 1000 for one that counts seconds)");
         m.cmd_lease = f;
       }},
      map_opt_field("heartbeat", &T::heartbeat),
      map_opt_field("profile_version", &T::profile_version),
      int_key<T>(
          "expected_profile_version", [](T& o) -> std::uint16_t& { return o.expected_profile_version; }, 1, 65535, ""),
      map_opt_field("device_channel_count", &T::device_channel_count),
      map_opt_field("capabilities", &T::capabilities),
      map_opt_field("heartbeat_timeout", &T::heartbeat_timeout),
      {"state_codes", false,
       [](T& m, const YAML::Node& n, const Ctx& c, const std::string& p) {
         // Index = the device's raw state code; value = eqd's state, by name or number.
         static constexpr std::array<const char*, 6> kStates{"idle",  "running",    "paused",
                                                             "fault", "equalizing", "offline"};
         if (!n.IsSequence() || n.size() == 0)
           fail(c, n.Mark(), p, "got " + describe(n) + " (expected a non-empty list of eqd states, index = raw code)");
         m.state_codes.clear();
         for (std::size_t i = 0; i < n.size(); ++i) {
           const std::string ip = p + "[" + std::to_string(i) + "]";
           const std::string s = read_string(n[i], c, ip);
           const auto it = std::find(kStates.begin(), kStates.end(), s);
           if (it != kStates.end()) {
             m.state_codes.push_back(static_cast<std::uint8_t>(it - kStates.begin()));
           } else {
             // Not a name: a number 0..5, else the error says that names are accepted too (and which was meant).
             constexpr const char* kExpected = "or a state name: idle, running, paused, fault, equalizing, offline";
             const std::string near = suggest(s, {kStates.begin(), kStates.end()});  // never a number
             if (!near.empty())
               fail(c, n[i].Mark(), ip,
                    "got " + quoted(s) + " (expected a whole number 0..5 " + kExpected + "; did you mean '" + near +
                        "'?)");
             m.state_codes.push_back(static_cast<std::uint8_t>(read_int(n[i], c, ip, 0, 5, kExpected)));
           }
         }
       }},
      {"range", false,
       [](T& m, const YAML::Node& n, const Ctx& c, const std::string& p) {
         decode_mapping(n, p, range_keys(), m.range, c);
       }},
  };
  return k;
}

// CAN signal maps: lists of frames and of signals (DBC-like), so that positions of errors are
// "can_maps.NAME.frames[i].signals[j].KEY".
namespace {
template <class T, class Item>
Key<T> can_list_key(const char* name, std::vector<Item> T::*member, const std::vector<Key<Item>>& (*keys)()) {
  return {name, false, [member, keys](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
            if (!n.IsSequence())
              fail(c, n.Mark(), p, "got " + describe(n) + " (expected a list of entries '- key: value')");
            (o.*member).clear();
            for (std::size_t i = 0; i < n.size(); ++i) {
              Item item;
              decode_mapping(n[i], p + "[" + std::to_string(i) + "]", keys(), item, c);
              (o.*member).push_back(std::move(item));
            }
          }};
}
}  // namespace

const std::vector<Key<eqd::io::can::Signal>>& can_signal_keys() {
  using T = eqd::io::can::Signal;
  static const std::vector<Key<T>> k{
      string_key<T>(
          "name", [](T& o) -> std::string& { return o.name; }, check_name, true),
      int_key<T>(
          "start_bit", [](T& o) -> std::uint16_t& { return o.start_bit; }, 0, 511, "", true),
      int_key<T>(
          "length", [](T& o) -> std::uint8_t& { return o.length; }, 1, 64, "bits", true),
      {"byte_order", false,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         const std::string s = read_string(n, c, p);
         if (s == "little" || s == "intel")
           o.order = eqd::io::can::ByteOrder::little;
         else if (s == "big" || s == "motorola")
           o.order = eqd::io::can::ByteOrder::big;
         else
           fail(c, n.Mark(), p, "got " + quoted(s) + " (expected little | big)");
       }},
      bool_key<T>("signed", [](T& o) -> bool& { return o.is_signed; }),
      real_key<T>(
          "scale", [](T& o) -> double& { return o.scale; }, kAny, ""),
      real_key<T>(
          "offset", [](T& o) -> double& { return o.offset; }, kAny, ""),
  };
  return k;
}

const std::vector<Key<eqd::io::can::FrameLayout>>& can_frame_keys() {
  using T = eqd::io::can::FrameLayout;
  static const std::vector<Key<T>> k{
      {"role", true,
       [](T& o, const YAML::Node& n, const Ctx& c, const std::string& p) {
         const std::string s = read_string(n, c, p);
         if (s == "status")
           o.role = eqd::io::can::FrameRole::status;
         else if (s == "command")
           o.role = eqd::io::can::FrameRole::command;
         else if (s == "heartbeat")
           o.role = eqd::io::can::FrameRole::heartbeat;
         else if (s == "forecast")
           o.role = eqd::io::can::FrameRole::forecast;
         else if (s == "program")
           o.role = eqd::io::can::FrameRole::program;
         else
           fail(c, n.Mark(), p, "got " + quoted(s) + " (expected status | command | heartbeat | forecast | program)");
       }},
      int_key<T>(
          "id", [](T& o) -> std::uint32_t& { return o.id; }, 0, 0x1FFFFFFF, "", true),
      bool_key<T>("extended", [](T& o) -> bool& { return o.extended; }),
      int_key<T>(
          "length", [](T& o) -> std::uint8_t& { return o.length; }, 0, 64, "bytes"),
      bool_key<T>("fd", [](T& o) -> bool& { return o.fd; }),
      bool_key<T>("add_node_id", [](T& o) -> bool& { return o.add_node_id; }),
      int_key<T>(
          "id_stride", [](T& o) -> std::uint32_t& { return o.id_stride; }, 0, 0x1FFFFFFF, ""),
      can_list_key<T, eqd::io::can::Signal>("signals", &T::signals, &can_signal_keys),
  };
  return k;
}

const std::vector<Key<eqd::io::can::SignalMap>>& can_map_keys() {
  using T = eqd::io::can::SignalMap;
  static const std::vector<Key<T>> k{
      int_key<T>(
          "channel_count", [](T& o) -> std::uint16_t& { return o.channel_count; }, 1, 65535, ""),
      can_list_key<T, eqd::io::can::FrameLayout>("frames", &T::frames, &can_frame_keys),
  };
  return k;
}

}  // namespace eqd::config::detail
