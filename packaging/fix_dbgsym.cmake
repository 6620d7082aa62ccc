# CPack post-build script (CPACK_POST_BUILD_SCRIPTS): repairs the dbgsym package that CMake 3.25's
# CPack writes. Its md5sums lists the staging directory's absolute paths
# (/…/_CPack_Packages/…-dbgsym/usr/lib/debug/…), so `dpkg --verify eqd-dbgsym` and lintian
# (md5sums-lists-nonexistent-file) fail; and it has no /usr/share/doc, where Debian's dbgsym packages
# have a symlink to the main package's directory (copyright, changelog), as dh_strip makes.
# Rebuilt with dpkg-deb: paths made relative, the symlink added; dpkg-deb's default xz makes it
# 19 MB instead of CPack's gzip 29 MB, for about 7 s more.
foreach(_pkg IN LISTS CPACK_PACKAGE_FILES)
  if(NOT _pkg MATCHES "-dbgsym_[^/]*\\.ddeb$")
    continue()
  endif()
  set(_dir "${_pkg}.fix")
  file(REMOVE_RECURSE "${_dir}")
  execute_process(COMMAND dpkg-deb -R "${_pkg}" "${_dir}" COMMAND_ERROR_IS_FATAL ANY)
  file(STRINGS "${_dir}/DEBIAN/md5sums" _lines)
  set(_fixed "")
  foreach(_line IN LISTS _lines)
    string(REGEX REPLACE "^([0-9a-f]+)  .*-dbgsym/(usr/.*)$" "\\1  \\2" _line "${_line}")
    string(APPEND _fixed "${_line}\n")
  endforeach()
  file(WRITE "${_dir}/DEBIAN/md5sums" "${_fixed}")
  string(REGEX REPLACE ".*/([^/_]+)-dbgsym_[^/]*$" "\\1" _main "${_pkg}")
  file(MAKE_DIRECTORY "${_dir}/usr/share/doc")
  file(CREATE_LINK "${_main}" "${_dir}/usr/share/doc/${_main}-dbgsym" SYMBOLIC)
  file(REMOVE "${_pkg}")
  execute_process(COMMAND dpkg-deb --root-owner-group -b "${_dir}" "${_pkg}" OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE_RECURSE "${_dir}")
endforeach()
