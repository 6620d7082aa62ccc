# The history database (SQLite): schema and migrations, newer schema, corrupt file, retention, the
# bounded queue, round trip, journal fields, concurrent writers (run under TSan: label tsan), SIGKILL;
# the per-minute energy history (minutes from the snapshots, reload, upsert, the recorder's thread);
# backup archives (consistent while writing, round trip, refusals: checksum, newer schema, truncation).
find_package(SQLite3 REQUIRED)
add_executable(history_unit_tests unit/history_store_test.cpp unit/history_energy_test.cpp
                                  unit/history_backup_test.cpp)
target_link_libraries(history_unit_tests PRIVATE eqd_history eqd_catch_main SQLite::SQLite3)
catch_discover_tests(history_unit_tests EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:history:tsan")
