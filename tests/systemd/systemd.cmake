# systemd integration, packaging and the VM test (label "systemd"; the VM test also "vm").
add_executable(test_systemd ${CMAKE_CURRENT_LIST_DIR}/systemd_unit_test.cpp)
target_include_directories(test_systemd PRIVATE ${PROJECT_SOURCE_DIR}/src/daemon ${PROJECT_SOURCE_DIR}/src/app)
target_link_libraries(test_systemd PRIVATE eqd_app eqd_catch_main)
catch_discover_tests(test_systemd EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit;systemd")

set(_eqd_sd_dir ${CMAKE_CURRENT_LIST_DIR})
set(_eqd_sd_work ${CMAKE_BINARY_DIR}/systemd-test)

# The unit files: systemd-analyze verify clean (no output at all) and security exposure <= 2.0,
# checked on a staged install (so the paths in ExecStart= exist).
add_test(NAME systemd_units
         COMMAND ${_eqd_sd_dir}/units_test.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${_eqd_sd_work}/units)
set_tests_properties(systemd_units PROPERTIES LABELS "systemd" TIMEOUT 120)

# sd_notify protocol against a stand-in notify socket (READY, WATCHDOG, stall, RELOADING, STOPPING).
add_test(NAME systemd_notify
         COMMAND ${_eqd_sd_dir}/notify_test.sh $<TARGET_FILE:eqd> $<TARGET_FILE:eqsim> ${PROJECT_SOURCE_DIR}
                 ${_eqd_sd_work}/notify)
set_tests_properties(systemd_notify PROPERTIES LABELS "systemd;integration" TIMEOUT 90)

# The .deb: built with CPack, installed into a throwaway root, postinst run, eqd --check-config.
add_test(NAME systemd_package
         COMMAND ${_eqd_sd_dir}/package_test.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${_eqd_sd_work}/package)
set_tests_properties(systemd_package PROPERTIES LABELS "systemd;package" TIMEOUT 600 RUN_SERIAL TRUE)

# The .deb as Debian's tools judge it: lintian clean at error and warning level (and no hardening tag),
# dbgsym package, stripped and hardened binaries, man pages clean and naming every --help option.
# Reuses this build's eqd, eqsim and eqctl. Not in sanitizer builds (they are never packaged); a
# build without hardening or optimization is skipped (the package is built from an optimized one).
if(EQD_SANITIZE STREQUAL "")
  add_test(NAME package_lintian
           COMMAND ${_eqd_sd_dir}/lintian_test.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${_eqd_sd_work}/lintian)
  set_tests_properties(package_lintian PROPERTIES LABELS "package" TIMEOUT 300)
  if(NOT EQD_HARDENING OR NOT CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo|MinSizeRel)$")
    set_tests_properties(package_lintian PROPERTIES DISABLED TRUE)
  endif()
endif()

# The real thing: boots a QEMU VM with systemd as PID 1 and runs eqsim.service + eqd.service.
add_test(NAME systemd_vm
         COMMAND ${_eqd_sd_dir}/vm_test.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${_eqd_sd_work}/vm)
set_tests_properties(systemd_vm PROPERTIES LABELS "systemd;vm" TIMEOUT 900 RUN_SERIAL TRUE)
