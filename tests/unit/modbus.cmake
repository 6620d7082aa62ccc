# owned by the modbus area
