// The control API's changes through the control core: assign, release, set. Runs on the io thread.
#include "server_impl.hpp"

namespace eqd::control {

using nlohmann::json;

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

// A set that leaves stat_forecast on where it does nothing succeeds (the setting is kept, as at start,
// where the daemon logs the same) but says so in the reply, which eqctl prints as a warning. Only when
// the request touched stat_forecast or use_forecast: an unrelated set does not repeat it. Empty: none.
std::string inert_setting_warning(const std::string& bus, const core::BusParams& p, const PersistedBusParams& changed) {
  if (!p.stat_forecast || core::stat_forecast_acts(p)) return {};
  if (!changed.get("stat_forecast") && !changed.get("use_forecast")) return {};
  if (p.law != core::LawKind::planned)
    return "bus " + bus + ": stat_forecast is on but does nothing with law " + core::to_string(p.law) +
           " (it is a path for law planned, which is set in the configuration: buses." + bus + ".law)";
  return "bus " + bus +
         ": stat_forecast is on but does nothing while use_forecast is off (law planned then plans over no path)";
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
  std::string inert = inert_setting_warning(bus, p, changed);
  const bool queued = submit(
      req, [this, s, bus, id, p, changed, replied, inert = std::move(inert)](std::optional<core::ResponseStatus> st) {
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
        if (!inert.empty()) spdlog::warn("control API: {}", inert);
        json res{{"bus", bus}, {"params", params}, {"persisted", err.empty()}};
        // One "warning" string (older eqctl print it as is): both, when both apply.
        std::string warning = inert;
        if (!err.empty()) warning += (warning.empty() ? "" : "; ") + std::string("not persisted: ") + err;
        if (!warning.empty()) res["warning"] = warning;
        answer(ok_response(id, res));
      });
  if (!queued) s->reply(error_response(r.id, error_code::kBusy, "eqd's request queue is full; try again"));
}

}  // namespace eqd::control
