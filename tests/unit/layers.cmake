# The layers (docs/architecture.md, "Layers"): no #include runs back up core <- io <- config <-
# discovery <- daemon <- (control, metrics) <- app. The self-test proves on temporary trees that the
# check fails on such an include (and passes without one).
add_test(NAME layers_check COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/check_layers.sh ${PROJECT_SOURCE_DIR})
add_test(NAME layers_check_self_test COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/check_layers.sh --self-test)
set_tests_properties(layers_check layers_check_self_test PROPERTIES LABELS "unit;layers" TIMEOUT 60)
