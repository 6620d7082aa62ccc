# eqsim executable: plant model (eqd_sim) + Modbus servers (eqd_modbus_server). Included from the top
# level after src/ because it needs targets from both sim/ and src/io/modbus/.

# eqd_rig_backend: the plant behind the servers (ControllerBackend over a sim::Rig), shared by eqsim and
# the tests that run eqd's links against the real plant model.
add_library(eqd_rig_backend STATIC ${PROJECT_SOURCE_DIR}/sim/rig_backend.cpp)
target_include_directories(eqd_rig_backend PUBLIC ${PROJECT_SOURCE_DIR}/sim)
target_link_libraries(eqd_rig_backend PUBLIC eqd_sim eqd_modbus_server)

# eqd_sunspec_server: simulated SunSpec devices (storage, meter) over Modbus TCP, written from the
# SunSpec model definitions; libmodbus and the standard library only (no eqd io code or Modbus profile),
# so that the SunSpec client is tested against an independent reading of the specification.
add_library(eqd_sunspec_server STATIC
  ${PROJECT_SOURCE_DIR}/sim/sunspec_models.cpp
  ${PROJECT_SOURCE_DIR}/sim/sunspec_image.cpp
  ${PROJECT_SOURCE_DIR}/sim/sunspec_behaviour.cpp
  ${PROJECT_SOURCE_DIR}/sim/sunspec_device.cpp
)
target_include_directories(eqd_sunspec_server PUBLIC ${PROJECT_SOURCE_DIR}/sim)
target_link_libraries(eqd_sunspec_server PUBLIC PkgConfig::MODBUS Threads::Threads)

# eqd_bts_server: a Neware-BTS-like server (TCP/XML API), written from the public clients' facts
# (docs/devices.md); plain sockets and the standard library only, no eqd io code.
add_library(eqd_bts_server STATIC ${PROJECT_SOURCE_DIR}/sim/bts_server.cpp)
target_include_directories(eqd_bts_server PUBLIC ${PROJECT_SOURCE_DIR}/sim)
target_link_libraries(eqd_bts_server PUBLIC Threads::Threads)

# Its server sides, one per eqd transport (sim/server_side.hpp): tcp, sunspec, neware, can.
add_executable(eqsim
  ${PROJECT_SOURCE_DIR}/sim/eqsim_main.cpp
  ${PROJECT_SOURCE_DIR}/sim/server_side.cpp
  ${PROJECT_SOURCE_DIR}/sim/serve_modbus_tcp.cpp
  ${PROJECT_SOURCE_DIR}/sim/serve_sunspec.cpp
  ${PROJECT_SOURCE_DIR}/sim/serve_bts.cpp
  ${PROJECT_SOURCE_DIR}/sim/serve_can.cpp)
target_link_libraries(eqsim PRIVATE eqd_rig_backend eqd_sim eqd_modbus_server eqd_discovery CLI11::CLI11 nlohmann_json::nlohmann_json)
install(TARGETS eqsim RUNTIME DESTINATION bin)
# Simulated controllers on CAN too (eqsim --can IFACE).
target_link_libraries(eqsim PRIVATE eqd_can_server)
# SunSpec storage devices and grid meter beside the rig (eqsim --sunspec-storage N, --sunspec-meter).
target_link_libraries(eqsim PRIVATE eqd_sunspec_server)
# A Neware-BTS-like server of the rig's controllers (eqsim --bts).
target_link_libraries(eqsim PRIVATE eqd_bts_server)
