"""Frames and ring helpers shared by the tools' tests (test_bridge_lb.py,
test_replay_pcap.py)."""
from __future__ import annotations

import struct
import time

import pytest


def udp(src: int, dst: int, sport: int, dport: int, seq: int = 0, size: int = 64,
        proto: int = 17, vlan: bool = False) -> bytes:
    """An Ethernet/IPv4/UDP (or TCP) frame with seq in its first payload bytes."""
    tag = b"\x81\x00\x00\x07" if vlan else b""
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + tag + b"\x08\x00"
    l4 = struct.pack("!HH", sport, dport) + b"\0" * (16 if proto == 6 else 4)
    pay = struct.pack("!I", seq)
    pay += bytes((seq + k) & 0xFF for k in range(max(0, size - len(eth) - 20 - len(l4) - len(pay))))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4) + len(pay), 0, 0, 64, proto, 0,
                     struct.pack("!I", src), struct.pack("!I", dst))
    return eth + ip + l4 + pay


def seq_of(frame) -> int:
    """The sequence number udp() put after the UDP header."""
    return struct.unpack_from("!I", bytes(frame), 42)[0]


def drain(port, into: list, slot_bufs: list = None) -> None:
    """rxsync, then every RX slot's bytes (and buf_idx) into the lists."""
    port.rxsync()
    for ring in port.rx_rings:
        while ring.cur != ring.tail:
            slot = ring.slots[ring.cur]
            into.append(bytes(ring.buf(int(slot["buf_idx"]))[:int(slot["len"])]))
            if slot_bufs is not None:
                slot_bufs.append(int(slot["buf_idx"]))
            ring.head = ring.cur = ring.next(ring.cur)


def send_recording(port, frames) -> list:
    """inject + txsync each frame; returns the buffer each one went out in."""
    bufs = []
    for f in frames:
        ring = port.tx_rings[0]
        deadline = time.monotonic() + 5
        while ring.cur == ring.tail:
            port.txsync()
            assert time.monotonic() < deadline, "TX ring stayed full"
        bufs.append(int(ring.slots[ring.cur]["buf_idx"]))
        assert port.inject(f) == len(f)
    port.txsync()
    return bufs


def stderr_line(proc, text: str, timeout: float = 10.0) -> str:
    """Wait for a line containing text on a Proc's stderr."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(proc.err):
            if text in line:
                return line
        if not proc.alive():
            break
        time.sleep(0.02)
    pytest.fail(f"no {text!r} on stderr\n" + proc.describe())
