#!/usr/bin/env bash
# Builds the .deb with CPack and installs it with dpkg into a throwaway root: the host's /usr under a
# private overlay (nothing on the host changes), a fresh /etc and /var. Checks that the postinst
# created the eqd user and /var/lib/eqd, that /etc/eqd/eqd.yaml is a conffile that passes
# `eqd --check-config`, that nothing was enabled, and that remove/purge clean up.
#   package_test.sh BUILD_DIR SOURCE_DIR WORK_DIR            (root; uses unshare --mount)
set -euo pipefail
build=$(cd "$1" && pwd) src=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
if [ "${EQD_IN_NS:-}" != 1 ]; then
  rm -rf "$work" && mkdir -p "$work"
  deb=$(build_deb "$build" "$work")
  echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) kB)"
  dpkg-deb -I "$deb" | sed -n '/Package:/,$p'
  EQD_IN_NS=1 exec unshare --mount --propagation private "$0" "$@" "$deb"
fi
deb=$4
fail() { echo "FAIL: $*" >&2; exit 1; }
root=$work/root
dpkg_root "$root" "$work" "$deb"
grep -v "files list file" "$work/dpkg.log" || true
grep -q '^eqd:' "$root/etc/passwd" || fail "postinst created no eqd user"
grep -q '^eqd:' "$root/etc/group" || fail "postinst created no eqd group"
grep -q '^eqd-admin:' "$root/etc/group" || fail "postinst created no eqd-admin group (api.admin_group)"
ids="$(awk -F: '$1 == "eqd" { print $3 ":" $4 }' "$root/etc/passwd") 750"
[ "$(stat -c '%u:%g %a' "$root/var/lib/eqd")" = "$ids" ] || fail "/var/lib/eqd: $(stat -c '%u:%g %a' "$root/var/lib/eqd"), expected $ids"
grep -qx /etc/eqd/eqd.yaml "$root/var/lib/dpkg/info/eqd.conffiles" || fail "eqd.yaml is not a conffile"
for f in /usr/sbin/eqd /usr/bin/eqsim /usr/bin/eqctl /usr/lib/systemd/system/eqd.service \
         /usr/lib/systemd/system/eqsim.service /usr/lib/sysusers.d/eqd.conf /usr/lib/tmpfiles.d/eqd.conf \
         /usr/share/bash-completion/completions/eqctl /usr/share/doc/eqd/operations.md /usr/share/eqd/rigs/demo.yaml \
         /usr/share/eqd/prometheus/eqd-alerts.yml /usr/share/eqd/prometheus/eqd-alerts.test.yml \
         /usr/share/eqd/prometheus/prometheus.yml /usr/share/eqd/grafana/eqd-dashboard.json \
         /usr/share/eqd/prometheus/consoles/eqd-overview.html /usr/share/eqd/prometheus/consoles/eqd-bus.html; do
  [ -e "$root$f" ] || fail "$f not installed"
done
chroot "$root" /usr/sbin/eqd --check-config /etc/eqd/eqd.yaml || fail "eqd --check-config on the shipped config"
# Nothing enabled or started by surprise.
if find "$root/etc/systemd" -name 'eq*.service' 2>/dev/null | grep -q .; then fail "a unit was enabled"; fi
echo "ok: installed; user, group and /var/lib/eqd created; config valid; nothing enabled"

dpkg --root="$root" -r eqd >"$work/remove.log" 2>&1 || fail "dpkg -r"
[ -e "$root/etc/eqd/eqd.yaml" ] || fail "remove deleted the conffile"
[ ! -e "$root/usr/sbin/eqd" ] || fail "remove left /usr/sbin/eqd"
dpkg --root="$root" -P eqd >>"$work/remove.log" 2>&1 || fail "dpkg -P"
[ ! -e "$root/etc/eqd/eqd.yaml" ] && [ ! -e "$root/var/lib/eqd" ] || fail "purge left config or state"
echo "ok: remove keeps the config, purge removes config and state"
