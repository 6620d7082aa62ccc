#!/usr/bin/env python3
"""scripts/demo.sh through a pseudo-terminal, as a person sees it (issue #18 item 10).

  demo_pty.py BUILD_DIR

Runs `demo.sh --no-setup --build-dir BUILD_DIR` (no package installation, no build: the binaries of
this build) in a 24x80 and in a 24x200 terminal, presses Ctrl-C after a few seconds, and replays what
it printed on an emulated terminal that keeps its scrollback. Checks, on the lines as they stay on
screen (a row wrapped by the terminal joined to the one before):
  - eqsim's live status line (redrawn in place with CR) never shares a line with anything else: every
    line that holds a part of it is one whole live line (at most "^C" after it), also when the
    terminal is narrower than the line (a wrapped live line makes every redraw a new line);
  - the demo's own lines ("demo: ..."), eqd's closing log lines ("[date] [eqd] ...") and eqsim's
    summary start on a line of their own;
  - each bus's closing line is labelled: "grid exchange N % of what it would have been (M % saved)",
    with N + M = 100;
  - a state.json left in the run directory by an earlier run is not applied (item 11), and eqd logs
    no warning or error during the demo (item 12);
  - the demo exits 0 and leaves no process behind (eqd and eqsim, found by the run directory, a fresh
    temporary one, on their command lines).
Bounded: about 8 s per terminal. Exit 0 on success, 1 with the reasons. Standard library only.
"""
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eqctl_pty import read_for, spawn, wait_exit  # noqa: E402

FAILURES = []
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print("FAIL: " + what, flush=True)
    return ok


class Transcript:
    """A terminal of `cols` columns with unlimited scrollback: CR, LF, erase to end of line (CSI K) and
    printable characters with the deferred wrap of xterm; other escape sequences leave the text alone.
    lines() gives the logical lines: rows the terminal wrapped are joined to the row before."""

    CSI = re.compile(r"\x1b\[([?0-9;]*)([@-~])")

    def __init__(self, cols):
        self.cols = cols
        self.rows = [[]]
        self.soft = [False]  # row i continues row i-1 (the terminal wrapped it)
        self.r = self.c = 0

    def _newline(self, soft):
        self.r += 1
        if self.r == len(self.rows):
            self.rows.append([])
            self.soft.append(soft)
        elif not soft:
            self.soft[self.r] = False

    def feed(self, text):
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b":
                m = self.CSI.match(text, i)
                if m is None:
                    i += 2
                    continue
                if m.group(2) == "K":
                    del self.rows[self.r][self.c:]
                i = m.end()
                continue
            if ch == "\r":
                self.c = 0
            elif ch == "\n":
                self._newline(False)
                self.c = min(self.c, self.cols)
            elif ch >= " ":
                if self.c >= self.cols:
                    self.c = 0
                    self._newline(True)
                row = self.rows[self.r]
                while len(row) < self.c:
                    row.append(" ")
                if self.c < len(row):
                    row[self.c] = ch
                else:
                    row.append(ch)
                self.c += 1
            i += 1

    def lines(self):
        out = []
        for row, soft in zip(self.rows, self.soft):
            if soft and out:
                out[-1] += "".join(row)
            else:
                out.append("".join(row))
        return [line.rstrip() for line in out]


LIVE = re.compile(r"^t= *\d+s( \| [^|]+: without eq +[-+]\d+\.\d\d kW  with eq +[-+]\d+\.\d\d kW  "
                  r"\(buffers +[-+]\d+\.\d\d kW\))*( \| [^|]*)?(\^C)?$")
SUMMARY_BUS = re.compile(r"^  bus (\S+) +grid exchange with equalization .*: grid exchange (\d+) % of what it would "
                         r"have been \((\d+) % saved\)$")


def processes_using(run_dir):
    """The pids whose command line names run_dir."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if run_dir.encode() in f.read():
                    pids.append(int(entry))
        except OSError:
            pass
    return pids


def run_demo(build_dir, rows, cols):
    run_dir = tempfile.mkdtemp(prefix="eqd-demo-pty-")
    what = "%dx%d" % (rows, cols)
    try:
        # Item 11: a state file left by an earlier run (a parameter set, a buffer released) must not
        # change this demo: the demo starts from a clean state unless --keep-state.
        with open(os.path.join(run_dir, "state.json"), "w") as f:
            f.write('{"version":1,"channels":{},"buses":{"main":{"tau_s":19,"target_W":500}}}\n')
        env = dict(os.environ, TERM="xterm")
        pid, fd = spawn(["bash", os.path.join(SOURCE_DIR, "scripts/demo.sh"), "--no-setup", "--build-dir", build_dir,
                         "--run-dir", run_dir], rows, cols, env)
        raw = read_for(fd, 4.5)
        os.write(fd, b"\x03")  # Ctrl-C as typed: SIGINT to the terminal's foreground group (demo.sh)
        raw += read_for(fd, 15)
        rc = wait_exit(pid, 10)
        os.close(fd)
        text = raw.decode("utf-8", "replace")
        screen = Transcript(cols)
        screen.feed(text)
        lines = screen.lines()
        check(rc == 0, "%s: demo exit code %s, expected 0" % (what, rc))
        left = processes_using(run_dir)
        check(not left, "%s: processes left running: %s" % (what, left))
        for p in left:  # ours: started by this run's demo
            os.kill(p, 9)
        live = 0
        for line in lines:
            if "without eq" in line or line.startswith("t="):
                live += 1
                check(LIVE.match(line) is not None,
                      "%s: the live line shares its line with something else: %r" % (what, line))
                continue
            for marker, start in (("demo:", r"^demo: "), ("[eqd]", r"^\[\d{4}-\d\d-\d\d [0-9:.]+\] \[eqd\] "),
                                  ("eqsim:", r"^eqsim: ")):
                if marker in line:
                    check(re.match(start, line) is not None,
                          "%s: %r does not start its line: %r" % (what, marker, line))
        check(live >= 1 and len(set(re.findall(r"t= *(\d+)s \|", text))) >= 3,
              "%s: fewer than 3 live lines drawn in 4.5 s" % what)
        check(any(l.startswith("demo: eqd running") for l in lines), "%s: no 'demo: eqd running' line" % what)
        check(sum(1 for l in lines if re.match(r"^\[.*\] \[eqd\] ", l)) >= 2, "%s: eqd's closing lines missing" % what)
        check("eqsim: summary" in "\n".join(lines), "%s: no eqsim summary" % what)
        buses = {}
        for line in lines:
            m = SUMMARY_BUS.match(line)
            if m:
                buses[m.group(1)] = (int(m.group(2)), int(m.group(3)))
                check(int(m.group(2)) + int(m.group(3)) == 100, "%s: %r: the shares do not add up" % (what, line))
        check(sorted(buses) == ["aux", "main"], "%s: labelled closing lines for %s, expected aux and main" %
              (what, sorted(buses)))
        check(re.search(r"->\s*\d+ ?%", text) is None, "%s: an unlabelled '-> N %%' remains" % what)
        log = ""
        try:
            with open(os.path.join(run_dir, "eqd.log"), errors="replace") as f:
                log = f.read()
        except OSError as e:
            check(False, "%s: no eqd.log in the run directory: %s" % (what, e))
        check("restored runtime parameters" not in log,
              "%s: the demo applied an earlier run's state.json (it must start clean)" % what)
        # Item 12: a first run shows no warning (api.group and everything else configured for the demo).
        warnings = [l for l in log.splitlines() if re.search(r"\[(warning|error|critical)\]", l)]
        check(not warnings, "%s: eqd warned during the demo: %s" % (what, warnings[:3]))
        if FAILURES:
            print("--- %s, as it stays on screen:\n%s\n---" % (what, "\n".join(lines)))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build_dir = os.path.abspath(sys.argv[1])
    run_demo(build_dir, 24, 80)
    run_demo(build_dir, 24, 200)
    if FAILURES:
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
