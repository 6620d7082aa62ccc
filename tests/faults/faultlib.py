"""Shared helpers of the fault catalogue's tests (tests/faults/*_test.py, CTest label `faults`).

Each test runs the real binaries on loopback: eqsim (simulated controllers), eqd, eqctl, and where
needed the hostile Modbus server or the logging proxy (hostile_modbus.py). A Rig owns a scratch
directory and every process it starts; it kills them all when the test ends, however it ends.
Controllers' registers are read with a small Modbus TCP client of its own (eqsim serves any number
of clients), not through eqd.

Usage in a test: rig = Rig("name"); ... rig.step("..."); rig.fail("...") / rig.check(cond, "...");
rig.passed(). Run by CTest as: /usr/bin/python3 TEST --eqd E --eqsim S --eqctl C --source DIR.
Python 3 standard library only.
"""
import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
HOSTILE = os.path.join(HERE, "hostile_modbus.py")
PYTHON = "/usr/bin/python3"

# eqd Modbus profile (docs/modbus-profile.md)
STATUS_BASE, STATUS_STRIDE = 100, 12
COMMAND_BASE, COMMAND_STRIDE = 100, 8


class Failed(Exception):
    pass


class Skipped(Exception):
    pass


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eqd", required=True)
    ap.add_argument("--eqsim", required=True)
    ap.add_argument("--eqctl", required=True)
    ap.add_argument("--source", required=True, help="the eqd source tree")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    return ap.parse_args()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pair():
    """A base port B with B and B+1 free now (for eqsim --base-port, to restart on the same ports)."""
    for _ in range(50):
        base = free_port()
        if base >= 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", base))
                b.bind(("127.0.0.1", base + 1))
            return base
        except OSError:
            continue
    raise Failed("no two consecutive free ports")


class ModbusClient:
    """A minimal Modbus TCP client (one connection, one request in flight)."""

    def __init__(self, port, unit=1, host="127.0.0.1", timeout_s=1.0):
        self.addr, self.unit, self.timeout_s = (host, port), unit, timeout_s
        self.sock = None
        self.tid = 0

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def _request(self, pdu):
        for attempt in (0, 1):  # one reconnect: the server may have been restarted
            try:
                if self.sock is None:
                    self.sock = socket.create_connection(self.addr, timeout=self.timeout_s)
                self.tid = (self.tid + 1) & 0xFFFF
                self.sock.sendall(struct.pack(">HHHB", self.tid, 0, len(pdu) + 1, self.unit) + pdu)
                head = self._recv(7)
                tid, proto, length, unit = struct.unpack(">HHHB", head)
                body = self._recv(length - 1)
                if tid != self.tid or proto != 0 or unit != self.unit:
                    raise OSError(f"mismatched reply (tid {tid}, protocol {proto}, unit {unit})")
                if body[0] & 0x80:
                    raise OSError(f"exception {body[1]:#x}")
                return body
            except OSError:
                self.close()
                if attempt:
                    raise
        raise OSError("unreachable")

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise OSError("connection closed")
            buf += chunk
        return buf

    def read(self, fc, addr, count):
        body = self._request(struct.pack(">BHH", fc, addr, count))
        return list(struct.unpack(f">{count}H", body[2:2 + 2 * count]))

    def read_input(self, addr, count):
        return self.read(0x04, addr, count)

    def read_holding(self, addr, count):
        return self.read(0x03, addr, count)


def f32(hi, lo):
    return struct.unpack(">f", struct.pack(">HH", hi, lo))[0]


def channel_regs(client, k):
    """Channel k (0-based) of an eqd-profile controller as the controller itself reports it."""
    st = client.read_input(STATUS_BASE + STATUS_STRIDE * k, 11)
    cmd = client.read_holding(COMMAND_BASE + COMMAND_STRIDE * k, 5)
    return {"voltage_V": f32(st[0], st[1]), "power_W": f32(st[4], st[5]), "state": st[6],
            "eq_flag": st[8], "cmd_enable": cmd[0], "cmd_setpoint_W": f32(cmd[1], cmd[2]),
            "cmd_lease_ms": (cmd[3] << 16) | cmd[4]}


class Proc:
    def __init__(self, argv, log_path, **kw):
        self.argv, self.log_path = argv, log_path
        self.log_file = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  **kw)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout_s):
        try:
            return self.p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGCONT)  # a stopped process dies on SIGKILL too; resume anyway
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.wait(5)

    def stop(self, timeout_s=10):
        """SIGTERM, then SIGKILL after timeout_s; returns the exit code."""
        self.signal(signal.SIGTERM)
        rc = self.wait(timeout_s)
        if rc is None:
            self.kill()
        return rc

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Rig:
    """Scratch directory, processes and checks of one fault test."""

    def __init__(self, name):
        self.args = parse_args()
        self.name = name
        self.t0 = time.monotonic()
        self.work = tempfile.mkdtemp(prefix=f"eqd-faults-{name}-")
        os.chmod(self.work, 0o755)
        self.procs = []
        self.failures = []
        self.sock = os.path.join(self.work, "run", "eqd.sock")
        self.state = os.path.join(self.work, "state")
        self.config = os.path.join(self.work, "eqd.yaml")
        self.report = os.path.join(self.work, "report.json")
        self.eqsim = None
        self.eqd = None
        self.eqd_count = 0
        self.metrics_port = None
        atexit.register(self.cleanup)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))  # CTest's timeout: clean up on the way out

    # -- reporting ------------------------------------------------------------------------------
    def elapsed(self):
        return time.monotonic() - self.t0

    def step(self, msg):
        print(f"[{self.elapsed():6.1f} s] {msg}", flush=True)

    def show_logs(self):
        for p in self.procs:
            try:
                lines = p.log().splitlines()[-30:]
            except OSError:
                continue
            print(f"--- {p.log_path} (last {len(lines)} lines)")
            print("\n".join(lines))

    def fail(self, msg):
        """Stop the test here."""
        raise Failed(msg)

    def skip(self, msg):
        """End the test as skipped (CTest SKIP_RETURN_CODE 77) unless a check already failed."""
        raise Skipped(msg)

    def check(self, cond, msg):
        """Record a failure and go on (the test fails at the end)."""
        if not cond:
            self.failures.append(msg)
            print(f"[{self.elapsed():6.1f} s] CHECK FAILED: {msg}", flush=True)
        return cond

    def run(self, body):
        """Run body(self); exit 0 when every check held, 1 otherwise, 77 (skipped) after skip()."""
        try:
            body(self)
        except Skipped as e:
            if not self.failures:
                print(f"[{self.elapsed():6.1f} s] SKIPPED: {e}", flush=True)
                sys.exit(77)
        except Failed as e:
            self.failures.append(str(e))
            print(f"[{self.elapsed():6.1f} s] FAIL: {e}", flush=True)
        except Exception as e:  # a bug of the test or an unexpected answer: still show the logs
            traceback.print_exc()
            self.failures.append(f"{type(e).__name__}: {e}")
        if self.failures:
            self.show_logs()
            print(f"FAILED ({len(self.failures)}): " + " | ".join(self.failures), flush=True)
            sys.exit(1)
        print(f"[{self.elapsed():6.1f} s] PASS", flush=True)
        sys.exit(0)

    def cleanup(self):
        for p in reversed(self.procs):
            if p.alive():
                p.signal(signal.SIGCONT)
                p.signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in reversed(self.procs):
            if p.wait(max(0.1, deadline - time.monotonic())) is None:
                p.kill()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            print(f"kept {self.work}")

    # -- waiting --------------------------------------------------------------------------------
    def wait_for(self, timeout_s, what, pred, poll_s=0.1):
        """Poll pred() until it returns a true value (returned) or timeout_s passes (fail)."""
        end = time.monotonic() + timeout_s
        last = None
        while True:
            try:
                last = pred()
            except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
                last = None
                err = e
            else:
                err = None
            if last:
                return last
            if time.monotonic() >= end:
                self.fail(f"{what}: not reached within {timeout_s} s" + (f" (last error: {err})" if err else ""))
            time.sleep(poll_s)

    # -- processes ------------------------------------------------------------------------------
    def spawn(self, argv, log_name, **kw):
        p = Proc(argv, os.path.join(self.work, log_name), **kw)
        self.procs.append(p)
        return p

    def rig_file(self):
        return os.path.join(HERE, "rigs", "faults.yaml")

    def start_eqsim(self, base_port=0, write_config=True, log_name="eqsim.log"):
        """eqsim serving the faults rig; the first call writes eqd.yaml. Waits until it reports."""
        argv = [self.args.eqsim, "--rig", self.rig_file(), "--base-port", str(base_port), "--eqd-tau", "2",
                "--report-file", self.report, "-q"]
        if write_config:
            argv += ["--write-eqd-config", self.config]
        if os.path.exists(self.report):
            os.unlink(self.report)
        self.eqsim = self.spawn(argv, log_name)
        self.wait_for(10, "eqsim ready", lambda: self.eqsim_alive() and os.path.exists(self.config)
                      and self.sim_report() is not None)
        return self.eqsim

    def eqsim_alive(self):
        if not self.eqsim.alive():
            self.fail(f"eqsim exited ({self.eqsim.p.returncode})")
        return True

    def sim_report(self):
        try:
            with open(self.report) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def controller_ports(self):
        """{controller name: port} from the eqd.yaml eqsim wrote."""
        text = open(self.config).read()
        ports = {}
        for m in re.finditer(r"name:\s*(\S+)\s*\n(?:\s+\S.*\n)*?\s+port:\s*(\d+)", text):
            ports[m.group(1)] = int(m.group(2))
        return ports

    def start_eqd(self, sets=(), config=None, wait=True, metrics=False, prefix=(), state_on_command_line=True):
        """eqd on the rig's config, its own socket and state dir; waits until it answers eqctl."""
        self.eqd_count += 1
        argv = list(prefix) + [self.args.eqd, "-c", config or self.config, "--set", f"api.socket={self.sock}",
                               "--set", "control_loop.shutdown_timeout_ms=2000"]
        if state_on_command_line:
            argv += ["--set", f"state_dir={self.state}"]
        if metrics:
            self.metrics_port = free_port()
            argv += ["--set", f"metrics.listen=127.0.0.1:{self.metrics_port}"]
        else:
            argv += ["--set", "metrics.enabled=false"]
        for s in sets:
            argv += ["--set", s]
        self.eqd = self.spawn(argv, f"eqd-{self.eqd_count}.log")
        if wait:
            self.wait_eqd_ready()
        return self.eqd

    def wait_eqd_ready(self, timeout_s=10):
        def ready():
            if not self.eqd.alive():
                self.fail(f"eqd exited at start ({self.eqd.p.returncode})")
            return self.ctl("status")[0] == 0
        self.wait_for(timeout_s, "eqd answers on its socket", ready)

    def ctl(self, *args, timeout_s=10):
        """(rc, stdout, stderr) of eqctl ARGS."""
        try:
            r = subprocess.run([self.args.eqctl, "--socket", self.sock, *args], capture_output=True, text=True,
                               timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return 124, "", f"eqctl {' '.join(args)}: no answer within {timeout_s} s"
        return r.returncode, r.stdout, r.stderr

    def ctl_json(self, *args, timeout_s=10):
        rc, out, err = self.ctl("--json", *args, timeout_s=timeout_s)
        if rc != 0:
            raise OSError(f"eqctl {' '.join(args)}: rc {rc}: {err.strip()}")
        return json.loads(out)

    def channels(self, role=None):
        """{name: row} of eqctl channels (role eq or test; None: every channel)."""
        args = ("channels",) + (("--role", role) if role else ())
        return {c["channel"]: c for c in self.ctl_json(*args)["channels"]}

    def controllers(self):
        return {c["controller"]: c for c in self.ctl_json("controllers")["controllers"]}

    def bus(self, name="main"):
        return next(b for b in self.ctl_json("status")["buses"] if b["bus"] == name)

    def metrics(self):
        """{(name, ((label, value), ...)): value} of eqd's /metrics."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)", line)
            if not m:
                continue
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(3) or "")))
            out[(m.group(1), labels)] = float(m.group(4))
        return out

    def buffers_equalizing(self, client, channels=(0, 1)):
        regs = [channel_regs(client, k) for k in channels]
        return all(r["eq_flag"] == 1 and r["cmd_enable"] == 1 for r in regs) and regs

    def wait_converged(self, timeout_s=30, fraction=0.1):
        """Until the sim's grid meter shows the main bus balanced (|net| < fraction |free|, 2 buffers)."""
        def ok():
            self.eqsim_alive()
            r = self.sim_report()
            b = r["buses"][0]
            return (r["channels_equalizing"] == 2 and abs(b["free_W"]) > 1000
                    and abs(b["net_W"]) < fraction * abs(b["free_W"]) and r)
        return self.wait_for(timeout_s, "main bus balanced by the 2 buffers", ok, poll_s=0.2)

    def eqd_alive(self):
        if not self.eqd.alive():
            self.fail(f"eqd exited ({self.eqd.p.returncode})")
        return True

    # -- the hostile Modbus server ---------------------------------------------------------------
    def start_hostile(self, mode="ok", channels=4, name="hostile"):
        """hostile_modbus.py with a mode file (see set_hostile_mode), added to eqd.yaml as controller
        `name` on a bus of its own (`name`), so that its channels never hold the main bus's law."""
        self.hostile_mode_file = os.path.join(self.work, f"{name}.mode")
        self.set_hostile_mode(mode)
        port_file = os.path.join(self.work, f"{name}.port")
        proc = self.spawn([PYTHON, HOSTILE, "--channels", str(channels), "--mode-file", self.hostile_mode_file,
                           "--port-file", port_file], f"{name}.log")
        port = int(self.wait_for(5, "hostile server listening",
                                 lambda: os.path.exists(port_file) and open(port_file).read()))
        with open(self.config) as f:
            text = f.read()
        text = text.replace("buses:\n", f"buses:\n  - name: {name}\n    tau_s: 2\n    allow_any_tau: true\n", 1)
        text = text.replace("controllers:\n", f"controllers:\n  - name: {name}\n    transport: tcp\n"
                            f"    host: 127.0.0.1\n    port: {port}\n    unit_id: 1\n    channels: {channels}\n"
                            f"    bus: {name}\n", 1)
        with open(self.config, "w") as f:
            f.write(text)
        return proc

    def set_hostile_mode(self, mode):
        tmp = self.hostile_mode_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(mode + "\n")
        os.rename(tmp, self.hostile_mode_file)

    def controller_errors(self, controller):
        """{kind: count} of eqd_controller_errors_total for one controller."""
        return {dict(labels)["kind"]: v for (name, labels), v in self.metrics().items()
                if name == "eqd_controller_errors_total" and dict(labels).get("controller") == controller}
