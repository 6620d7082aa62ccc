// The "eqd.link" error category (io/error.hpp; the catalogue is docs/faults.md).
#include "eqd/io/error.hpp"

#include <string>

namespace eqd::io {

namespace {

struct CodeText {
  std::string_view name;
  const char* message;
};

// Indexed by the code's value; entry 0 is "no error".
constexpr std::array<CodeText, kLinkErrcCount + 1> kCodes{{
    {"", "no error"},
    {"connect_failed", "the controller could not be reached or opened"},
    {"link_lost", "the link to the controller broke"},
    {"timeout", "no response from the controller in time"},
    {"device_exception", "the controller answered with a protocol exception"},
    {"bad_response", "a reply or frame from the controller does not decode"},
    {"value_refused", "a sample value is outside the plausible range"},
    {"forecast_refused", "an announced forecast was refused"},
    {"program_refused", "a step or cycle number was refused"},
    {"command_refused", "a command cannot be encoded for this controller"},
    {"write_failed", "a write did not reach the controller"},
    {"device_unusable", "the device is not one eqd can drive"},
}};

class LinkCategory final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "eqd.link"; }
  [[nodiscard]] std::string message(int code) const override {
    if (code < 0 || static_cast<std::size_t>(code) > kLinkErrcCount)
      return "unknown link error " + std::to_string(code);
    return kCodes[static_cast<std::size_t>(code)].message;
  }
};

}  // namespace

std::string_view link_errc_name(int code) noexcept {
  if (code <= 0 || static_cast<std::size_t>(code) > kLinkErrcCount) return {};
  return kCodes[static_cast<std::size_t>(code)].name;
}

const std::error_category& link_category() noexcept {
  static const LinkCategory category;
  return category;
}

}  // namespace eqd::io
