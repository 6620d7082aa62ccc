# owned by the sim area: the SunSpec device simulator checked against the SunSpec specification with a
# plain libmodbus client (raw registers decoded in the test from the specification's offsets).
add_executable(sunspec_device_test unit/sunspec_device_test.cpp unit/sunspec_faults_test.cpp)
target_link_libraries(sunspec_device_test PRIVATE eqd_sunspec_server PkgConfig::MODBUS eqd_catch_main)
catch_discover_tests(sunspec_device_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:sim:sunspec:tsan" TIMEOUT 30)
