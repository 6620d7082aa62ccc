#pragma once
/// @file client.hpp
/// eqctl's side of the control API: one Unix-socket connection, one request line out, one response
/// line back. Thread-safety: a Client is used by one thread.

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "eqd/control/protocol.hpp"

namespace eqd::cli {

/// The daemon cannot be reached (no socket, refused, closed, timed out): eqctl exits 3.
struct UnreachableError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A connection to eqd's control socket.
class Client {
 public:
  /// Connects; throws UnreachableError naming the path and the reason.
  Client(std::string socket_path, int timeout_ms);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sends `r` (id assigned here) and returns the parsed response object. Throws UnreachableError on
  /// I/O failure, timeout or an unparsable response.
  nlohmann::json call(control::ApiRequest r);
  /// Sends a raw line (newline added) and returns the raw response line. For tests and debugging.
  std::string call_raw(const std::string& line);
  /// The file descriptor eqd passed with the last response (SCM_RIGHTS: `backup`'s archive), now the
  /// caller's to close; -1 when none came. Further ones replace (and close) an untaken one.
  int take_passed_fd() noexcept;
  /// How long call() waits for an answer from now on (ms).
  void set_timeout(int timeout_ms) noexcept { timeout_ms_ = timeout_ms; }

 private:
  std::string path_;
  int fd_ = -1;
  int timeout_ms_;
  std::uint64_t next_id_ = 1;
  std::string pending_;  ///< bytes read past the last response line
  int passed_fd_ = -1;   ///< a descriptor that came with a response, not taken yet
};

}  // namespace eqd::cli
