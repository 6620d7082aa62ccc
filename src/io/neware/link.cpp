/// @file link.cpp
/// NewareLink: connect, open the API session, list the channels, poll them with inquire (one BTS
/// device, one I/O thread, read only). Plain non-blocking POSIX sockets with poll(): every exchange has
/// one deadline for the request and its whole reply, so a server that trickles its reply (slowloris)
/// or never ends it costs at most timeout_ms, and a reply longer than kMaxReplyBytes is cut off.
/// Reconnect, backoff and statistics follow the SunSpec link.

#include "eqd/io/neware/link.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace eqd::io::neware {

namespace {

int ms_until(std::int64_t deadline_ns) {
  const std::int64_t left = deadline_ns - steady_now_ns();
  return left <= 0 ? 0 : static_cast<int>((left + 999'999) / 1'000'000);
}

}  // namespace

NewareLink::NewareLink(NewareLinkConfig cfg, ChannelSlots slots) : cfg_(std::move(cfg)), slots_(std::move(slots)) {
  std::string errs;
  if (slots_.samples.empty()) errs += " no channels;";
  if (!(cfg_.poll_hz > 0.0 && cfg_.poll_hz <= 100.0)) errs += " poll_hz must be in (0, 100];";
  if (cfg_.timeout_ms <= 0) errs += " timeout_ms must be positive;";
  if (cfg_.unit_channels <= 0) errs += " unit_channels must be positive;";
  if (cfg_.backoff_initial_ms <= 0 || cfg_.backoff_max_ms < cfg_.backoff_initial_ms)
    errs += " backoff_initial_ms must be positive and <= backoff_max_ms;";
  if (!errs.empty()) throw std::invalid_argument("controller '" + cfg_.name + "':" + errs);
  backoff_ms_ = cfg_.backoff_initial_ms;
  missing_.assign(slots_.samples.size(), false);
  problem_.assign(slots_.samples.size(), RecordProblem::none);
  for (auto* s : slots_.samples) {
    if (s == nullptr) continue;
    core::Sample off{};
    off.state = core::ChannelState::offline;
    s->store(off);
  }
}

NewareLink::~NewareLink() { stop(); }

void NewareLink::start() {
  thread_.start([this] { run(); });
}

void NewareLink::stop() {
  thread_.stop();
  // Joined: the thread is gone, so its state is ours now.
  close_link();
}

ChannelAddress NewareLink::address_of(std::size_t k, int devtype) const noexcept {
  const auto n = static_cast<std::size_t>(cfg_.unit_channels);
  return ChannelAddress{devtype, cfg_.device_id, static_cast<int>(k / n) + 1, static_cast<int>(k % n) + 1};
}

void NewareLink::report(const std::string& message, LinkErrc code, std::uint16_t channel) {
  std::snprintf(local_.last_error, sizeof local_.last_error, "%s", message.c_str());
  // The journal gets the whole text; last_error holds what fits.
  record_link_error(local_, cfg_.on_error, channel, code, message.c_str());
}

bool NewareLink::open_socket() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(cfg_.port);
  if (const int rc = ::getaddrinfo(cfg_.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    report(cfg_.name + " resolve " + cfg_.host + ": " + ::gai_strerror(rc), LinkErrc::connect_failed);
    return false;
  }
  const std::int64_t deadline = steady_now_ns() + static_cast<std::int64_t>(cfg_.timeout_ms) * 1'000'000;
  int err = 0;
  for (addrinfo* a = res; a != nullptr && fd_ < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, ms_until(deadline));
      if (rc == 0) {
        err = ETIMEDOUT;
        rc = -1;
      } else if (rc > 0) {
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
      } else {
        err = errno;
      }
    } else if (rc < 0) {
      err = errno;
    }
    if (rc == 0) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      fd_ = fd;
    } else {
      ::close(fd);
    }
  }
  ::freeaddrinfo(res);
  if (fd_ >= 0) return true;
  if (err == ETIMEDOUT) ++local_.timeouts;
  report(cfg_.name + " connect " + cfg_.host + ":" + port + ": " + std::strerror(err),
         err == ETIMEDOUT ? LinkErrc::timeout : LinkErrc::connect_failed);
  return false;
}

NewareLink::Xfer NewareLink::exchange(const std::string& req, std::string& body) {
  const std::int64_t deadline = steady_now_ns() + static_cast<std::int64_t>(cfg_.timeout_ms) * 1'000'000;
  // Bytes the server sent unasked (after its last reply's end) would be read as the start of this
  // reply: they are dropped and counted, so that the exchange stays in step.
  char chunk[4096];
  std::size_t stray = 0;
  for (ssize_t n; stray <= kMaxReplyBytes && (n = ::recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT)) > 0;)
    stray += static_cast<std::size_t>(n);
  if (stray > kMaxReplyBytes) return Xfer::oversized;
  note_stray(stray);
  std::size_t sent = 0;
  while (sent < req.size()) {
    const ssize_t n = ::send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      io_errno_ = errno;
      return Xfer::io_error;
    }
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, ms_until(deadline)) == 0) return Xfer::timeout;
  }
  buffer_.clear();
  for (;;) {
    if (const auto b = message_body(buffer_)) {
      body.assign(*b);
      note_stray(buffer_.size() - (buffer_.find("#\r\n") + 3));  // read with the reply, after its end
      return Xfer::ok;
    }
    // The terminator may still be on its way only while the reply is within its bound.
    if (buffer_.size() > kMaxReplyBytes + kTerminator.size()) return Xfer::oversized;
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return Xfer::closed;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      io_errno_ = errno;
      return Xfer::io_error;
    }
    pollfd p{fd_, POLLIN, 0};
    const int left = ms_until(deadline);
    if (left == 0 || ::poll(&p, 1, left) == 0) return Xfer::timeout;
  }
}

void NewareLink::note_stray(std::size_t bytes) {
  if (bytes == 0) return;
  ++local_.protocol_errors;
  report(cfg_.name + ": " + std::to_string(bytes) + " bytes from the server that answer no request, dropped",
         LinkErrc::bad_response);
}

bool NewareLink::request(const std::string& req, const char* cmd, XmlDocument& doc) {
  std::string body;
  const Xfer x = exchange(req, body);
  if (x == Xfer::ok) {
    doc = parse_xml(body);
    return true;
  }
  // Whatever part of a reply is still to come would be read as the next one: the stream is lost.
  const std::string what = cfg_.name + " " + cmd + ": ";
  switch (x) {
    case Xfer::timeout:
      ++local_.timeouts;
      report(what + "no whole reply within " + std::to_string(cfg_.timeout_ms) + " ms (" +
                 std::to_string(buffer_.size()) + " bytes received)",
             LinkErrc::timeout);
      break;
    case Xfer::closed:
      ++local_.connection_errors;
      report(what + (buffer_.empty() ? std::string("connection closed by the server")
                                     : "connection closed within a reply (" + std::to_string(buffer_.size()) +
                                           " bytes of a partial reply)"),
             buffer_.empty() ? LinkErrc::link_lost : LinkErrc::bad_response);
      break;
    case Xfer::oversized:
      ++local_.protocol_errors;
      report(what + "reply longer than " + std::to_string(kMaxReplyBytes) + " bytes without its end",
             LinkErrc::bad_response);
      break;
    case Xfer::io_error:
    case Xfer::ok:
      ++local_.connection_errors;
      report(what + std::strerror(io_errno_), LinkErrc::link_lost);
      break;
  }
  close_link();
  return false;
}

bool NewareLink::connect_link(std::int64_t t_ns) {
  if (t_ns < next_connect_ns_) return false;
  auto retry_later = [&] {
    close_link();
    return false;
  };
  if (!open_socket()) {
    ++local_.connection_errors;
    return retry_later();
  }
  XmlDocument doc;
  if (!request(connect_request(cfg_.username, cfg_.password), "connect", doc)) return false;
  if (const std::string e = connect_problem(doc); !e.empty()) {
    ++local_.protocol_errors;
    report(cfg_.name + " connect: " + e, LinkErrc::device_unusable);
    return retry_later();
  }
  if (!request(getdevinfo_request(), "getdevinfo", doc)) return false;
  const DevInfo info = parse_devinfo(doc);
  if (!info.error.empty()) {
    ++local_.protocol_errors;
    report(cfg_.name + " " + info.error, LinkErrc::bad_response);
    return retry_later();
  }
  // The device type of this device as the server lists it (or the configured one, which it must list).
  int devtype = cfg_.device_type;
  std::vector<int> devices;
  for (const DevChannel& c : info.channels) {
    if (c.address.devid == cfg_.device_id && (devtype < 0 || devtype == c.address.devtype)) devtype = c.address.devtype;
    if (std::find(devices.begin(), devices.end(), c.address.devid) == devices.end()) devices.push_back(c.address.devid);
  }
  const bool listed = std::any_of(info.channels.begin(), info.channels.end(), [&](const DevChannel& c) {
    return c.address.devid == cfg_.device_id && c.address.devtype == devtype;
  });
  if (!listed) {
    std::string have;
    for (const int d : devices) have += (have.empty() ? "" : ", ") + std::to_string(d);
    ++local_.protocol_errors;
    report(cfg_.name + " getdevinfo: the BTS server lists no device " + std::to_string(cfg_.device_id) +
               (cfg_.device_type >= 0 ? " of type " + std::to_string(cfg_.device_type) : std::string()) +
               " (devices: " + (have.empty() ? "none" : have) + ")",
           LinkErrc::device_unusable);
    return retry_later();
  }
  device_type_.store(devtype);
  asked_.clear();
  asked_k_.clear();
  std::vector<std::string> ips;
  for (std::size_t k = 0; k < slots_.samples.size(); ++k) {
    if (slots_.samples[k] == nullptr) continue;
    const ChannelAddress a = address_of(k, devtype);
    const auto listed_as =
        std::find_if(info.channels.begin(), info.channels.end(), [&](const DevChannel& c) { return c.address == a; });
    const bool present = listed_as != info.channels.end();
    if (!present && !missing_[k])
      report(cfg_.name + "/" + std::to_string(k + 1) + ": channel " + to_string(a) +
                 " is not listed by the BTS server: published invalid",
             LinkErrc::device_unusable, static_cast<std::uint16_t>(k + 1));
    missing_[k] = !present;
    if (!present) continue;
    asked_.push_back(a);
    asked_k_.push_back(k);
    ips.push_back(listed_as->ip);  // the public clients send back the ip getdevinfo lists
  }
  request_ = inquire_request(asked_, ips);
  if (ever_connected_) ++local_.reconnects;
  ever_connected_ = true;
  backoff_ms_ = cfg_.backoff_initial_ms;
  connected_.store(true, std::memory_order_release);
  return true;
}

void NewareLink::close_link() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  connected_.store(false, std::memory_order_release);
  next_connect_ns_ = steady_now_ns() + static_cast<std::int64_t>(backoff_ms_) * 1'000'000;
  backoff_ms_ = std::min(backoff_ms_ * 2, cfg_.backoff_max_ms);
}

void NewareLink::publish_down(std::int64_t t_ns, bool connected) {
  for (std::size_t k = 0; k < slots_.samples.size(); ++k) {
    if (slots_.samples[k] == nullptr) continue;
    core::Sample s{};
    s.receive_time_ns = t_ns;
    s.sequence = ++sequence_;
    s.state = connected ? core::ChannelState::idle : core::ChannelState::offline;
    if (connected) ++local_.invalid_samples;
    slots_.samples[k]->store(s);
  }
}

void NewareLink::poll_once() {
  XmlDocument doc;
  if (!request(request_, "inquire", doc)) {
    publish_down(steady_now_ns(), false);
    return;
  }
  const InquireReply reply = parse_inquire(doc);
  const std::int64_t t = steady_now_ns();
  if (!reply.error.empty()) {
    // A whole reply that is not what eqd asked for: the framing held, the connection stays, and every
    // channel is invalid for this poll.
    ++local_.protocol_errors;
    // Once per kind of error, not at every poll (the journal would fill at poll_hz).
    if (reply.error != last_reply_error_) report(cfg_.name + " " + reply.error, LinkErrc::bad_response);
    last_reply_error_ = reply.error;
    publish_down(t, true);
    return;
  }
  last_reply_error_.clear();
  bool all_ok = true;
  for (std::size_t k = 0; k < slots_.samples.size(); ++k) {
    if (slots_.samples[k] == nullptr) continue;
    core::Sample s{};
    s.receive_time_ns = t;
    s.sequence = ++sequence_;
    s.state = core::ChannelState::idle;
    RecordProblem p = RecordProblem::none;
    std::string why;
    const auto pos = std::find(asked_k_.begin(), asked_k_.end(), k);
    if (missing_[k] || pos == asked_k_.end()) {
      all_ok = false;
      ++local_.invalid_samples;
      slots_.samples[k]->store(s);
      continue;
    }
    const ChannelAddress& a = asked_[static_cast<std::size_t>(pos - asked_k_.begin())];
    const auto rec = std::find_if(reply.records.begin(), reply.records.end(),
                                  [&](const InquireRecord& r) { return r.address == a; });
    if (rec == reply.records.end()) {
      p = RecordProblem::missing;
      why = "no record for " + to_string(a) + " in the inquire reply";
    } else {
      p = decode_record(*rec, s);
      if (p == RecordProblem::unknown_state)
        why = std::string("unknown working state '") + rec->workstatus.substr(0, 24) + "'";
      else if (p != RecordProblem::none)
        why = to_string(p);
    }
    if (p == RecordProblem::bad_step) {
      ++local_.protocol_errors;
      ++local_.program_errors;
    } else if (p != RecordProblem::none) {
      ++local_.invalid_samples;
      all_ok = false;
    }
    if (p != problem_[k] && p != RecordProblem::none)
      report(cfg_.name + "/" + std::to_string(k + 1) + ": " + why,
             p == RecordProblem::bad_step ? LinkErrc::program_refused : LinkErrc::value_refused,
             static_cast<std::uint16_t>(k + 1));
    problem_[k] = p;
    slots_.samples[k]->store(s);
  }
  if (all_ok) ++local_.polls_ok;
}

void NewareLink::run() {
  Pace pace(cfg_.poll_hz, steady_now_ns());
  while (!thread_.stopping()) {
    const std::int64_t start = steady_now_ns();
    ++local_.polls;
    pace.begin(start, local_.achieved_hz);
    if (fd_ < 0) connect_link(start);
    if (fd_ >= 0) {
      poll_once();
      local_.latency.observe(static_cast<double>(steady_now_ns() - start) * 1e-9);
    } else {
      publish_down(steady_now_ns(), false);
    }
    local_.connected = fd_ >= 0;
    local_.all_acknowledged = true;  // nothing is ever commanded
    local_.released = true;
    stats_.store(local_);

    local_.overruns += pace.end(steady_now_ns());
    thread_.wait_until_ns(pace.next_ns());
  }
}

}  // namespace eqd::io::neware
