#!/bin/bash
# Runs inside the VM (systemd is PID 1, eqd installed from the .deb). Started by vm_test.sh.
set -uo pipefail
t0=$(date +%s.%N)
step() { printf '[%5.1f s] %s\n' "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" "$*"; }
fail() { step "FAIL: $*"; systemctl status --no-pager eqd eqsim 2>&1 | tail -30
         journalctl --no-pager -u eqd -u eqsim | tail -60; exit 1; }
pid_of() { systemctl show -p MainPID --value "$1"; }
wait_active_new_pid() {  # wait_active_new_pid UNIT OLD_PID SECONDS
  local end=$((SECONDS + $3)) p
  while ((SECONDS < end)); do
    p=$(pid_of "$1")
    [ "$(systemctl is-active "$1")" = active ] && [ "$p" != 0 ] && [ "$p" != "$2" ] && return 0
    sleep 0.2
  done
  return 1
}
systemd-analyze blame --no-pager 2>/dev/null | head -5; systemd-analyze critical-chain --no-pager eqd-vmtest.service 2>/dev/null | tail -8
step "systemd $(systemctl --version | head -1 | cut -d' ' -f2) is PID 1: $(cat /proc/1/comm)"
systemctl is-enabled eqd >/dev/null 2>&1 && fail "eqd.service is enabled after install"
id eqd >/dev/null || fail "no eqd user"

# eqd configured for the simulated rig (fixed ports 15020..15023), written by eqsim itself.
# (Emulated CPU: eqsim may need many seconds to load the rig; it goes on serving after writing.)
eqsim --rig /usr/share/eqd/rigs/demo.yaml --base-port 25020 --write-eqd-config /tmp/eqd.yaml --quiet \
  >/tmp/eqsim-gen.log 2>&1 &
gen=$!
for _ in $(seq 600); do [ -s /tmp/eqd.yaml ] && break; kill -0 $gen 2>/dev/null || break; sleep 0.1; done
kill $gen 2>/dev/null; wait $gen 2>/dev/null
[ -s /tmp/eqd.yaml ] || { cat /tmp/eqsim-gen.log; fail "eqsim wrote no config"; }
sed 's/port: 2502\([0-3]\)/port: 1502\1/' /tmp/eqd.yaml >/etc/eqd/eqd.yaml
eqd --check-config /etc/eqd/eqd.yaml || fail "generated config invalid"

systemctl start eqsim.service || fail "eqsim.service did not start"
systemctl start eqd.service || fail "eqd.service did not start (Type=notify: READY=1 never came?)"
step "eqd.service active after start (Type=notify): $(systemctl is-active eqd)"
systemctl show -p StatusText --value eqd | grep -q "controller(s) connected" || fail "no STATUS= text"
step "status: $(systemctl show -p StatusText --value eqd)"
sleep 3
[ "$(systemctl show -p StatusText --value eqd)" != "" ] || fail "status text vanished"
u=$(stat -c %U /run/eqd/eqd.sock 2>/dev/null); [ "$u" = eqd ] || fail "api socket owner '$u'"
eqctl status >/dev/null 2>&1 && step "eqctl status over /run/eqd/eqd.sock: ok" || step "note: eqctl status failed"
journalctl --no-pager -u eqd -o verbose | grep -q "SYSLOG_IDENTIFIER=eqd" || fail "eqd's records are not in the journal"

# kill -9: Restart=on-failure brings it back.
old=$(pid_of eqd); kill -9 "$old"
wait_active_new_pid eqd "$old" 30 || fail "not restarted after kill -9"
step "kill -9 $old -> restarted as $(pid_of eqd)"

# Stall only the control thread: the main thread lives on but stops feeding the watchdog
# (WatchdogSec=10s): systemd kills eqd (SIGABRT) and restarts it.
old=$(pid_of eqd)
# 14 s > WatchdogSec: the stall must end by itself, as a thread held in ptrace-stop would otherwise
# also hold up the SIGABRT (a real hung thread does not).
/usr/bin/python3 /vmtest/stall_thread.py "$old" eqd-control 14 >/tmp/stall.log 2>&1 &
stall=$!
sleep 1; cat /tmp/stall.log
wait_active_new_pid eqd "$old" 40 || fail "watchdog did not restart eqd with a stalled control thread"
kill "$stall" 2>/dev/null; wait "$stall" 2>/dev/null
journalctl --no-pager -u eqd | grep -qi "watchdog timeout" || fail "no watchdog timeout in the journal"
step "control thread stalled -> watchdog timeout -> restarted as $(pid_of eqd)"

# A reload with a broken file: ExecReload's --check-config refuses it, eqd keeps running with the old
# configuration (same PID, still active), the refusal is in the journal.
old=$(pid_of eqd); cp /etc/eqd/eqd.yaml /tmp/good.yaml
echo "bogus_key: 1" >>/etc/eqd/eqd.yaml
systemctl reload eqd && fail "reload with a broken config succeeded"
sleep 1
[ "$(pid_of eqd)" = "$old" ] && [ "$(systemctl is-active eqd)" = active ] || fail "eqd not kept after a refused reload"
journalctl --no-pager -u eqd | grep -q "bogus_key" || fail "refusal not in the journal"
step "bad config: systemctl reload refused ($(journalctl --no-pager -u eqd -o cat | grep bogus_key | tail -1))"
# The same file sent straight to eqd (SIGHUP, bypassing ExecReload): eqd refuses it itself.
kill -HUP "$old"; sleep 2
journalctl --no-pager -u eqd -o cat | grep -q "reload refused" || fail "eqd did not log its refusal"
[ "$(pid_of eqd)" = "$old" ] && [ "$(systemctl is-active eqd)" = active ] || fail "eqd died on a bad SIGHUP"
step "SIGHUP with the bad file: eqd refused it and kept running"
cp /tmp/good.yaml /etc/eqd/eqd.yaml
systemctl reload eqd || fail "reload with a good config failed"
sleep 1
[ "$(pid_of eqd)" = "$old" ] || fail "good reload changed the PID"
step "good reload: same PID, $(systemctl is-active eqd)"

# Structured fields: take the controllers away; the poller errors carry CONTROLLER= (rate-limited).
systemctl stop eqsim; sleep 4
n=$(journalctl --no-pager -u eqd CONTROLLER=cab1 -o cat | wc -l)
((n >= 1)) || fail "no journal record with CONTROLLER=cab1"
step "journal CONTROLLER=cab1: $n record(s) in 4 s of connection errors: $(journalctl --no-pager -u eqd CONTROLLER=cab1 -o cat | head -1)"
systemctl start eqsim

systemctl stop eqd || fail "stop failed"
[ "$(systemctl show -p Result --value eqd)" = success ] || fail "stop result $(systemctl show -p Result --value eqd)"
step "stopped cleanly (Result=success)"
step "PASS"
