#!/usr/bin/python3
"""Fault: only eqd's control thread (eqd-control) hangs; its link, API and main threads run on.
Acceptance test of issue #12 item 1.

The thread is frozen with ptrace (tests/systemd/stall_thread.py: PTRACE_SEIZE + PTRACE_INTERRUPT) for
8 s. Promise: the links stop the heartbeat and the lease refreshes once the control cycle is late by
more than its bound (at most half the controllers' heartbeat timeout), so the controllers' watchdogs
take the buffers to 0 W and out of equalization within the heartbeat timeout (2 s) + that bound
(1 s) + 1.5 s margin, read in the controllers' registers; `eqctl status` does not say `[ok]` while the
cycle is stalled; once the thread runs again eqd balances the bus again."""
import os
import subprocess
import time

from faultlib import PYTHON, ModbusClient, Rig, channel_regs

FREEZE_S = 8.0
HEARTBEAT_TIMEOUT_S = 2.0
LIVENESS_BOUND_S = 1.0  # half of cab2's heartbeat timeout
MARGIN_S = 1.5


def body(rig):
    stall = os.path.join(rig.args.source, "tests", "systemd", "stall_thread.py")
    rig.step("start eqsim and eqd; wait until the buffers balance the bus")
    rig.start_eqsim()
    cab2 = ModbusClient(rig.controller_ports()["cab2"])
    rig.start_eqd()
    rig.wait_converged()
    rc, out, _ = rig.ctl("status")
    rig.check("[ok]" in out, f"status says [ok] before the freeze: {out[:200]}")

    t0 = time.monotonic()
    freezer = subprocess.Popen([PYTHON, stall, str(rig.eqd.pid), "eqd-control", str(FREEZE_S)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = freezer.stdout.readline()
    if "stopped" not in line:
        freezer.wait(5)
        if freezer.returncode == 3 and os.geteuid() != 0:
            rig.skip(f"ptrace refused without root: {line.strip()}")
        rig.fail(f"could not freeze the control thread (rc {freezer.returncode}): {line.strip()}")
    t_frozen = time.monotonic()
    rig.step(f"control thread frozen ({line.strip()})")

    bound = HEARTBEAT_TIMEOUT_S + LIVENESS_BOUND_S + MARGIN_S
    released_at = None
    last = None
    while time.monotonic() < t_frozen + bound:
        last = [channel_regs(cab2, k) for k in (0, 1)]
        if all(r["eq_flag"] == 0 and r["cmd_setpoint_W"] == 0 for r in last):
            released_at = time.monotonic() - t_frozen
            break
        time.sleep(0.05)
    if released_at is None:
        rig.check(False, f"buffers still in equalization {bound} s into the control thread's freeze: "
                  + ", ".join(f"cab2/{k + 1} eq_flag {r['eq_flag']}, setpoint {r['cmd_setpoint_W']:.0f} W, "
                              f"power {r['power_W']:.0f} W" for k, r in enumerate(last)))
    else:
        rig.step(f"buffers out of equalization at 0 W {released_at:.2f} s into the freeze")

    rc, out, err = rig.ctl("status", timeout_s=5)
    rig.step(f"eqctl status during the freeze (rc {rc}): {out.splitlines()[0] if out else err.strip()}")
    rig.check(rc == 0, f"eqctl status answers while the control thread is frozen (rc {rc}: {err.strip()})")
    rig.check(rc == 0 and "[ok]" not in out, "eqctl status does not say [ok] while the control cycle is stalled")
    rig.check("STALLED" in out, "eqctl status says the control thread is STALLED")
    # A change cannot go through a stalled control thread: refused at once, not after a timeout.
    t_req = time.monotonic()
    rc, out, err = rig.ctl("release", "cab2/1", timeout_s=5)
    took = time.monotonic() - t_req
    rig.step(f"eqctl release during the freeze: rc {rc} in {took:.2f} s: {err.strip()}")
    rig.check(rc == 1 and "(stalled)" in err, f"eqctl release is refused as stalled (rc {rc}: {err.strip()})")
    rig.check(took < 2.0, f"the refusal is immediate (took {took:.2f} s)")
    rig.check("control thread stalled" in rig.eqd.log(), "eqd logs the stall")
    rig.eqd_alive()

    freezer.wait(FREEZE_S + 5)
    rig.step(f"control thread runs again ({time.monotonic() - t0:.1f} s after the freeze began)")
    rig.wait_converged()
    rig.wait_for(5, "eqctl status [ok] again", lambda: "[ok]" in rig.ctl("status")[1])
    rig.check("control thread resumed" in rig.eqd.log(), "eqd logs the end of the stall")
    rig.check("left equalization mode without eqd asking" in rig.eqd.log(),
              "eqd logs the buffers that the controller's watchdog took out of equalization")
    rig.step("balanced again, status [ok]")


if __name__ == "__main__":
    Rig(os.path.basename(__file__)[:-8]).run(body)
