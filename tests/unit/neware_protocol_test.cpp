// The Neware BTS exchange without a network (io/neware/protocol.hpp): the bounded XML parser on
// well-formed, malformed and hostile documents, the requests eqd sends, and the decoding of replies
// written here by hand from the facts in docs/devices.md ("Neware BTS"), not by the simulator.

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "eqd/io/neware/protocol.hpp"

namespace nw = eqd::io::neware;
using eqd::core::ChannelState;
using eqd::core::Sample;

namespace {

std::string wrap(const std::string& cmd, const std::string& body) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<bts version=\"1.0\">\r\n<cmd>" + cmd + "</cmd>\r\n" + body +
         "</bts>";
}

std::string record(const std::string& dev, const std::string& attrs) {
  return "<inquire dev=\"" + dev + "\" " + attrs + " />\n";
}

nw::InquireReply inquire_of(const std::string& records) {
  return nw::parse_inquire(nw::parse_xml(wrap("inquire_resp", "<list count=\"9\">\n" + records + "</list>\n")));
}

}  // namespace

TEST_CASE("neware XML: a well-formed reply parses into elements, attributes and text", "[neware][xml]") {
  const nw::XmlDocument d = nw::parse_xml(
      "<?xml version=\"1.0\"?>\n<!-- c -->\n<bts version=\"1.0\"><cmd> getdevinfo_resp </cmd>"
      "<a x='1' y=\"&lt;&amp;&#65;&#x42;\">t&gt;<b/><c z=\"2\">u</c></a></bts>\n");
  REQUIRE(d.error.empty());
  CHECK(d.root.name == "bts");
  CHECK(*d.root.attribute("version") == "1.0");
  CHECK(d.root.child("cmd")->text == "getdevinfo_resp");
  const nw::XmlElement* a = d.root.child("a");
  REQUIRE(a != nullptr);
  CHECK(*a->attribute("x") == "1");
  CHECK(*a->attribute("y") == "<&AB");
  CHECK(a->text == "t>");
  CHECK(a->children.size() == 2);
  CHECK(a->child("c")->text == "u");
  CHECK(a->attribute("nope") == nullptr);
  // A UTF-8 byte order mark before the declaration is skipped.
  CHECK(nw::parse_xml("\xEF\xBB\xBF<?xml version=\"1.0\"?><bts/>").error.empty());
}

TEST_CASE("neware XML: malformed and hostile documents are refused with where, never a crash", "[neware][xml]") {
  const char* bad[] = {
      "",
      "<bts>",
      "<bts><cmd>x</bts>",
      "<bts a=1></bts>",
      "<bts a=\"1></bts>",
      "<bts a=\"1\" a=\"2\"></bts>",
      "<bts>&unknown;</bts>",
      "<bts>&#0;</bts>",
      "<bts>&#x110000;</bts>",
      "<bts></bts><bts></bts>",
      "<!DOCTYPE bts [<!ENTITY e \"x\">]><bts>&e;</bts>",
      "<bts><![CDATA[x]]></bts>",
      "<bts><!-- unterminated </bts>",
      "<bts \x01=\"1\"></bts>",
      "<bts><cmd>x</cmd>",
  };
  for (const char* b : bad) {
    INFO(b);
    const nw::XmlDocument d = nw::parse_xml(b);
    CHECK_FALSE(d.error.empty());
  }
  CHECK_THAT(nw::parse_xml("<bts><cmd>x</bts>").error, Catch::Contains("mismatched closing tag at byte"));

  nw::XmlLimits lim;
  lim.max_depth = 3;
  CHECK_THAT(nw::parse_xml("<a><b><c><d/></c></b></a>", lim).error, Catch::Contains("nested too deeply"));
  CHECK(nw::parse_xml("<a><b><c/></b></a>", lim).error.empty());
  lim = {};
  lim.max_elements = 10;
  std::string many = "<a>";
  for (int i = 0; i < 20; ++i) many += "<b/>";
  CHECK_THAT(nw::parse_xml(many + "</a>", lim).error, Catch::Contains("too many elements"));
  lim = {};
  lim.max_attributes = 2;
  CHECK_THAT(nw::parse_xml("<a x=\"1\" y=\"2\" z=\"3\"/>", lim).error, Catch::Contains("too many attributes"));
  lim = {};
  lim.max_bytes = 16;
  CHECK_THAT(nw::parse_xml("<a>01234567890123456789</a>", lim).error, Catch::Contains("limit 16"));
  // Deep nesting far past the limit costs nothing: refused at the limit.
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "<a>";
  CHECK_THAT(nw::parse_xml(deep).error, Catch::Contains("nested too deeply"));
}

TEST_CASE("neware requests: XML declaration, bts root, cmd, terminator, escaped values", "[neware][xml]") {
  const std::string c = nw::connect_request("ad<m>", "p&\"w");
  CHECK(c.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>", 0) == 0);
  CHECK_THAT(c, Catch::Contains("<bts version=\"1.0\">") && Catch::Contains("<cmd>connect</cmd>") &&
                    Catch::Contains("<username>ad&lt;m&gt;</username>") &&
                    Catch::Contains("<password>p&amp;&quot;w</password>") && Catch::EndsWith("</bts>\n\n#\r\n"));
  const std::string g = nw::getdevinfo_request();
  CHECK_THAT(g, Catch::Contains("<cmd>getdevinfo</cmd>") && Catch::EndsWith("\n\n#\r\n"));
  const std::string q = nw::inquire_request({{27, 21, 1, 2}, {27, 21, 2, 8}}, {"10.0.0.7"});
  CHECK_THAT(q, Catch::Contains("<inquire ip=\"10.0.0.7\" devtype=\"27\" devid=\"21\" subdevid=\"1\"") &&
                    Catch::Contains("<inquire ip=\"127.0.0.1\" devtype=\"27\" devid=\"21\" subdevid=\"2\""));
  CHECK_THAT(q, Catch::Contains("<cmd>inquire</cmd>") && Catch::Contains("<list count=\"2\">") &&
                    Catch::Contains("devtype=\"27\" devid=\"21\" subdevid=\"2\" chlid=\"8\" aux=\"0\""));
  // Every request is itself a document the parser accepts (what precedes the terminator).
  for (const std::string* m : {&c, &g, &q}) {
    const auto body = nw::message_body(*m);
    REQUIRE(body);
    CHECK(nw::parse_xml(*body).error.empty());
  }
}

TEST_CASE("neware framing: a message ends at its terminator", "[neware][xml]") {
  CHECK_FALSE(nw::message_body("<bts></bts>\n\n#\r"));
  CHECK(*nw::message_body("<bts></bts>\n\n#\r\n") == "<bts></bts>");
  CHECK(*nw::message_body("  <bts/>  #\r\ntrailing") == "<bts/>");
}

TEST_CASE("neware replies: connect, getdevinfo, wrong command", "[neware][xml]") {
  CHECK(nw::connect_problem(nw::parse_xml(wrap("connect_resp", "<result>ok</result>"))).empty());
  CHECK_THAT(nw::connect_problem(nw::parse_xml(wrap("connect_resp", "<result>fail</result>"))),
             Catch::Contains("connect refused: result 'fail'"));
  CHECK_THAT(nw::connect_problem(nw::parse_xml(wrap("inquire_resp", ""))),
             Catch::Contains("reply <cmd>inquire_resp</cmd> to connect"));
  CHECK_THAT(nw::connect_problem(nw::parse_xml("<bts><cmd>connect_resp</cmd>")), Catch::StartsWith("malformed XML"));

  const nw::DevInfo info = nw::parse_devinfo(nw::parse_xml(
      wrap("getdevinfo_resp",
           "<serverip count=\"1\"><server ip=\"127.0.0.1\" port=\"3306\"/></serverip>"
           "<middle count=\"3\">"
           "<channel ip=\"10.0.0.2\" devtype=\"27\" devid=\"21\" subdevid=\"1\" Channelid=\"1\">true</channel>"
           "<channel ip=\"10.0.0.2\" devtype=\"27\" devid=\"21\" subdevid=\"2\" Channelid=\"8\">false</channel>"
           "<channel ip=\"10.0.0.3\" devtype=\"24\" devid=\"5\" subdevid=\"1\" chlid=\"3\">true</channel></middle>")));
  REQUIRE(info.error.empty());
  REQUIRE(info.channels.size() == 3);
  CHECK(info.channels[1].address == nw::ChannelAddress{27, 21, 2, 8});
  CHECK(info.channels[2].address == nw::ChannelAddress{24, 5, 1, 3});
  CHECK(info.channels[0].ip == "10.0.0.2");
  const nw::DevInfo bad = nw::parse_devinfo(nw::parse_xml(wrap(
      "getdevinfo_resp", "<middle><channel devtype=\"27\" devid=\"x\" subdevid=\"1\" Channelid=\"1\"/></middle>")));
  CHECK_THAT(bad.error, Catch::Contains("without numeric"));
  CHECK_THAT(nw::parse_devinfo(nw::parse_xml(wrap("getdevinfo_resp", ""))).error, Catch::Contains("without <middle>"));
}

TEST_CASE("neware working states map to eqd's, anything else is no state", "[neware][state]") {
  using nw::WorkStatus;
  CHECK(nw::to_channel_state(nw::parse_work_status("working")) == ChannelState::running);
  CHECK(nw::to_channel_state(nw::parse_work_status("pause")) == ChannelState::paused);
  CHECK(nw::to_channel_state(nw::parse_work_status("stop")) == ChannelState::idle);
  CHECK(nw::to_channel_state(nw::parse_work_status("finish")) == ChannelState::idle);
  CHECK(nw::to_channel_state(nw::parse_work_status("protect")) == ChannelState::fault);
  for (const char* s : {"false", "", "Working", "unknown", "equalizing"})
    CHECK_FALSE(nw::to_channel_state(nw::parse_work_status(s)));
}

TEST_CASE("neware inquire: records decode into samples with eqd's sign, step and cycle", "[neware][state]") {
  const nw::InquireReply r = inquire_of(
      record("27-21-1-2-0",
             "cycle_id=\"44\" step_id=\"4\" step_type=\"dc\" workstatus=\"working\" current=\"-2.5\" voltage=\"3.6\"") +
      record("27-21-1-3-0", "cycle_id=\"1\" step_type=\"--\" workstatus=\"finish\" current=\"0\" voltage=\"3.88\"") +
      record("27-21-2-1",
             "cycle_id=\"7\" step_id=\"2\" workstatus=\"pause\" current=\"1\" voltage=\"4\" power=\"3.9\""));
  REQUIRE(r.error.empty());
  REQUIRE(r.records.size() == 3);
  CHECK(r.records[0].address == nw::ChannelAddress{27, 21, 1, 2});
  CHECK(r.records[2].address == nw::ChannelAddress{27, 21, 2, 1});

  Sample s;
  REQUIRE(nw::decode_record(r.records[0], s) == nw::RecordProblem::none);
  CHECK(s.valid);
  CHECK(s.state == ChannelState::running);
  CHECK(s.voltage_V == 3.6);
  CHECK(s.current_A == -2.5);
  CHECK(s.power_W == Approx(-9.0));  // discharging: negative in eqd's sign
  CHECK(s.step_index == 4);
  CHECK(s.cycle_index == 44);
  CHECK_FALSE(s.equalization_mode);

  REQUIRE(nw::decode_record(r.records[1], s) == nw::RecordProblem::none);
  CHECK(s.state == ChannelState::idle);
  CHECK(s.step_index == Sample::kNoStep);  // no step_id: not reported
  CHECK(s.cycle_index == 1);

  REQUIRE(nw::decode_record(r.records[2], s) == nw::RecordProblem::none);
  CHECK(s.state == ChannelState::paused);
  CHECK(s.power_W == 3.9);  // the reply's own power where it has one
}

TEST_CASE("neware inquire: bad records leave the sample invalid, bad step numbers only the position",
          "[neware][state]") {
  auto decode = [](const std::string& attrs, Sample& s) {
    const nw::InquireReply r = inquire_of(record("27-1-1-1-0", attrs));
    REQUIRE(r.error.empty());
    return nw::decode_record(r.records.at(0), s);
  };
  Sample s;
  CHECK(decode("workstatus=\"exploded\" current=\"1\" voltage=\"3\"", s) == nw::RecordProblem::unknown_state);
  CHECK_FALSE(s.valid);
  CHECK(decode("workstatus=\"working\" current=\"1\" voltage=\"--\"", s) == nw::RecordProblem::bad_voltage);
  CHECK_FALSE(s.valid);
  CHECK(decode("workstatus=\"working\" current=\"1\"", s) == nw::RecordProblem::bad_voltage);
  CHECK(decode("workstatus=\"working\" current=\"nan\" voltage=\"3\"", s) == nw::RecordProblem::bad_current);
  CHECK(decode("workstatus=\"working\" current=\"1e9\" voltage=\"3\"", s) == nw::RecordProblem::bad_current);
  CHECK(decode("workstatus=\"working\" current=\"1\" voltage=\"3\" power=\"x\"", s) == nw::RecordProblem::bad_power);
  CHECK_FALSE(s.valid);
  CHECK(decode("workstatus=\"working\" current=\"1\" voltage=\"3\" step_id=\"70000\"", s) ==
        nw::RecordProblem::bad_step);
  CHECK(s.valid);
  CHECK(s.step_index == Sample::kNoStep);
  CHECK(decode("workstatus=\"working\" current=\"1\" voltage=\"3\" cycle_id=\"-1\"", s) == nw::RecordProblem::bad_step);
  CHECK(s.valid);
  CHECK(s.cycle_index == Sample::kNoIndex);

  CHECK_THAT(inquire_of(record("27-1-1", "workstatus=\"stop\"")).error, Catch::Contains("dev is not"));
  CHECK_THAT(inquire_of("<inquire workstatus=\"stop\"/>").error, Catch::Contains("dev is not"));
  CHECK_THAT(inquire_of(record("1-2-3-4-5-6", "")).error, Catch::Contains("dev is not"));
  CHECK_THAT(nw::parse_inquire(nw::parse_xml(wrap("getdevinfo_resp", ""))).error,
             Catch::Contains("<cmd>getdevinfo_resp</cmd> to inquire"));
}

TEST_CASE("neware XML: random damage to real-shaped replies never crashes the parser or the decoders",
          "[neware][xml]") {
  // Every byte flip, insertion, deletion and truncation of a getdevinfo and an inquire reply either
  // parses (and decodes to records or an error) or is refused with a message; run under ASan/UBSan in CI.
  const std::string replies[] = {
      wrap("getdevinfo_resp",
           "<middle count=\"2\"><channel ip=\"1.2.3.4\" devtype=\"27\" devid=\"21\" subdevid=\"1\" "
           "Channelid=\"1\">true</channel><channel ip=\"1.2.3.4\" devtype=\"27\" devid=\"21\" subdevid=\"1\" "
           "Channelid=\"2\">false</channel></middle>"),
      wrap("inquire_resp", "<list count=\"2\">" +
                               record("27-21-1-1-0",
                                      "cycle_id=\"3\" step_id=\"2\" step_type=\"cc\" workstatus=\"working\" "
                                      "current=\"1.5\" voltage=\"3.7\" capacity=\"0.1\"") +
                               record("27-21-1-2-0",
                                      "cycle_id=\"1\" step_type=\"--\" workstatus=\"stop\" "
                                      "current=\"0\" voltage=\"3.3\" power=\"0\"") +
                               "</list>")};
  std::uint32_t rng = 12345;
  auto next = [&rng] { return rng = rng * 1664525u + 1013904223u; };
  const char alphabet[] = "<>/=\"'&;#x- \n\0abc1";
  std::size_t parsed = 0, refused = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string doc = replies[i % 2];
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits && !doc.empty(); ++e) {
      const std::size_t at = next() % doc.size();
      const char ch = alphabet[next() % (sizeof alphabet - 1)];
      switch (next() % 4) {
        case 0:
          doc[at] = ch;
          break;
        case 1:
          doc.insert(doc.begin() + static_cast<std::ptrdiff_t>(at), ch);
          break;
        case 2:
          doc.erase(at, 1 + next() % 8);
          break;
        default:
          doc.resize(at);
          break;
      }
    }
    const nw::XmlDocument d = nw::parse_xml(doc);
    if (!d.error.empty()) {
      ++refused;
      continue;
    }
    ++parsed;
    (void)nw::parse_devinfo(d);
    const nw::InquireReply r = nw::parse_inquire(d);
    for (const auto& rec : r.records) {
      Sample s;
      (void)nw::decode_record(rec, s);
      // A valid sample is a plausible one: never a number the law must not see.
      if (s.valid) CHECK((std::isfinite(s.power_W) && std::fabs(s.voltage_V) <= 1000.0));
    }
  }
  CHECK(parsed > 100);
  CHECK(refused > 1000);
}
