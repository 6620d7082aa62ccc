# Fuzzing of the control API's request parser. The corpus replay always runs under CTest; the
# libFuzzer binary is built only with -DEQD_FUZZ=ON and clang (e.g. -DCMAKE_CXX_COMPILER=clang++-14).
option(EQD_FUZZ "Build the libFuzzer targets (needs clang)" OFF)

add_executable(control_fuzz_replay_test fuzz/fuzz_replay_test.cpp)
target_link_libraries(control_fuzz_replay_test PRIVATE eqd_control_protocol eqd_catch_main)
target_compile_definitions(control_fuzz_replay_test PRIVATE EQD_FUZZ_CORPUS_DIR="${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus")
catch_discover_tests(control_fuzz_replay_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:control:fuzz")

if(EQD_FUZZ)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # The parser is compiled into the fuzzer itself so that it carries the coverage instrumentation.
    add_executable(control_request_fuzzer fuzz/request_fuzzer.cpp ${PROJECT_SOURCE_DIR}/src/control/protocol.cpp)
    target_include_directories(control_request_fuzzer PRIVATE ${PROJECT_SOURCE_DIR}/include)
    target_link_libraries(control_request_fuzzer PRIVATE nlohmann_json::nlohmann_json)
    target_compile_options(control_request_fuzzer PRIVATE -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer)
    target_link_options(control_request_fuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
  else()
    message(WARNING "EQD_FUZZ=ON needs clang (CMAKE_CXX_COMPILER=clang++-14); the fuzzer is not built")
  endif()
endif()
