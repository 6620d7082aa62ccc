# eqctl + control API end to end with the real binaries (eqsim + eqd + eqctl over a Unix socket and
# loopback Modbus). Needs root (runs eqctl as nobody through setpriv), jq and socat.
add_test(NAME eqctl_e2e
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/eqctl_e2e.sh $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd>
                 $<TARGET_FILE:eqctl> ${PROJECT_SOURCE_DIR}/config/rigs/demo.yaml)
set_tests_properties(eqctl_e2e PROPERTIES LABELS "integration" TIMEOUT 90)
