#!/usr/bin/python3
"""Faults of eqd's state directory: a corrupt state.json, a corrupt connection cache, a full state
directory, a read-only state directory (docs/control-api.md "Persistence", docs/discovery.md "The
connection cache").

Promises:
- corrupt state.json (truncated, binary, empty, not an object, wrong version, 1 MiB of brackets): eqd
  starts within 5 s, logs that the file is corrupt, moves it aside unchanged (state.json.corrupt-*) and
  runs from the configuration: the configured buffers equalize.
- corrupt controllers-cache.json (same kinds, wrong format): eqd starts, logs it, moves it aside, runs.
- full state directory (a 64 KiB tmpfs filled up): eqd runs; release/assign take effect (read in the
  controller's registers) and answer `"persisted": false` with a `warning`; no temporary file is left
  (the history database's own history.db may be there: eqd runs without a database it cannot write).
- read-only state directory: eqd restores the state it holds and runs; changes take effect with
  `"persisted": false`; a corrupt state.json that cannot be moved aside makes eqd refuse to start
  (exit != 0 within 5 s) with a message naming the file, rather than overwrite it later.
The tmpfs mounts live in a mount namespace of eqd's own (unshare), so nothing is left mounted."""
import glob
import json
import os
import shlex
import signal
import time

from faultlib import ModbusClient, Rig, channel_regs

CORRUPT_STATE = [
    ("truncated JSON", b'{"version":1,"channels":{"cab2/2":'),
    ("4 KiB of binary", bytes((i * 151 + 7) % 256 for i in range(4096))),
    ("an empty file", b""),
    ("JSON null", b"null\n"),
    ("a JSON list", b"[1,2,3]\n"),
    ("an unknown version", b'{"version":99,"channels":{}}\n'),
    ("1 MiB of brackets", b"[" * (1 << 20)),
]
CORRUPT_CACHE = [
    ("binary", bytes((i * 37 + 1) % 256 for i in range(2048))),
    ("a wrong format", b'{"format":"something-else","version":1,"controllers":[]}\n'),
    ("an unknown version", b'{"format":"eqd-controller-cache","version":999,"controllers":[]}\n'),
    ("controllers not a list", b'{"format":"eqd-controller-cache","version":1,"controllers":{"a":1}}\n'),
]
# cab2/2 released, with the limits of its equalization: entry (as eqd itself writes them).
VALID_STATE = {"version": 1, "channels": {"cab2/2": {"assigned": False, "limits": {
    "max_charge_W": 3000.0, "max_discharge_W": 3000.0, "max_charge_A": 60.0, "max_discharge_A": 60.0,
    "v_min_V": 48.0, "v_max_V": 56.0, "hysteresis_V": 0.05}}}}


def body(rig):
    rig.step("start eqsim")
    rig.start_eqsim()
    cab2 = ModbusClient(rig.controller_ports()["cab2"])
    state_file = os.path.join(rig.state, "state.json")
    os.makedirs(rig.state, exist_ok=True)

    def stop_eqd():
        rc = rig.eqd.stop(10)
        rig.check(rc == 0, f"eqd stops with exit 0 on SIGTERM (got {rc})")

    # --- corrupt state.json
    for i, (what, data) in enumerate(CORRUPT_STATE):
        for f in glob.glob(state_file + "*"):
            os.unlink(f)
        with open(state_file, "wb") as f:
            f.write(data)
        t = time.monotonic()
        rig.start_eqd()
        started = time.monotonic() - t
        log = rig.eqd.log()
        aside = glob.glob(state_file + ".corrupt-*")
        rig.check("is corrupt" in log and state_file in log, f"state.json {what}: the log says it is corrupt")
        rig.check(len(aside) == 1 and open(aside[0], "rb").read() == data,
                  f"state.json {what}: moved aside unchanged (found {aside})")
        rig.step(f"state.json {what}: started in {started:.2f} s, moved aside")
        if i == len(CORRUPT_STATE) - 1:
            rig.wait_for(15, "configured buffers equalize after a corrupt state file",
                         lambda: rig.buffers_equalizing(cab2))
            rig.step("configured buffers equalize")
        stop_eqd()

    # --- corrupt connection cache
    cache = os.path.join(rig.state, "controllers-cache.json")
    for f in glob.glob(state_file + "*"):
        os.unlink(f)
    for i, (what, data) in enumerate(CORRUPT_CACHE):
        for f in glob.glob(cache + "*"):
            os.unlink(f)
        with open(cache, "wb") as f:
            f.write(data)
        rig.start_eqd(sets=["discovery.enabled=true", "discovery.publish=false"])
        log = rig.wait_for(5, "cache verdict in the log",
                           lambda: (lambda l: "connection cache" in l and l)(rig.eqd.log()))
        aside = glob.glob(cache + ".corrupt-*")
        rig.check("is unusable" in log and cache in log, f"cache {what}: the log says it is unusable")
        rig.check(len(aside) == 1 and open(aside[0], "rb").read() == data,
                  f"cache {what}: moved aside unchanged (found {aside})")
        rig.step(f"cache {what}: moved aside")
        if i == len(CORRUPT_CACHE) - 1:
            rig.wait_for(15, "configured buffers equalize after a corrupt cache", lambda: rig.buffers_equalizing(cab2))
            rig.step("configured buffers equalize")
        stop_eqd()
    for f in glob.glob(os.path.join(rig.state, "*")):
        os.unlink(f)
    if os.geteuid() != 0:
        rig.skip("the full and read-only state directory cases need root (mount namespaces)")

    def in_namespace(setup):
        """argv prefix running eqd in a mount namespace of its own with a tmpfs on the state dir."""
        script = (f"set -e; mount -t tmpfs -o size=64k,mode=0750 tmpfs {shlex.quote(rig.state)}; {setup}; "
                  'exec "$@"')
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "eqd-in-ns"]

    def change(verb, expect_eq):
        res = rig.ctl_json(verb, "cab2/2")
        rig.check(res.get("persisted") is False and "warning" in res,
                  f"{verb} answers persisted false with a warning: {res}")
        rig.wait_for(10, f"{verb} of cab2/2 takes effect (controller registers)",
                     lambda: (lambda r: r["eq_flag"] == expect_eq)(
                         channel_regs(cab2, 1)))
        return res

    # --- full state directory
    fill = os.path.join(rig.state, "fill")
    rig.start_eqd(prefix=in_namespace(f"dd if=/dev/zero of={shlex.quote(fill)} bs=4k 2>/dev/null || true"))
    rig.wait_for(15, "configured buffers equalize with a full state dir", lambda: rig.buffers_equalizing(cab2))
    res = change("release", 0)
    rig.step(f"full state dir: release took effect, answer: {res.get('warning')}")
    change("assign", 1)
    rig.step("full state dir: assign took effect")
    ns_state = f"/proc/{rig.eqd.pid}/root{rig.state}"
    # history.db is the history database's own file (created before the disk filled up or empty, never a
    # temporary one): eqd runs without it when it cannot be written (docs/operations.md, "Audit log").
    left = sorted(f for f in os.listdir(ns_state) if f != "history.db")
    rig.check(left == ["fill"], f"nothing but the filler (and history.db) left in the full state dir (found {left})")
    rig.eqd_alive()
    stop_eqd()

    # --- read-only state directory
    valid = shlex.quote(json.dumps(VALID_STATE))
    sf = shlex.quote(state_file)
    rig.start_eqd(prefix=in_namespace(f"printf '%s\\n' {valid} > {sf}; mount -o remount,ro {shlex.quote(rig.state)}"))
    rig.wait_for(15, "cab2/1 equalizes, cab2/2 stays released as the read-only state says", lambda: (
        lambda a, b: a["eq_flag"] == 1 and b["eq_flag"] == 0)(*(channel_regs(cab2, k)
                                                              for k in (0, 1))))
    rig.check("restored" in rig.eqd.log() or "cab2/2" in rig.eqd.log(), "the log says what was restored")
    change("assign", 1)
    rig.step("read-only state dir: state restored, assign took effect without being persisted")
    rig.eqd_alive()
    stop_eqd()

    rig.start_eqd(wait=False, prefix=in_namespace(
        f"printf 'not json' > {sf}; mount -o remount,ro {shlex.quote(rig.state)}"))
    rc = rig.eqd.wait(5)
    log = rig.eqd.log()
    rig.check(rc not in (None, 0), f"eqd refuses to start with a corrupt state file it cannot move aside (rc {rc})")
    rig.check("cannot be moved aside" in log and state_file in log, "the refusal names the file")
    rig.step(f"read-only state dir with a corrupt state file: eqd exits {rc}: "
             + (log.strip().splitlines() or ["(no output)"])[-1][:200])


if __name__ == "__main__":
    Rig(os.path.basename(__file__)[:-8]).run(body)
