# owned by the config area
