#!/usr/bin/python3
"""Fault: eqd is killed with SIGKILL while it equalizes.

Promise: the controllers' heartbeat watchdog takes every buffer to 0 W and out of equalization within
its heartbeat timeout (2 s on cab2) plus the controller's check period, read in the controller's own
registers (eq_flag 0, cmd_enable 0, setpoint 0, then the measured power near 0 W); a new eqd takes
the buffers over again. Bounds: released within 2 s + 1.5 s; measured |power| < 50 W 4 s later."""
import os
import signal
import time

from faultlib import ModbusClient, Rig, channel_regs

HEARTBEAT_TIMEOUT_S = 2.0  # cab2's heartbeat_timeout_ms in rigs/faults.yaml
RELEASE_MARGIN_S = 1.5


def body(rig):
    rig.step("start eqsim and eqd; wait until the buffers balance the bus")
    rig.start_eqsim()
    cab2 = ModbusClient(rig.controller_ports()["cab2"])
    rig.start_eqd()
    rig.wait_converged()
    before = [channel_regs(cab2, k) for k in (0, 1)]
    rig.step("buffers before: " + ", ".join(f"cab2/{k + 1} {r['power_W']:.0f} W (setpoint {r['cmd_setpoint_W']:.0f} W)"
                                            for k, r in enumerate(before)))
    rig.check(all(abs(r["power_W"]) > 100 for r in before), "the buffers carry power before the kill")

    t_kill = time.monotonic()
    rig.eqd.signal(signal.SIGKILL)
    rig.eqd.wait(5)
    rig.step("eqd killed (SIGKILL)")

    def released():
        regs = [channel_regs(cab2, k) for k in (0, 1)]
        return all(r["eq_flag"] == 0 and r["cmd_enable"] == 0 and r["cmd_setpoint_W"] == 0 for r in regs)

    bound = HEARTBEAT_TIMEOUT_S + RELEASE_MARGIN_S
    rig.wait_for(bound, f"buffers out of equalization at 0 W within {bound} s of the kill", released, poll_s=0.02)
    t_rel = time.monotonic() - t_kill
    rig.step(f"both buffers out of equalization, setpoint 0 W, {t_rel:.2f} s after the kill "
             f"(heartbeat timeout {HEARTBEAT_TIMEOUT_S} s)")

    rig.wait_for(4, "measured buffer power below 50 W",
                 lambda: all(abs(channel_regs(cab2, k)["power_W"]) < 50 for k in (0, 1)), poll_s=0.05)
    rig.step(f"measured buffer power below 50 W {time.monotonic() - t_kill:.2f} s after the kill")
    trips = rig.sim_report()["watchdog_trips"]
    rig.check(trips >= 1, f"the release was the heartbeat watchdog's: eqsim counts a trip (got {trips})")

    rig.step("a new eqd takes the buffers over again")
    rig.start_eqd()
    rig.wait_converged()
    rig.step("balanced again")


if __name__ == "__main__":
    Rig(os.path.basename(__file__)[:-8]).run(body)
