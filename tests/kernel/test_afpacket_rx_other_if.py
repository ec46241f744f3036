"""AF_PACKET RX: a port on one interface never receives another's frames.

A packet socket made for every protocol takes frames from every interface
of its namespace until it is bound to one.  The port's receive socket gets
its ring (and maps it) before the bind, so it must not listen to anything
until then: frames that another interface received in that window would sit
in the ring's first block and reach the program as the port's own.

The test floods a second veth pair of the namespace (wb -> wa) from a child
process on the other CPU while it opens and closes the port on va again and
again; no flood frame may ever come out of the port (thousands did, before
the receive socket was made for no protocol and bound after its ring).
"""
from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys

import pytest

from nic_support import HEAD, MAC_A, MAC_B, open_nic, port_quiet, quiet

pytestmark = pytest.mark.kernel

FLOOD_MAGIC = b"NMCF"
OPENS = 30


def _is_flood(data) -> bool:
    return len(data) >= HEAD.size and bytes(data[14:18]) == FLOOD_MAGIC


def _flood_child(wfd: int, cpus: set) -> None:  # pragma: no cover - runs in the forked child
    try:
        os.sched_setaffinity(0, cpus)       # beside the opener, not between its calls
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        s.bind(("wb", 0))
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


def _other_interface_frames() -> int:
    quiet()
    subprocess.run(["ip", "link", "add", "wa", "type", "veth", "peer", "name", "wb"], check=True)
    subprocess.run(["ip", "link", "set", "wa", "up"], check=True)
    subprocess.run(["ip", "link", "set", "wb", "up"], check=True)
    mine = os.sched_getaffinity(0)
    others = set(range(os.cpu_count() or 1)) - mine
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _flood_child(wfd, others or mine)
    os.close(wfd)
    stray = 0
    try:
        assert os.read(rfd, 1) == b"r", "the flood did not start"
        for _ in range(OPENS):
            port = open_nic("netmap:va", "afpacket", None)
            try:
                stray += len(port_quiet(port, 0.02, keep=_is_flood))
            finally:
                port.close()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(rfd)
    return stray


def test_a_port_gets_no_frame_of_another_interface(netns):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs: the flood must run beside the opener")
    assert netns.run(_other_interface_frames) == 0
