#!/usr/bin/python3
"""Stops ONE thread of a process (not the whole process, as SIGSTOP would) for SECONDS: attaches to
it with PTRACE_SEIZE + PTRACE_INTERRUPT; detaching when this script exits lets it run again.
Used to stall eqd's control thread ('eqd-control') while its main thread goes on.
Usage: stall_thread.py PID THREAD_NAME SECONDS. Exit 0 after the stall, 3 if ptrace is refused."""
import ctypes
import os
import sys
import time

PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_DETACH = 0x4206, 0x4207, 17
pid, name, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
tids = [t for t in os.listdir(f"/proc/{pid}/task")
        if open(f"/proc/{pid}/task/{t}/comm").read().strip() == name]
if len(tids) != 1:
    sys.exit(f"stall_thread: {len(tids)} threads named {name} in {pid}")
tid = int(tids[0])
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0 or libc.ptrace(PTRACE_INTERRUPT, tid, None, None) != 0:
    print(f"stall_thread: ptrace: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    sys.exit(3)
os.waitpid(tid, 0x40000000)  # __WALL: the interrupt stop of a non-leader thread
print(f"stall_thread: thread {tid} ({name}) stopped for {seconds} s", flush=True)
time.sleep(seconds)
libc.ptrace(PTRACE_DETACH, tid, None, None)
