// TXT records of eqd's DNS-SD services (see txt.hpp). Pure functions.
#include "eqd/discovery/txt.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace eqd::discovery {

namespace {

// Integers in TXT values must be plain decimal: "16", not "16 " or "0x10" (a lenient parser would
// turn a typo into a wrong channel count that eqd then polls).
std::optional<long> to_int(const std::string& s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// TXT values are arbitrary bytes: show them escaped and bounded in messages.
std::string shown(const std::string& s) {
  std::string out;
  for (unsigned char ch : s.substr(0, 40)) {
    if (ch >= 0x20 && ch < 0x7f)
      out += static_cast<char>(ch);
    else
      out += '?';
  }
  return "'" + out + (s.size() > 40 ? "...'" : "'");
}

bool valid_name(const std::string& s) { return is_valid_name(s); }

}  // namespace

bool is_valid_name(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '_' || ch == '-';
  });
}

std::map<std::string, std::string> txt_map(const std::vector<std::string>& txt) {
  std::map<std::string, std::string> out;
  for (const std::string& t : txt) {
    const auto eq = t.find('=');
    std::string key = t.substr(0, eq);
    if (key.empty()) continue;  // RFC 6763 6.4: a string starting with '=' is ignored
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    out.emplace(std::move(key), eq == std::string::npos ? std::string() : t.substr(eq + 1));
  }
  return out;
}

std::string sanitize_name(std::string_view instance) {
  std::string out;
  for (char ch : instance) {
    const bool ok = std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '_' || ch == '-';
    if (ok)
      out += ch;
    else if (!out.empty() && out.back() != '-')
      out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() > 64) out.resize(64);
  return out;
}

ParsedAnnouncement parse_controller(const ResolvedService& s) {
  ParsedAnnouncement r;
  auto refuse = [&](std::string why) {
    r.error = "service '" + sanitize_name(s.instance) + "' (" + s.type + " at " + s.address + ":" +
              std::to_string(s.port) + "): " + std::move(why);
    return r;
  };
  const auto txt = txt_map(s.txt);
  auto get = [&](const char* key) -> const std::string* {
    const auto it = txt.find(key);
    return it == txt.end() ? nullptr : &it->second;
  };
  if (const std::string* v = get("txtvers")) {
    const auto n = to_int(*v);
    if (!n || *n < 1) return refuse("TXT txtvers=" + shown(*v) + " is not a version number");
    if (*n > kTxtVersion)
      return refuse("TXT txtvers=" + *v + " is newer than this eqd understands (" + std::to_string(kTxtVersion) + ")");
  }
  if (s.address.empty() || s.port == 0) return refuse("no IPv4 address or port resolved");

  ControllerAnnouncement a;
  a.service_type = s.type;
  a.host = s.address;
  a.port = s.port;
  if (const std::string* v = get("name")) {
    if (!valid_name(*v))
      return refuse("TXT name=" + shown(*v) + " is not a controller name (letters, digits, '_', '-')");
    a.name = *v;
  } else {
    a.name = sanitize_name(s.instance);
    if (a.name.empty()) return refuse("the instance name has no usable characters and there is no TXT name");
  }
  if (const std::string* v = get("serial"); v != nullptr && !v->empty()) {
    if (v->size() > 128) return refuse("TXT serial is longer than 128 bytes");
    a.identity = *v;
  } else {
    a.identity = s.instance;
  }
  const std::string* transport = get("transport");
  if (transport == nullptr) return refuse("TXT transport is missing (expected transport=tcp)");
  if (*transport != "tcp")
    return refuse("TXT transport=" + shown(*transport) + " is not supported over discovery (expected tcp)");
  if (const std::string* v = get("unit")) {
    const auto n = to_int(*v);
    if (!n || *n < 0 || *n > 247) return refuse("TXT unit=" + shown(*v) + " (expected a Modbus unit id 0..247)");
    a.unit_id = static_cast<int>(*n);
  }
  if (const std::string* v = get("profile")) {
    if (!valid_name(*v)) return refuse("TXT profile=" + shown(*v) + " is not a profile name");
    a.profile = *v;
  }
  const std::string* ch = get("channels");
  if (ch == nullptr) return refuse("TXT channels is missing (expected the channel count, e.g. channels=16)");
  const auto n = to_int(*ch);
  if (!n || *n < 1 || *n > kMaxAnnouncedChannels)
    return refuse("TXT channels=" + shown(*ch) + " (expected 1.." + std::to_string(kMaxAnnouncedChannels) + ")");
  a.channels = static_cast<std::uint16_t>(*n);
  // An empty value announces no bus, like an absent key. A name eqd does not have is not refused here:
  // the controller is then polled with its bus unknown (read-only, in no bus's balance).
  if (const std::string* v = get("bus"); v != nullptr && !v->empty()) {
    if (!valid_name(*v)) return refuse("TXT bus=" + shown(*v) + " is not a bus name (letters, digits, '_', '-')");
    a.bus = *v;
  }
  r.announcement = std::move(a);
  return r;
}

std::vector<std::string> controller_txt(const std::string& name, const std::string& serial, int unit_id,
                                        const std::string& profile, std::uint16_t channels, const std::string& bus) {
  std::vector<std::string> out{"txtvers=" + std::to_string(kTxtVersion),
                               "name=" + name,
                               "serial=" + serial,
                               "transport=tcp",
                               "unit=" + std::to_string(unit_id),
                               "profile=" + profile,
                               "channels=" + std::to_string(channels)};
  if (!bus.empty()) out.push_back("bus=" + bus);
  return out;
}

std::vector<std::string> eqd_txt(const std::string& version, const std::vector<std::string>& buses,
                                 std::uint16_t metrics_port, const std::string& control_socket) {
  // One TXT string holds at most 255 bytes: cut the bus list at a whole name and say so.
  std::string list = "buses=";
  bool truncated = false;
  for (const std::string& b : buses) {
    const std::string add = (list.size() > 6 ? "," : "") + b;
    if (list.size() + add.size() > 250) {
      truncated = true;
      break;
    }
    list += add;
  }
  std::vector<std::string> out{"txtvers=" + std::to_string(kTxtVersion), "version=" + version, list,
                               "metrics_port=" + std::to_string(metrics_port)};
  if (truncated) out.emplace_back("buses_truncated=1");
  if (control_socket.size() < 240) out.push_back("control=unix:" + control_socket);
  return out;
}

}  // namespace eqd::discovery
