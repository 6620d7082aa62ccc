#!/usr/bin/env bash
# Offline checks of the shipped unit files on a staged install (DESTDIR), so that ExecStart= paths
# exist: `systemd-analyze verify` must print nothing at all (a misspelled key only warns, rc 0), and
# `systemd-analyze security --offline=true` must rate eqd.service 1.4 or lower (what docs/operations.md
# promises) and eqsim.service 2.0 or lower.
# Also checks the checker: a unit with a misspelled key must be caught.
#   units_test.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -euo pipefail
build=$1 src=$2 work=$3
declare -A max_exposure=([eqd]=1.4 [eqsim]=2.0)
rm -rf "$work" && mkdir -p "$work"
root=$work/root
DESTDIR=$root cmake --install "$build" --prefix /usr >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
units=$root/usr/lib/systemd/system
# The targets and units the eqd units refer to come from the host's systemd.
cp -rn /usr/lib/systemd/system/. "$units/" 2>/dev/null || true
mkdir -p "$root/bin" && cp /bin/kill "$root/bin/kill"

status=0
verify() {  # verify UNIT... -> output of systemd-analyze verify (empty = clean)
  systemd-analyze verify --man=no --root="$root" "$@" 2>&1 || echo "(rc $?)"
}
out=$(verify "$units/eqd.service" "$units/eqsim.service")
if [ -n "$out" ]; then echo "FAIL: systemd-analyze verify:"; echo "$out"; status=1; else echo "ok: verify clean"; fi

for u in eqd eqsim; do
  line=$(systemd-analyze security --offline=true --root="$root" "$units/$u.service" 2>&1 | grep "Overall exposure level") \
    || { echo "FAIL: no exposure for $u.service"; status=1; continue; }
  score=$(sed -E 's/.*: ([0-9.]+) .*/\1/' <<<"$line")
  if awk -v s="$score" -v m="${max_exposure[$u]}" 'BEGIN { exit !(s <= m) }'; then echo "ok: $u.service exposure $score"
  else echo "FAIL: $u.service exposure $score > ${max_exposure[$u]}"; status=1; fi
done

# The checker itself: a misspelled key and a missing binary must both produce output.
sed 's/^Restart=on-failure/Restrat=on-failure/' "$units/eqd.service" >"$units/eqd-typo.service"
sed 's|/usr/sbin/eqd --config|/usr/sbin/eqd-missing --config|' "$units/eqd.service" >"$units/eqd-missing.service"
for bad in eqd-typo eqd-missing; do
  [ -n "$(verify "$units/$bad.service")" ] || { echo "FAIL: verify did not catch $bad"; status=1; }
done
rm -f "$units/eqd-typo.service" "$units/eqd-missing.service"
exit $status
