"""A Python netmap program for tests/unit/test_native.py and
tests/kernel/test_native_veth.py, run in its own process (under
`nmcompat exec` for the native backend).  It moves frames through the rings
themselves, as a C program would, so that it works on any port:

    native_child.py send NAME COUNT [KEY=VALUE...]   frames 0..COUNT-1
    native_child.py recv NAME COUNT [KEY=VALUE...]   prints "ready", then waits for them
    native_child.py pair TX RX COUNT [KEY=VALUE...]  both ends in this process

KEY=VALUE are nmcompat.open() keywords (integers where they parse).  The
last line printed is a JSON report: every port's backend and info, and the
sequence numbers received in order; or, when send or recv could not open
its port, {"error": errno, "message": ...} (exit status 3).
"""
from __future__ import annotations

import json
import sys
import time

import nmcompat

FRAME = 60
DEADLINE_S = 30


def frame(seq: int, src: int = 1, dst: int = 2) -> bytes:
    """An Ethernet frame from 02:..:src to 02:..:dst carrying seq."""
    mac = lambda last: bytes([2, 0, 0, 0, 0, last])   # noqa: E731
    return (mac(dst) + mac(src) + b"\x88\xb5" + seq.to_bytes(4, "big")).ljust(FRAME, b"\0")


def queue(port, first: int, count: int, **macs) -> int:
    """Frames first.. on TX ring 0 while it has room; returns the next seq."""
    ring, seq = port.tx_rings[0], first
    while seq < count and ring.space():
        i = ring.head
        data = frame(seq, **macs)
        ring.buf(int(ring.slots["buf_idx"][i]))[:len(data)] = data
        ring.slots["len"][i] = len(data)
        ring.head = ring.cur = ring.next(i)
        seq += 1
    port.txsync()
    return seq


def take(port, got: list) -> None:
    """Every frame of the RX rings (after the caller's sync or poll)."""
    for ring in port.rx_rings:
        while not ring.empty():
            i = ring.head
            data = bytes(ring.buf(int(ring.slots["buf_idx"][i]))[:int(ring.slots["len"][i])])
            if len(data) == FRAME and data[12:14] == b"\x88\xb5":
                got.append(int.from_bytes(data[14:18], "big"))
            ring.head = ring.cur = ring.next(i)


def send(port, count: int, **macs) -> None:
    seq, deadline = 0, time.monotonic() + DEADLINE_S
    while seq < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no TX room after {seq} frames")
        port.poll(nmcompat.POLLOUT, 1000)
        seq = queue(port, seq, count, **macs)
    while port.tx_rings[0].tx_pending() and time.monotonic() < deadline:
        port.poll(nmcompat.POLLOUT, 1000)


def recv(port, count: int) -> list:
    got, deadline = [], time.monotonic() + DEADLINE_S
    while len(got) < count and time.monotonic() < deadline:
        port.poll(nmcompat.POLLIN, 1000)
        take(port, got)
    return got


def pair(tx, rx, count: int) -> list:
    """Both ends in this process: queue what fits, take what came, again.
    No more frames are in flight than the RX ring holds (a VALE switch
    drops what finds it full, as netmap's)."""
    seq, got, deadline = 0, [], time.monotonic() + DEADLINE_S
    window = rx.rx_rings[0].num_slots - 1
    while len(got) < count and time.monotonic() < deadline:
        seq = queue(tx, seq, min(count, len(got) + window))
        rx.poll(nmcompat.POLLIN, 1000)
        take(rx, got)
        rx.rxsync()                     # the slots taken go back before the next frames come
    return got


def describe(port) -> dict:
    info = port.info
    return {"backend": info.backend, "why": info.why, "mem_id": info.mem_id,
            "memsize": info.memsize, "tx_slots": info.tx_slots, "rx_slots": info.rx_slots,
            "tx_rings": info.tx_rings, "rx_rings": info.rx_rings, "buf_size": info.buf_size,
            "buf_num": info.buf_num, "extra_bufs": info.extra_bufs, "region": info.region,
            "bound_tx": list(info.bound_tx), "bound_rx": list(info.bound_rx),
            "ring_slots": [r.num_slots for r in port.tx_rings + port.rx_rings]}


def _options(args) -> dict:
    out = {}
    for arg in args:
        key, value = arg.split("=", 1)
        out[key] = int(value) if value.lstrip("-").isdigit() else value
    return out


def main(argv) -> int:
    mode = argv[0]
    if mode == "pair":
        tx_name, rx_name, count, opts = argv[1], argv[2], int(argv[3]), _options(argv[4:])
        with nmcompat.open(rx_name, **opts) as rx, nmcompat.open(tx_name, **opts) as tx:
            report = {"ports": [describe(tx), describe(rx)], "got": pair(tx, rx, count)}
    else:
        name, count, opts = argv[1], int(argv[2]), _options(argv[3:])
        try:
            port = nmcompat.open(name, **opts)
        except OSError as exc:          # reported, for the caller to judge
            print(json.dumps({"error": exc.errno, "message": exc.strerror}), flush=True)
            return 3
        with port:
            report = {"ports": [describe(port)]}
            if mode == "send":
                send(port, count)
            else:
                print("ready", flush=True)
                report["got"] = recv(port, count)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
