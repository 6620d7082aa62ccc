// The control API's requests that read (hello, status, channels, controllers), the history's
// (audit, report, backup), adopt and forget, and the dispatch of every request. Runs on the io thread.
#include "server_impl.hpp"

namespace eqd::control {

using nlohmann::json;

namespace {

// Names the role the request needs, who holds it, and what the peer is.
std::string forbidden_message(Command c, Role have, const PeerCredentials& p, const Authorizer& a) {
  const Role need = required_role(c);
  return std::string(to_string(c)) + " needs the " + to_string(need) + " role (" + a.holders(need) + "); you are uid " +
         std::to_string(p.uid) + ", gid " + std::to_string(p.gid) + ", role " + to_string(have) +
         (have == Role::viewer ? " (reading is allowed)" : " (assign and release are allowed)");
}

}  // namespace

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

}  // namespace eqd::control
