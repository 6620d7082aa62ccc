# owned by the integration area
