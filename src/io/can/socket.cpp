/// @file socket.cpp
/// CAN_RAW sockets and frame conversion (see socket.hpp).

#include "eqd/io/can/socket.hpp"

#include <linux/can/error.h>
#include <linux/can/raw.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace eqd::io::can {

std::size_t to_wire(const Frame& f, canfd_frame& out) noexcept {
  std::memset(&out, 0, sizeof out);
  if (f.len > (f.fd ? CANFD_MAX_DLEN : CAN_MAX_DLEN)) return 0;
  out.can_id = f.error ? (f.id & CAN_ERR_MASK) | CAN_ERR_FLAG
                       : (f.extended ? (f.id & CAN_EFF_MASK) | CAN_EFF_FLAG : f.id & CAN_SFF_MASK);
  out.len = f.len;
  std::memcpy(out.data, f.data, f.len);
  if (f.fd) {
    out.flags = CANFD_BRS;
    return CANFD_MTU;
  }
  return CAN_MTU;
}

bool from_wire(const void* buf, std::size_t n, Frame& out) noexcept {
  if (n != CAN_MTU && n != CANFD_MTU) return false;
  canfd_frame k{};
  std::memcpy(&k, buf, n);
  const bool fd = n == CANFD_MTU;
  if (k.len > (fd ? CANFD_MAX_DLEN : CAN_MAX_DLEN)) return false;
  out.error = (k.can_id & CAN_ERR_FLAG) != 0;
  out.extended = !out.error && (k.can_id & CAN_EFF_FLAG) != 0;
  out.id = out.error ? k.can_id & CAN_ERR_MASK : (out.extended ? k.can_id & CAN_EFF_MASK : k.can_id & CAN_SFF_MASK);
  out.fd = fd;
  out.len = k.len;
  std::memcpy(out.data, k.data, k.len);
  if (k.len < sizeof out.data) std::memset(out.data + k.len, 0, sizeof out.data - k.len);
  return true;
}

std::vector<can_filter> make_filters(const std::vector<FrameId>& ids) {
  std::vector<can_filter> out;
  for (const FrameId& i : ids) {
    can_filter f{};
    f.can_id = i.extended ? (i.id | CAN_EFF_FLAG) : i.id;
    // Match the EFF flag too, so that an 11-bit id never matches a 29-bit one with the same value.
    f.can_mask = (i.extended ? CAN_EFF_MASK : CAN_SFF_MASK) | CAN_EFF_FLAG | CAN_RTR_FLAG;
    if (std::none_of(out.begin(), out.end(), [&](const can_filter& g) { return g.can_id == f.can_id; }))
      out.push_back(f);
  }
  return out;
}

namespace {

int ifindex_of(int fd, const std::string& interface, std::error_code& ec) {
  ifreq ifr{};
  if (interface.empty() || interface.size() >= IFNAMSIZ) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return -1;
  }
  std::strncpy(ifr.ifr_name, interface.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
    ec = std::error_code(errno, std::generic_category());
    return -1;
  }
  return ifr.ifr_ifindex;
}

}  // namespace

bool interface_supports_fd(const std::string& interface, std::error_code& ec) {
  const int s = ::socket(PF_CAN, SOCK_RAW, CAN_RAW);
  if (s < 0) {
    ec = std::error_code(errno, std::generic_category());
    return false;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, interface.c_str(), IFNAMSIZ - 1);
  const bool ok = ioctl(s, SIOCGIFMTU, &ifr) == 0;
  if (!ok) ec = std::error_code(errno, std::generic_category());
  ::close(s);
  // vcan and CAN XL capable devices may report an MTU beyond CANFD_MTU: they carry FD frames too.
  return ok && ifr.ifr_mtu >= static_cast<int>(CANFD_MTU);
}

int open_raw_socket(const std::string& interface, const std::vector<FrameId>& ids, bool fd, std::error_code& ec) {
  ec.clear();
  const int s = ::socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
  if (s < 0) {
    ec = std::error_code(errno, std::generic_category());
    return -1;
  }
  auto fail = [&](int err) {
    ec = std::error_code(err, std::generic_category());
    ::close(s);
    return -1;
  };
  const int index = ifindex_of(s, interface, ec);
  if (index < 0) return fail(ec.value());
  if (fd) {
    const int on = 1;
    if (setsockopt(s, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &on, sizeof on) < 0) return fail(errno);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, interface.c_str(), IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu < static_cast<int>(CANFD_MTU))
      return fail(EPROTONOSUPPORT);  // the map needs FD frames; this interface is classic only
  }
  if (!ids.empty()) {
    const std::vector<can_filter> filters = make_filters(ids);
    if (setsockopt(s, SOL_CAN_RAW, CAN_RAW_FILTER, filters.data(),
                   static_cast<socklen_t>(filters.size() * sizeof(can_filter))) < 0)
      return fail(errno);
  }
  const can_err_mask_t err_mask = kErrorMask;
  if (setsockopt(s, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &err_mask, sizeof err_mask) < 0) return fail(errno);
  sockaddr_can addr{};
  addr.can_family = AF_CAN;
  addr.can_ifindex = index;
  if (bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return fail(errno);
  return s;
}

}  // namespace eqd::io::can
