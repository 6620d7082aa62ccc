// libFuzzer target of the control API's request parser (built with -DEQD_FUZZ=ON and clang).
// Run: ./control_request_fuzzer -max_len=70000 tests/fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "request_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string why =
      eqd::control::fuzz::check_request(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!why.empty()) {
    std::fprintf(stderr, "invariant violated: %s\n", why.c_str());
    std::abort();
  }
  return 0;
}
