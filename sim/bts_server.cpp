/// @file bts_server.cpp
/// The BTS-like server (bts_server.hpp). Requests are read up to their "#\r\n" ending and recognised by
/// plain text search (the server expects the shapes the public clients send: one <cmd>, one element per
/// channel with devtype/devid/subdevid/chlid attributes); replies are written out as the public
/// clients' recorded replies look: XML declaration, <bts version="1.0">, <cmd>NAME_resp</cmd>, the
/// body, then "\n\n#\r\n".

#include "bts_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace eqd::sim::bts {

namespace {

constexpr const char* kEnd = "\n\n#\r\n";
constexpr std::size_t kMaxRequest = 1U << 20;

std::string between(const std::string& s, const std::string& open, const std::string& close) {
  const auto a = s.find(open);
  if (a == std::string::npos) return {};
  const auto b = s.find(close, a + open.size());
  if (b == std::string::npos) return {};
  return s.substr(a + open.size(), b - a - open.size());
}

// The value of ` key="..."` inside one tag's text (a space before the key, so that devid does not
// match subdevid).
std::string attr(const std::string& tag, const std::string& key) { return between(tag, " " + key + "=\"", "\""); }

long number(const std::string& t) {
  char* end = nullptr;
  const long v = std::strtol(t.c_str(), &end, 10);
  return (end == t.c_str() || *end != '\0') ? -1 : v;
}

// Every start tag `<name ...>` of the request, as its text.
std::vector<std::string> tags(const std::string& s, const std::string& name) {
  std::vector<std::string> out;
  const std::string open = "<" + name + " ";
  for (auto p = s.find(open); p != std::string::npos; p = s.find(open, p + 1)) {
    const auto end = s.find('>', p);
    if (end == std::string::npos) break;
    out.push_back(s.substr(p, end - p));
  }
  return out;
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4f", v);
  return b;
}

std::string head(const std::string& cmd) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<bts version=\"1.0\">\r\n  <cmd>" + cmd + "_resp</cmd>\r\n";
}

bool is_channel_command(const std::string& cmd) {
  for (const char* c : {"start", "stop", "continue", "pause", "chl_ctrl", "goto", "parallel", "resetalarm", "reset",
                        "clearflag", "light", "broadcaststop"})
    if (cmd == c) return true;
  return false;
}

}  // namespace

BtsServer::BtsServer(ServerConfig cfg, ChannelSource& source) : cfg_(std::move(cfg)), source_(source) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(cfg_.port);
  if (::inet_pton(AF_INET, cfg_.host.c_str(), &a.sin_addr) != 1 ||
      ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0) {
    const std::string why = std::strerror(errno);
    ::close(listen_fd_);
    throw std::runtime_error("bts server: cannot listen on " + cfg_.host + ":" + std::to_string(cfg_.port) + ": " +
                             why);
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
}

BtsServer::~BtsServer() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void BtsServer::start() {
  if (running_.exchange(true)) return;
  accept_thread_ = std::thread([this] { accept_loop(); });
}

void BtsServer::stop() {
  if (!running_.exchange(false)) return;
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  drop_connections();
  std::vector<std::thread> threads;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

void BtsServer::drop_connections() {
  const std::lock_guard<std::mutex> lock(mutex_);
  for (const int fd : clients_) ::shutdown(fd, SHUT_RDWR);
}

ServerStats BtsServer::stats() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void BtsServer::accept_loop() {
  while (running_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.connections;
    clients_.push_back(fd);
    threads_.emplace_back([this, fd] { serve(fd); });
  }
}

void BtsServer::serve(int fd) {
  std::string in;
  char chunk[4096];
  bool open = true;
  while (open && running_.load()) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    in.append(chunk, static_cast<std::size_t>(n));
    if (in.size() > kMaxRequest) break;
    for (auto end = in.find("#\r\n"); end != std::string::npos && open; end = in.find("#\r\n")) {
      const std::string request = in.substr(0, end);
      in.erase(0, end + 3);
      bool close_after = false;
      const std::string reply = answer(request, close_after);
      if (!reply.empty()) send_reply(fd, reply);
      if (close_after) open = false;
    }
  }
  const std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = clients_.begin(); it != clients_.end(); ++it)
    if (*it == fd) {
      clients_.erase(it);
      break;
    }
  ::close(fd);
}

void BtsServer::send_reply(int fd, const std::string& reply) {
  const int trickle = fault_.load() == Fault::trickle ? trickle_byte_ms_.load() : 0;
  std::size_t sent = 0;
  while (sent < reply.size() && running_.load()) {
    const std::size_t n = trickle > 0 ? 1 : reply.size() - sent;
    const ssize_t w = ::send(fd, reply.data() + sent, n, MSG_NOSIGNAL);
    if (w <= 0) return;
    sent += static_cast<std::size_t>(w);
    if (trickle > 0) std::this_thread::sleep_for(std::chrono::milliseconds(trickle));
  }
}

std::string BtsServer::answer(const std::string& request, bool& close_after) {
  const std::string cmd = between(request, "<cmd>", "</cmd>");
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.requests;
    if (cmd == "inquire") ++stats_.inquiries;
    if (cmd == "getdevinfo") ++stats_.devinfos;
    if (is_channel_command(cmd)) ++stats_.channel_commands;
  }
  if (cmd == "connect") {
    const bool ok = between(request, "<username>", "</username>") == cfg_.username &&
                    between(request, "<password>", "</password>") == cfg_.password;
    if (!ok) {
      const std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.logins_refused;
    }
    return head(cmd) + "  <result>" + (ok ? "ok" : "fail") + "</result>\r\n</bts>" + kEnd;
  }
  if (cmd == "getdevinfo") {
    std::string body = "  <serverip count=\"1\">\r\n    <server ip=\"127.0.0.1\" port=\"3306\" />\r\n  </serverip>\r\n";
    std::string chans;
    int count = 0;
    for (const DeviceSpec& d : cfg_.devices)
      for (int u = 1; u <= d.units; ++u)
        for (int c = 1; c <= d.unit_channels; ++c, ++count)
          chans += "    <channel ip=\"127.0.0.1\" devtype=\"" + std::to_string(d.devtype) + "\" devid=\"" +
                   std::to_string(d.devid) + "\" subdevid=\"" + std::to_string(u) + "\" Channelid=\"" +
                   std::to_string(c) + "\">true</channel>\r\n";
    body += "  <middle count=\"" + std::to_string(count) + "\">\r\n" + chans + "  </middle>\r\n";
    return head(cmd) + body + "</bts>" + kEnd;
  }
  if (cmd != "inquire" && cmd != "getchlstatus") {
    // Channel commands and anything unknown: refused for every channel named (a read-only client
    // must never get here; the counter shows it).
    return head(cmd) + "  <list count=\"0\">\r\n  </list>\r\n  <result>false</result>\r\n</bts>" + kEnd;
  }

  const Fault fault = fault_.load();
  if (fault == Fault::silent) return {};
  const bool inquire = cmd == "inquire";
  const std::vector<std::string> asked = tags(request, inquire ? "inquire" : "status");
  std::string items;
  for (const std::string& t : asked) {
    const long type = number(attr(t, "devtype")), id = number(attr(t, "devid")), unit = number(attr(t, "subdevid")),
               chl = number(attr(t, "chlid"));
    ChannelStatus st;
    st.workstatus = "false";  // not a channel of this server
    for (std::size_t d = 0; d < cfg_.devices.size(); ++d) {
      const DeviceSpec& spec = cfg_.devices[d];
      if (spec.devtype != type || spec.devid != id || unit < 1 || unit > spec.units || chl < 1 ||
          chl > spec.unit_channels)
        continue;
      st = source_.status(d, static_cast<std::size_t>((unit - 1) * spec.unit_channels + (chl - 1)));
    }
    const std::string where = "devtype=\"" + std::to_string(type) + "\" devid=\"" + std::to_string(id) +
                              "\" subdevid=\"" + std::to_string(unit) + "\" chlid=\"" + std::to_string(chl) + "\"";
    if (!inquire) {
      items += "    <status ip=\"127.0.0.1\" " + where + " reservepause=\"0\">" + st.workstatus + "</status>\r\n";
      continue;
    }
    items += "    <inquire dev=\"" + std::to_string(type) + "-" + std::to_string(id) + "-" + std::to_string(unit) +
             "-" + std::to_string(chl) + "-0\" cycle_id=\"" + std::to_string(st.cycle_id < 0 ? 1 : st.cycle_id) + "\"";
    if (st.step_id >= 0) items += " step_id=\"" + std::to_string(st.step_id) + "\"";
    items += " step_type=\"" + st.step_type + "\" workstatus=\"" + st.workstatus + "\" barcode=\"\" current=\"" +
             fmt(st.current_A) + "\" voltage=\"" + fmt(st.voltage_V) + "\"";
    if (st.with_power)
      items += " power=\"" + fmt(std::isnan(st.power_W) ? st.voltage_V * st.current_A : st.power_W) + "\"";
    items +=
        " capacity=\"0\" energy=\"0\" totaltime=\"0\" relativetime=\"0\" open_or_close=\"0\" log_code=\"0\" />\r\n";
  }
  const std::string list = "  <list count=\"" + std::to_string(asked.size()) + "\">\r\n" + items + "  </list>\r\n";
  switch (fault) {
    case Fault::malformed:
      return head(cmd) + "  <list count=\"1\">\r\n    <inquire dev=\"1-1-1-1-0\" workstatus=\"working\r\n</bts>" + kEnd;
    case Fault::partial: {
      const std::string whole = head(cmd) + list + "</bts>" + kEnd;
      close_after = true;
      return whole.substr(0, whole.size() / 2);
    }
    case Fault::oversized: {
      std::string big = head(cmd) + "  <list count=\"0\">\r\n";
      while (big.size() < (2U << 20)) big += "    <pad a=\"0123456789012345678901234567890123456789\" />\r\n";
      return big + "  </list>\r\n</bts>" + kEnd;
    }
    case Fault::wrong_cmd:
      return head("getdevinfo") + list + "</bts>" + kEnd;
    case Fault::trailing:
      return head(cmd) + list + "</bts>" + kEnd + head("unasked") + "</bts>" + kEnd;
    default:
      return head(cmd) + list + "</bts>" + kEnd;
  }
}

}  // namespace eqd::sim::bts
