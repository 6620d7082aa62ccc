#!/usr/bin/python3
"""Fault: the whole eqd process is stopped (SIGSTOP) while it equalizes, then resumed (SIGCONT).
Acceptance test of issue #12 item 2.

Promise: while eqd is stopped, the controllers' lease and heartbeat watchdogs take the buffers to 0 W
and out of equalization (within the heartbeat timeout, 2 s, + 1.5 s). After SIGCONT nothing from before
the stall is sent or used: a link never sends or refreshes a command older than its lease, and the
control thread does not command from samples older than the stall. Checked on the wire: a logging proxy
(hostile_modbus.py --proxy) between eqd and cab2 records every write. After each resume, until eqd has
acknowledged that the controller dropped the buffer (a stop, or a re-entry at 0 W, computed from a
status read after the stall), no command write may carry the buffer back into equalization at a power
(enable 1, |setpoint| >= 1 W), and the pre-stall command is never sent again before a new one (later,
the same value can be a new decision: at the headroom limit it hardly moves).

Which thread runs first after SIGCONT (a link whose refresh is due, or the control thread, which then
publishes a command computed from the old samples) is up to the scheduler, so the test stalls eqd
STALLS times, each longer than the lease (shortened to 1 s) and the heartbeat timeout."""
import json
import os
import signal
import struct
import time

from faultlib import COMMAND_BASE, COMMAND_STRIDE, HOSTILE, PYTHON, ModbusClient, Rig, channel_regs

STALLS = 3
STALL_S = 3.0
LEASE_MS = 1000
HEARTBEAT_TIMEOUT_S = 2.0
AFTER_RESUME_S = 1.5  # how long the writes after each resume are watched


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
    rig.step("start eqsim, the logging proxy in front of cab2, and eqd (lease 1 s); wait until the buffers "
             "balance the bus")
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
    rig.start_eqd(sets=[f"buses.main.lease_ms={LEASE_MS}"])
    rig.wait_converged()

    resent = 0
    for n in range(1, STALLS + 1):
        # Start each stall from buffers that equalize with power, so that a resent command is visible.
        rig.wait_for(15, "buffers equalizing with more than 200 W", lambda: all(
            r["eq_flag"] == 1 and r["cmd_setpoint_W"] > 200 for r in (channel_regs(cab2, k) for k in (0, 1))))
        t_stop = time.monotonic()
        rig.eqd.signal(signal.SIGSTOP)
        bound = HEARTBEAT_TIMEOUT_S + 1.5
        rig.wait_for(bound, f"stall {n}: controller watchdog releases the buffers within {bound} s of the stop",
                     lambda: all(channel_regs(cab2, k)["eq_flag"] == 0 for k in (0, 1)), poll_s=0.05)
        t_rel = time.monotonic() - t_stop
        time.sleep(max(0.0, t_stop + STALL_S - time.monotonic()))
        t_cont = time.monotonic()
        rig.eqd.signal(signal.SIGCONT)
        time.sleep(AFTER_RESUME_S)
        rig.eqd_alive()

        writes = command_writes(writes_log)
        for k in (0, 1):
            before = [w for w in writes if w[0] < t_stop and w[1] == k]
            during = [w for w in writes if t_stop <= w[0] < t_cont and w[1] == k]
            after = [w for w in writes if t_cont <= w[0] < t_cont + AFTER_RESUME_S and w[1] == k]
            rig.check(not during, f"stall {n}, cab2/{k + 1}: no writes while eqd is stopped (got {len(during)})")
            if not rig.check(before, f"stall {n}, cab2/{k + 1}: command writes seen before the stall"):
                continue
            _, _, en0, sp0 = before[-1]
            # A resend of the old command comes before any new one. Once eqd has written something else
            # (the 0 W re-entry, a ramp), the same value again is a new decision: with a load larger
            # than the buffers, both the old and the new command sit at the headroom limit, which moves
            # by less than 0.01 W in a few seconds (seen under load: 0 W, 10.5 W, 10.5 W, then 519.1 W
            # against 519.1 W before the stall).
            first_new = next((i for i, (_, _, en, sp) in enumerate(after) if en != 1 or abs(sp - sp0) >= 0.01),
                             len(after))
            stale = [(t, sp) for t, _, en, sp in after[:first_new]]
            # Writes before eqd acknowledges the controller's release (a stop or a 0 W command).
            ack = next((i for i, (_, _, en, sp) in enumerate(after) if en == 0 or sp == 0.0), len(after))
            early = [(t, sp) for t, _, en, sp in after[:ack] if en == 1 and abs(sp) >= 1.0]
            rig.step(f"stall {n}, cab2/{k + 1}: released {t_rel:.2f} s into the stall; last command before it "
                     f"enable {en0}, {sp0:.1f} W; first writes after SIGCONT: "
                     + ", ".join(f"+{(t - t_cont) * 1000:.0f} ms {'on' if en else 'off'} {sp:.1f} W"
                                 for t, _, en, sp in after[:3]))
            rig.check(en0 == 1 and abs(sp0) >= 50, f"stall {n}, cab2/{k + 1}: was equalizing with power before it")
            ok = rig.check(not stale, f"stall {n}, cab2/{k + 1}: the pre-stall command (enable 1, {sp0:.1f} W) "
                                      "was sent again " + ", ".join(f"{(t - t_cont) * 1000:.0f} ms"
                                                                    for t, _ in stale) + " after SIGCONT")
            ok &= rig.check(not early, f"stall {n}, cab2/{k + 1}: re-entered at power from pre-stall data before "
                                       "eqd acknowledged the release: " + ", ".join(
                                           f"+{(t - t_cont) * 1000:.0f} ms {sp:.1f} W" for t, sp in early))
            resent += not ok
    rig.step(f"commands from before the stall sent after {resent} of {2 * STALLS} buffer-stalls")
    rig.step("eqd takes the buffers over again")
    rig.wait_converged()


if __name__ == "__main__":
    Rig(os.path.basename(__file__)[:-8]).run(body)
