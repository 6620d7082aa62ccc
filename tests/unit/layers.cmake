# The layers (docs/architecture.md, "Layers"): no #include runs back up core <- io <- config <-
# discovery <- daemon <- (control, metrics) <- app. The self-test proves on temporary trees that the
# check fails on such an include (and passes without one).
add_test(NAME layers_check COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/check_layers.sh ${PROJECT_SOURCE_DIR})
add_test(NAME layers_check_self_test COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/check_layers.sh --self-test)
set_tests_properties(layers_check layers_check_self_test PROPERTIES LABELS "unit;layers" TIMEOUT 60)
# Code size (issue #13): no function over 80 lines, no file over 600 in src/ but the listed exceptions
# (scripts/size_exceptions.txt, a list that only shrinks); the self-test proves the ratchet on a temporary tree.
add_test(NAME sizes_check COMMAND /usr/bin/python3 -B ${PROJECT_SOURCE_DIR}/scripts/check_sizes.py ${PROJECT_SOURCE_DIR})
add_test(NAME sizes_check_self_test COMMAND /usr/bin/python3 -B ${PROJECT_SOURCE_DIR}/scripts/check_sizes.py --self-test)
set_tests_properties(sizes_check sizes_check_self_test PROPERTIES LABELS "unit;layers" TIMEOUT 60)
# Layout and static checks (issue #13, scripts/check_style.sh): clang-format on every C++ file, clang-tidy
# (house naming, bugprone-*, performance-*) on at most 2 sources the last commit changed, with this build's
# compile_commands.json. Not in sanitizer builds (the same sources, checked once) nor without the tools.
find_program(EQD_CLANG_FORMAT clang-format)
find_program(EQD_CLANG_TIDY clang-tidy)
if(NOT EQD_SANITIZE AND EQD_CLANG_FORMAT AND EQD_CLANG_TIDY)
  # clang-tidy on at most 2 sources of the last commit (20-40 s each for the big ones): CI time; the
  # whole tree with scripts/check_style.sh --all before a release, or --base REV for a branch.
  add_test(NAME style_check COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/check_style.sh --build-dir ${CMAKE_BINARY_DIR}
                                    --max-tidy 2)
  add_test(NAME style_check_self_test COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/check_style.sh --self-test)
  set_tests_properties(style_check style_check_self_test PROPERTIES LABELS "unit;layers;style" TIMEOUT 900)
endif()
