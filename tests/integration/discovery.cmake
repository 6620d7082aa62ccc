# Discovery end to end with real avahi-daemons and private system D-Buses, inside network/mount/PID
# namespaces the tests create (never the machine's own network namespace). Root, jq, unshare,
# nsenter, ip, avahi-daemon, dbus-daemon. Each test is bounded (< 60 s) and kills what it started.
set(_eqd_disc_args $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd> $<TARGET_FILE:eqctl>
                   ${CMAKE_CURRENT_SOURCE_DIR}/integration/rigs/e2e.yaml)
add_test(NAME discovery_e2e COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/discovery_e2e.sh ${_eqd_disc_args})
add_test(NAME discovery_veth COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/discovery_veth.sh ${_eqd_disc_args})
set_tests_properties(discovery_e2e discovery_veth PROPERTIES LABELS "integration;discovery" TIMEOUT 60 RUN_SERIAL TRUE)
