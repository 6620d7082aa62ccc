// Private to the control API server (server.cpp: connections, the core's responses, start and stop;
// server_requests.cpp: the reading and history requests; server_changes.cpp: assign, release, set): its
// state (ApiServer::Impl) and the connection classes. Everything here runs on the io thread unless noted;
// none of it is thread-safe by itself.
#pragma once

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>

#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include "eqd/control/auth.hpp"
#include "eqd/control/protocol.hpp"
#include "eqd/control/server.hpp"
#include "eqd/control/views.hpp"
#include "audit_trail.hpp"

namespace eqd::control {

namespace asio = boost::asio;
using StreamProtocol = asio::local::stream_protocol;

// A refused connection is kept this long after its `busy` line so that the client can still send
// its request and read the answer (closing at once makes its write fail with EPIPE instead).
constexpr std::chrono::milliseconds kRejectLinger{1000};

class Session;
class Rejection;

// The io_context as other threads may post to it (the history writer answering `audit`): null
// once the server is stopped, so that a late answer is dropped instead of posted to a dead context.
struct IoGate {
  std::mutex m;
  asio::io_context* io = nullptr;
};

/// The server's state and request handling; io thread only, but for start() and stop() (see server.hpp).
struct ApiServer::Impl {
  Impl(const daemon::RigView& r, daemon::RequestSink& q, StateStore& s, PersistedState st, ApiServerOptions o)
      : rig(r), requests(q), store(s), state(std::move(st)), opts(std::move(o)), auth(opts.group, opts.admin_group) {
    io_gate->io = &io;
  }
  ~Impl() { close_gate(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  struct Pending {
    std::function<void(std::optional<core::ResponseStatus>)> done;  ///< nullopt: timed out
    std::chrono::steady_clock::time_point deadline;
    bool timed_out = false;
  };

  const daemon::RigView& rig;
  daemon::RequestSink& requests;
  StateStore& store;
  PersistedState state;
  ApiServerOptions opts;
  Authorizer auth;
  asio::io_context io;
  StreamProtocol::acceptor acceptor{io};
  asio::steady_timer poll_timer{io};
  asio::steady_timer accept_retry{io};
  std::set<std::shared_ptr<Session>> sessions;
  std::set<std::shared_ptr<Rejection>> rejections;
  std::unordered_map<uid_t, std::size_t> per_uid;  ///< open sessions by peer uid
  std::size_t refused_since_log = 0;
  std::chrono::steady_clock::time_point last_refusal_log{};
  std::unordered_map<std::uint64_t, Pending> pending;
  std::uint64_t next_core_id = 1;
  bool polling = false;
  bool stopping = false;
  std::thread thread;
  std::shared_ptr<IoGate> io_gate = std::make_shared<IoGate>();
  /// `audit` queries waiting for the history writer, by token.
  struct WaitingAudit {
    std::shared_ptr<Session> session;
    std::unique_ptr<asio::steady_timer> timer;
  };
  std::unordered_map<std::uint64_t, WaitingAudit> audits;
  std::uint64_t next_audit_token = 1;

  void close_gate() {
    std::lock_guard lock(io_gate->m);
    io_gate->io = nullptr;
  }

  void do_accept();
  void on_accept(StreamProtocol::socket socket);
  /// Why a new connection of `peer` cannot be served now; empty if it can.
  std::string admission(const PeerCredentials& peer, bool privileged) const;
  void refuse(StreamProtocol::socket socket, const PeerCredentials& peer, const std::string& why);
  void session_closed(const std::shared_ptr<Session>& s);
  void handle(const std::shared_ptr<Session>& s, std::string_view line);
  void handle_assign(const std::shared_ptr<Session>& s, const ApiRequest& r);
  /// What an `assign` needs once the core answers: the channel, its controller, the limits asked for
  /// and those in force before.
  struct AssignedChannel {
    std::uint64_t id = 0;
    std::string name;
    std::string controller;
    core::BufferLimits limits;
    std::optional<core::BufferLimits> previous;
  };
  /// The answer line to an `assign` the core answered with `st`; persists the assignment it took.
  std::string assign_answer(const AssignedChannel& a, core::ResponseStatus st);
  void handle_release(const std::shared_ptr<Session>& s, const ApiRequest& r);
  void handle_set(const std::shared_ptr<Session>& s, const ApiRequest& r);
  void handle_audit(const std::shared_ptr<Session>& s, const ApiRequest& r);
  void handle_report(const std::shared_ptr<Session>& s, const ApiRequest& r);
  /// Sends the answer of the waiting audit query `token` (the history's, or a timeout), once.
  void answer_audit(std::uint64_t token, std::string text, const std::shared_ptr<history::OwnedFd>& fd = nullptr);
  void handle_backup(const std::shared_ptr<Session>& s, const ApiRequest& r);
  /// `adopt` / `forget`, through opts.adopt / opts.forget.
  void handle_controller(const std::shared_ptr<Session>& s, const ApiRequest& r);
  /// Waits for the history writer's answer `token` (audit, report, backup) for at most `timeout`.
  void wait_history(const std::shared_ptr<Session>& s, std::uint64_t token, std::uint64_t id,
                    std::chrono::milliseconds timeout, const char* what);
  nlohmann::json hello_result(const Session& s) const;
  nlohmann::json status_result(std::int64_t now) const;
  /// Starts the audit record of a change request (or of a line naming one that did not parse).
  void begin_audit(Session& s, std::string_view line, const std::variant<ApiRequest, ParseError>& parsed) const;
  /// Completes a change request's audit record from the answer `text` and hands it to opts.audit.
  void finish_audit(history::AuditRecord& rec, const std::string& text) noexcept {
    complete_audit(rec, text);
    if (opts.audit) (void)opts.audit->record(std::move(rec));
  }
  bool submit(core::Request req, std::function<void(std::optional<core::ResponseStatus>)> done);
  void arm_poll();
  void on_poll();
  void drain_responses();
  /// Saves the state; returns an empty string or the reason it failed (also logged).
  std::string persist();
};

/// One client connection: reads one request line at a time, hands it to Impl::handle and writes its
/// one reply; closes on an idle deadline. Owned by Impl::sessions; io thread only.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ApiServer::Impl& srv, StreamProtocol::socket socket, PeerCredentials peer, Role role)
      : srv_(srv),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buf_(kMaxRequestBytes + 1),
        peer_(peer),
        role_(role) {}

  /// Waits for the next request; the idle deadline starts now.
  void read_next() {
    arm_deadline(true);
    read_line();
  }

  /// Sends one response line, then reads the next request (or closes). A reader that takes no
  /// reply within the idle timeout is closed: it must not hold a connection slot for ever.
  void reply(std::string text, bool close_after = false) {
    if (closed_) return;
    if (audit_) {
      srv_.finish_audit(*audit_, text);
      audit_.reset();
    }
    count(text);
    send(std::move(text), close_after);
  }

  /// Sends one response line with the open file `fd` (SCM_RIGHTS, `backup`), then reads on. The
  /// descriptor travels with the line's first byte; the rest follows as any reply. One request is
  /// answered at a time, so the socket's send buffer is empty and that one byte always fits.
  void reply_with_fd(std::string text, int fd) {
    if (closed_) return;
    if (audit_) {
      srv_.finish_audit(*audit_, text);
      audit_.reset();
    }
    count(text);
    msghdr msg{};
    iovec iov{text.data(), 1};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    if (::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
      spdlog::error("control API: cannot pass the backup to uid {} (pid {}): {}", peer_.uid, peer_.pid,
                    std::strerror(errno));
      close();
      return;
    }
    send(text.substr(1), false);
  }

  void send(std::string text, bool close_after) {
    out_ = std::move(text);
    arm_deadline(false);
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this(), close_after](boost::system::error_code ec, std::size_t) {
                        if (ec || close_after)
                          self->close();
                        else
                          self->read_next();
                      });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    ++timer_gen_;
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(StreamProtocol::socket::shutdown_both, ignored);
    socket_.close(ignored);
    srv_.session_closed(shared_from_this());
  }

  /// The peer's role, decided at connect time from its credentials.
  [[nodiscard]] Role role() const noexcept { return role_; }
  /// The operation of the request being answered (its wire name), for the request counts.
  void set_operation(const char* op) noexcept { operation_ = op; }
  [[nodiscard]] const PeerCredentials& peer() const noexcept { return peer_; }
  /// The audit record of the change request being answered; completed by the reply to it.
  void set_audit(history::AuditRecord rec) { audit_ = std::move(rec); }

 private:
  void read_line() {
    asio::async_read_until(
        socket_, buf_, '\n',
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) { self->on_read(ec, n); });
  }

  // One timer per session, re-armed for each wait; the generation tells a stale expiry (queued
  // before a re-arm or a completed line) from the current one.
  void arm_deadline(bool waiting_for_request) {
    const std::uint64_t gen = ++timer_gen_;
    timer_.expires_after(srv_.opts.idle_timeout);
    timer_.async_wait([self = shared_from_this(), gen, waiting_for_request](boost::system::error_code ec) {
      if (ec || self->closed_ || gen != self->timer_gen_) return;
      self->on_deadline(waiting_for_request);
    });
  }

  void on_deadline(bool waiting_for_request) {
    if (!waiting_for_request) {
      close();  // the reader does not read: no line can reach it
      return;
    }
    idle_closing_ = true;  // a line that completes now is not served any more
    spdlog::debug("control API: closing idle connection of uid {} (pid {})", peer_.uid, peer_.pid);
    reply(error_response(0, error_code::kIdle,
                         "no complete request line within " + std::to_string(srv_.opts.idle_timeout.count()) +
                             " ms (api.idle_timeout_ms); closing"),
          true);
  }

  void on_read(boost::system::error_code ec, std::size_t n) {
    if (closed_) return;
    if (ec == asio::error::not_found) {
      // The line outgrew the buffer: there is no way to find where the next request starts.
      reply(error_response(0, error_code::kTooLarge,
                           "request line longer than " + std::to_string(kMaxRequestBytes) + " bytes; closing"),
            true);
      return;
    }
    if (ec) {
      close();
      return;
    }
    if (idle_closing_) return;
    const auto begin = asio::buffers_begin(buf_.data());
    std::string line(begin, begin + static_cast<std::ptrdiff_t>(n - 1));
    buf_.consume(n);
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      read_line();  // blank lines are ignored (handy with socat / nc) and do not reset the idle deadline
      return;
    }
    ++timer_gen_;  // a request is being served: no idle deadline until its reply is written
    timer_.cancel();
    srv_.handle(shared_from_this(), line);
  }

  ApiServer::Impl& srv_;
  StreamProtocol::socket socket_;
  asio::steady_timer timer_;
  std::uint64_t timer_gen_ = 0;
  asio::streambuf buf_;
  std::string out_;
  PeerCredentials peer_;
  Role role_ = Role::viewer;
  const char* operation_ = "unparsed";
  std::optional<history::AuditRecord> audit_;

  // Counts the answer `text` (one of our own response lines) under the current operation, by its
  // result: "ok" or the error's code. An ok line (ok_response: keys sorted, so `{"id":N,"ok":true,...`)
  // is recognised by its head, so that a large status or channels answer is not parsed again; only the
  // short error lines are.
  void count(const std::string& text) noexcept {
    if (srv_.opts.request_stats) {
      std::string_view result = "other";
      nlohmann::json j;  // outlives `result`, which may point into it
      const std::size_t ok_at = text.find("\"ok\":");
      if (text.rfind("{\"id\":", 0) == 0 && ok_at < 32 && text.compare(ok_at + 5, 4, "true") == 0) {
        result = "ok";
      } else {
        j = nlohmann::json::parse(text, nullptr, false);
        if (j.is_object() && j.value("ok", false)) {
          result = "ok";
        } else if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("code") &&
                   j["error"]["code"].is_string()) {
          result = j["error"]["code"].get_ref<const std::string&>();
        }
      }
      srv_.opts.request_stats->count(operation_, result);
    }
    operation_ = "unparsed";
  }
  bool closed_ = false;
  bool idle_closing_ = false;
};

/// A connection refused for a limit: it gets one `busy` line, its sending half is shut, whatever
/// the client sends is read and dropped, and it is closed at the client's EOF or after
/// kRejectLinger, whichever comes first.
class Rejection : public std::enable_shared_from_this<Rejection> {
 public:
  Rejection(ApiServer::Impl& srv, StreamProtocol::socket socket, std::string line)
      : srv_(srv), socket_(std::move(socket)), timer_(socket_.get_executor()), out_(std::move(line)) {}

  void start() {
    timer_.expires_after(kRejectLinger);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->close();
    });
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        if (ec) {
                          self->close();
                          return;
                        }
                        boost::system::error_code ignored;
                        self->socket_.shutdown(StreamProtocol::socket::shutdown_send, ignored);
                        self->drain();
                      });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
    srv_.rejections.erase(shared_from_this());
  }

 private:
  void drain() {
    socket_.async_read_some(asio::buffer(sink_),
                            [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                              if (ec || self->closed_)
                                self->close();
                              else
                                self->drain();
                            });
  }

  ApiServer::Impl& srv_;
  StreamProtocol::socket socket_;
  asio::steady_timer timer_;
  std::string out_;
  std::array<char, 512> sink_{};
  bool closed_ = false;
};

}  // namespace eqd::control
