# owned by the sim area: scenario files run against the real ControlCore (label "scenario").
add_executable(sim_scenarios ${CMAKE_CURRENT_LIST_DIR}/sim_scenarios.cpp)
target_link_libraries(sim_scenarios PRIVATE eqd_sim eqd_catch_main)
target_compile_definitions(sim_scenarios PRIVATE EQD_SCENARIO_DIR="${CMAKE_CURRENT_LIST_DIR}")
file(GLOB _eqd_scenarios CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.yaml)
foreach(_f IN LISTS _eqd_scenarios)
  get_filename_component(_name ${_f} NAME_WE)
  add_test(NAME scenario.${_name} COMMAND sim_scenarios scenarios -c ${_name})
  set_tests_properties(scenario.${_name} PROPERTIES LABELS "scenario")
  # The same scenario with the damped law on every bus (the files use the default law, adaptive).
  add_test(NAME scenario_damped.${_name} COMMAND sim_scenarios scenarios -c ${_name})
  set_tests_properties(scenario_damped.${_name} PROPERTIES LABELS "scenario" ENVIRONMENT "EQD_SCENARIO_LAW=damped")
  # And with the receding-horizon planner (where a file announces nothing, it is the adaptive law).
  add_test(NAME scenario_planned.${_name} COMMAND sim_scenarios scenarios -c ${_name})
  set_tests_properties(scenario_planned.${_name} PROPERTIES LABELS "scenario" ENVIRONMENT "EQD_SCENARIO_LAW=planned")
endforeach()
add_test(NAME scenario.folder COMMAND sim_scenarios "scenario folder is not empty")
set_tests_properties(scenario.folder PROPERTIES LABELS "scenario")
