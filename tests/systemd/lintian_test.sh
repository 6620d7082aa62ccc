#!/usr/bin/env bash
# The .deb as Debian's tools judge it: built with CPack from this build's eqd, eqsim and eqctl, then
#   - `lintian --fail-on error,warning` passes on the package and its dbgsym package, and no
#     hardening-* tag is left even at info level;
#   - a dbgsym package exists, holding the debug file of each binary under its build id, and the
#     binaries in the main package are stripped;
#   - each binary has BIND_NOW, RELRO and fortified (__*_chk) calls;
#   - each man page renders with no warning (`man --warnings`, `groff -ww`) and names every option
#     (and eqctl every subcommand) that the binary's --help lists, so page and --help cannot drift.
#   lintian_test.sh BUILD_DIR SOURCE_DIR WORK_DIR         (no root needed)
set -euo pipefail
build=$(cd "$1" && pwd) work=$3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
command -v lintian >/dev/null || { echo "FAIL: lintian is not installed (scripts/setup.sh --with test)" >&2; exit 1; }

rm -rf "$work" && mkdir -p "$work"
deb=$(build_deb "$build" "$work")
ddeb=$(ls "$work"/out/eqd-dbgsym_*.ddeb 2>/dev/null || true)
echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) kB)${ddeb:+, $(basename "$ddeb") ($(du -k "$ddeb" | cut -f1) kB)}"

# lintian: errors and warnings fail; infos are shown, and the hardening ones fail too (the packaged
# build is meant to be hardened; lintian rates their absence as info only).
lintian_rc=0
lintian --fail-on error,warning --display-info --tag-display-limit 0 "$deb" ${ddeb:+"$ddeb"} >"$work/lintian.log" 2>&1 || lintian_rc=$?
grep -v "^running with root privileges" "$work/lintian.log" || true
[ "$lintian_rc" -eq 0 ] || fail "lintian: exit $lintian_rc (an error or warning above)"
if grep -q "hardening-" "$work/lintian.log"; then fail "lintian: hardening tags (above)"; fi

x=$work/x
dpkg-deb -x "$deb" "$x"
bins=(usr/sbin/eqd usr/bin/eqsim usr/bin/eqctl)
if [ -z "$ddeb" ]; then
  fail "no eqd-dbgsym_*.ddeb next to the .deb (CPACK_DEBIAN_DEBUGINFO_PACKAGE)"
else
  dpkg-deb -x "$ddeb" "$work/dbg"
fi
for b in "${bins[@]}"; do
  f=$x/$b
  [ -x "$f" ] || { fail "$b not in the package"; continue; }
  sections=$(readelf -SW "$f")
  if grep -qE ' \.symtab | \.debug_' <<<"$sections"; then fail "$b is not stripped (.symtab or .debug_* present)"; fi
  id=$(readelf -n "$f" | sed -n 's/.*Build ID: *\([0-9a-f]*\).*/\1/p')
  if [ -z "$id" ]; then fail "$b has no build id"
  elif [ -n "$ddeb" ]; then
    dbg=$work/dbg/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
    if [ ! -f "$dbg" ]; then fail "$b: no ${dbg#"$work"/dbg/} in the dbgsym package"
    elif ! grep -q ' \.debug_info ' <<<"$(readelf -SW "$dbg" 2>/dev/null)"; then  # (its .interp is empty: readelf says so)
      fail "$b: its .debug file has no .debug_info"
    fi
  fi
  # (Into variables first: `readelf | grep -q` under pipefail fails when grep quits early.)
  dynamic=$(readelf -dW "$f") segments=$(readelf -lW "$f") dynsyms=$(readelf --dyn-syms -W "$f")
  grep -qE 'BIND_NOW|FLAGS.*\bNOW\b' <<<"$dynamic" || fail "$b: not linked with -z now"
  grep -q GNU_RELRO <<<"$segments" || fail "$b: no RELRO segment"
  grep -qE ' __[a-z_]+_chk@' <<<"$dynsyms" || fail "$b: no fortified (__*_chk) call: built without _FORTIFY_SOURCE?"
  grep -q ' __stack_chk_fail@' <<<"$dynsyms" || fail "$b: no stack protector"
  echo "$b: $(du -k "$f" | cut -f1) kB, build id ${id:-none}"
done

# Man pages: rendered without warnings, and naming every --long option of --help.
# page_covers PAGE HELP_TEXT WHAT: every --option (and listed subcommand) in HELP_TEXT appears in PAGE.
page_covers() {
  local page=$1 help=$2 what=$3 src opt sub
  src=$(zcat "$page" | sed 's/\\-/-/g; s/\\f[BIRP]//g')
  for opt in $(grep -oE -- '--[a-zA-Z][a-zA-Z0-9-]*' <<<"$help" | sort -u); do
    grep -qF -- "$opt" <<<"$src" || fail "$(basename "$page"): $what lists $opt, the page does not"
  done
  for sub in $(sed -n '/^Subcommands:/,/^$/p' <<<"$help" | awk 'NR > 1 && NF { print $1 }'); do
    grep -qE -- "^\.(SS|TP|B|BI|BR)? *\"?$sub\b|^$sub\b|\"$sub\b| $sub " <<<"$src" ||
      fail "$(basename "$page"): $what lists subcommand $sub, the page does not"
  done
  # (eqctl set lists its run-time parameters under "Parameters:", as NAME (UNIT): ...)
  for sub in $(sed -n '/^Parameters:/,/^$/p' <<<"$help" | awk 'NR > 1 && NF { print $1 }'); do
    grep -qE -- "\b$sub\b" <<<"$src" || fail "$(basename "$page"): $what lists parameter $sub, the page does not"
  done
}
declare -A page=([usr/sbin/eqd]=usr/share/man/man8/eqd.8.gz [usr/bin/eqsim]=usr/share/man/man1/eqsim.1.gz
                 [usr/bin/eqctl]=usr/share/man/man1/eqctl.1.gz)
for b in "${bins[@]}"; do
  p=$x/${page[$b]}
  [ -f "$p" ] || { fail "${page[$b]} not in the package"; continue; }
  warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$p" 2>&1 >/dev/null || echo "man exited $?")
  [ -z "$warn" ] || fail "${page[$b]}: man --warnings: $warn"
  warn=$(zcat "$p" | groff -ww -z -man 2>&1 || echo "groff exited $?")
  [ -z "$warn" ] || fail "${page[$b]}: groff -ww: $warn"
  help=$("$x/$b" --help 2>&1) || fail "$b --help exited non-zero"
  page_covers "$p" "$help" "$(basename "$b") --help"
done
# eqctl's subcommands have options of their own (and controllers has subcommands).
[ -f "$x/usr/share/man/man1/eqctl.1.gz" ] && for sub in $(sed -n '/^Subcommands:/,/^$/p' <<<"$("$x/usr/bin/eqctl" --help)" | awk 'NR > 1 && NF { print $1 }'); do
  help=$("$x/usr/bin/eqctl" "$sub" --help 2>&1) || fail "eqctl $sub --help exited non-zero"
  page_covers "$x/usr/share/man/man1/eqctl.1.gz" "$help" "eqctl $sub --help"
  for sub2 in $(sed -n '/^Subcommands:/,/^$/p' <<<"$help" | awk 'NR > 1 && NF { print $1 }'); do
    help2=$("$x/usr/bin/eqctl" "$sub" "$sub2" --help 2>&1) || fail "eqctl $sub $sub2 --help exited non-zero"
    page_covers "$x/usr/share/man/man1/eqctl.1.gz" "$help2" "eqctl $sub $sub2 --help"
  done
done

if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed" >&2; exit 1; fi
echo "ok: lintian clean (error, warning, hardening), dbgsym package, stripped and hardened binaries, man pages clean and complete"
