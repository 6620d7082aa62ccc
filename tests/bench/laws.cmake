# bench_laws: eqd's law against peer laws and a perfect-foresight LP bound (docs/control-benchmark.md).
# Needs GLPK (Debian: libglpk-dev); without it the target is skipped, nothing else depends on it.
find_path(GLPK_INCLUDE_DIR glpk.h)
find_library(GLPK_LIBRARY glpk)
if(GLPK_INCLUDE_DIR AND GLPK_LIBRARY)
  add_executable(bench_laws
    ${CMAKE_CURRENT_LIST_DIR}/bench_laws.cpp
    ${CMAKE_CURRENT_LIST_DIR}/laws/peer_laws.cpp
    ${CMAKE_CURRENT_LIST_DIR}/laws/bound_lp.cpp)
  target_include_directories(bench_laws PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${GLPK_INCLUDE_DIR})
  target_link_libraries(bench_laws PRIVATE eqd_sim ${GLPK_LIBRARY})
else()
  message(STATUS "GLPK not found: bench_laws is not built (apt-get install libglpk-dev)")
endif()
