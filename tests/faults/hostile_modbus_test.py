#!/usr/bin/python3
"""Fault: a hostile Modbus server (hostile_modbus.py) beside the healthy eqsim controllers in one eqd
configuration. It first answers correctly (its channels become `ok`: the server speaks the profile),
then goes through its modes, each for a few seconds: exception replies, wrong byte counts, wrong MBAP
lengths, wrong transaction ids, wrong function codes, NaN / inf / 1e30 values, random bytes, a reply cut
in the middle and the connection closed, every reply 2 s late, every reply trickled a byte every 0.3 s,
and never answering.

Promise, for every mode: within 8 s every channel of the hostile controller is not `ok` (offline or
invalid: never fed to the law) and the errors are counted (eqd_controller_errors_total of the mode's
kind; eqctl controllers shows last_error or disconnected); nothing but the server's true 0 W ever
reaches the law (the hostile bus's free power stays 0 W: no NaN, inf, 1e30 or junk);
throughout, the healthy controllers are sampled at rate (achieved poll rate >= 80 % of 10 Hz, every
channel ok), the main bus keeps balancing (grid exchange < 20 % of what it would be without
equalization), no controller watchdog trips, and nothing crashes. After the modes, a correct server
is `ok` again within 10 s (reconnect backoff at most 5 s).

The wrong unit id has its own test (hostile_modbus_unit_id_test.py)."""
import os
import time

from faultlib import ModbusClient, Rig

# mode -> (error kinds of which at least one must grow while the mode runs, how many errors at least)
MODES = [
    ("exception", ("exception",), 2),
    ("bad_count", ("protocol",), 2),
    ("bad_length", ("protocol",), 2),
    ("bad_tid", ("protocol",), 2),
    ("bad_fc", ("protocol",), 2),
    ("nan", ("invalid",), 2),
    ("inf", ("invalid",), 2),
    ("huge", ("invalid",), 2),
    ("garbage", ("protocol",), 2),
    ("close_mid", ("connection",), 2),
    ("delay", ("timeout",), 2),
    # Each byte within libmodbus's 0.5 s between bytes, the whole reply in about 30 s: eqd bounds the
    # whole reply by timeout_ms (before 2026-12-05 the poller's thread waited it out, no error counted).
    ("trickle", ("timeout",), 2),
    # Never answering: the connect checks time out; the retries back off (up to 5 s), so count one.
    ("silent", ("timeout", "connection"), 1),
]
# Replies whose MBAP length announces junk after a correct PDU are refused whole, and the stream stays in
# step: eqd delimits a TCP reply by its MBAP length (since 2026-12-05; libmodbus delimited it by function
# code and byte count, took the reply and left the junk to break the next one: the channels flickered).
DETECT_BOUND_S = 8.0
OBSERVE_S = 1.5
HEALTHY = ("cab1", "cab2")


def energy(rig):
    b = rig.sim_report()["buses"][0]
    return (b["grid_import_J"] + b["grid_export_J"], b["free_import_J"] + b["free_export_J"])


def body(rig):
    rig.step("start eqsim, the hostile server (mode ok) and eqd")
    rig.start_eqsim()
    cab2 = ModbusClient(rig.controller_ports()["cab2"])
    hostile = rig.start_hostile("ok")
    rig.start_eqd(metrics=True)
    rig.wait_converged()

    def hostile_channels():
        return [c for n, c in rig.channels().items() if n.startswith("hostile/")]

    rig.wait_for(10, "the hostile server's channels ok while it answers correctly",
                 lambda: (lambda cs: len(cs) == 4 and all(c["health"] == "ok" for c in cs))(hostile_channels()))
    rig.step("hostile/1..4 ok in mode ok")
    trips0 = rig.sim_report()["watchdog_trips"]
    e0 = energy(rig)
    summary = []

    def healthy_ok():
        rig.eqd_alive()
        # The hostile channels are idle at 0 W: nothing else (NaN, inf, 1e30, junk) may reach the law.
        free = rig.bus("hostile")["free_W"]
        rig.check(free is None or abs(free) < 1.0, f"mode {mode}: free power of bus hostile {free} W (the "
                                                    "server's channels draw 0 W)")
        ctls = rig.controllers()
        chans = rig.channels()
        bad = [n for n, c in chans.items() if not n.startswith("hostile/") and c["health"] != "ok"]
        slow = [f"{n} {ctls[n]['achieved_hz']:.1f} Hz" for n in HEALTHY if ctls[n]["achieved_hz"] < 8.0]
        rig.check(not bad, f"healthy channels ok (not: {bad})")
        rig.check(not slow, f"healthy controllers polled at rate (not: {slow})")
        return ctls

    for mode, kinds, least in MODES:
        before = rig.controller_errors("hostile")
        t = time.monotonic()
        rig.set_hostile_mode(mode)

        def detected():
            errs = rig.controller_errors("hostile")
            grown = {k: errs.get(k, 0) - before.get(k, 0) for k in errs if errs.get(k, 0) > before.get(k, 0)}
            cs = hostile_channels()
            counted = sum(grown.get(k, 0) for k in kinds) >= least
            return counted and all(c["health"] != "ok" for c in cs) and (grown, cs)

        end = time.monotonic() + DETECT_BOUND_S
        got = None
        while time.monotonic() < end and not got:
            got = detected()
            healthy_ok()
            if not got:
                time.sleep(0.1)
        dt = time.monotonic() - t
        if not rig.check(got, f"mode {mode}: hostile channels not ok and {least}+ errors counted "
                              f"({'/'.join(kinds)}) within {DETECT_BOUND_S} s"):
            errs = rig.controller_errors("hostile")
            rig.step(f"mode {mode}: errors now {errs}, before {before}; channels "
                     + ", ".join(f"{c['channel']} {c['health']}" for c in hostile_channels()))
            continue
        grown, cs = got
        obs_end = time.monotonic() + OBSERVE_S
        while time.monotonic() < obs_end:
            ctls = healthy_ok()
            for c in hostile_channels():
                rig.check(c["health"] != "ok", f"mode {mode}: {c['channel']} stays not ok")
            time.sleep(0.25)
        h = ctls["hostile"]
        rig.check(not h["connected"] or h["last_error"], f"mode {mode}: eqctl controllers shows the trouble: {h}")
        healths = sorted({c["health"] for c in cs})
        line = (f"mode {mode:10s}: detected in {dt:.1f} s; errors " + ", ".join(f"{k} +{v:.0f}" for k, v in
                                                                              sorted(grown.items()))
                + f"; channels {'/'.join(healths)}; connected {h['connected']}; last_error '{h['last_error'][:70]}'")
        summary.append(line)
        rig.step(line)

    e1 = energy(rig)
    ratio = (e1[0] - e0[0]) / max(1.0, e1[1] - e0[1])
    rig.step(f"main bus over the hostile modes: grid exchange {ratio * 100:.1f} % of what it would be without eq")
    rig.check(ratio < 0.2, f"main bus kept balancing (ratio {ratio:.2f})")
    trips = rig.sim_report()["watchdog_trips"]
    rig.check(trips == trips0, f"no controller watchdog trip ({trips0} -> {trips})")
    rig.check(rig.buffers_equalizing(cab2), "buffers still in equalization (controller registers)")

    rig.set_hostile_mode("ok")
    t = time.monotonic()
    rig.wait_for(10, "hostile server's channels ok again once it answers correctly",
                 lambda: all(c["health"] == "ok" for c in hostile_channels()))
    rig.step(f"hostile channels ok again {time.monotonic() - t:.1f} s after the server behaves")
    rig.eqd_alive()
    rig.check(hostile.alive(), "the hostile server ran through every mode")
    print("summary:\n  " + "\n  ".join(summary))


if __name__ == "__main__":
    Rig(os.path.basename(__file__)[:-8]).run(body)
