# The fault catalogue (docs/faults.md) as tests against the real binaries: eqsim, eqd and eqctl on
# loopback, with the hostile Modbus server / logging proxy of hostile_modbus.py. Python 3 standard library
# only, run with /usr/bin/python3. Label "faults" (ctest -L faults). Tests that need root (mount
# namespaces, ptrace) exit 77 = skipped without it. The acceptance tests of issue #12's fixes are
# eqd_stopped, control_thread_stall and hostile_modbus_unit_id: they fail on code without those fixes.
set(EQD_FAULT_TESTS
    eqd_killed
    eqd_stopped
    control_thread_stall
    controller_faults
    hostile_modbus
    hostile_modbus_unit_id
    control_socket
    state
    reload)
foreach(t IN LISTS EQD_FAULT_TESTS)
  add_test(NAME faults.${t}
           COMMAND /usr/bin/python3 -B ${CMAKE_CURRENT_SOURCE_DIR}/faults/${t}_test.py
                   --eqd $<TARGET_FILE:eqd> --eqsim $<TARGET_FILE:eqsim> --eqctl $<TARGET_FILE:eqctl>
                   --source ${PROJECT_SOURCE_DIR})
  set_tests_properties(faults.${t} PROPERTIES LABELS "faults" TIMEOUT 120 SKIP_RETURN_CODE 77)
endforeach()
