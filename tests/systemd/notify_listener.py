#!/usr/bin/python3
"""Stands in for systemd's notify socket: receives sd_notify() datagrams on a Unix socket and
appends each one as 'MONOTONIC_S<TAB>TEXT' (newlines as '|') to a log file, until killed."""
import socket
import sys
import time

sock_path, log_path = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
with open(log_path, "a", buffering=1) as log:
    log.write(f"{time.monotonic():.3f}\tLISTENING\n")
    while True:
        data = s.recv(4096).decode(errors="replace").replace("\n", "|")
        log.write(f"{time.monotonic():.3f}\t{data}\n")
