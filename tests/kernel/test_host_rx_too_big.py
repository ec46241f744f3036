"""A host RX frame that needs more slots than the host RX ring has in all
(a chain takes at most slots - 1) can never fit: it is dropped and counted
in nmc_host_info().rx_dropped, and the frames after it still arrive
(docs/DESIGN.md §12).  va's MTU is 65535, so va's stack sends a UDP datagram
larger than a 16-slot ring (15 buffers) to a neighbour entered by hand."""
from __future__ import annotations

import socket
import subprocess
import time

import pytest

import nic_support
import nmcompat
from host_support import A_IP, B_IP, held_frame_lengths, host_rings
from nmcompat._ffi import ffi, lib

SLOTS = 16
SMALL = 999                         # the payload of the frame after the big one


def _host_info(port):
    info = ffi.new("struct nmc_host_info *")
    assert lib.nmc_host_info(port._h, info) == 0
    return info


def _wait_small(port, ring, want: int) -> list:
    deadline = time.monotonic() + 10
    while want not in held_frame_lengths(ring) and time.monotonic() < deadline:
        port.rxsync()
        time.sleep(0.01)            # polling the ring, bounded by the deadline
    return held_frame_lengths(ring)


def _big_then_small(backend):
    nic_support.quiet()
    subprocess.run(["ip", "link", "set", "dev", "va", "mtu", "65535"], check=True)
    subprocess.run(["ip", "link", "set", "dev", "vb", "mtu", "65535"], check=True)
    subprocess.run(["ip", "addr", "add", f"{A_IP}/24", "dev", "va"], check=True)
    subprocess.run(["ip", "neigh", "replace", B_IP, "lladdr", "02:00:00:00:00:0b", "dev", "va"],
                   check=True)
    port = nmcompat.open(f"netmap:va^@conf:slots={SLOTS}", backend=backend)
    try:
        _, rx = host_rings(port)
        big = rx.nr_buf_size * SLOTS              # more than SLOTS - 1 buffers, under 64 KiB
        assert rx.num_slots == SLOTS and big + 42 <= 65535
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(bytes(big), (B_IP, 9))
            s.sendto(bytes(SMALL), (B_IP, 9))
            seen = _wait_small(port, rx, 14 + 20 + 8 + SMALL)
        info = _host_info(port)
        return seen, big, int(info.rx_dropped), int(info.rx_truncated)
    finally:
        port.close()


@pytest.mark.parametrize("backend", ["afpacket", "afxdp"])
def test_a_frame_larger_than_the_ring_is_dropped_and_counted(netns, backend):
    seen, big, dropped, truncated = netns.run(_big_then_small, backend)
    assert 14 + 20 + 8 + SMALL in seen and max(seen) < big, seen
    assert (dropped, truncated) == (1, 0), (dropped, truncated)
