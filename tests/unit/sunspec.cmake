# owned by the sim area: the SunSpec device simulator checked against the SunSpec specification with a
# plain libmodbus client (raw registers decoded in the test from the specification's offsets).
add_executable(sunspec_device_test unit/sunspec_device_test.cpp unit/sunspec_faults_test.cpp)
target_link_libraries(sunspec_device_test PRIVATE eqd_sunspec_server PkgConfig::MODBUS eqd_catch_main)
catch_discover_tests(sunspec_device_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:sim:sunspec:tsan" TIMEOUT 30)

# eqsim --sunspec-storage / --sunspec-meter end to end (the real binary, a plain libmodbus client).
add_executable(eqsim_sunspec_test integration/eqsim_sunspec_test.cpp)
target_link_libraries(eqsim_sunspec_test PRIVATE PkgConfig::MODBUS nlohmann_json::nlohmann_json eqd_catch_main)
target_compile_definitions(eqsim_sunspec_test PRIVATE EQSIM_BIN="$<TARGET_FILE:eqsim>" EQD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(eqsim_sunspec_test eqsim)
catch_discover_tests(eqsim_sunspec_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:sim:sunspec" TIMEOUT 60)

# eqd's SunSpec storage transport (io/sunspec) against the simulator: discovery at each base, signs and
# scale factors, commands, revert refresh, release, every device fault, configuration.
add_executable(sunspec_client_test integration/sunspec_client_test.cpp)
target_link_libraries(sunspec_client_test PRIVATE eqd_sunspec eqd_sunspec_server eqd_config PkgConfig::MODBUS eqd_catch_main)
catch_discover_tests(sunspec_client_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:sunspec:tsan" TIMEOUT 60)

# End to end: the real eqd with eqsim's SunSpec storage as its only buffer converges (eqsim's SunSpec
# meter near 0 W) and returns the storage to its own mode on SIGTERM; a storage whose WChaMax is below
# its configured max_charge_W is asked for no more and another buffer carries the rest (eqctl shows it).
add_executable(sunspec_e2e_test integration/sunspec_e2e_test.cpp)
target_link_libraries(sunspec_e2e_test PRIVATE PkgConfig::MODBUS nlohmann_json::nlohmann_json eqd_catch_main)
target_compile_definitions(sunspec_e2e_test PRIVATE EQD_BIN="$<TARGET_FILE:eqd>" EQSIM_BIN="$<TARGET_FILE:eqsim>"
                                                    EQCTL_BIN="$<TARGET_FILE:eqctl>" EQD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(sunspec_e2e_test eqd eqsim eqctl)
catch_discover_tests(sunspec_e2e_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:sunspec" TIMEOUT 90)

# A bus's grid meter (io/meter) against the simulator's SunSpec meter: models 201/203/204 at each base,
# scale factors, sign, not-implemented values, malformed devices, offline, a plain register, the
# disagreement check, and the meter's configuration keys.
add_executable(sunspec_meter_test integration/sunspec_meter_test.cpp)
target_link_libraries(sunspec_meter_test PRIVATE eqd_meter eqd_sunspec_server eqd_config eqd_catch_main)
catch_discover_tests(sunspec_meter_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:sunspec:meter:tsan" TIMEOUT 60)

# End to end: eqd + eqsim's SunSpec meter on the e2e rig: the check agrees; with an unconfigured load
# (--sunspec-meter-offset-W) it disagrees once while control goes on; with meter.trim the buffers cover
# that load (the measured grid power settles near 0 W); an offline meter changes nothing.
add_executable(meter_e2e_test integration/meter_e2e_test.cpp)
target_link_libraries(meter_e2e_test PRIVATE eqd_catch_main)
target_compile_definitions(meter_e2e_test PRIVATE EQD_BIN="$<TARGET_FILE:eqd>" EQSIM_BIN="$<TARGET_FILE:eqsim>" EQD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(meter_e2e_test eqd eqsim)
catch_discover_tests(meter_e2e_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:meter" TIMEOUT 120)
