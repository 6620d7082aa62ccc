#!/usr/bin/python3
"""Fault: a Modbus server that answers with another unit id than the request's (the data itself
correct), beside the healthy eqsim controllers. Acceptance test of issue #12 item 3 (Modbus).

libmodbus's TCP backend does not compare the reply's unit id with the request's, so such replies were
taken as the controller's. Promise: a reply with the wrong unit id is refused and counted as a
protocol error (eqd_controller_errors_total{kind="protocol"}); within 5 s every channel of that
controller is not `ok`; the healthy controllers and the main bus are unaffected."""
import os
import time

from faultlib import Rig

BOUND_S = 5.0


def body(rig):
    rig.step("start eqsim, the hostile server (mode ok) and eqd")
    rig.start_eqsim()
    rig.start_hostile("ok")
    rig.start_eqd(metrics=True)
    rig.wait_converged()

    def hostile_channels():
        return [c for n, c in rig.channels().items() if n.startswith("hostile/")]

    rig.wait_for(10, "the hostile server's channels ok while it answers correctly",
                 lambda: (lambda cs: len(cs) == 4 and all(c["health"] == "ok" for c in cs))(hostile_channels()))
    before = rig.controller_errors("hostile")
    rig.set_hostile_mode("bad_unit")
    t = time.monotonic()
    rig.step("hostile server now answers with unit id 2 to requests for unit 1")
    got = None
    while time.monotonic() < t + BOUND_S:
        errs = rig.controller_errors("hostile")
        cs = hostile_channels()
        if errs.get("protocol", 0) - before.get("protocol", 0) >= 2 and all(c["health"] != "ok" for c in cs):
            got = (errs, cs)
            break
        time.sleep(0.1)
    errs = rig.controller_errors("hostile")
    cs = hostile_channels()
    rig.step(f"after {time.monotonic() - t:.1f} s: protocol errors {before.get('protocol', 0):.0f} -> "
             f"{errs.get('protocol', 0):.0f}; channels " + ", ".join(f"{c['channel']} {c['health']}" for c in cs))
    rig.check(got, f"replies with the wrong unit id refused (protocol errors counted, channels not ok) "
                   f"within {BOUND_S} s")
    rig.check(all(c["health"] == "ok" for n, c in rig.channels().items() if not n.startswith("hostile/")),
              "healthy channels ok")
    r = rig.sim_report()["buses"][0]
    rig.check(abs(r["net_W"]) < 0.1 * abs(r["free_W"]), f"main bus balanced: net {r['net_W']:.0f} W")
    rig.eqd_alive()


if __name__ == "__main__":
    Rig(os.path.basename(__file__)[:-8]).run(body)
