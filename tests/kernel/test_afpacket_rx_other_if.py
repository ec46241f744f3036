"""AF_PACKET RX: a port on one interface never receives another's frames,
and a ring of a multi-queue port never another queue's.

A packet socket made for every protocol takes frames from every interface
of its namespace until it is bound to one.  The port's receive socket gets
its ring (and maps it) before the bind, so it must not listen to anything
until then: frames that another interface received in that window would sit
in the ring's first block and reach the program as the port's own.

The test floods a second veth pair of the namespace (wb -> wa) from a child
process on the other CPU while it opens and closes the port on va again and
again; no flood frame may ever come out of the port (thousands did, before
the receive socket was made for no protocol and bound after its ring).

With several queues, each ring's socket is bound first and joins the
port's fanout group after (the kernel takes only a bound socket into a
group): in between it took every frame of the interface.  On a veth every
frame is queue 0's, so a flood from the peer must reach ring 0 only.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import struct
import subprocess
import sys

import pytest

from nic_support import HEAD, MAC_A, MAC_B, open_nic, port_quiet, quiet, reshape_veth

pytestmark = pytest.mark.kernel

FLOOD_MAGIC = b"NMCF"
OPENS = 30
PR_SET_PDEATHSIG = 1


def _is_flood(data) -> bool:
    return len(data) >= HEAD.size and bytes(data[14:18]) == FLOOD_MAGIC


def _flood_child(wfd: int, cpus: set, ifname: str) -> None:  # pragma: no cover - the child
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:
            return                          # the parent died before the prctl
        os.sched_setaffinity(0, cpus)       # beside the opener, not between its calls
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        s.bind((ifname, 0))
        f = MAC_A + MAC_B + struct.pack("!H", 0x88B5) + FLOOD_MAGIC + bytes(42)
        s.send(f)
        os.write(wfd, b"r")
        while True:
            try:
                s.send(f)
            except OSError:
                pass
    finally:
        os._exit(0)


def _ring_floods(port) -> list:
    """Flood frames each RX ring holds after an rxsync (then released)."""
    port.rxsync()
    counts = []
    for ring in port.rx_rings:
        n, j = 0, ring.head
        while j != ring.tail:
            s = ring.slots[j]
            n += _is_flood(bytes(ring.buf(int(s["buf_idx"]))[:int(s["len"])]))
            j = ring.next(j)
        ring.head = ring.cur = ring.tail
        counts.append(n)
    return counts


def _flooded_opens(flood_if: str, count) -> list:
    """Open and close netmap:va OPENS times while flood_if sends without a
    pause from the other CPU; the sum of count(port) over the opens."""
    mine = os.sched_getaffinity(0)
    others = set(range(os.cpu_count() or 1)) - mine
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _flood_child(wfd, others or mine, flood_if)
    os.close(wfd)
    total = None
    try:
        assert os.read(rfd, 1) == b"r", "the flood did not start"
        for _ in range(OPENS):
            port = open_nic("netmap:va", "afpacket", None)
            try:
                got = count(port)
            finally:
                port.close()
            total = got if total is None else [a + b for a, b in zip(total, got)]
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(rfd)
    return total


def _other_interface_frames() -> int:
    quiet()
    subprocess.run(["ip", "link", "add", "wa", "type", "veth", "peer", "name", "wb"], check=True)
    subprocess.run(["ip", "link", "set", "wa", "up"], check=True)
    subprocess.run(["ip", "link", "set", "wb", "up"], check=True)
    return _flooded_opens("wb", lambda port: [len(port_quiet(port, 0.02, keep=_is_flood))])[0]


def _frames_per_ring() -> list:
    quiet()
    return _flooded_opens("vb", _ring_floods)


def _two_cpus() -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs: the flood must run beside the opener")


def test_a_port_gets_no_frame_of_another_interface(netns):
    _two_cpus()
    assert netns.run(_other_interface_frames) == 0


def test_a_ring_gets_no_frame_of_another_queue_while_the_port_opens(netns):
    _two_cpus()
    reshape_veth(netns, queues=2)
    per_ring = netns.run(_frames_per_ring)
    assert len(per_ring) == 2 and per_ring[0] > 0, per_ring     # the flood reached queue 0
    assert per_ring[1] == 0, f"ring 1 took {per_ring[1]} of queue 0's frames"
