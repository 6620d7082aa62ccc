// The BTS-like server (sim/bts_server.hpp) against the public clients' facts, with a raw socket and
// request texts shaped as those clients send them (docs/devices.md, "Neware BTS": one line without
// newlines, `<list count = "N">` with spaces, `\n\n#\r\n` at the end), not through eqd's client.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "bts_server.hpp"

namespace bts = eqd::sim::bts;

namespace {

class Fixed final : public bts::ChannelSource {
 public:
  bts::ChannelStatus status(std::size_t device, std::size_t channel) override {
    bts::ChannelStatus s;
    s.voltage_V = 3.0 + static_cast<double>(channel) / 10.0;
    if (device == 0 && channel == 1) {
      s.workstatus = "working";
      s.current_A = -0.5;
      s.step_id = 4;
      s.cycle_id = 44;
      s.step_type = "dc";
    }
    return s;
  }
};

const std::string kHead = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><bts version=\"1.0\">";
const std::string kEnd = "</bts>\n\n#\r\n";

// One request and the reply up to its terminator ("" when none within 2 s).
std::string ask(int fd, const std::string& body) {
  const std::string req = kHead + body + kEnd;
  REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  std::string in;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (in.size() < 5 || in.compare(in.size() - 5, 5, "\n\n#\r\n") != 0) {
    pollfd p{fd, POLLIN, 0};
    if (std::chrono::steady_clock::now() > end || ::poll(&p, 1, 100) < 0) return "";
    if (p.revents == 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return "";
    in.append(buf, static_cast<std::size_t>(n));
  }
  return in;
}

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

}  // namespace

TEST_CASE("bts server: connect, getdevinfo, inquire and getchlstatus as the public clients send them",
          "[sim][neware]") {
  Fixed source;
  bts::ServerConfig cfg;
  cfg.devices = {{27, 21, 2, 8}};
  bts::BtsServer server(cfg, source);
  server.start();
  const int fd = connect_to(server.port());

  const std::string c = ask(fd,
                            "<cmd>connect</cmd><username>admin</username><password>neware</password>"
                            "<type>bfgs</type>");
  CHECK_THAT(c, Catch::StartsWith("<?xml version=\"1.0\" encoding=\"UTF-8\"?>") &&
                    Catch::Contains("<bts version=\"1.0\">") && Catch::Contains("<cmd>connect_resp</cmd>") &&
                    Catch::Contains("<result>ok</result>") && Catch::EndsWith("</bts>\n\n#\r\n"));

  const std::string d = ask(fd, "<cmd>getdevinfo</cmd>");
  CHECK_THAT(d, Catch::Contains("<cmd>getdevinfo_resp</cmd>") && Catch::Contains("<middle count=\"16\">") &&
                    Catch::Contains("devtype=\"27\" devid=\"21\" subdevid=\"2\" Channelid=\"8\">true</channel>"));

  const std::string q =
      ask(fd,
          "<cmd>inquire</cmd><list count = \"2\">"
          "<inquire ip=\"127.0.0.1\" devtype=\"27\" devid=\"21\" subdevid=\"1\" chlid=\"2\" aux=\"0\" "
          "barcode=\"1\">true</inquire>"
          "<inquire ip=\"127.0.0.1\" devtype=\"27\" devid=\"21\" subdevid=\"1\" chlid=\"3\" aux=\"0\" "
          "barcode=\"1\">true</inquire></list>");
  CHECK_THAT(q, Catch::Contains("<cmd>inquire_resp</cmd>") && Catch::Contains("<list count=\"2\">"));
  CHECK_THAT(q, Catch::Contains("dev=\"27-21-1-2-0\" cycle_id=\"44\" step_id=\"4\" step_type=\"dc\" "
                                "workstatus=\"working\"") &&
                    Catch::Contains("current=\"-0.5000\" voltage=\"3.1000\""));
  // A channel without a test: no step_id, step_type "--", cycle 1, stop.
  CHECK_THAT(q, Catch::Contains("dev=\"27-21-1-3-0\" cycle_id=\"1\" step_type=\"--\" workstatus=\"stop\""));

  const std::string s = ask(fd,
                            "<cmd>getchlstatus</cmd><list count = \"1\"><status ip=\"127.0.0.1\" devtype=\"27\" "
                            "devid=\"21\" subdevid=\"1\" chlid=\"2\">true</status></list>");
  CHECK_THAT(s, Catch::Contains("<cmd>getchlstatus_resp</cmd>") &&
                    Catch::Contains("devid=\"21\" subdevid=\"1\" chlid=\"2\" reservepause=\"0\">working</status>"));

  // A channel the server does not have: state "false".
  const std::string x = ask(fd,
                            "<cmd>inquire</cmd><list count = \"1\"><inquire ip=\"127.0.0.1\" devtype=\"27\" "
                            "devid=\"99\" subdevid=\"1\" chlid=\"1\" aux=\"0\" barcode=\"1\">true</inquire></list>");
  CHECK_THAT(x, Catch::Contains("workstatus=\"false\""));

  // A channel command is refused and counted.
  const std::string stop = ask(fd,
                               "<cmd>stop</cmd><list count = \"1\"><stop ip=\"127.0.0.1\" devtype=\"27\" "
                               "devid=\"21\" subdevid=\"1\" chlid=\"2\">true</stop></list>");
  CHECK_THAT(stop, Catch::Contains("<cmd>stop_resp</cmd>") && Catch::Contains("false"));
  const bts::ServerStats st = server.stats();
  CHECK(st.channel_commands == 1);
  CHECK(st.inquiries == 2);
  CHECK(st.devinfos == 1);

  // A wrong password: the session is refused.
  const std::string bad = ask(fd, "<cmd>connect</cmd><username>admin</username><password>x</password>");
  CHECK_THAT(bad, Catch::Contains("<result>fail</result>"));
  CHECK(server.stats().logins_refused == 1);
  ::close(fd);
  server.stop();
}

TEST_CASE("bts server: its faults", "[sim][neware]") {
  Fixed source;
  bts::ServerConfig cfg;
  cfg.devices = {{27, 21, 1, 8}};
  bts::BtsServer server(cfg, source);
  server.start();
  const std::string inquire =
      "<cmd>inquire</cmd><list count = \"1\"><inquire ip=\"127.0.0.1\" devtype=\"27\" devid=\"21\" "
      "subdevid=\"1\" chlid=\"1\" aux=\"0\" barcode=\"1\">true</inquire></list>";
  SECTION("malformed: terminated, an unclosed attribute") {
    server.set_fault(bts::Fault::malformed);
    const int fd = connect_to(server.port());
    const std::string r = ask(fd, inquire);
    CHECK_THAT(r, Catch::Contains("workstatus=\"working\r\n</bts>") && Catch::EndsWith("#\r\n"));
    ::close(fd);
  }
  SECTION("partial: half a reply, then the connection closes") {
    server.set_fault(bts::Fault::partial);
    const int fd = connect_to(server.port());
    CHECK(ask(fd, inquire).empty());
    ::close(fd);
  }
  SECTION("oversized: more than 2 MiB before the terminator") {
    server.set_fault(bts::Fault::oversized);
    const int fd = connect_to(server.port());
    CHECK(ask(fd, inquire).size() > (2U << 20));
    ::close(fd);
  }
  SECTION("trickle: one byte per period") {
    server.set_trickle_byte_ms(1);
    server.set_fault(bts::Fault::trickle);
    const int fd = connect_to(server.port());
    const auto t0 = std::chrono::steady_clock::now();
    const std::string r = ask(fd, inquire);
    CHECK_FALSE(r.empty());
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(r.size()));
    ::close(fd);
  }
  SECTION("trailing: a second, unasked message") {
    server.set_fault(bts::Fault::trailing);
    const int fd = connect_to(server.port());
    const std::string r = ask(fd, inquire);
    CHECK_THAT(r, Catch::Contains("<cmd>inquire_resp</cmd>") && Catch::Contains("<cmd>unasked_resp</cmd>"));
    ::close(fd);
  }
  server.stop();
}
