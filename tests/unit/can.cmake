# owned by the io/can area
# Codec, signal maps and kernel frame conversion: pure.
add_executable(can_codec_test unit/can_codec_test.cpp)
target_link_libraries(can_codec_test PRIVATE eqd_can eqd_catch_main)
catch_discover_tests(can_codec_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit")

# CanLink's frame path against the simulated controller over a SEQPACKET socketpair carrying
# the kernel's can_frame/canfd_frame (this kernel has no AF_CAN; the VM tests cover the real stack).
add_executable(can_link_test unit/can_link_test.cpp)
target_include_directories(can_link_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
target_link_libraries(can_link_test PRIVATE eqd_can eqd_can_server eqd_catch_main)
catch_discover_tests(can_link_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit" TIMEOUT 60)

# transport: can controllers and can_maps in the YAML configuration (errors with file:line).
add_executable(can_config_test unit/can_config_test.cpp)
target_link_libraries(can_config_test PRIVATE eqd_config eqd_daemon eqd_catch_main)
catch_discover_tests(can_config_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit")
