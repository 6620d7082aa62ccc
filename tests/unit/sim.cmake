# owned by the sim area: plant-model unit tests (label "unit") and the scenario runner (label "scenario").
add_executable(sim_unit_tests
  ${CMAKE_CURRENT_LIST_DIR}/sim_plant_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sim_rig_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sim_program_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sim_calendar_test.cpp
)
target_link_libraries(sim_unit_tests PRIVATE eqd_sim eqd_catch_main)
catch_discover_tests(sim_unit_tests EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit")
include(${CMAKE_CURRENT_LIST_DIR}/../scenarios/scenarios.cmake)
