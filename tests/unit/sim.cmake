# owned by the sim area
