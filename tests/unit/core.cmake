# Core tests: pure law and allocator, primitives, the control core; stress tests run under TSan in CI.
add_executable(core_unit_tests
  unit/core_seqlock_test.cpp
  unit/core_equalizer_test.cpp
  unit/core_law_stages_test.cpp
  unit/core_law_conformance_test.cpp
  unit/core_adaptive_law_test.cpp
  unit/core_predictor_test.cpp
  unit/core_allocator_test.cpp
  unit/core_control_core_test.cpp
  unit/core_caps_mode_test.cpp
  unit/core_average_caps_test.cpp
  unit/core_valley_fill_test.cpp
  unit/core_meter_check_test.cpp
  unit/core_meter_trim_test.cpp
  unit/core_stat_forecast_test.cpp)
target_link_libraries(core_unit_tests PRIVATE eqd_core eqd_catch_main)
catch_discover_tests(core_unit_tests EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:core:tsan")

# Own binary: it replaces the global operator new to count allocations around the cycle.
add_executable(core_alloc_test unit/core_alloc_test.cpp)
target_link_libraries(core_alloc_test PRIVATE eqd_core eqd_catch_main)
# ASan's own operator new may serve allocations made before ours takes over (static init in its
# runtime); freeing those through our replacement is not a bug of the code under test.
catch_discover_tests(core_alloc_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:core:tsan" ENVIRONMENT "ASAN_OPTIONS=alloc_dealloc_mismatch=0")

add_executable(core_stress_test unit/core_stress_test.cpp)
target_link_libraries(core_stress_test PRIVATE eqd_core eqd_catch_main)
catch_discover_tests(core_stress_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "stress:core:tsan")

# The receding-horizon planner; with GLPK (Debian: libglpk-dev, installed by scripts/setup.sh --with
# all) its optimum is also checked against the linear program of the same objective.
add_executable(core_planner_test unit/core_planner_test.cpp)
target_link_libraries(core_planner_test PRIVATE eqd_core eqd_catch_main)
find_path(GLPK_INCLUDE_DIR glpk.h)
find_library(GLPK_LIBRARY glpk)
if(GLPK_INCLUDE_DIR AND GLPK_LIBRARY)
  target_compile_definitions(core_planner_test PRIVATE EQD_HAVE_GLPK)
  target_include_directories(core_planner_test PRIVATE ${GLPK_INCLUDE_DIR})
  target_link_libraries(core_planner_test PRIVATE ${GLPK_LIBRARY})
else()
  message(STATUS "GLPK not found: core_planner_test runs without its linear-program cross-check")
endif()
catch_discover_tests(core_planner_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:core:tsan")

# Target schedules (issue #17): expansion across midnight and the 2026 DST changes of Europe/Berlin,
# through the daemon's own time-zone function (eqd_util).
add_executable(core_schedule_test unit/core_schedule_test.cpp)
target_link_libraries(core_schedule_test PRIVATE eqd_core eqd_util eqd_catch_main)
catch_discover_tests(core_schedule_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:core")
