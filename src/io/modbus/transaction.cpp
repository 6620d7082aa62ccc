/// @file transaction.cpp
/// Checked Modbus requests (see transaction.hpp). Framing from the Modbus Application Protocol v1.1b3
/// and the Modbus Messaging on TCP/IP Implementation Guide v1.0b (MBAP header).

#include "eqd/io/modbus/transaction.hpp"

#include <modbus/modbus.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>

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
  const int n = modbus_receive_confirmation(mb(t.ctx), rsp);
  if (n < 0) return -1;                                                 // timeout, connection error (errno set)
  if (n < kMbapLength + 2) return fail(EMBBADDATA);                     // no function code and data
  if (be16(rsp) != tid || be16(rsp + 2) != 0) return fail(EMBBADDATA);  // stale or foreign response
  if (be16(rsp + 4) != n - 6) return fail(EMBBADDATA);                  // length field disagrees with the frame
  if (rsp[6] != req[6]) return fail(EMBBADSLAVE);                       // another unit answered
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
