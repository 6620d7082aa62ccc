# owned by the core area
