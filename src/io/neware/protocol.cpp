/// @file protocol.cpp
/// The BTS XML exchange: a bounded parser of its narrow XML, the three requests eqd sends, and the
/// decoding of their replies (eqd/io/neware/protocol.hpp).

#include "eqd/io/neware/protocol.hpp"

#include <charconv>
#include <cmath>
#include <limits>

namespace eqd::io::neware {

namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.' || c == ':';
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A recursive-descent reader over the whole document. Every loop advances pos_ or fails; depth,
// element and attribute counts are bounded, so a hostile document costs at most linear time.
class Parser {
 public:
  Parser(std::string_view text, const XmlLimits& limits) : s_(text), lim_(limits) {}

  XmlDocument run() {
    XmlDocument doc;
    if (s_.size() > lim_.max_bytes) {
      doc.error = "document of " + std::to_string(s_.size()) + " bytes (limit " + std::to_string(lim_.max_bytes) + ")";
      return doc;
    }
    if (starts("\xEF\xBB\xBF")) pos_ = 3;  // a UTF-8 byte order mark (Windows software may send one)
    if (!skip_misc() || !element(doc.root, 1) || !skip_misc()) {
      doc.error = error_ + " at byte " + std::to_string(pos_);
      return doc;
    }
    if (pos_ != s_.size()) doc.error = "content after the root element at byte " + std::to_string(pos_);
    return doc;
  }

 private:
  bool fail(const char* what) {
    if (error_.empty()) error_ = what;
    return false;
  }
  bool starts(std::string_view p) const noexcept { return s_.substr(pos_, p.size()) == p; }
  void skip_space() noexcept {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }
  // Whitespace, the XML declaration (or any processing instruction) and comments between elements.
  bool skip_misc() {
    for (;;) {
      skip_space();
      if (starts("<?")) {
        const auto end = s_.find("?>", pos_ + 2);
        if (end == std::string_view::npos) return fail("unterminated '<?'");
        pos_ = end + 2;
      } else if (starts("<!--")) {
        const auto end = s_.find("-->", pos_ + 4);
        if (end == std::string_view::npos) return fail("unterminated comment");
        pos_ = end + 3;
      } else if (starts("<!")) {
        return fail("DTD or CDATA not accepted");
      } else {
        return true;
      }
    }
  }
  bool name(std::string& out) {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && is_name_char(s_[pos_])) ++pos_;
    if (pos_ == start) return fail("expected a name");
    if (pos_ - start > lim_.max_name) return fail("name too long");
    out.assign(s_.substr(start, pos_ - start));
    return true;
  }
  // Character data up to `stop` with entities resolved.
  bool chars(std::string& out, char stop) {
    while (pos_ < s_.size() && s_[pos_] != stop && s_[pos_] != '<') {
      if (s_[pos_] != '&') {
        out += s_[pos_++];
        continue;
      }
      const auto semi = s_.find(';', pos_);
      if (semi == std::string_view::npos || semi - pos_ > 10) return fail("bad entity");
      const std::string_view ent = s_.substr(pos_ + 1, semi - pos_ - 1);
      if (ent == "amp")
        out += '&';
      else if (ent == "lt")
        out += '<';
      else if (ent == "gt")
        out += '>';
      else if (ent == "quot")
        out += '"';
      else if (ent == "apos")
        out += '\'';
      else if (ent.size() > 1 && ent[0] == '#') {
        const bool hex = ent[1] == 'x' || ent[1] == 'X';
        const std::string_view digits = ent.substr(hex ? 2 : 1);
        std::uint32_t cp = 0;
        const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
        if (ec != std::errc{} || p != digits.data() + digits.size() || cp == 0 || cp > 0x10FFFF)
          return fail("bad character reference");
        append_utf8(out, cp);
      } else {
        return fail("unknown entity");
      }
      pos_ = semi + 1;
    }
    return true;
  }
  bool attributes(XmlElement& e) {
    for (;;) {
      skip_space();
      if (pos_ >= s_.size()) return fail("unterminated tag");
      if (s_[pos_] == '>' || s_[pos_] == '/') return true;
      if (e.attributes.size() >= lim_.max_attributes) return fail("too many attributes");
      std::string key;
      if (!name(key)) return false;
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '=') return fail("expected '=' after an attribute name");
      ++pos_;
      skip_space();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) return fail("expected a quoted value");
      const char quote = s_[pos_++];
      std::string value;
      if (!chars(value, quote)) return false;
      if (pos_ >= s_.size() || s_[pos_] != quote) return fail("unterminated attribute value");
      ++pos_;
      for (const auto& a : e.attributes)
        if (a.first == key) return fail("duplicate attribute");
      e.attributes.emplace_back(std::move(key), std::move(value));
    }
  }
  bool element(XmlElement& e, int depth) {
    if (depth > lim_.max_depth) return fail("nested too deeply");
    if (++elements_ > lim_.max_elements) return fail("too many elements");
    if (!starts("<")) return fail("expected '<'");
    ++pos_;
    if (!name(e.name) || !attributes(e)) return false;
    if (starts("/>")) {
      pos_ += 2;
      return true;
    }
    ++pos_;  // '>'
    std::string text;
    for (;;) {
      if (!chars(text, '<')) return false;
      if (pos_ >= s_.size()) return fail("unterminated element");
      if (starts("<!--")) {
        const auto end = s_.find("-->", pos_ + 4);
        if (end == std::string_view::npos) return fail("unterminated comment");
        pos_ = end + 3;
      } else if (starts("</")) {
        pos_ += 2;
        std::string closing;
        if (!name(closing)) return false;
        if (closing != e.name) return fail("mismatched closing tag");
        skip_space();
        if (!starts(">")) return fail("expected '>'");
        ++pos_;
        e.text = std::string(trim(text));
        return true;
      } else if (starts("<?") || starts("<!")) {
        return fail("markup not accepted inside an element");
      } else {
        e.children.emplace_back();
        if (!element(e.children.back(), depth + 1)) return false;
      }
    }
  }

  std::string_view s_;
  const XmlLimits& lim_;
  std::size_t pos_ = 0;
  std::size_t elements_ = 0;
  std::string error_;
};

void escape_into(std::string& out, std::string_view v) {
  for (const char c : v) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
}

std::string message(std::string_view cmd, std::string_view body) {
  std::string m = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<bts version=\"1.0\">\n<cmd>";
  m += cmd;
  m += "</cmd>\n";
  m += body;
  m += "</bts>";
  m += kTerminator;
  return m;
}

bool parse_int(std::string_view t, int& out) noexcept {
  t = trim(t);
  const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return ec == std::errc{} && p == t.data() + t.size() && !t.empty();
}

bool parse_real(std::string_view t, double& out) noexcept {
  t = trim(t);
  if (t.empty()) return false;
  const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return ec == std::errc{} && p == t.data() + t.size() && std::isfinite(out);
}

// "T-D-S-C" or "T-D-S-C-A" (inquire's dev: the fifth is the auxiliary channel).
bool parse_dev(std::string_view t, ChannelAddress& a) noexcept {
  int v[5] = {0, 0, 0, 0, 0};
  int n = 0;
  for (;;) {
    if (n == 5) return false;
    const auto dash = t.find('-');
    if (!parse_int(t.substr(0, dash), v[n++])) return false;
    if (dash == std::string_view::npos) break;
    t.remove_prefix(dash + 1);
  }
  if (n < 4) return false;
  a = ChannelAddress{v[0], v[1], v[2], v[3]};
  return true;
}

}  // namespace

const std::string* XmlElement::attribute(std::string_view key) const noexcept {
  for (const auto& a : attributes)
    if (a.first == key) return &a.second;
  return nullptr;
}

const XmlElement* XmlElement::child(std::string_view child_name) const noexcept {
  for (const auto& c : children)
    if (c.name == child_name) return &c;
  return nullptr;
}

XmlDocument parse_xml(std::string_view text, const XmlLimits& limits) { return Parser(text, limits).run(); }

std::string to_string(const ChannelAddress& a) {
  return std::to_string(a.devtype) + "-" + std::to_string(a.devid) + "-" + std::to_string(a.subdevid) + "-" +
         std::to_string(a.chlid);
}

std::string connect_request(const std::string& username, const std::string& password) {
  std::string body = "<username>";
  escape_into(body, username);
  body += "</username><password>";
  escape_into(body, password);
  body += "</password><type>bfgs</type>\n";
  return message("connect", body);
}

std::string getdevinfo_request() { return message("getdevinfo", ""); }

std::string inquire_request(const std::vector<ChannelAddress>& channels, const std::vector<std::string>& ips) {
  std::string body = "<list count=\"" + std::to_string(channels.size()) + "\">\n";
  for (std::size_t i = 0; i < channels.size(); ++i) {
    const ChannelAddress& a = channels[i];
    body += "<inquire ip=\"";
    escape_into(body, i < ips.size() && !ips[i].empty() ? ips[i] : std::string("127.0.0.1"));
    body += "\" devtype=\"" + std::to_string(a.devtype) + "\" devid=\"" + std::to_string(a.devid) + "\" subdevid=\"" +
            std::to_string(a.subdevid) + "\" chlid=\"" + std::to_string(a.chlid) +
            "\" aux=\"0\" barcode=\"0\">true</inquire>\n";
  }
  body += "</list>\n";
  return message("inquire", body);
}

std::optional<std::string_view> message_body(std::string_view received) noexcept {
  const auto end = received.find("#\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  return trim(received.substr(0, end));
}

std::string check_reply(const XmlDocument& doc, std::string_view cmd) {
  if (!doc.error.empty()) return "malformed XML: " + doc.error;
  if (doc.root.name != "bts") return "root element <" + doc.root.name + ">, expected <bts>";
  const XmlElement* c = doc.root.child("cmd");
  if (c == nullptr) return "reply without <cmd>";
  if (c->text != std::string(cmd) + "_resp") return "reply <cmd>" + c->text + "</cmd> to " + std::string(cmd);
  return {};
}

std::string connect_problem(const XmlDocument& doc) {
  if (std::string e = check_reply(doc, "connect"); !e.empty()) return e;
  const XmlElement* r = doc.root.child("result");
  if (r == nullptr) return "connect reply without <result>";
  if (r->text != "ok") return "connect refused: result '" + r->text + "'";
  return {};
}

DevInfo parse_devinfo(const XmlDocument& doc) {
  DevInfo info;
  if (info.error = check_reply(doc, "getdevinfo"); !info.error.empty()) return info;
  const XmlElement* middle = doc.root.child("middle");
  if (middle == nullptr) {
    info.error = "getdevinfo reply without <middle>";
    return info;
  }
  for (const XmlElement& ch : middle->children) {
    if (ch.name != "channel") continue;
    // Servers name the channel id "Channelid" here (and "chlid" everywhere else): both are read.
    const std::string* chl = ch.attribute("Channelid");
    if (chl == nullptr) chl = ch.attribute("chlid");
    const std::string* t = ch.attribute("devtype");
    const std::string* d = ch.attribute("devid");
    const std::string* s = ch.attribute("subdevid");
    DevChannel dc;
    if (chl == nullptr || t == nullptr || d == nullptr || s == nullptr || !parse_int(*t, dc.address.devtype) ||
        !parse_int(*d, dc.address.devid) || !parse_int(*s, dc.address.subdevid) || !parse_int(*chl, dc.address.chlid)) {
      info.error = "getdevinfo: a <channel> without numeric devtype, devid, subdevid and Channelid";
      info.channels.clear();
      return info;
    }
    if (const std::string* ip = ch.attribute("ip")) dc.ip = *ip;
    info.channels.push_back(std::move(dc));
  }
  return info;
}

WorkStatus parse_work_status(std::string_view t) noexcept {
  t = trim(t);
  if (t == "working") return WorkStatus::working;
  if (t == "stop") return WorkStatus::stop;
  if (t == "finish") return WorkStatus::finish;
  if (t == "protect") return WorkStatus::protect;
  if (t == "pause") return WorkStatus::pause;
  return WorkStatus::unknown;
}

std::optional<core::ChannelState> to_channel_state(WorkStatus s) noexcept {
  switch (s) {
    case WorkStatus::working:
      return core::ChannelState::running;
    case WorkStatus::pause:
      return core::ChannelState::paused;
    case WorkStatus::stop:
    case WorkStatus::finish:
      return core::ChannelState::idle;
    case WorkStatus::protect:
      return core::ChannelState::fault;
    case WorkStatus::unknown:
      break;
  }
  return std::nullopt;
}

InquireReply parse_inquire(const XmlDocument& doc) {
  InquireReply out;
  if (out.error = check_reply(doc, "inquire"); !out.error.empty()) return out;
  const XmlElement* list = doc.root.child("list");
  if (list == nullptr) {
    out.error = "inquire reply without <list>";
    return out;
  }
  for (const XmlElement& e : list->children) {
    if (e.name != "inquire") continue;
    InquireRecord r;
    const std::string* dev = e.attribute("dev");
    if (dev == nullptr || !parse_dev(*dev, r.address)) {
      out.error = "inquire: a record whose dev is not devtype-devid-subdevid-chlid-aux (" +
                  (dev == nullptr ? std::string("none") : "'" + dev->substr(0, 40) + "'") + ")";
      out.records.clear();
      return out;
    }
    auto take = [&](const char* key, std::string& into) {
      if (const std::string* v = e.attribute(key)) into = *v;
    };
    take("workstatus", r.workstatus);
    take("voltage", r.voltage);
    take("current", r.current);
    take("step_id", r.step_id);
    take("cycle_id", r.cycle_id);
    take("step_type", r.step_type);
    if (const std::string* p = e.attribute("power")) {
      r.power = *p;
      r.has_power = true;
    }
    out.records.push_back(std::move(r));
  }
  return out;
}

const char* to_string(RecordProblem p) noexcept {
  switch (p) {
    case RecordProblem::none:
      return "none";
    case RecordProblem::unknown_state:
      return "unknown working state";
    case RecordProblem::bad_voltage:
      return "voltage missing or not plausible";
    case RecordProblem::bad_current:
      return "current missing or not plausible";
    case RecordProblem::bad_power:
      return "power not plausible";
    case RecordProblem::bad_step:
      return "step or cycle number not a count";
    case RecordProblem::missing:
      return "no record in the inquire reply";
  }
  return "?";
}

RecordProblem decode_record(const InquireRecord& r, core::Sample& out) noexcept {
  out.valid = false;
  out.step_index = core::Sample::kNoStep;
  out.cycle_index = core::Sample::kNoIndex;
  const auto state = to_channel_state(parse_work_status(r.workstatus));
  if (!state) return RecordProblem::unknown_state;
  double v = 0.0, i = 0.0, p = 0.0;
  if (!parse_real(r.voltage, v) || std::fabs(v) > 1000.0) return RecordProblem::bad_voltage;
  if (!parse_real(r.current, i) || std::fabs(i) > 10000.0) return RecordProblem::bad_current;
  if (r.has_power) {
    if (!parse_real(r.power, p) || std::fabs(p) > 1e7) return RecordProblem::bad_power;
  } else {
    p = v * i;
  }
  out.state = *state;
  out.voltage_V = v;
  out.current_A = i;
  out.power_W = p;
  out.equalization_mode = false;  // a BTS channel is never eqd's
  out.valid = true;
  // The program position: absent or "--" while no test runs is "not reported"; anything else that is
  // not a count the sample can hold is refused (the sample itself kept).
  auto count = [](const std::string& t, std::uint64_t max, std::uint64_t& into) {
    const std::string_view s = trim(t);
    if (s.empty() || s == "--") return 0;
    std::uint64_t n = 0;
    const auto [q, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc{} || q != s.data() + s.size() || n >= max) return -1;
    into = n;
    return 1;
  };
  std::uint64_t step = 0, cycle = 0;
  const int sr = count(r.step_id, core::Sample::kNoStep, step);
  const int cr = count(r.cycle_id, core::Sample::kNoIndex, cycle);
  if (sr < 0 || cr < 0) return RecordProblem::bad_step;
  if (sr > 0) out.step_index = static_cast<std::uint16_t>(step);
  if (cr > 0) out.cycle_index = static_cast<std::uint32_t>(cycle);
  return RecordProblem::none;
}

}  // namespace eqd::io::neware
