/// @file transaction.cpp
/// Checked Modbus requests (see transaction.hpp). Framing from the Modbus Application Protocol v1.1b3
/// and the Modbus Messaging on TCP/IP Implementation Guide v1.0b (MBAP header).

#include "eqd/io/modbus/transaction.hpp"

#include <modbus/modbus.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>

#include "eqd/io/link_thread.hpp"

namespace eqd::io::modbus {

namespace {

constexpr int kMbapLength = 7;  // transaction id 2, protocol id 2, length 2, unit id 1
constexpr int kMaxAdu = 260;    // MODBUS_TCP_MAX_ADU_LENGTH
constexpr int kFnWriteMultiple = 0x10;

modbus_t* mb(void* p) noexcept { return static_cast<modbus_t*>(p); }

int fail(int err) noexcept {
  errno = err;
  return -1;
}

bool send_all(int fd, const std::uint8_t* p, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

/// Receives exactly n bytes into p before deadline_ns (steady_now_ns()). False with errno set:
/// ETIMEDOUT (the deadline passed first), ECONNRESET (the peer closed) or the socket's own error.
bool recv_all_until(int fd, std::uint8_t* p, std::size_t n, std::int64_t deadline_ns) noexcept {
  while (n > 0) {
    const std::int64_t left_ns = deadline_ns - steady_now_ns();
    if (left_ns <= 0) {
      errno = ETIMEDOUT;
      return false;
    }
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>((left_ns + 999'999) / 1'000'000));
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;  // interrupted, or the wait ended: the deadline is checked again
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r == 0) {
      errno = ECONNRESET;
      return false;
    }
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

std::uint16_t be16(const std::uint8_t* p) noexcept { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }

void put16(std::uint8_t* p, int v) noexcept {
  p[0] = static_cast<std::uint8_t>((v >> 8) & 0xFF);
  p[1] = static_cast<std::uint8_t>(v & 0xFF);
}

/// Sends the PDU `pdu` (function code first) and receives the response ADU into rsp; checks the MBAP
/// header and the function code. Returns the PDU length of the response (function code included), or
/// -1 with errno set.
int transact(Transactor& t, const std::uint8_t* pdu, int pdu_len, std::uint8_t* rsp) noexcept {
  std::uint8_t req[kMaxAdu];
  const std::uint16_t tid = t.next_tid;
  t.next_tid = static_cast<std::uint16_t>(t.next_tid + 1);
  put16(req, tid);
  put16(req + 2, 0);
  put16(req + 4, pdu_len + 1);
  req[6] = static_cast<std::uint8_t>(t.unit_id);
  for (int i = 0; i < pdu_len; ++i) req[kMbapLength + i] = pdu[i];
  const int fd = modbus_get_socket(mb(t.ctx));
  if (fd < 0) return fail(ECONNRESET);
  if (!send_all(fd, req, static_cast<std::size_t>(kMbapLength) + static_cast<std::size_t>(pdu_len)))
    return -1;  // errno from send
  // The response as the MBAP header delimits it (its length counts the unit id and the PDU), whole
  // within timeout_ms of the request.
  const std::int64_t deadline_ns = steady_now_ns() + static_cast<std::int64_t>(t.timeout_ms) * 1'000'000;
  if (!recv_all_until(fd, rsp, kMbapLength, deadline_ns)) return -1;  // timeout, connection error (errno set)
  const int length = be16(rsp + 4);
  if (length < 3 || length > kMaxAdu - 6) return fail(EMBBADDATA);  // no function code and data, or too long
  // A stale or foreign response is received whole too, so that the stream stays in step with the
  // requests; whatever junk announced that never comes is a protocol error, not a timeout.
  const bool ours = be16(rsp) == tid && be16(rsp + 2) == 0;
  if (!recv_all_until(fd, rsp + kMbapLength, static_cast<std::size_t>(length - 1), deadline_ns))
    return ours ? -1 : fail(EMBBADDATA);
  if (!ours) return fail(EMBBADDATA);
  const int n = 6 + length;
  if (rsp[6] != req[6]) return fail(EMBBADSLAVE);  // another unit answered
  const int fn = rsp[kMbapLength];
  if (fn == (pdu[0] | 0x80)) {
    const int code = rsp[kMbapLength + 1];
    return fail(code >= 1 && code < MODBUS_EXCEPTION_MAX ? MODBUS_ENOBASE + code : EMBBADEXC);
  }
  if (fn != pdu[0]) return fail(EMBBADDATA);
  return n - kMbapLength;
}

}  // namespace

int read_registers(Transactor& t, bool input, int address, int count, std::uint16_t* dest) {
  if (!t.tcp)
    return input ? modbus_read_input_registers(mb(t.ctx), address, count, dest)
                 : modbus_read_registers(mb(t.ctx), address, count, dest);
  if (count < 1 || count > MODBUS_MAX_READ_REGISTERS) return fail(EINVAL);
  std::uint8_t pdu[5];
  pdu[0] = static_cast<std::uint8_t>(input ? 0x04 : 0x03);
  put16(pdu + 1, address);
  put16(pdu + 3, count);
  std::uint8_t rsp[kMaxAdu];
  const int len = transact(t, pdu, sizeof pdu, rsp);
  if (len < 0) return -1;
  const std::uint8_t* data = rsp + kMbapLength;
  // function, byte count, then exactly `count` registers
  if (len != 2 + 2 * count || data[1] != 2 * count) return fail(EMBMDATA);
  for (int i = 0; i < count; ++i) dest[i] = be16(data + 2 + 2 * i);
  return count;
}

int write_registers(Transactor& t, int address, int count, const std::uint16_t* values) {
  if (!t.tcp) return modbus_write_registers(mb(t.ctx), address, count, values);
  if (count < 1 || count > MODBUS_MAX_WRITE_REGISTERS) return fail(EINVAL);
  std::uint8_t pdu[6 + 2 * MODBUS_MAX_WRITE_REGISTERS];
  pdu[0] = kFnWriteMultiple;
  put16(pdu + 1, address);
  put16(pdu + 3, count);
  pdu[5] = static_cast<std::uint8_t>(2 * count);
  for (int i = 0; i < count; ++i) put16(pdu + 6 + 2 * i, values[i]);
  std::uint8_t rsp[kMaxAdu];
  const int len = transact(t, pdu, 6 + 2 * count, rsp);
  if (len < 0) return -1;
  const std::uint8_t* data = rsp + kMbapLength;
  // the response echoes the starting address and the quantity
  if (len != 5 || be16(data + 1) != address || be16(data + 3) != count) return fail(EMBMDATA);
  return count;
}

LinkErrc classify_errno(int err) noexcept {
  if (err == ETIMEDOUT) return LinkErrc::timeout;
  if (err > MODBUS_ENOBASE && err <= EMBXGTAR) return LinkErrc::device_exception;
  if (err == EMBBADCRC || err == EMBBADDATA || err == EMBBADEXC || err == EMBUNKEXC || err == EMBMDATA ||
      err == EMBBADSLAVE)
    return LinkErrc::bad_response;
  return LinkErrc::link_lost;
}

bool handle_failure(LinkErrc kind, LinkStats& stats, void* ctx, int& consecutive_timeouts, int max_timeouts) noexcept {
  switch (kind) {
    case LinkErrc::timeout:
      ++stats.timeouts;
      if (ctx != nullptr) modbus_flush(static_cast<modbus_t*>(ctx));
      return ++consecutive_timeouts >= max_timeouts;
    case LinkErrc::device_exception:
      ++stats.exceptions;
      return false;
    case LinkErrc::bad_response:
      ++stats.protocol_errors;
      if (ctx != nullptr) modbus_flush(static_cast<modbus_t*>(ctx));
      return false;
    default:
      ++stats.connection_errors;
      return true;
  }
}

}  // namespace eqd::io::modbus
