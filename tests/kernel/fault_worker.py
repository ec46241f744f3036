"""A participant of the fault-injection test (test_faults.py): one port,
traffic, and a heartbeat.

    fault_worker.py send PORT [DSTMAC SRCMAC]
    fault_worker.py recv PORT [MAC]

Both loop on poll() with a short timeout and print ``hb loops=N tx=N rx=N``
about every HB_S seconds, so that the test sees whether they still run and
still move packets.  The sender sends 60-byte IPv4/UDP frames with 16
source ports (so that lb spreads them over its pipes), dropping nothing
itself: a frame is sent once the ring has room.  The receiver on a switch
first announces its MAC (a broadcast frame) so the switch learns where it
is.  An open that finds the interface queue still held by a process that
just died (EBUSY) is retried for a few seconds.
"""
from __future__ import annotations

import errno
import os
import struct
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import nmcompat  # noqa: E402

HB_S = 0.05


def open_retrying(name: str):
    deadline = time.monotonic() + 10
    while True:
        try:
            return nmcompat.open(name)
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def udp(dst: bytes, src: bytes, seq: int) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 46, seq & 0xFFFF, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return dst + src + b"\x08\x00" + ip + struct.pack("!HHHH", 1000 + seq % 16, 9, 26, 0) \
        + struct.pack("!I", seq) + bytes(14)


def main(argv) -> int:
    role, name = argv[0], argv[1]
    macs = [bytes.fromhex(m.replace(":", "")) for m in argv[2:]]
    port = open_retrying(name)
    loops = tx = rx = 0
    if role == "recv" and macs:
        port.inject(b"\xff" * 6 + macs[0] + b"\x88\xb6" + bytes(46))
        port.txsync()
    dst, src = (macs + [b"\xff" * 6, b"\x02\x00\x00\x00\x00\x01"])[:2] if role == "send" else (b"", b"")
    print(f"ready {role} {name}", flush=True)
    beat = time.monotonic()
    while True:
        loops += 1
        if role == "send":
            while port.inject(udp(dst, src, tx)):
                tx += 1
            port.txsync()
            port.poll(nmcompat.POLLOUT, 20)
        else:
            port.poll(nmcompat.POLLIN, 20)
            rx += len(port.recv(256, snaplen=2048)[1])
        if time.monotonic() - beat >= HB_S:
            beat = time.monotonic()
            print(f"hb loops={loops} tx={tx} rx={rx}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
