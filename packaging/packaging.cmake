# Installation layout beyond the binaries (which their own directories install) and the Debian
# package: `cmake --build B --target package` or `cd B && cpack -G DEB`. Included from the top level.
# The package installs and creates the eqd user and directories; it enables and starts nothing
# (docs/operations.md, "Install").
include(GNUInstallDirs)
# `install`/`cpack` must not build every test first (only eqd, eqsim and eqctl are installed, and the
# package test runs on a tree whose tests are still being built): build those three, then package.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

# systemd looks in /usr/lib/systemd/system too (Debian 12 has a merged /usr).
install(FILES ${PROJECT_SOURCE_DIR}/systemd/eqd.service ${PROJECT_SOURCE_DIR}/systemd/eqsim.service
        DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/eqd.sysusers DESTINATION lib/sysusers.d RENAME eqd.conf)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/eqd.tmpfiles DESTINATION lib/tmpfiles.d RENAME eqd.conf)
# The shipped configuration commands nothing by itself: its controllers are RFC 5737 documentation
# addresses that no lab uses, and the service is not enabled. A conffile: upgrades keep local edits.
install(FILES ${PROJECT_SOURCE_DIR}/config/eqd.yaml DESTINATION /etc/eqd)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/config/examples/ DESTINATION ${CMAKE_INSTALL_DATADIR}/eqd/examples)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/config/rigs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/eqd/rigs)
# For the lab's monitoring: the alert rules with their unit tests, an example scrape configuration that
# loads them from the same folder, and the Grafana dashboard (docs/metrics.md).
install(FILES ${PROJECT_SOURCE_DIR}/config/prometheus/prometheus.yml ${PROJECT_SOURCE_DIR}/config/prometheus/eqd-alerts.yml
              ${PROJECT_SOURCE_DIR}/config/prometheus/eqd-alerts.test.yml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/eqd/prometheus)
install(FILES ${PROJECT_SOURCE_DIR}/config/grafana/eqd-dashboard.json DESTINATION ${CMAKE_INSTALL_DATADIR}/eqd/grafana)
# Prometheus console templates (served at /consoles; docs/metrics.md, "Prometheus console templates").
install(FILES ${PROJECT_SOURCE_DIR}/config/prometheus/consoles/eqd-overview.html
              ${PROJECT_SOURCE_DIR}/config/prometheus/consoles/eqd-bus.html
        DESTINATION ${CMAKE_INSTALL_DATADIR}/eqd/prometheus/consoles)
install(FILES ${PROJECT_SOURCE_DIR}/scripts/eqctl-completion.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME eqctl)
install(FILES ${PROJECT_SOURCE_DIR}/scripts/eqctl-completion.zsh
        DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions RENAME _eqctl)
file(GLOB _eqd_docs ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${_eqd_docs} ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} OPTIONAL)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME eqd)
set(CPACK_PACKAGE_VENDOR "eqd developers")
set(CPACK_PACKAGE_CONTACT "eqd developers <eqd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "power-equalization daemon for battery cycler rigs")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# adduser: fallback for creating the user where systemd-sysusers is missing (containers).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
