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

# Who answers for the package (Maintainer: field and changelog); lintian rejects an address at localhost.
set(EQD_PACKAGE_MAINTAINER "eqd maintainers <maintainers@users.noreply.h-seed-5112341c.example>"
    CACHE STRING "Maintainer of the Debian package: \"Name <address>\"")

# Man pages (hand-written in docs/man; tests/systemd/lintian_test.sh checks them against --help) and
# the Debian changelog, made at configure time so that `cpack` needs no build step for them;
# compressed with -9n as Debian policy asks (no name or time stamp: reproducible).
set(_eqd_gen ${CMAKE_BINARY_DIR}/packaging)
set(EQD_VERSION ${PROJECT_VERSION})
foreach(_page eqd.8 eqsim.1 eqctl.1)
  configure_file(${PROJECT_SOURCE_DIR}/docs/man/${_page} ${_eqd_gen}/${_page} @ONLY)
  execute_process(COMMAND gzip -9n -c ${_eqd_gen}/${_page} OUTPUT_FILE ${_eqd_gen}/${_page}.gz
                  COMMAND_ERROR_IS_FATAL ANY)
  string(REGEX REPLACE ".*\\." "" _section ${_page})
  install(FILES ${_eqd_gen}/${_page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_section})
endforeach()
# A native package (no Debian revision) keeps its changelog as changelog.gz. The date honours
# SOURCE_DATE_EPOCH.
set(EQD_DEB_VERSION ${PROJECT_VERSION})
set(EQD_DEB_MAINTAINER ${EQD_PACKAGE_MAINTAINER})
string(TIMESTAMP EQD_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(${PROJECT_SOURCE_DIR}/packaging/debian/changelog.in ${_eqd_gen}/changelog @ONLY)
execute_process(COMMAND gzip -9n -c ${_eqd_gen}/changelog OUTPUT_FILE ${_eqd_gen}/changelog.gz
                COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${_eqd_gen}/changelog.gz ${PROJECT_SOURCE_DIR}/packaging/debian/copyright
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME eqd)
set(CPACK_PACKAGE_VENDOR "eqd developers")
set(CPACK_PACKAGE_CONTACT ${EQD_PACKAGE_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "power-equalization daemon for battery cycler rigs")
# The extended description: lines under 80 columns, an empty line between paragraphs (CPack
# writes it as " .").
set(CPACK_PACKAGE_DESCRIPTION "eqd samples every channel of a battery test lab's cyclers (Modbus TCP or
RTU, CAN; controllers may be found by mDNS) and commands the channels
designated as equalization channels (buffer batteries) so that the net
power of each DC bus or grid connection tends to zero: energy that one
channel discharges is absorbed by another instead of going back to the
grid. Actuation is damped so that the buffers do not shake; announced or
learned test programs let eqd act ahead of their steps.

The package contains the daemon eqd (a systemd service, not enabled), the
operator CLI eqctl, the simulated rig eqsim with example rigs, Prometheus
alert rules and a Grafana dashboard.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Strip the binaries (eqd: about 60 MB with debug info, 2.3 MB stripped) and put their debug info
# into eqd-dbgsym_*.ddeb, under /usr/lib/debug/.build-id/ where gdb finds it. Only a build with -g
# (RelWithDebInfo, the default) gives the dbgsym package something to hold.
set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ON)
set(CPACK_POST_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/packaging/fix_dbgsym.cmake)
# adduser: fallback for creating the user where systemd-sysusers is missing (containers).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
