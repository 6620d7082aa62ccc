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
target_link_libraries(sunspec_client_test PRIVATE eqd_sunspec eqd_sunspec_server eqd_config eqd_catch_main)
catch_discover_tests(sunspec_client_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:sunspec:tsan" TIMEOUT 60)
