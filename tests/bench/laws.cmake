# bench_laws: eqd's law against peer laws and a perfect-foresight LP bound (docs/control-benchmark.md).
# Needs GLPK (Debian: libglpk-dev); without it the target is skipped, nothing else depends on it.
find_path(GLPK_INCLUDE_DIR glpk.h)
find_library(GLPK_LIBRARY glpk)
if(GLPK_INCLUDE_DIR AND GLPK_LIBRARY)
  add_executable(bench_laws
    ${CMAKE_CURRENT_LIST_DIR}/bench_laws.cpp
    ${CMAKE_CURRENT_LIST_DIR}/laws/peer_laws.cpp
    ${CMAKE_CURRENT_LIST_DIR}/laws/peak_bench.cpp
    ${CMAKE_CURRENT_LIST_DIR}/laws/bound_lp.cpp)
  target_include_directories(bench_laws PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${GLPK_INCLUDE_DIR})
  target_link_libraries(bench_laws PRIVATE eqd_sim ${GLPK_LIBRARY})
else()
  message(STATUS "GLPK not found: bench_laws is not built (apt-get install libglpk-dev)")
endif()

# stat_skill: the skill of eqd's statistical forecast (core::StatFitter) offline, on the free power
# bench_laws records (series_*.csv). The core alone: no GLPK needed.
add_executable(stat_skill ${CMAKE_CURRENT_LIST_DIR}/stat_skill.cpp)
target_link_libraries(stat_skill PRIVATE eqd_core)

# law_digest: the differential hash harness of the core (docs/architecture.md, "Adding a control law").
# The CTest compares every scenario's digest with law_digest.expected: a refactoring must leave the
# commands bit for bit unchanged; a deliberate change of the law's behaviour regenerates the file
# (`law_digest tests/scenarios/*.yaml tests/bench/scenarios/*.yaml > tests/bench/law_digest.expected`)
# and says so in its commit, with the bench_laws figures.
add_executable(law_digest ${CMAKE_CURRENT_LIST_DIR}/law_digest.cpp)
target_link_libraries(law_digest PRIVATE eqd_sim)
file(GLOB _eqd_digest_scenarios ${CMAKE_SOURCE_DIR}/tests/scenarios/*.yaml ${CMAKE_SOURCE_DIR}/tests/bench/scenarios/*.yaml)
list(SORT _eqd_digest_scenarios)
add_test(NAME scenario.law_digest
         COMMAND law_digest --check ${CMAKE_CURRENT_LIST_DIR}/law_digest.expected ${_eqd_digest_scenarios})
set_tests_properties(scenario.law_digest PROPERTIES LABELS "scenario")
