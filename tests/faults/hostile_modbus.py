#!/usr/bin/python3
"""A hostile Modbus TCP server, and a logging Modbus TCP proxy, for eqd's fault catalogue.

Written from the Modbus specifications (Modbus Application Protocol V1.1b3, Modbus Messaging on
TCP/IP Implementation Guide V1.0b), not from eqd's client: an MBAP header (transaction id, protocol
id 0, length = unit id + PDU, unit id) before each PDU; functions 0x03/0x04 (read holding/input
registers: start, quantity 1..125; reply byte count 2N + values), 0x06 (write single register: echo)
and 0x10 (write multiple registers: start, quantity 1..123, byte count 2N, values; reply start,
quantity); an exception reply is the function code | 0x80 and one exception code.

Server: it looks like a channel controller of the eqd Modbus profile (docs/modbus-profile.md):
device block (input 0..3: profile version 1, channel count, capabilities 0x1F, heartbeat timeout),
per-channel status blocks (input 100 + 12 k: voltage, current, power as f32 ABCD, state, fault code,
eq flag, sample counter), command blocks (holding 100 + 8 k) and the heartbeat (holding 0). In mode
`ok` it serves plausible idle channels (50 V, 0 A, 0 W). Any other mode breaks the replies to reads of
the status block (or of everything, for the modes marked so) and keeps the device block and writes
correct, so that a client gets past its connect checks and meets the fault where samples are read:

  ok           correct replies
  exception    exception replies, cycling through codes 01 02 03 04 05 06 0A 0B and undefined ones
  bad_count    the byte count disagrees with the quantity asked (too few, too many, odd, 0)
  bad_length   the MBAP length counts 3 or 40 bytes more than the PDU, and that many junk bytes follow it
  bad_tid      the reply carries another transaction id (the previous request's, or one far away)
  bad_unit     the reply carries another unit id (the data itself is correct)
  bad_fc       the reply carries another function code
  nan          voltage, current and power are NaN (quiet and signalling)
  inf          voltage, current and power are +inf / -inf
  huge         voltage, current and power are 1e30 / -1e30
  delay        every reply to a status read is sent 2 s late (--delay-s)
  trickle      every reply to a status read is sent a byte at a time, 0.3 s apart (--trickle-s): each byte
               comes within libmodbus's default 0.5 s between bytes, the whole reply takes tens of seconds
  close_mid    half of the reply is sent, then the connection is closed
  silent       requests are read and never answered (the device block too: a client cannot even
               complete its connect checks); the connection stays open
  garbage      random bytes instead of the reply

The mode is --mode, or the content of --mode-file, read again for every request so that a test can
switch modes on a running server (and its connected clients).

Proxy (--proxy HOST:PORT): forwards every frame between its clients and one upstream server and
appends each write request (0x06, 0x10) to --write-log as a JSON line
{"t": CLOCK_MONOTONIC s, "unit": id, "fc": code, "addr": start, "values": [u16...]}.

--port 0 picks a free port; the port is printed on stdout as "port N" (and written to --port-file).
--request-log FILE appends every request the server receives as a JSON line.
Runs until SIGTERM/SIGINT. Usage: hostile_modbus.py [--port P] [--channels N] [--mode M | --mode-file F]
       hostile_modbus.py --proxy HOST:PORT --write-log FILE [--port P]
"""
import argparse
import json
import os
import random
import signal
import socket
import socketserver
import struct
import sys
import threading
import time

MODES = ("ok", "exception", "bad_count", "bad_length", "bad_tid", "bad_unit", "bad_fc", "nan", "inf", "huge",
         "delay", "trickle", "close_mid", "silent", "garbage")
# Modes that hit every request, not only reads of the status block.
ALL_REQUEST_MODES = ("silent",)
EXCEPTION_CODES = (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0A, 0x0B, 0x00, 0x07, 0x7F, 0xFF)

STATUS_BASE, STATUS_STRIDE = 100, 12
COMMAND_BASE, COMMAND_STRIDE = 100, 8


def recv_exact(sock, n):
    """n bytes, or None when the peer closed first."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(sock):
    """(transaction id, protocol id, unit id, pdu) of the next MBAP frame, or None at end of stream."""
    head = recv_exact(sock, 7)
    if head is None:
        return None
    tid, proto, length, unit = struct.unpack(">HHHB", head)
    if length < 2 or length > 254:  # unit id + at least a function code; PDU at most 253 bytes
        raise ValueError(f"bad MBAP length {length}")
    pdu = recv_exact(sock, length - 1)
    if pdu is None:
        return None
    return tid, proto, unit, pdu


def frame(tid, unit, pdu, proto=0):
    return struct.pack(">HHHB", tid, proto, len(pdu) + 1, unit) + pdu


def f32_words(x):
    hi, lo = struct.unpack(">HH", struct.pack(">f", x))
    return [hi, lo]


class Image:
    """Register image of a simulated idle controller (eqd profile). Thread-safe."""

    def __init__(self, channels, heartbeat_timeout_ms):
        self.channels = channels
        self.lock = threading.Lock()
        self.input = {0: 1, 1: channels, 2: 0x1F, 3: heartbeat_timeout_ms}
        self.holding = {}
        self.counter = 0

    def status_words(self, value_override=None):
        """Fresh status block words of every channel (the sample counter moves on every call)."""
        with self.lock:
            self.counter = (self.counter + 1) & 0xFFFFFFFF
            counter = self.counter
        words = {}
        for k in range(self.channels):
            base = STATUS_BASE + STATUS_STRIDE * k
            v, i, p = (50.0 + 0.01 * k, 0.0, 0.0) if value_override is None else value_override(k)
            regs = f32_words(v) + f32_words(i) + f32_words(p) + [0, 0, 0, counter >> 16, counter & 0xFFFF, 0]
            for off, w in enumerate(regs):
                words[base + off] = w
        return words

    def read(self, table, start, qty, value_override=None):
        if table == "input":
            status = self.status_words(value_override) if start + qty > STATUS_BASE else {}
            with self.lock:
                return [self.input.get(a, status.get(a, 0)) for a in range(start, start + qty)]
        with self.lock:
            return [self.holding.get(a, 0) for a in range(start, start + qty)]

    def write(self, start, values):
        with self.lock:
            for off, w in enumerate(values):
                self.holding[start + off] = w


def nan_values(k):
    # A quiet NaN through struct, and a signalling NaN's bit pattern for the power.
    return float("nan"), float("nan"), struct.unpack(">f", struct.pack(">I", 0x7F800001))[0]


def value_mode(mode):
    return {"nan": nan_values,
            "inf": lambda k: (float("inf"), float("-inf"), float("inf")),
            "huge": lambda k: (1e30, -1e30, 1e30)}.get(mode)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port, args):
        self.args = args
        self.image = Image(args.channels, args.heartbeat_timeout_ms)
        self.sequence = 0  # cycles variants of a mode across requests
        self.log_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), Handler)

    def mode(self):
        if self.args.mode_file:
            try:
                with open(self.args.mode_file) as f:
                    m = f.read().strip()
                if m in MODES:
                    return m
            except OSError:
                pass
        return self.args.mode

    def log_request(self, tid, unit, pdu, mode):
        head = struct.unpack(">HH", pdu[1:5]) if len(pdu) >= 5 else (None, None)
        line = json.dumps({"t": time.monotonic(), "tid": tid, "unit": unit, "fc": pdu[0], "addr": head[0],
                           "qty": head[1], "mode": mode})
        with self.log_lock:
            with open(self.args.request_log, "a") as f:
                f.write(line + "\n")

    def next_variant(self):
        self.sequence += 1
        return self.sequence


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            try:
                req = read_frame(sock)
            except (ValueError, OSError):
                return  # a frame a server cannot delimit: drop the connection
            if req is None:
                return
            tid, proto, unit, pdu = req
            if proto != 0:
                continue  # not Modbus: no reply (spec: the server discards it)
            mode = srv.mode()
            fc = pdu[0]
            if srv.args.request_log:
                srv.log_request(tid, unit, pdu, mode)
            status_read = fc == 0x04 and len(pdu) >= 5 and sum(struct.unpack(">HH", pdu[1:5])) > STATUS_BASE
            hit = mode in ALL_REQUEST_MODES or (mode != "ok" and status_read)
            if hit and mode == "silent":
                continue
            reply = self.answer(fc, pdu, value_mode(mode) if hit else None)
            out_tid, out_unit = tid, unit
            data = frame(tid, unit, reply)
            if hit:
                v = srv.next_variant()
                if mode == "exception":
                    data = frame(tid, unit, bytes([fc | 0x80, EXCEPTION_CODES[v % len(EXCEPTION_CODES)]]))
                elif mode == "bad_count":
                    n = reply[1]
                    bad = (n - 2, n + 2, n - 1, 0)[v % 4] & 0xFF
                    body = reply[2:] if v % 4 != 1 else reply[2:] + b"\0\0"
                    data = frame(tid, unit, bytes([fc, bad]) + body)
                elif mode == "bad_length":
                    # A client that delimits frames by the PDU alone takes the reply and then meets junk.
                    extra = (3, 40)[v % 2]
                    data = struct.pack(">HHHB", tid, 0, len(reply) + 1 + extra, unit) + reply + os.urandom(extra)
                elif mode == "bad_tid":
                    # Never one the client may send next: after a junk mode left the stream one reply
                    # behind, a late reply carrying the next request's id would be taken for its answer.
                    out_tid = ((tid - 1) & 0xFFFF, tid ^ 0x8000, (tid + 0x1000) & 0xFFFF)[v % 3]
                    data = frame(out_tid, unit, reply)
                elif mode == "bad_unit":
                    out_unit = (unit + 1) & 0xFF
                    data = frame(tid, out_unit, reply)
                elif mode == "bad_fc":
                    data = frame(tid, unit, bytes([(0x03, 0x10, 0x2B)[v % 3]]) + reply[1:])
                elif mode == "delay":
                    time.sleep(srv.args.delay_s)
                elif mode == "trickle":
                    try:
                        for b in data:
                            sock.sendall(bytes([b]))
                            time.sleep(srv.args.trickle_s)
                    except OSError:
                        return
                    continue
                elif mode == "close_mid":
                    try:
                        sock.sendall(data[: max(1, len(data) // 2)])
                    finally:
                        sock.shutdown(socket.SHUT_RDWR)
                    return
                elif mode == "garbage":
                    data = os.urandom(random.randint(1, 300))
            try:
                sock.sendall(data)
            except OSError:
                return

    def answer(self, fc, pdu, override):
        img = self.server.image
        try:
            if fc in (0x03, 0x04):
                start, qty = struct.unpack(">HH", pdu[1:5])
                if not 1 <= qty <= 125 or start + qty > 0x10000:
                    return bytes([fc | 0x80, 0x03])
                words = img.read("input" if fc == 0x04 else "holding", start, qty, override)
                return bytes([fc, 2 * qty]) + struct.pack(f">{qty}H", *words)
            if fc == 0x06:
                addr, value = struct.unpack(">HH", pdu[1:5])
                img.write(addr, [value])
                return pdu[:5]
            if fc == 0x10:
                start, qty, count = struct.unpack(">HHB", pdu[1:6])
                if not 1 <= qty <= 123 or count != 2 * qty or len(pdu) != 6 + count:
                    return bytes([fc | 0x80, 0x03])
                img.write(start, list(struct.unpack(f">{qty}H", pdu[6:6 + count])))
                return pdu[:5]
        except struct.error:
            return bytes([fc | 0x80, 0x03])
        return bytes([(fc | 0x80) & 0xFF, 0x01])


class Proxy(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port, upstream, log_path):
        self.upstream = upstream
        self.log = open(log_path, "a", buffering=1)
        self.log_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), ProxyHandler)

    def record(self, unit, pdu):
        fc = pdu[0]
        try:
            if fc == 0x06:
                addr, value = struct.unpack(">HH", pdu[1:5])
                values = [value]
            elif fc == 0x10:
                addr, qty, count = struct.unpack(">HHB", pdu[1:6])
                values = list(struct.unpack(f">{count // 2}H", pdu[6:6 + count]))
            else:
                return
        except struct.error:
            return
        line = json.dumps({"t": time.monotonic(), "unit": unit, "fc": fc, "addr": addr, "values": values})
        with self.log_lock:
            self.log.write(line + "\n")


class ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self):
        client = self.request
        try:
            up = socket.create_connection(self.server.upstream, timeout=5)
        except OSError:
            return
        up.settimeout(None)
        for s in (client, up):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def pump_back():
            try:
                while True:
                    data = up.recv(65536)
                    if not data:
                        break
                    client.sendall(data)
            except OSError:
                pass
            for s in (client, up):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        back = threading.Thread(target=pump_back, daemon=True)
        back.start()
        try:
            while True:
                req = read_frame(client)
                if req is None:
                    break
                tid, proto, unit, pdu = req
                # Log before forwarding: the entry's time is when the write left the client.
                self.server.record(unit, pdu)
                up.sendall(frame(tid, unit, pdu, proto))
        except (ValueError, OSError):
            pass
        for s in (client, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        back.join(2)
        up.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--heartbeat-timeout-ms", type=int, default=3000)
    ap.add_argument("--mode", choices=MODES, default="ok")
    ap.add_argument("--mode-file")
    ap.add_argument("--delay-s", type=float, default=2.0)
    ap.add_argument("--trickle-s", type=float, default=0.3)
    ap.add_argument("--request-log", help="append every request as a JSON line (tid, unit, fc, addr, qty, mode)")
    ap.add_argument("--proxy", metavar="HOST:PORT")
    ap.add_argument("--write-log")
    args = ap.parse_args()
    if args.proxy:
        if not args.write_log:
            ap.error("--proxy needs --write-log")
        host, _, port = args.proxy.rpartition(":")
        srv = Proxy(args.port, (host, int(port)), args.write_log)
    else:
        if not 1 <= args.channels <= 100:
            ap.error("--channels must be within 1..100")
        srv = Server(args.port, args)
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.rename(args.port_file + ".tmp", args.port_file)
    print(f"port {port}", flush=True)

    def stop(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
