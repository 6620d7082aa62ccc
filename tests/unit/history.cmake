# The history database (SQLite): schema and migrations, newer schema, corrupt file, retention, the
# bounded queue, round trip, journal fields, concurrent writers (run under TSan: label tsan), SIGKILL;
# the per-minute energy history (minutes from the snapshots, reload, upsert, the recorder's thread);
# report sums (bus filter, shape, v3->v4 migration);
# backup archives (consistent while writing, round trip, refusals: checksum, newer schema, truncation).
find_package(SQLite3 REQUIRED)
add_executable(history_unit_tests unit/history_store_test.cpp unit/history_energy_test.cpp
                                  unit/history_report_test.cpp unit/history_backup_test.cpp)
target_link_libraries(history_unit_tests PRIVATE eqd_history eqd_catch_main SQLite::SQLite3)
catch_discover_tests(history_unit_tests EXTRA_ARGS --warn NoTests PROPERTIES LABELS "unit:history:tsan")

# The history in PostgreSQL (history.url) against a server the test starts itself (initdb into a
# temporary directory as nobody, Unix socket only): round trip, queries, server stopped mid-run and
# restarted. Label postgresql: the normal stage runs it, the sanitizer stages skip it (libpq is not
# instrumented and most of its time is the server's start).
add_executable(history_pg_tests unit/history_pg_test.cpp)
target_link_libraries(history_pg_tests PRIVATE eqd_history eqd_catch_main)
catch_discover_tests(history_pg_tests EXTRA_ARGS --warn NoTests PROPERTIES LABELS "integration:postgresql" TIMEOUT 120)
