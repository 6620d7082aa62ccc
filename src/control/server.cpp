// The control API server (see server.hpp): connections and their admission, the control core's
// responses, start and stop. Everything below runs on the io thread unless noted.
#include "eqd/control/server.hpp"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "server_impl.hpp"

namespace eqd::control {

using nlohmann::json;

namespace {
// How often the dispatcher looks for the core's responses while requests are outstanding. The
// control period is 100 ms by default, so 5 ms adds little latency and costs nothing when idle.
constexpr std::chrono::milliseconds kPollPeriod{5};
// A response that arrives after its client timed out is still applied (persisted) for this long.
constexpr std::chrono::seconds kLateGrace{60};
// Refused connections lingering at once; past this a flood is closed without an answer, so that
// refusing costs bounded file descriptors.
constexpr std::size_t kMaxRejecting = 16;
// Refusals are logged at most this often (with the number since the last line).
constexpr std::chrono::seconds kRejectLogPeriod{10};

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
