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
frame of a plain flood is queue 0's, so it must reach ring 0 only.  And
until the last ring has joined, the group hands ring 0 what the later rings
will get: a flood of a flow that lands on queue 1 must never reach ring 0.
(A veth's receive queue is the sender's TX queue - 1, or 0: vb's TX queue 2
reaches queue 1, so that test has four queues.)
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

from nic_support import (HEAD, MAC_A, MAC_B, open_nic, peer_sender, port_collect, port_quiet, quiet,
                         reshape_veth, udp_frame, udp_seq)

pytestmark = pytest.mark.kernel

FLOOD_MAGIC = b"NMCF"
OPENS = 30
PR_SET_PDEATHSIG = 1


def _is_flood(data) -> bool:
    return len(data) >= HEAD.size and bytes(data[14:18]) == FLOOD_MAGIC


def _flood_frame() -> bytes:
    return MAC_A + MAC_B + struct.pack("!H", 0x88B5) + FLOOD_MAGIC + bytes(42)


def _flood_child(wfd: int, cpus: set, ifname: str, f: bytes) -> None:  # pragma: no cover
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:
            return                          # the parent died before the prctl
        os.sched_setaffinity(0, cpus)       # beside the opener, not between its calls
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        s.bind((ifname, 0))
        s.send(f)
        os.write(wfd, b"r")
        while True:
            try:
                s.send(f)
            except OSError:
                pass
    finally:
        os._exit(0)


def _ring_counts(port, flood: bytes) -> list:
    """Copies of `flood` each RX ring holds after an rxsync (then released)."""
    port.rxsync()
    counts = []
    for ring in port.rx_rings:
        n, j = 0, ring.head
        while j != ring.tail:
            s = ring.slots[j]
            n += bytes(ring.buf(int(s["buf_idx"]))[:int(s["len"])]) == flood
            j = ring.next(j)
        ring.head = ring.cur = ring.tail
        counts.append(n)
    return counts


def _other_cpus() -> set:
    mine = os.sched_getaffinity(0)
    return (set(range(os.cpu_count() or 1)) - mine) or mine


def _flooded_opens(flood_if: str, count, f: bytes) -> list:
    """Open and close netmap:va OPENS times while flood_if sends f without a
    pause from the other CPU; the sum of count(port) over the opens."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _flood_child(wfd, _other_cpus(), flood_if, f)
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
    return _flooded_opens("wb", lambda port: [len(port_quiet(port, 0.02, keep=_is_flood))],
                          _flood_frame())[0]


def _frames_per_ring() -> list:
    quiet()
    f = _flood_frame()
    return _flooded_opens("vb", lambda port: _ring_counts(port, f), f)


def _queue_1_flow() -> bytes:
    """A UDP frame whose flow vb sends on its TX queue 1 (va's RX queue 1)
    when sent from the other CPU, as the flood will be."""
    home = os.sched_getaffinity(0)
    frames = [udp_frame(seq, 3000 + seq) for seq in range(64)]
    os.sched_setaffinity(0, _other_cpus())
    try:
        with open_nic("netmap:va-1", "afpacket", None) as port, peer_sender() as tx:
            for f in frames:
                tx.send(f)
            udp = lambda d: udp_seq(d) is not None          # noqa: E731
            got = port_collect(port, 1, 2.0, udp) + port_quiet(port, 0.1, udp)
    finally:
        os.sched_setaffinity(0, home)
    assert got, "no flow of 64 reached queue 1"
    return frames[udp_seq(got[0])]


def _queue_1_frames_per_ring() -> list:
    quiet()
    f = _queue_1_flow()
    return _flooded_opens("vb", lambda port: _ring_counts(port, f), f)


def _two_cpus() -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs: the flood must run beside the opener")


def test_a_port_gets_no_frame_of_another_interface(netns):
    _two_cpus()
    assert netns.run(_other_interface_frames) == 0


@pytest.mark.parametrize("queues, scenario, flooded, clean", [
    (2, _frames_per_ring, 0, 1),            # bound, outside the group: ring 1 took queue 0's
    (4, _queue_1_frames_per_ring, 1, 0),    # the group not whole: ring 0 took queue 1's
], ids=["bound-outside-the-group", "group-not-whole"])
def test_a_ring_gets_no_frame_of_another_queue_while_the_port_opens(netns, queues, scenario,
                                                                     flooded, clean):
    _two_cpus()
    reshape_veth(netns, queues=queues)
    per_ring = netns.run(scenario)
    assert len(per_ring) == queues and per_ring[flooded] > 0, per_ring  # the flood reached it
    assert per_ring[clean] == 0, f"ring {clean} took {per_ring[clean]} of queue {flooded}'s frames"
