#pragma once
// The control API's side of the audit log (issue #16): what a change request is recorded as. A draft
// is made when the request is read (who, what, the values before), completed from the answer that
// is sent (result, values after) and handed to a history::AuditSink. Private to src/control.
// Thread-safety: pure functions over the rig's lock-free views; the server calls them on its io thread.
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "eqd/control/auth.hpp"
#include "eqd/control/protocol.hpp"
#include "eqd/daemon/views.hpp"
#include "eqd/history/audit.hpp"

namespace eqd::control {

/// The record of change request `r` from `peer` (role `role`) before it is answered: time, uid,
/// pid, role, command, target and the request's fields, and the values it may change as they are
/// now (channel role and limits; the bus's run-time parameters; the controller's adoption). The user
/// name is left to the history writer (getpwuid_r may wait on NSS). Only for change commands.
[[nodiscard]] history::AuditRecord audit_draft(const ApiRequest& r, const PeerCredentials& peer, Role role,
                                               const daemon::RigView& rig);
/// The record of a line that could not be parsed but names a change command ("cmd":"set" with a
/// bad field): a refused attempt all the same. nullopt when the line names no change command.
[[nodiscard]] std::optional<history::AuditRecord> audit_draft_unparsed(std::string_view line,
                                                                       const PeerCredentials& peer, Role role);
/// Completes `rec` from the response line that was sent: ok or the error code and message, and
/// the values after (null when refused). Never throws.
void complete_audit(history::AuditRecord& rec, const std::string& response_line) noexcept;

/// The query of an `audit` request.
[[nodiscard]] history::AuditQuery audit_query(const ApiRequest& r);
/// The `audit` answer's result: {"records": [...newest first], "more": bool, "next_before_id": id|null}.
[[nodiscard]] nlohmann::json audit_result(const history::AuditPage& page);
/// The `report` answer's result: {"intervals": [{"from_s", "to_s", "buses": [{"bus", "minutes",
/// energies in J, peaks in W (null: not recorded), buffer throughput}]}]} (docs/control-api.md).
[[nodiscard]] nlohmann::json report_result(const history::ReportAnswer& answer);

}  // namespace eqd::control
