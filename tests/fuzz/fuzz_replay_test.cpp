// Replays the committed fuzz corpus (tests/fuzz/corpus) through the parser's invariants, so that
// every CTest run covers what the fuzzer found, with or without clang.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "request_check.hpp"

TEST_CASE("control fuzz corpus: every input keeps the parser's invariants", "[control][fuzz]") {
  namespace fs = std::filesystem;
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(EQD_FUZZ_CORPUS_DIR)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    INFO(entry.path().string());
    CHECK(eqd::control::fuzz::check_request(ss.str()) == "");
    ++files;
  }
  CHECK(files >= 20);  // the seed corpus must be there
}

TEST_CASE("control fuzz corpus: the checker catches a broken invariant", "[control][fuzz]") {
  // An oversized line must be reported as too_large; the checker must notice if it is not, so feed
  // it one and require that it passes only because the parser does report it.
  const std::string big(eqd::control::kMaxRequestBytes + 1, '{');
  CHECK(eqd::control::fuzz::check_request(big) == "");
  auto r = eqd::control::parse_request(big);
  REQUIRE(std::holds_alternative<eqd::control::ParseError>(r));
  CHECK(std::string(std::get<eqd::control::ParseError>(r).code) == "too_large");
}
