#pragma once
/// @file socket.hpp
/// The kernel side of CAN: conversion between Frame and the kernel's struct can_frame /
/// struct canfd_frame (what a CAN_RAW socket reads and writes, one frame per call), and opening a
/// CAN_RAW socket bound to an interface with receive filters, error frames and CAN FD enabled.
/// Free functions; reentrant; any thread.

#include <linux/can.h>

#include <cstddef>
#include <string>
#include <system_error>
#include <vector>

#include "eqd/io/can/codec.hpp"

namespace eqd::io::can {

/// Kernel representation of `f` in `out`; returns the byte count to write: CAN_MTU (16) for a
/// classic frame, CANFD_MTU (72) for an FD frame. A classic frame longer than 8 bytes is refused (0).
[[nodiscard]] std::size_t to_wire(const Frame& f, canfd_frame& out) noexcept;

/// Parses `n` bytes read from a CAN_RAW socket (CAN_MTU or CANFD_MTU). False for any other size or a
/// length field beyond the frame type's maximum (the frame is ignored and counted, never trusted).
[[nodiscard]] bool from_wire(const void* buf, std::size_t n, Frame& out) noexcept;

/// Error classes eqd asks the kernel to deliver as error frames (CAN_RAW_ERR_FILTER).
inline constexpr std::uint32_t kErrorMask =
    0x00000004U /*CAN_ERR_CRTL*/ | 0x00000040U /*CAN_ERR_BUSOFF*/ | 0x00000100U /*CAN_ERR_RESTARTED*/;

/// Kernel receive filters (CAN_RAW_FILTER) accepting exactly `ids` (duplicates merged).
[[nodiscard]] std::vector<can_filter> make_filters(const std::vector<FrameId>& ids);

/// Whether `interface` can carry CAN FD (its MTU is at least CANFD_MTU). Sets ec when the interface does
/// not exist or AF_CAN is unavailable.
[[nodiscard]] bool interface_supports_fd(const std::string& interface, std::error_code& ec);

/// Opens a non-blocking CAN_RAW socket bound to `interface` with receive filters for `ids` (empty:
/// receive everything), error frames (kErrorMask), CAN FD frames when `fd` (fails with
/// EPROTONOSUPPORT if the interface is classic only). Returns the fd, or -1 with ec set.
[[nodiscard]] int open_raw_socket(const std::string& interface, const std::vector<FrameId>& ids, bool fd,
                                  std::error_code& ec);

}  // namespace eqd::io::can
