#!/usr/bin/python3
"""Fault: hostile input on eqd's control socket (docs/control-api.md, Framing).

Promise: garbage, binary, NUL bytes, over-long lines (with and without a newline), JSON nested too deep,
invalid UTF-8, wrongly typed fields, a burst of pipelined requests, a client that never reads its
replies, and hundreds of connections opened and closed at once: each gets the documented error
(`malformed`, `bad_request`, `too_large`) or is closed, within 2 s; afterwards eqd answers eqctl at once,
and control never notices (no controller watchdog trip, the buffers stay in equalization, the control
cycles go on)."""
import json
import os
import socket
import time

from faultlib import ModbusClient, Rig

REPLY_BOUND_S = 2.0


def connect(rig):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(REPLY_BOUND_S)
    s.connect(rig.sock)
    return s


def exchange(rig, payload, shut=True, bound_s=REPLY_BOUND_S):
    """Send payload, half-close, read until the server closes or bound_s passes: (lines, closed)."""
    s = connect(rig)
    try:
        s.sendall(payload)
    except OSError:
        pass  # the server may close before it has read everything (too_large)
    if shut:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    buf, closed = b"", False
    end = time.monotonic() + bound_s
    try:
        while time.monotonic() < end:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            buf += chunk
    except socket.timeout:
        pass
    except OSError:  # ECONNRESET: the server closed with our bytes unread (over-long line)
        closed = True
    s.close()
    return [json.loads(l) for l in buf.decode("utf-8", "replace").splitlines() if l.strip()], closed


def codes(lines):
    return [l["error"]["code"] if not l.get("ok") else "ok" for l in lines]


def body(rig):
    rig.step("start eqsim and eqd; wait until the buffers balance the bus")
    rig.start_eqsim()
    cab2 = ModbusClient(rig.controller_ports()["cab2"])
    rig.start_eqd()
    rig.wait_converged()
    trips0 = rig.sim_report()["watchdog_trips"]
    cycles0 = rig.ctl_json("status")["control"]["cycles"]

    def serving(what):
        t = time.monotonic()
        rc, out, err = rig.ctl("status", timeout_s=REPLY_BOUND_S + 1)
        rig.check(rc == 0, f"after {what}: eqctl status rc {rc} ({err.strip()})")
        rig.eqd_alive()
        return time.monotonic() - t

    def case(what, payload, expect, shut=True, must_close=False, bound_s=REPLY_BOUND_S):
        t = time.monotonic()
        lines, closed = exchange(rig, payload, shut, bound_s)
        dt = time.monotonic() - t
        got = codes(lines)
        ok = expect(got)
        rig.check(ok, f"{what}: replies {got[:8]}{'...' if len(got) > 8 else ''}")
        if must_close:
            rig.check(closed, f"{what}: connection closed by the server")
        lat = serving(what)
        rig.step(f"{what}: {len(got)} repl{'y' if len(got) == 1 else 'ies'} {sorted(set(got))}, "
                 f"{'closed' if closed else 'open'}, {dt:.2f} s; eqctl status after it {lat * 1000:.0f} ms")

    case("a garbage line, then a valid request on the same connection",
         b"garbage\n" + b'{"v":1,"id":2,"cmd":"hello"}\n', lambda c: c == ["malformed", "ok"])
    case("a 1 MiB line", b"x" * (1 << 20) + b"\n", lambda c: c == ["too_large"], must_close=True)
    case("200 KiB without a newline, then end of stream", b"{" * 200_000, lambda c: c in ([], ["too_large"]),
         must_close=True)
    case("64 KiB of random binary", os.urandom(65536), lambda c: all(x in ("malformed", "too_large") for x in c),
         must_close=True)
    case("NUL bytes in a line", b'{"v":1,"cmd":"st\x00atus"}\n\x00\x00\x00\n', lambda c: c and all(
        x in ("malformed", "bad_request", "unknown_command") for x in c))
    case("JSON nested 9 deep", b'{"a":' * 9 + b"1" + b"}" * 9 + b"\n", lambda c: c == ["malformed"])
    case("JSON nested 30000 deep", b"[" * 30000 + b"]" * 30000 + b"\n", lambda c: c == ["malformed"])
    case("invalid UTF-8 in a string", b'{"v":1,"cmd":"\xff\xfe\xc3"}\n', lambda c: len(c) == 1 and c[0] != "ok")
    case("wrongly typed fields", b'{"v":"1","id":[1],"cmd":7}\n{"v":1,"id":-5,"cmd":"status"}\n'
         b'{"v":1,"cmd":"release","channel":{"a":1}}\n[1,2,3]\n"status"\n',
         lambda c: len(c) == 5 and "ok" not in c)
    n = 2000
    # A burst is answered whole and in order; its time is throughput (about 1 s for 2000 in an ASan build
    # on a loaded 2-core machine), so it gets 5 s per 1000; the 2 s bound is for eqctl after it.
    case(f"{n} pipelined status requests in one write", b'{"v":1,"cmd":"status"}\n' * n,
         lambda c: len(c) == n and set(c) == {"ok"}, bound_s=5.0 * n / 1000)

    # A client that sends many requests and never reads: the server must not block others on it.
    hog = connect(rig)
    hog.setblocking(False)
    sent = 0
    req = b'{"v":1,"cmd":"channels"}\n' * 100
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        try:
            sent += hog.send(req)
        except BlockingIOError:
            time.sleep(0.01)
    lat = serving("a client that never reads its replies")
    rig.step(f"a client that never reads: {sent // 1024} KiB of requests queued; eqctl status {lat * 1000:.0f} ms")
    rig.check(lat < REPLY_BOUND_S, f"eqctl status took {lat:.2f} s beside a client that never reads")
    hog.close()

    t = time.monotonic()
    for _ in range(300):
        s = connect(rig)
        s.close()
    socks = [connect(rig) for _ in range(30)]
    for s in socks:
        s.sendall(b'{"v":1,"cmd":"hel')
    for s in socks:
        s.close()
    lat = serving("300 connect-close cycles and 30 half requests")
    rig.step(f"300 connect-close cycles and 30 abandoned half requests in {time.monotonic() - t:.2f} s; "
             f"eqctl status {lat * 1000:.0f} ms")

    status = rig.ctl_json("status")
    rig.check(status["control"]["cycles"] > cycles0, "control cycles go on")
    trips = rig.sim_report()["watchdog_trips"]
    rig.check(trips == trips0, f"no controller watchdog trip during the hostile input ({trips0} -> {trips})")
    rig.check(rig.buffers_equalizing(cab2), "the buffers are still in equalization (controller registers)")
    rig.check(status["buses"][0]["status"] == "ok", f"bus status ok (got {status['buses'][0]['status']})")


if __name__ == "__main__":
    Rig(os.path.basename(__file__)[:-8]).run(body)
