# owned by the io area
# What every link shares (io/link_thread.hpp): the link's thread, its stop and its pace.
add_executable(io_link_thread_test unit/io_link_thread_test.cpp)
target_link_libraries(io_link_thread_test PRIVATE eqd_io eqd_catch_main)
catch_discover_tests(io_link_thread_test EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:io:tsan" TIMEOUT 120)
