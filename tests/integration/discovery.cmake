# Discovery end to end with real avahi-daemons and private system D-Buses, inside network/mount/PID
# namespaces the tests create (never the machine's own network namespace). Root, jq, unshare,
# nsenter, ip, avahi-daemon, dbus-daemon. Each test is bounded (< 60 s) and kills what it started.
set(_eqd_disc_args $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd> $<TARGET_FILE:eqctl>
                   ${CMAKE_CURRENT_SOURCE_DIR}/integration/rigs/e2e.yaml)
add_test(NAME discovery_e2e COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/discovery_e2e.sh ${_eqd_disc_args})
add_test(NAME discovery_veth COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/discovery_veth.sh ${_eqd_disc_args})
set_tests_properties(discovery_e2e discovery_veth PROPERTIES LABELS "integration;discovery" TIMEOUT 60 RUN_SERIAL TRUE)
# Issue #12 ("Discovery that stays right"): each controller on the bus it announces or is adopted on,
# one of unknown bus in no bus's balance; eqd and avahi-daemon started in either order, avahi-daemon
# restarted under eqd. Same namespaces and bounds as above; also part of the fault catalogue.
set(_eqd_buses_rig ${CMAKE_CURRENT_SOURCE_DIR}/integration/rigs/discovery_buses.yaml)
add_test(NAME discovery_buses COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/discovery_buses.sh
                                      $<TARGET_FILE:eqsim> $<TARGET_FILE:eqd> $<TARGET_FILE:eqctl> ${_eqd_buses_rig})
add_test(NAME discovery_avahi_restart COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/discovery_avahi_restart.sh
                                              ${_eqd_disc_args} ${_eqd_buses_rig})
set_tests_properties(discovery_buses discovery_avahi_restart PROPERTIES LABELS "integration;discovery;faults" TIMEOUT 60
                     RUN_SERIAL TRUE)
