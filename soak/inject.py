#!/usr/bin/env python3
"""Writes Ethernet frames onto a network interface with a raw packet socket (AF_PACKET).

Usage: inject.py <interface>  (run inside the namespace that holds the interface, as root)

Frames arrive on stdin, each as a 4-byte big-endian length and then that many bytes. Each is
sent as it is (the kernel adds nothing). On end of input it prints one line of JSON on stdout:
{"sent": n, "errors": n, "lastError": "..."}. Node has no packet sockets, so the soak
(soak/main.ts) makes the frames and this only writes them.
"""

import json
import socket
import struct
import sys


def read_exactly(stream, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: inject.py <interface>\n")
        return 2
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((sys.argv[1], 0))
    stdin = sys.stdin.buffer
    sent = 0
    errors = 0
    last_error = ""
    while True:
        head = read_exactly(stdin, 4)
        if head is None:
            break
        (length,) = struct.unpack(">I", head)
        frame = read_exactly(stdin, length)
        if frame is None:
            break
        try:
            sock.send(frame)
            sent += 1
        except OSError as e:  # ENOBUFS when the device queue is full, EINVAL for a bad frame
            errors += 1
            last_error = e.strerror or str(e)
    sys.stdout.write(json.dumps({"sent": sent, "errors": errors, "lastError": last_error}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
