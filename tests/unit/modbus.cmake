# owned by the modbus area
# Pure codec / planner / map validation tests.
add_executable(modbus_codec_test unit/modbus_codec_test.cpp)
target_link_libraries(modbus_codec_test PRIVATE eqd_modbus eqd_catch_main)
catch_discover_tests(modbus_codec_test PROPERTIES LABELS "unit")
