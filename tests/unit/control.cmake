# Control API and eqctl: protocol, persisted state, authorization, server, tables. The request
# handling runs on a fake rig (control_requests_test.cpp, tests/fakes/fake_rig.hpp); the server over
# a real Daemon is control_server_test.cpp.
add_executable(control_unit_tests
  unit/control_protocol_test.cpp
  unit/control_state_test.cpp
  unit/control_auth_test.cpp
  unit/control_server_test.cpp
  unit/control_requests_test.cpp
  unit/control_render_test.cpp
  unit/control_report_test.cpp)
target_link_libraries(control_unit_tests PRIVATE eqd_control eqctl_lib eqd_catch_main)
catch_discover_tests(control_unit_tests EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:control:tsan")
