#!/usr/bin/python3
"""Fault: the whole eqd process is stopped (SIGSTOP) for 8 s while it equalizes, then resumed (SIGCONT).
Acceptance test of issue #12 item 2.

Promise: while eqd is stopped, the controllers' heartbeat watchdog takes the buffers to 0 W and out of
equalization (within the heartbeat timeout, 2 s, + 1.5 s); after SIGCONT no command computed before
the stall is sent again: a link never sends or refreshes a command older than its lease and waits for
a fresh one from the control thread. Checked on the wire: a logging proxy (hostile_modbus.py --proxy)
between eqd and cab2 records every write; after the resume, no command write may carry a buffer back
into equalization (enable 1) with the setpoint it had before the stall."""
import json
import os
import signal
import struct
import time

from faultlib import COMMAND_BASE, COMMAND_STRIDE, HOSTILE, PYTHON, ModbusClient, Rig, channel_regs

STALL_S = 8.0
HEARTBEAT_TIMEOUT_S = 2.0
AFTER_RESUME_S = 3.0  # how long the writes after the resume are watched


def command_writes(path):
    """[(t, channel index, enable, setpoint_W)] of command-block writes in the proxy's log."""
    out = []
    with open(path) as f:
        for line in f:
            w = json.loads(line)
            off = w["addr"] - COMMAND_BASE
            if w["fc"] != 0x10 or off < 0 or off % COMMAND_STRIDE or len(w["values"]) < 3:
                continue
            v = w["values"]
            setpoint = struct.unpack(">f", struct.pack(">HH", v[1], v[2]))[0]
            out.append((w["t"], off // COMMAND_STRIDE, v[0], setpoint))
    return out


def body(rig):
    rig.step("start eqsim, the logging proxy in front of cab2, and eqd; wait until the buffers balance the bus")
    rig.start_eqsim()
    cab2_port = rig.controller_ports()["cab2"]
    cab2 = ModbusClient(cab2_port)
    writes_log = os.path.join(rig.work, "writes.jsonl")
    port_file = os.path.join(rig.work, "proxy.port")
    rig.spawn([PYTHON, HOSTILE, "--proxy", f"127.0.0.1:{cab2_port}", "--write-log", writes_log,
               "--port-file", port_file], "proxy.log")
    proxy_port = int(rig.wait_for(5, "proxy listening", lambda: os.path.exists(port_file) and open(port_file).read()))
    with open(rig.config) as f:
        text = f.read()
    with open(rig.config, "w") as f:
        f.write(text.replace(f"port: {cab2_port}\n", f"port: {proxy_port}\n"))
    rig.start_eqd()
    rig.wait_converged()
    # Let the setpoints move a little so that the last command before the stall is a recent one.
    time.sleep(1.0)

    t_stop = time.monotonic()
    rig.eqd.signal(signal.SIGSTOP)
    rig.step(f"eqd stopped (SIGSTOP) for {STALL_S} s")
    bound = HEARTBEAT_TIMEOUT_S + 1.5

    def released():
        return all(channel_regs(cab2, k)["eq_flag"] == 0 for k in (0, 1))
    rig.wait_for(bound, f"controller watchdog releases the buffers within {bound} s of the stop", released,
                 poll_s=0.05)
    rig.step(f"buffers out of equalization {time.monotonic() - t_stop:.2f} s after SIGSTOP")
    time.sleep(max(0.0, t_stop + STALL_S - time.monotonic()))
    t_cont = time.monotonic()
    rig.eqd.signal(signal.SIGCONT)
    rig.step("eqd resumed (SIGCONT)")
    time.sleep(AFTER_RESUME_S)
    rig.eqd_alive()

    writes = command_writes(writes_log)
    for k in (0, 1):
        before = [w for w in writes if w[0] < t_stop and w[1] == k]
        during = [w for w in writes if t_stop <= w[0] < t_cont and w[1] == k]
        after = [w for w in writes if w[0] >= t_cont and w[1] == k]
        rig.check(before, f"cab2/{k + 1}: command writes seen before the stall")
        rig.check(not during, f"cab2/{k + 1}: no writes while eqd is stopped (got {len(during)})")
        if not before:
            continue
        _, _, en0, sp0 = before[-1]
        rig.step(f"cab2/{k + 1}: last command before the stall: enable {en0}, setpoint {sp0:.1f} W; "
                 f"{len(after)} command write(s) in the {AFTER_RESUME_S} s after the resume"
                 + "".join(f"\n      +{(t - t_cont) * 1000:.0f} ms: enable {en}, setpoint {sp:.1f} W"
                           for t, _, en, sp in after[:6]))
        rig.check(en0 == 1 and abs(sp0) >= 50, f"cab2/{k + 1}: was equalizing with power before the stall")
        stale = [(t, sp) for t, _, en, sp in after if en == 1 and abs(sp - sp0) < 0.01]
        rig.check(not stale, f"cab2/{k + 1}: the pre-stall command (enable 1, {sp0:.1f} W) was sent again "
                             + ", ".join(f"{(t - t_cont) * 1000:.0f} ms" for t, _ in stale) + " after SIGCONT")

    rig.step("eqd takes the buffers over again")
    rig.wait_converged()


if __name__ == "__main__":
    Rig(os.path.basename(__file__)[:-8]).run(body)
