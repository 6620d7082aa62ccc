// The control API server (see server.hpp). Everything below runs on the io thread unless noted.
#include "eqd/control/server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <variant>

#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include "eqd/control/auth.hpp"
#include "eqd/control/protocol.hpp"
#include "eqd/control/views.hpp"
#include "audit_trail.hpp"

namespace eqd::control {

namespace asio = boost::asio;
using StreamProtocol = asio::local::stream_protocol;
using nlohmann::json;

namespace {
// How often the dispatcher looks for the core's responses while requests are outstanding. The
// control period is 100 ms by default, so 5 ms adds little latency and costs nothing when idle.
constexpr std::chrono::milliseconds kPollPeriod{5};
// A response that arrives after its client timed out is still applied (persisted) for this long.
constexpr std::chrono::seconds kLateGrace{60};
// A refused connection is kept this long after its `busy` line so that the client can still send
// its request and read the answer (closing at once makes its write fail with EPIPE instead).
constexpr std::chrono::milliseconds kRejectLinger{1000};
// Refused connections lingering at once; past this a flood is closed without an answer, so that
// refusing costs bounded file descriptors.
constexpr std::size_t kMaxRejecting = 16;
// Refusals are logged at most this often (with the number since the last line).
constexpr std::chrono::seconds kRejectLogPeriod{10};

class Session;
class Rejection;

// The io_context as other threads may post to it (the history writer answering `audit`): null
// once the server is stopped, so that a late answer is dropped instead of posted to a dead context.
struct IoGate {
  std::mutex m;
  asio::io_context* io = nullptr;
};
}  // namespace

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

namespace {

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

// Names the role the request needs, who holds it, and what the peer is.
std::string forbidden_message(Command c, Role have, const PeerCredentials& p, const Authorizer& a) {
  const Role need = required_role(c);
  return std::string(to_string(c)) + " needs the " + to_string(need) + " role (" + a.holders(need) + "); you are uid " +
         std::to_string(p.uid) + ", gid " + std::to_string(p.gid) + ", role " + to_string(have) +
         (have == Role::viewer ? " (reading is allowed)" : " (assign and release are allowed)");
}

}  // namespace

void ApiServer::Impl::do_accept() {
  acceptor.async_accept([this](boost::system::error_code ec, StreamProtocol::socket socket) {
    if (ec == asio::error::operation_aborted || stopping) return;
    if (ec) {
      // E.g. EMFILE: back off instead of spinning on a failing accept.
      spdlog::warn("control API: accept failed: {}", ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(100));
      accept_retry.async_wait([this](boost::system::error_code e) {
        if (!e) do_accept();
      });
      return;
    }
    on_accept(std::move(socket));
    do_accept();
  });
}

void ApiServer::Impl::on_accept(StreamProtocol::socket socket) {
  auto peer = peer_credentials(socket.native_handle());
  if (!peer) {
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  // Groups are read at connect time: the pid is the connecting process now, not later.
  const bool any_group = auth.gid() || auth.admin_gid();
  const Role role =
      auth.role_of(*peer, peer->uid != 0 && any_group ? supplementary_groups(*peer) : std::vector<gid_t>{});
  if (const std::string why = admission(*peer, role != Role::viewer); !why.empty()) {
    refuse(std::move(socket), *peer, why);
    return;
  }
  auto s = std::make_shared<Session>(*this, std::move(socket), *peer, role);
  sessions.insert(s);
  ++per_uid[peer->uid];
  s->read_next();
}

std::string ApiServer::Impl::admission(const PeerCredentials& peer, bool privileged) const {
  const std::size_t open = sessions.size();
  if (open >= opts.max_connections)
    return "eqd serves " + std::to_string(opts.max_connections) +
           " control API connections already (api.max_connections); try again later";
  if (peer.uid != 0) {
    const auto it = per_uid.find(peer.uid);
    const std::size_t mine = it == per_uid.end() ? 0 : it->second;
    if (mine >= opts.max_connections_per_uid)
      return "uid " + std::to_string(peer.uid) + " has " + std::to_string(mine) +
             " control API connections open already (api.max_connections_per_uid); close one and try again";
  }
  // The last slots are kept for those who may change things, so that other users can never lock
  // root or the operators out.
  const std::size_t shared = opts.max_connections - std::min(opts.reserved_connections, opts.max_connections);
  if (!privileged && open >= shared)
    return "the remaining " + std::to_string(opts.max_connections - open) +
           " control API connection(s) are reserved for "
           "operators and admins (" +
           auth.holders(Role::operator_) + "; api.reserved_connections); try again later";
  return {};
}

void ApiServer::Impl::refuse(StreamProtocol::socket socket, const PeerCredentials& peer, const std::string& why) {
  ++refused_since_log;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_refusal_log >= kRejectLogPeriod) {
    spdlog::warn("control API: refused a connection of uid {} (pid {}): {} ({} refused since the last such line)",
                 peer.uid, peer.pid, why, refused_since_log);
    last_refusal_log = now;
    refused_since_log = 0;
  }
  if (rejections.size() >= kMaxRejecting) {
    boost::system::error_code ignored;
    socket.close(ignored);  // a flood: no answer rather than unbounded file descriptors
    return;
  }
  auto r = std::make_shared<Rejection>(*this, std::move(socket), error_response(0, error_code::kBusy, why));
  rejections.insert(r);
  r->start();
}

void ApiServer::Impl::session_closed(const std::shared_ptr<Session>& s) {
  if (sessions.erase(s) == 0) return;
  const auto it = per_uid.find(s->peer().uid);
  if (it != per_uid.end() && --it->second == 0) per_uid.erase(it);
}

bool ApiServer::Impl::submit(core::Request req, std::function<void(std::optional<core::ResponseStatus>)> done) {
  req.id = next_core_id++;
  if (!requests.submit(req)) return false;
  pending.emplace(req.id, Pending{std::move(done), std::chrono::steady_clock::now() + opts.response_timeout, false});
  arm_poll();
  return true;
}

void ApiServer::Impl::arm_poll() {
  if (polling) return;
  polling = true;
  poll_timer.expires_after(kPollPeriod);
  poll_timer.async_wait([this](boost::system::error_code ec) {
    polling = false;
    if (ec || stopping) return;
    on_poll();
  });
}

void ApiServer::Impl::drain_responses() {
  core::Response resp;
  while (requests.poll_response(resp)) {
    auto it = pending.find(resp.id);
    if (it == pending.end()) continue;  // e.g. the daemon's own stop_all
    auto done = std::move(it->second.done);
    pending.erase(it);
    done(resp.status);
  }
}

void ApiServer::Impl::on_poll() {
  drain_responses();
  const auto now = std::chrono::steady_clock::now();
  for (auto it = pending.begin(); it != pending.end();) {
    if (now < it->second.deadline) {
      ++it;
      continue;
    }
    if (it->second.timed_out) {
      spdlog::warn("control API: no response from the control thread for request {} after {} s; giving up", it->first,
                   kLateGrace.count());
      it = pending.erase(it);
      continue;
    }
    it->second.timed_out = true;
    it->second.deadline = now + kLateGrace;
    it->second.done(std::nullopt);
    ++it;
  }
  if (!pending.empty()) arm_poll();
}

std::string ApiServer::Impl::persist() {
  try {
    store.save(state);
    return {};
  } catch (const std::exception& e) {
    spdlog::error("control API: cannot persist state: {}", e.what());
    return e.what();
  }
}

json ApiServer::Impl::status_result(std::int64_t now) const {
  std::optional<MetricsEndpointState> metrics;
  if (opts.metrics_state) metrics = opts.metrics_state();
  json st = status_view(rig, now, metrics ? &*metrics : nullptr);
  if (opts.history_state) st["history"] = opts.history_state();
  return st;
}

json ApiServer::Impl::hello_result(const Session& s) const {
  const daemon::Directory& dir = rig.directory();
  return json{{"protocol", kProtocolVersion},
              {"may_change", s.role() != Role::viewer},
              {"role", to_string(s.role())},
              {"uid", s.peer().uid},
              {"group", auth.group()},
              {"admin_group", auth.admin_group()},
              {"buses", dir.buses},
              {"channels", dir.channels.size()},
              {"controllers", dir.controllers.size()}};
}

void ApiServer::Impl::begin_audit(Session& s, std::string_view line,
                                  const std::variant<ApiRequest, ParseError>& parsed) const {
  if (!opts.audit) return;
  if (const auto* r = std::get_if<ApiRequest>(&parsed)) {
    if (is_change(r->command)) s.set_audit(audit_draft(*r, s.peer(), s.role(), rig));
  } else if (auto draft = audit_draft_unparsed(line, s.peer(), s.role())) {
    s.set_audit(std::move(*draft));  // a change request refused for its fields is an attempt all the same
  }
}

void ApiServer::Impl::handle(const std::shared_ptr<Session>& s, std::string_view line) {
  auto parsed = parse_request(line);
  begin_audit(*s, line, parsed);
  if (auto* e = std::get_if<ParseError>(&parsed)) {
    s->reply(error_response(e->id, e->code, e->message));
    return;
  }
  const ApiRequest& r = std::get<ApiRequest>(parsed);
  s->set_operation(to_string(r.command));
  const daemon::Directory& dir = rig.directory();
  const std::int64_t now = rig.now_ns();
  if (s->role() < required_role(r.command)) {
    s->reply(error_response(r.id, error_code::kForbidden, forbidden_message(r.command, s->role(), s->peer(), auth)));
    return;
  }
  // A change goes through the control thread: while it is stalled the request could only time out, and
  // the controllers' watchdogs are taking the buffers to 0 W anyway. Say so at once.
  if ((r.command == Command::assign || r.command == Command::release || r.command == Command::set) &&
      rig.stall(now).stalled) {
    s->reply(error_response(r.id, error_code::kStalled,
                            "the control thread is stalled (no control cycle within control_loop.liveness_timeout_ms): "
                            "request not taken; the controllers' watchdogs take the buffers to 0 W and out of "
                            "equalization. See the log; retry when `eqctl status` no longer says STALLED"));
    return;
  }
  switch (r.command) {
    case Command::hello:
      s->reply(ok_response(r.id, hello_result(*s)));
      return;
    case Command::status:
      s->reply(ok_response(r.id, status_result(now)));
      return;
    case Command::controllers:
      s->reply(ok_response(r.id, controllers_view(rig)));
      return;
    case Command::channels: {
      int bus = -1;
      if (!r.bus.empty()) {
        auto b = dir.find_bus(r.bus);
        if (!b) {
          s->reply(error_response(r.id, error_code::kUnknownBus, "unknown bus \"" + r.bus + "\"",
                                  json{{"buses", dir.buses}}));
          return;
        }
        bus = *b;
      }
      s->reply(ok_response(r.id, channels_view(rig, now, bus, r.role)));
      return;
    }
    case Command::assign:
      handle_assign(s, r);
      return;
    case Command::release:
      handle_release(s, r);
      return;
    case Command::set:
      handle_set(s, r);
      return;
    case Command::audit:
      handle_audit(s, r);
      return;
    case Command::report:
      handle_report(s, r);
      return;
    case Command::backup:
      handle_backup(s, r);
      return;
    case Command::adopt:
    case Command::forget:
      handle_controller(s, r);
      return;
  }
}

void ApiServer::Impl::handle_controller(const std::shared_ptr<Session>& s, const ApiRequest& r) {
  const ControllerHook& hook = r.command == Command::adopt ? opts.adopt : opts.forget;
  if (!hook) {
    s->reply(error_response(r.id, error_code::kUnavailable,
                            std::string(to_string(r.command)) + ": discovery is off (discovery.enabled: false)"));
    return;
  }
  const ControllerChange ch = hook(r.controller, r.command == Command::adopt ? r.bus : std::string());
  if (!ch.ok) {
    s->reply(error_response(r.id, ch.code, ch.message));
    return;
  }
  spdlog::info("control API: {}", ch.message);
  s->reply(ok_response(r.id, json{{"controller", r.controller}, {"message", ch.message}}));
}

namespace {

/// Replies "unknown channel" with suggestions.
std::string unknown_channel(std::uint64_t id, const daemon::Directory& dir, const std::string& name) {
  auto near = dir.suggest_channels(name);
  std::string m = "unknown channel \"" + name + "\"";
  if (!near.empty()) {
    m += "; did you mean ";
    for (std::size_t i = 0; i < near.size(); ++i) m += (i ? ", " : "") + near[i];
    m += "?";
  }
  return error_response(id, error_code::kUnknownChannel, m, json{{"suggestions", near}});
}

std::string timeout_message(std::chrono::milliseconds t) {
  return "eqd's control thread did not answer within " + std::to_string(t.count()) +
         " ms; the change may still take effect (check with eqctl channels)";
}

const config::BufferConfig* config_buffer(const config::Config& cfg, const std::string& name) {
  for (const auto& b : cfg.buffers)
    if (b.channel == name) return &b;
  return nullptr;
}

// Why channel `idx` cannot be assigned as `r` asks, before its limits are looked at: its controller
// cannot be commanded or is not adopted, or `r` names another bus. The refusal line, or empty.
std::string assign_refusal(const daemon::Directory& dir, std::size_t idx, const ApiRequest& r) {
  const daemon::ChannelInfo& info = dir.channels[idx];
  const daemon::ControllerInfo& ctl = dir.controllers[info.controller];
  if (!ctl.commands)
    return error_response(r.id, error_code::kNotCommandable,
                          "channel " + info.name + " is a test channel: controller " + ctl.name + " uses transport " +
                              ctl.transport + ", which eqd reads but cannot command, so it cannot be a buffer");
  if (ctl.read_only && ctl.bus_unknown)
    return error_response(r.id, error_code::kNotAdopted,
                          "controller " + ctl.name +
                              " was discovered and its bus is not known: it is read-only and in "
                              "no bus's balance until it is (adopt it with `eqctl controllers adopt " +
                              ctl.name + " --bus BUS` or a discovery.adopt rule with a bus)");
  if (ctl.read_only)
    return error_response(r.id, error_code::kNotAdopted,
                          "controller " + ctl.name +
                              " was discovered and is read-only until it is adopted: eqd sends "
                              "it no command (adopt it with `eqctl controllers adopt " +
                              ctl.name + "` or a discovery.adopt rule)");
  if (!r.bus.empty()) {
    auto b = dir.find_bus(r.bus);
    if (!b)
      return error_response(r.id, error_code::kUnknownBus, "unknown bus \"" + r.bus + "\"", json{{"buses", dir.buses}});
    if (*b != info.bus)
      return error_response(r.id, error_code::kInvalid,
                            "channel " + info.name + " is on bus " + dir.buses[info.bus] + ", not " + r.bus +
                                " (a channel's bus is set in the configuration)");
  }
  return {};
}

// The limits an `assign` of channel `idx` asks for: persisted (last used) > config's equalization: entry >
// what the core holds now, with the options given overriding single fields. With none of those bases, the
// four bounds are required. The limits, or the refusal line.
std::variant<core::BufferLimits, std::string> assign_limits(const PersistedState& state, const daemon::RigView& rig,
                                                            std::size_t idx, const ApiRequest& r) {
  const std::string& name = rig.directory().channels[idx].name;
  std::optional<core::BufferLimits> base;
  // Persisted limits that do not validate (dropped from a bad state entry, or older bounds) are no base.
  if (auto it = state.channels.find(name); it != state.channels.end() && core::validate(it->second.limits) == nullptr)
    base = it->second.limits;
  else if (const auto* b = config_buffer(rig.config(), name))
    base = b->limits;
  else if (const auto snap = rig.channel(static_cast<core::ChannelIndex>(idx)); snap.role != core::Role::test)
    base = snap.limits;
  if (!base) {
    std::string missing;
    json missing_names = json::array();  // for clients that name the fields their own way (eqctl: --max-charge-W)
    const LimitArgs& a = r.limits;
    for (auto [field, v] : {std::pair{"max_charge_W", &a.max_charge_W},
                            {"max_discharge_W", &a.max_discharge_W},
                            {"v_min_V", &a.v_min_V},
                            {"v_max_V", &a.v_max_V}})
      if (!*v) {
        missing += std::string(missing.empty() ? "" : ", ") + field;
        missing_names.push_back(field);
      }
    if (!missing.empty())
      return error_response(r.id, error_code::kInvalid,
                            "no limits known for " + name +
                                " (not in the configuration's equalization: list and never assigned before): give " +
                                missing,
                            json{{"missing", missing_names}});
  }
  const core::BufferLimits limits = merge_limits(base.value_or(core::BufferLimits{}), r.limits);
  if (const char* why = core::validate(limits))
    return error_response(r.id, error_code::kInvalid, "limits of " + name + ": " + why,
                          json{{"limits", limits_to_json(limits)}});
  return limits;
}

}  // namespace

void ApiServer::Impl::handle_assign(const std::shared_ptr<Session>& s, const ApiRequest& r) {
  const daemon::Directory& dir = rig.directory();
  auto idx = dir.find_channel(r.channel);
  if (!idx) {
    s->reply(unknown_channel(r.id, dir, r.channel));
    return;
  }
  if (std::string refusal = assign_refusal(dir, *idx, r); !refusal.empty()) {
    s->reply(std::move(refusal));
    return;
  }
  std::variant<core::BufferLimits, std::string> resolved = assign_limits(state, rig, *idx, r);
  if (auto* refusal = std::get_if<std::string>(&resolved)) {
    s->reply(std::move(*refusal));
    return;
  }
  const daemon::ChannelInfo& info = dir.channels[*idx];
  AssignedChannel a;
  a.id = r.id;
  a.name = info.name;
  a.controller = dir.controllers[info.controller].name;
  a.limits = std::get<core::BufferLimits>(resolved);
  // The limits in force now, for an `already` answer to say what changed (published before this request).
  if (const auto snap = rig.channel(*idx); snap.role != core::Role::test) a.previous = snap.limits;
  core::Request req;
  req.kind = core::RequestKind::assign;
  req.channel = *idx;
  req.limits = a.limits;
  auto replied = std::make_shared<bool>(false);
  // A late response (after the client's timeout) is still persisted, but answers nobody.
  const bool queued = submit(req, [this, s, a, replied](std::optional<core::ResponseStatus> st) {
    std::string text =
        st ? assign_answer(a, *st) : error_response(a.id, error_code::kTimeout, timeout_message(opts.response_timeout));
    if (!*replied && !stopping) s->reply(std::move(text));
    *replied = true;
  });
  if (!queued) s->reply(error_response(r.id, error_code::kBusy, "eqd's request queue is full; try again"));
}

std::string ApiServer::Impl::assign_answer(const AssignedChannel& a, core::ResponseStatus st) {
  using core::ResponseStatus;
  switch (st) {
    case ResponseStatus::ok:
    case ResponseStatus::pending:
    case ResponseStatus::already: {
      state.channels[a.name] = PersistedChannel{true, a.limits};
      const std::string err = persist();
      const bool unchanged = a.previous && limits_to_json(*a.previous) == limits_to_json(a.limits);
      std::string msg = st == ResponseStatus::ok
                            ? a.name + " assigned: it enters equalization mode and follows eqd's setpoint"
                        : st == ResponseStatus::pending ? a.name + " assigned, pending: controller " + a.controller +
                                                              " is unreachable now; the channel is taken into "
                                                              "equalization when it comes back"
                        : unchanged ? a.name + " was already assigned with these limits; nothing changed"
                                    : a.name + " was already assigned; limits updated";
      spdlog::info("control API: {}", msg);
      json res{{"channel", a.name},
               {"status", st == ResponseStatus::ok        ? "assigned"
                          : st == ResponseStatus::pending ? "pending"
                                                          : "already"},
               {"message", msg},
               {"limits", limits_to_json(a.limits)},
               {"persisted", err.empty()}};
      if (st == ResponseStatus::already && a.previous) res["previous_limits"] = limits_to_json(*a.previous);
      if (!err.empty()) res["warning"] = "not persisted: " + err;
      return ok_response(a.id, res);
    }
    case ResponseStatus::refused_running:
      return error_response(
          a.id, error_code::kRefusedRunning,
          a.name + " is running a test; eqd does not take over a running channel (stop its test first)");
    case ResponseStatus::refused_fault:
      return error_response(a.id, error_code::kRefusedFault,
                            a.name + " is in fault; clear the fault at the cycler before assigning it");
    case ResponseStatus::refused_invalid:
      return error_response(a.id, error_code::kInvalid, a.name + ": the control core refused the limits");
  }
  return error_response(a.id, error_code::kInvalid, a.name + ": " + core::to_string(st));  // not reached: all handled
}

void ApiServer::Impl::handle_release(const std::shared_ptr<Session>& s, const ApiRequest& r) {
  const daemon::Directory& dir = rig.directory();
  auto idx = dir.find_channel(r.channel);
  if (!idx) {
    s->reply(unknown_channel(r.id, dir, r.channel));
    return;
  }
  core::Request req;
  req.kind = core::RequestKind::release;
  req.channel = *idx;
  const std::string name = dir.channels[*idx].name;
  const std::uint64_t id = r.id;
  auto replied = std::make_shared<bool>(false);
  const bool queued = submit(req, [this, s, name, id, replied](std::optional<core::ResponseStatus> st) {
    auto answer = [&](std::string text) {
      if (!*replied && !stopping) s->reply(std::move(text));
      *replied = true;
    };
    if (!st) {
      answer(error_response(id, error_code::kTimeout, timeout_message(opts.response_timeout)));
      return;
    }
    if (*st != core::ResponseStatus::ok && *st != core::ResponseStatus::already) {
      answer(error_response(id, error_code::kInvalid, name + ": " + core::to_string(*st)));
      return;
    }
    // Remember the release (and the limits, as defaults for a later assign). A config buffer must be
    // recorded even if never persisted before, or it would come back assigned after a restart.
    std::string err;
    if (auto it = state.channels.find(name); it != state.channels.end()) {
      it->second.assigned = false;
      err = persist();
    } else if (const auto* b = config_buffer(rig.config(), name)) {
      state.channels[name] = PersistedChannel{false, b->limits};
      err = persist();
    }
    const bool was = *st == core::ResponseStatus::ok;
    std::string msg = was ? name + " released: stop sent; it leaves equalization mode" : name + " was not assigned";
    spdlog::info("control API: {}", msg);
    json res{{"channel", name}, {"status", was ? "released" : "already"}, {"message", msg}, {"persisted", err.empty()}};
    if (!err.empty()) res["warning"] = "not persisted: " + err;
    answer(ok_response(id, res));
  });
  if (!queued) s->reply(error_response(r.id, error_code::kBusy, "eqd's request queue is full; try again"));
}

void ApiServer::Impl::handle_set(const std::shared_ptr<Session>& s, const ApiRequest& r) {
  const daemon::Directory& dir = rig.directory();
  auto b = dir.find_bus(r.bus);
  if (!b) {
    s->reply(
        error_response(r.id, error_code::kUnknownBus, "unknown bus \"" + r.bus + "\"", json{{"buses", dir.buses}}));
    return;
  }
  if (rig.cycle_stats().cycles == 0) {
    s->reply(error_response(r.id, error_code::kBusy, "the control thread has not run yet; try again"));
    return;
  }
  core::BusParams p = rig.bus(*b).params;
  // The parser let through only rows of core::kRuntimeParams.
  PersistedBusParams changed;
  const auto change = [&](const std::string& key, double value) {
    if (const core::RuntimeParam* row = core::find_runtime_param(key); row != nullptr && changed.set(key, value))
      core::set_runtime_value(*row, p, value);
  };
  for (const auto& [key, value] : r.params) change(key, value);
  for (const auto& [key, value] : r.flags) change(key, value ? 1.0 : 0.0);
  const bool allow_any_tau = *b < rig.config().buses.size() && rig.config().buses[*b].allow_any_tau;
  if (const char* why = core::validate(p, allow_any_tau)) {
    s->reply(error_response(r.id, error_code::kInvalid, "bus " + r.bus + ": " + why));
    return;
  }
  core::Request req;
  req.kind = core::RequestKind::set_params;
  req.bus = *b;
  req.params = p;
  const std::string bus = dir.buses[*b];
  const std::uint64_t id = r.id;
  auto replied = std::make_shared<bool>(false);
  const bool queued = submit(req, [this, s, bus, id, p, changed, replied](std::optional<core::ResponseStatus> st) {
    auto answer = [&](std::string text) {
      if (!*replied && !stopping) s->reply(std::move(text));
      *replied = true;
    };
    if (!st) {
      answer(error_response(id, error_code::kTimeout, timeout_message(opts.response_timeout)));
      return;
    }
    if (*st != core::ResponseStatus::ok) {
      answer(error_response(id, error_code::kInvalid, "bus " + bus + ": " + core::to_string(*st)));
      return;
    }
    PersistedBusParams& saved = state.buses[bus];
    for (std::size_t i = 0; i < changed.values.size(); ++i)
      if (changed.values[i]) saved.values[i] = changed.values[i];
    const std::string err = persist();
    const json params = runtime_params_json(p);
    std::string text;
    for (const auto& [key, value] : params.items()) text += " " + key + "=" + value.dump();
    spdlog::info("control API: bus {}:{}", bus, text);
    json res{{"bus", bus}, {"params", params}, {"persisted", err.empty()}};
    if (!err.empty()) res["warning"] = "not persisted: " + err;
    answer(ok_response(id, res));
  });
  if (!queued) s->reply(error_response(r.id, error_code::kBusy, "eqd's request queue is full; try again"));
}

void ApiServer::Impl::handle_audit(const std::shared_ptr<Session>& s, const ApiRequest& r) {
  if (!opts.audit) {
    s->reply(error_response(r.id, error_code::kUnavailable, "audit: there is no audit log in this eqd"));
    return;
  }
  // The query runs on the history writer's thread; its answer is posted back to this io thread. The
  // writer's callback owns no io object (it may outlive this server: a reload), only the token of the
  // waiting query. A writer stuck on a slow disk gets the client a timeout, not a connection that hangs.
  const std::uint64_t token = next_audit_token++;
  const std::uint64_t id = r.id;
  const bool queued =
      opts.audit->query(audit_query(r), [gate = io_gate, impl = this, token, id](const history::AuditPage& page) {
        std::string text = page.error.empty() ? ok_response(id, audit_result(page))
                                              : error_response(id, error_code::kUnavailable, "audit: " + page.error);
        std::lock_guard lock(gate->m);
        if (gate->io != nullptr)
          asio::post(*gate->io,
                     [impl, token, text = std::move(text)]() mutable { impl->answer_audit(token, std::move(text)); });
      });
  if (!queued) {
    s->reply(error_response(r.id, error_code::kBusy, "audit: the history writer is busy; try again"));
    return;
  }
  wait_history(s, token, id, opts.response_timeout, "audit");
}

void ApiServer::Impl::wait_history(const std::shared_ptr<Session>& s, std::uint64_t token, std::uint64_t id,
                                   std::chrono::milliseconds timeout, const char* what) {
  auto& waiting = audits[token];
  waiting.session = s;
  waiting.timer = std::make_unique<asio::steady_timer>(io, timeout);
  waiting.timer->async_wait([this, token, id, timeout, what](boost::system::error_code ec) {
    if (ec || stopping) return;
    answer_audit(token, error_response(id, error_code::kTimeout,
                                       std::string(what) + ": the history database did not answer within " +
                                           std::to_string(timeout.count()) + " ms"));
  });
}

void ApiServer::Impl::handle_report(const std::shared_ptr<Session>& s, const ApiRequest& r) {
  if (!opts.audit) {
    s->reply(error_response(r.id, error_code::kUnavailable, "report: there is no history database in this eqd"));
    return;
  }
  const daemon::Directory& dir = rig.directory();
  if (!r.bus.empty() && !dir.find_bus(r.bus)) {
    s->reply(error_response(r.id, error_code::kUnknownBus, "report: unknown bus \"" + r.bus + "\"",
                            json{{"buses", dir.buses}}));
    return;
  }
  history::ReportQuery q;
  q.edges_s = r.edges_s;
  q.bus = r.bus;
  if (const std::string why = history::validate(q); !why.empty()) {
    s->reply(error_response(r.id, error_code::kBadRequest, "report: " + why));
    return;
  }
  // As for audit: the query runs on the history writer thread (bounded by history::kReportBudget), the
  // answer comes back to this io thread by the token; the control thread is never involved.
  const std::uint64_t token = next_audit_token++;
  const std::uint64_t id = r.id;
  const bool queued = opts.audit->report(q, [gate = io_gate, impl = this, token, id](const history::ReportAnswer& a) {
    std::string text = a.error.empty() ? ok_response(id, report_result(a))
                                       : error_response(id, error_code::kUnavailable, "report: " + a.error);
    std::lock_guard lock(gate->m);
    if (gate->io != nullptr)
      asio::post(*gate->io,
                 [impl, token, text = std::move(text)]() mutable { impl->answer_audit(token, std::move(text)); });
  });
  if (!queued) {
    s->reply(error_response(r.id, error_code::kBusy, "report: the history writer is busy; try again"));
    return;
  }
  // The writer may be busy with a minute or an audit batch before it: the budget plus some slack.
  wait_history(s, token, id, std::max(opts.response_timeout, history::kReportBudget + std::chrono::seconds(2)),
               "report");
}

void ApiServer::Impl::answer_audit(std::uint64_t token, std::string text, const std::shared_ptr<history::OwnedFd>& fd) {
  const auto it = audits.find(token);
  if (it == audits.end()) return;  // answered already (or timed out)
  const std::shared_ptr<Session> s = std::move(it->second.session);
  it->second.timer->cancel();
  audits.erase(it);
  if (stopping) return;
  if (fd)
    s->reply_with_fd(std::move(text), fd->get());
  else
    s->reply(std::move(text));
}

// The archive is made on the history writer's thread (the database copy must not race its writes)
// and comes back here as an open, unlinked file, which goes to the client with the answer: eqctl
// writes FILE with the admin's own rights, wherever the admin may write, and the daemon (User=eqd,
// a read-only /etc) never writes outside state_dir on a client's say-so.
void ApiServer::Impl::handle_backup(const std::shared_ptr<Session>& s, const ApiRequest& r) {
  if (!opts.backup) {
    s->reply(error_response(r.id, error_code::kUnavailable, "backup: this eqd cannot make backups"));
    return;
  }
  const std::uint64_t token = next_audit_token++;
  const std::uint64_t id = r.id;
  const PeerCredentials peer = s->peer();
  const bool queued = opts.backup([gate = io_gate, impl = this, token, id, peer](history::BackupResult res) {
    std::string text;
    if (res.error.empty() && res.archive) {
      const std::string message = "backup of " + std::to_string(res.manifest.value("files", json::array()).size()) +
                                  " file(s), " + std::to_string(res.size_bytes) + " bytes, passed to uid " +
                                  std::to_string(peer.uid);
      text = ok_response(id, json{{"size_bytes", res.size_bytes}, {"manifest", res.manifest}, {"message", message}});
    } else {
      text = error_response(id, error_code::kUnavailable, "backup failed: " + res.error);
      res.archive.reset();
    }
    std::lock_guard lock(gate->m);
    if (gate->io != nullptr)
      asio::post(*gate->io, [impl, token, text = std::move(text), fd = std::move(res.archive)]() mutable {
        impl->answer_audit(token, std::move(text), fd);
      });
  });
  if (!queued) {
    s->reply(error_response(r.id, error_code::kBusy, "backup: the history writer is busy; try again"));
    return;
  }
  wait_history(s, token, id, opts.backup_timeout, "backup");
}

ApiServerOptions api_server_options(const config::ApiConfig& api) {
  ApiServerOptions o;
  o.socket_path = api.socket_path;
  o.group = api.group;
  o.admin_group = api.admin_group;
  o.idle_timeout = std::chrono::milliseconds(api.idle_timeout_ms);
  o.max_connections = static_cast<std::size_t>(api.max_connections);
  o.max_connections_per_uid = static_cast<std::size_t>(api.max_connections_per_uid);
  o.reserved_connections = static_cast<std::size_t>(api.reserved_connections);
  return o;
}

ApiServer::ApiServer(const daemon::RigView& rig, daemon::RequestSink& requests, StateStore& store, PersistedState state,
                     ApiServerOptions opts)
    : impl_(std::make_unique<Impl>(rig, requests, store, std::move(state), std::move(opts))) {}

ApiServer::~ApiServer() { stop(); }

void ApiServer::start() {
  Impl& m = *impl_;
  if (m.thread.joinable()) return;
  const std::string& path = m.opts.socket_path;
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    throw std::runtime_error("api.socket: path too long for a Unix socket (" + path + ")");
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code fec;
  if (!parent.empty() && !std::filesystem::exists(parent, fec)) {
    std::filesystem::create_directories(parent, fec);
    if (fec) throw std::runtime_error("api.socket: cannot create " + parent.string() + ": " + fec.message());
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error("api.socket: " + path + " exists and is not a socket");
    // A socket that answers belongs to a running eqd: never steal it. A dead one is left over.
    StreamProtocol::socket probe(m.io);
    boost::system::error_code ec;
    probe.connect(StreamProtocol::endpoint(path), ec);
    if (!ec) throw std::runtime_error("api.socket: another process is serving " + path + " (is eqd already running?)");
    ::unlink(path.c_str());
  }
  m.acceptor.open(StreamProtocol());
  m.acceptor.bind(StreamProtocol::endpoint(path));
  m.acceptor.listen(asio::socket_base::max_listen_connections);
  if (::chmod(path.c_str(), 0660) != 0) spdlog::warn("control API: chmod 0660 {}: {}", path, std::strerror(errno));
  if (m.auth.gid() && ::chown(path.c_str(), static_cast<uid_t>(-1), *m.auth.gid()) != 0)
    spdlog::warn("control API: chown {} to group {}: {}", path, m.auth.group(), std::strerror(errno));
  m.do_accept();
  // Logged before the io thread exists: the first use of spdlog in a process builds its registry, which
  // must happen before any other thread logs (TSan sees no order between the two otherwise).
  spdlog::info("control API listening on {} (changes: root{})", path,
               m.auth.gid() ? " and group " + m.auth.group() : std::string(" only"));
  m.thread = std::thread([&m] { m.io.run(); });
}

void ApiServer::stop() {
  Impl& m = *impl_;
  if (!m.thread.joinable()) return;
  asio::post(m.io, [&m] {
    m.stopping = true;
    boost::system::error_code ignored;
    m.acceptor.close(ignored);
    m.poll_timer.cancel();
    m.accept_retry.cancel();
    auto sessions = m.sessions;
    for (const auto& s : sessions) s->close();
    auto rejections = m.rejections;
    for (const auto& r : rejections) r->close();
    m.io.stop();
  });
  m.thread.join();
  m.close_gate();
  // Changes the core accepted but whose response was not read yet must still be persisted: the io
  // thread is gone, so this thread is the only consumer now. The control thread still runs.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (!m.pending.empty() && std::chrono::steady_clock::now() < until) {
    m.drain_responses();
    if (!m.pending.empty()) std::this_thread::sleep_for(kPollPeriod);
  }
  ::unlink(m.opts.socket_path.c_str());
}

}  // namespace eqd::control
