# eqsim executable: plant model (eqd_sim) + Modbus servers (eqd_modbus_server). Included from the top
# level after src/ because it needs targets from both sim/ and src/io/modbus/.
add_executable(eqsim ${PROJECT_SOURCE_DIR}/sim/eqsim_main.cpp)
target_link_libraries(eqsim PRIVATE eqd_sim eqd_modbus_server eqd_discovery CLI11::CLI11 nlohmann_json::nlohmann_json)
install(TARGETS eqsim RUNTIME DESTINATION bin)
# Simulated controllers on CAN too (eqsim --can IFACE).
target_link_libraries(eqsim PRIVATE eqd_can_server)
