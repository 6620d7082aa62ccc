#pragma once
/// @file transaction.hpp
/// Modbus requests of the poller with every field of the response checked. libmodbus (3.1.6 in
/// Debian 12, and still upstream) does not check the unit identifier of a Modbus TCP response, and
/// checks its protocol identifier only when both bytes are non-zero: a gateway or a misconfigured
/// server answering for another unit would have its registers taken for this controller's. Over TCP
/// the request is therefore framed here (MBAP header, own transaction id) and the response, framed by
/// libmodbus, is checked field by field. RTU uses libmodbus's own calls, which check the unit (slave)
/// address and the CRC. Used by the Modbus, SunSpec and grid-meter links, each on its own thread.
///
/// Over TCP the response is also received here, delimited by its MBAP length and bounded as a whole by
/// `timeout_ms`: libmodbus bounds only the wait for the first byte and then for each next one, so a
/// device that trickles its reply a byte at a time (a fault, or a slowloris) would hold the link's thread
/// for minutes — its timeouts uncounted, and a stop (eqd's shutdown) waiting for it.

#include <cstdint>

#include "eqd/io/error.hpp"
#include "eqd/io/link.hpp"

namespace eqd::io::modbus {

/// Transaction state of one link (the next transaction id). Not thread-safe: the poller's thread.
struct Transactor {
  void* ctx = nullptr;  ///< modbus_t*
  bool tcp = true;      ///< frame and check here (TCP) or use libmodbus's calls (RTU)
  int unit_id = 1;
  std::uint16_t next_tid = 1;
  int timeout_ms = 500;  ///< TCP: the whole response within this, from the request sent
};

/// Reads `count` registers (function 3 holding or 4 input) into dest. Returns count, or -1 with errno
/// set: a libmodbus errno, EMBBADSLAVE (another unit answered), EMBBADDATA (transaction or protocol id,
/// length or byte count wrong), MODBUS_ENOBASE + code (exception response), EMBBADEXC.
int read_registers(Transactor& t, bool input, int address, int count, std::uint16_t* dest);
/// Writes registers (function 16). Returns count or -1 with errno set as above.
int write_registers(Transactor& t, int address, int count, const std::uint16_t* values);

/// The link error code for an errno set by the calls above or by libmodbus (ETIMEDOUT → timeout, an
/// exception response → device_exception, CRC, data, unit or exception-format errors → bad_response,
/// anything else → link_lost). Pure; any thread.
[[nodiscard]] LinkErrc classify_errno(int err) noexcept;

/// What a Modbus link does about a failed request whose error is `kind` (classify_errno of its errno):
/// counts it in `stats` (timeouts, exceptions, protocol_errors or connection_errors), flushes a late or
/// malformed reply out of `ctx` (modbus_t*, may be null) so that it is not taken for the next request's,
/// and returns true when the link should be reopened: a lost link, or max_timeouts timeouts in a row
/// (`consecutive_timeouts` counts them; the caller resets it on a success). The link's own thread.
bool handle_failure(LinkErrc kind, LinkStats& stats, void* ctx, int& consecutive_timeouts, int max_timeouts) noexcept;

}  // namespace eqd::io::modbus
