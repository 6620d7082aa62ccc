#!/usr/bin/python3
"""Fault: SIGHUP with a broken configuration (docs/operations.md, reload; docs/architecture.md, Reload
and handover).

Promise: each broken file (YAML syntax error, unknown key, a value of the wrong type, an out-of-range
value, an unknown controller in equalization:, an empty file, binary garbage, a missing file, a
directory, a changed state_dir) is refused within 5 s with a log line naming the problem; the running
configuration stays: no controller watchdog trip, the buffers stay in equalization (controller
registers), the bus stays balanced and `eqctl status` stays [ok]. A good file afterwards is applied."""
import os
import shutil
import signal
import time

from faultlib import ModbusClient, Rig

REFUSE_BOUND_S = 5.0


def body(rig):
    rig.step("start eqsim and eqd; wait until the buffers balance the bus")
    rig.start_eqsim()
    cab2 = ModbusClient(rig.controller_ports()["cab2"])
    # state_dir in the file (not on the command line, which would win over the file) so that a reload
    # changing it is seen.
    with open(rig.config) as f:
        good = f.read() + f"state_dir: {rig.state}\n"
    with open(rig.config, "w") as f:
        f.write(good)
    rig.start_eqd(state_on_command_line=False)
    rig.wait_converged()
    trips0 = rig.sim_report()["watchdog_trips"]

    def write(data):
        if os.path.isdir(rig.config):
            os.rmdir(rig.config)
        elif os.path.exists(rig.config):
            os.unlink(rig.config)
        if data is None:
            return
        if data == "DIR":
            os.mkdir(rig.config)
            return
        with open(rig.config, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())

    cases = [
        ("YAML syntax error", good + "buses: [\n", None),
        ("unknown key", good + "bogus_key: 1\n", "bogus_key"),
        ("a value of the wrong type", good.replace("tau_s: 2.000000", "tau_s: fast"), "tau_s"),
        ("an out-of-range value", good + "control_loop:\n  period_ms: -5\n", "period_ms"),
        ("an unknown controller in equalization", good.replace("channel: cab2/2", "channel: cab9/2"), "cab9"),
        ("an empty file", "", None),
        ("binary garbage", bytes((i * 73 + 11) % 256 for i in range(8192)), None),
        ("a missing file", None, None),
        ("a directory", "DIR", None),
        ("a changed state_dir", good.replace(f"state_dir: {rig.state}", f"state_dir: {rig.work}/elsewhere"),
         "state_dir"),
    ]
    for what, data, needle in cases:
        n0 = rig.eqd.log().count("reload refused")
        write(data)
        t = time.monotonic()
        rig.eqd.signal(signal.SIGHUP)
        got = None
        while time.monotonic() < t + REFUSE_BOUND_S:
            log = rig.eqd.log()
            if log.count("reload refused") > n0:
                got = log[log.rfind("reload refused"):].splitlines()[0]
                break
            time.sleep(0.05)
        dt = time.monotonic() - t
        rig.check(got is not None, f"{what}: refused within {REFUSE_BOUND_S} s")
        if needle and got:
            rig.check(needle in got, f"{what}: the refusal names '{needle}': {got}")
        rig.step(f"{what}: refused in {dt * 1000:.0f} ms: {(got or '')[:160]}")
        rig.eqd_alive()
        rc, out, _ = rig.ctl("status")
        rig.check(rc == 0 and "[ok]" in out, f"{what}: status [ok] after the refusal")
        rig.check(rig.buffers_equalizing(cab2), f"{what}: buffers still in equalization (controller registers)")

    write(good)
    trips = rig.sim_report()["watchdog_trips"]
    rig.check(trips == trips0, f"no controller watchdog trip through the refused reloads ({trips0} -> {trips})")
    r = rig.sim_report()["buses"][0]
    rig.check(abs(r["net_W"]) < 0.1 * abs(r["free_W"]), f"still balanced: net {r['net_W']:.0f} W, free {r['free_W']:.0f} W")

    rig.step("a good configuration is applied")
    n0 = rig.eqd.log().count("reload: new configuration active")
    rig.eqd.signal(signal.SIGHUP)
    rig.wait_for(REFUSE_BOUND_S, "the good configuration is applied",
                 lambda: rig.eqd.log().count("reload: new configuration active") > n0)
    rig.wait_converged()
    trips = rig.sim_report()["watchdog_trips"]
    rig.check(trips == trips0, f"no controller watchdog trip through the good reload ({trips0} -> {trips})")


if __name__ == "__main__":
    Rig(os.path.basename(__file__)[:-8]).run(body)
