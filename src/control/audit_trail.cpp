// What a change request of the control API is recorded as in the audit log (see audit_trail.hpp).
#include "audit_trail.hpp"

#include <utility>

namespace eqd::control {

using nlohmann::json;

namespace {

// A channel's role and limits as they are now (null for an unknown name).
json channel_values(const daemon::RigView& rig, const std::string& name) {
  const auto idx = rig.directory().find_channel(name);
  if (!idx) return nullptr;
  const core::ChannelSnapshot snap = rig.channel(*idx);
  json j{{"role", core::to_string(snap.role)}};
  if (snap.role != core::Role::test) j["limits"] = limits_to_json(snap.limits);
  return j;
}

json controller_values(const daemon::RigView& rig, const std::string& name) {
  const daemon::Directory& dir = rig.directory();
  const auto c = dir.find_controller(name);
  if (!c) return nullptr;
  const daemon::ControllerInfo& info = dir.controllers[*c];
  return json{{"source", daemon::to_string(info.source)}, {"adopted", !info.read_only}};
}

json before_values(const ApiRequest& r, const daemon::RigView& rig) {
  switch (r.command) {
    case Command::assign:
    case Command::release:
      return channel_values(rig, r.channel);
    case Command::set: {
      const auto b = rig.directory().find_bus(r.bus);
      if (!b) return nullptr;
      return json{{"params", runtime_params_json(rig.bus(*b).params)}};
    }
    case Command::adopt:
    case Command::forget:
      return controller_values(rig, r.controller);
    default:
      return nullptr;
  }
}

bool is_change_name(const std::string& cmd) {
  for (Command c : {Command::assign, Command::release, Command::set, Command::adopt, Command::forget, Command::backup})
    if (cmd == to_string(c)) return true;
  return false;
}

history::AuditRecord base_record(const PeerCredentials& peer, Role role) {
  history::AuditRecord rec;
  rec.time_ms = history::now_utc_ms();
  rec.uid = static_cast<std::int64_t>(peer.uid);
  rec.pid = static_cast<std::int64_t>(peer.pid);
  rec.role = to_string(role);
  return rec;
}

// The values after an accepted change, from its answer's result.
json after_values(const history::AuditRecord& rec, const json& result) {
  const std::string status = result.value("status", std::string());
  if (rec.command == "assign") {
    json j{{"role", status == "pending" ? "pending" : "equalization"}};
    if (result.contains("limits")) j["limits"] = result["limits"];
    return j;
  }
  if (rec.command == "release") return status == "already" ? rec.before : json{{"role", "test"}};
  if (rec.command == "set") return json{{"params", result.value("params", json(nullptr))}};
  if (rec.command == "adopt") {
    json j{{"adopted", true}};
    if (!rec.bus.empty()) j["bus"] = rec.bus;
    return j;
  }
  if (rec.command == "forget") return json{{"forgotten", true}};
  // What the archive holds (names, sizes, SHA-256): a copy found later can be matched to this record.
  if (rec.command == "backup")
    return json{
        {"size_bytes", result.value("size_bytes", json(nullptr))},
        {"files", result.contains("manifest") ? result["manifest"].value("files", json(nullptr)) : json(nullptr)}};
  return nullptr;
}

}  // namespace

history::AuditRecord audit_draft(const ApiRequest& r, const PeerCredentials& peer, Role role,
                                 const daemon::RigView& rig) {
  history::AuditRecord rec = base_record(peer, role);
  rec.command = to_string(r.command);
  rec.channel = r.channel;
  rec.bus = r.bus;
  rec.controller = r.controller;
  rec.request = json::parse(serialize_request(r), nullptr, false);
  if (rec.request.is_object()) rec.request.erase("v");
  rec.before = before_values(r, rig);
  return rec;
}

std::optional<history::AuditRecord> audit_draft_unparsed(std::string_view line, const PeerCredentials& peer,
                                                         Role role) {
  json j = json::parse(line, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  const auto cmd = j.find("cmd");
  if (cmd == j.end() || !cmd->is_string() || !is_change_name(cmd->get<std::string>())) return std::nullopt;
  history::AuditRecord rec = base_record(peer, role);
  rec.command = cmd->get<std::string>();
  for (auto [key, slot] : {std::pair{"channel", &rec.channel}, {"bus", &rec.bus}, {"controller", &rec.controller}})
    if (auto it = j.find(key);
        it != j.end() && it->is_string() && it->get_ref<const std::string&>().size() <= kMaxNameBytes)
      *slot = it->get<std::string>();
  // What was sent, bounded: a request line may be 64 KiB.
  const std::string sent = j.dump(-1, ' ', false, json::error_handler_t::replace);
  rec.request = sent.size() <= 4096 ? j : json{{"cmd", rec.command}, {"truncated", sent.substr(0, 4096)}};
  return rec;
}

void complete_audit(history::AuditRecord& rec, const std::string& response_line) noexcept {
  try {
    const json resp = json::parse(response_line, nullptr, false);
    rec.ok = resp.is_object() && resp.value("ok", false);
    if (rec.ok) {
      const json result = resp.value("result", json::object());
      if (result.contains("message") && result["message"].is_string())
        rec.message = result["message"].get<std::string>();
      else if (rec.command == "set")
        rec.message = "bus " + rec.bus + " parameters set";
      rec.after = after_values(rec, result);
      return;
    }
    const json e = resp.is_object() ? resp.value("error", json::object()) : json::object();
    rec.error_code = e.is_object() ? e.value("code", std::string("other")) : "other";
    rec.message = e.is_object() ? e.value("message", std::string()) : std::string();
    rec.after = nullptr;  // refused, or unknown (a timeout): nothing known to have changed
  } catch (const std::exception&) {
    rec.ok = false;
    rec.error_code = "other";
  }
}

history::AuditQuery audit_query(const ApiRequest& r) {
  history::AuditQuery q;
  q.since_ms = r.since_ms;
  q.user = r.user;
  q.channel = r.channel;
  q.before_id = r.before_id;
  q.limit = static_cast<std::size_t>(r.limit.value_or(100));
  return q;
}

json audit_result(const history::AuditPage& page) {
  json records = json::array();
  for (const history::AuditRecord& rec : page.records) records.push_back(history::to_json(rec));
  json out{{"records", std::move(records)}, {"more", page.more}};
  out["next_before_id"] = page.more && !page.records.empty() ? json(page.records.back().id) : json(nullptr);
  return out;
}

json report_result(const history::ReportAnswer& answer) {
  json intervals = json::array();
  for (const history::ReportInterval& iv : answer.intervals) {
    json buses = json::array();
    for (const history::ReportBus& b : iv.buses) {
      const core::EnergyCounters& e = b.energy;
      // The names of `status`'s energy object, so that a script reads both alike.
      buses.push_back(
          json{{"bus", b.bus},
               {"minutes", b.minutes},
               {"grid_import_J", e.grid_import_J},
               {"grid_export_J", e.grid_export_J},
               {"without_eq_import_J", e.free_import_J},
               {"without_eq_export_J", e.free_export_J},
               {"eq_absorbed_J", e.eq_absorbed_J},
               {"eq_delivered_J", e.eq_delivered_J},
               {"peak_import_W", b.peak_import_W ? json(*b.peak_import_W) : json(nullptr)},
               {"without_eq_peak_import_W", b.peak_free_import_W ? json(*b.peak_free_import_W) : json(nullptr)},
               {"buffer_charged_J", b.charged_J},
               {"buffer_discharged_J", b.discharged_J},
               {"buffers", b.buffers}});
    }
    intervals.push_back(json{{"from_s", iv.from_s}, {"to_s", iv.to_s}, {"buses", std::move(buses)}});
  }
  return json{{"intervals", std::move(intervals)}};
}

}  // namespace eqd::control
