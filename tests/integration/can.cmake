# owned by the io/can area
# The real AF_CAN path against a Linux kernel's CAN stack, label "vm": each test runs through
# tests/vm/run_in_vm.sh, which boots a throwaway QEMU VM with Debian's generic kernel and vcan0/vcan1
# (kernel package cached under ${CMAKE_BINARY_DIR}/vm-cache on first use). Without qemu or the kernel
# the tests FAIL with a message, unless EQD_SKIP_VM=1 (then skipped, exit 77). With EQD_CAN_IFACE set
# (a lab PC with vcan0) the same tests run directly against that interface, no VM.
set(EQD_RUN_IN_VM ${PROJECT_SOURCE_DIR}/tests/vm/run_in_vm.sh --cache ${CMAKE_BINARY_DIR}/vm-cache
    --share ${PROJECT_SOURCE_DIR} --share ${CMAKE_BINARY_DIR} --)

add_executable(can_kernel_test integration/can_kernel_test.cpp)
target_include_directories(can_kernel_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
target_link_libraries(can_kernel_test PRIVATE eqd_can eqd_can_server eqd_catch_main)
add_test(NAME can_kernel COMMAND ${EQD_RUN_IN_VM} $<TARGET_FILE:can_kernel_test>)

add_test(NAME can_e2e_classic COMMAND ${EQD_RUN_IN_VM} ${PROJECT_SOURCE_DIR}/tests/integration/can_e2e.sh
         $<TARGET_FILE:eqd> $<TARGET_FILE:eqsim> ${PROJECT_SOURCE_DIR}/tests/integration/rigs/e2e.yaml)
# The FD variant of the end-to-end run (eqsim --can-fd) takes as long again under software emulation;
# the FD link path is covered by can_kernel, so it is opt-in: -DEQD_CAN_E2E_FD=ON.
option(EQD_CAN_E2E_FD "also run eqd + eqsim over vcan with the CAN FD profile (VM, ~3 min)" OFF)
set(EQD_CAN_VM_TESTS can_kernel can_e2e_classic)
if(EQD_CAN_E2E_FD)
  add_test(NAME can_e2e_fd COMMAND ${EQD_RUN_IN_VM} ${PROJECT_SOURCE_DIR}/tests/integration/can_e2e.sh
           $<TARGET_FILE:eqd> $<TARGET_FILE:eqsim> ${PROJECT_SOURCE_DIR}/tests/integration/rigs/e2e.yaml --can-fd)
  list(APPEND EQD_CAN_VM_TESTS can_e2e_fd)
endif()
set_tests_properties(${EQD_CAN_VM_TESTS} PROPERTIES LABELS "vm" SKIP_RETURN_CODE 77 TIMEOUT 420)
# Each boots a 1 GiB VM on 2 vCPUs: never two at once on a 2-core machine.
set_tests_properties(${EQD_CAN_VM_TESTS} PROPERTIES RESOURCE_LOCK eqd_vm)
