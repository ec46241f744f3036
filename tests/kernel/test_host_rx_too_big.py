"""A host RX frame that needs more slots than the host RX ring has in all
(a chain takes at most slots - 1) can never fit: it is dropped and counted
in nmc_host_info().rx_dropped, and the frames after it still arrive
(docs/DESIGN.md §12).  va's MTU is 65535, so va's stack sends a UDP datagram
larger than a 16-slot ring (15 buffers) to a neighbour entered by hand."""
from __future__ import annotations

import socket

import pytest

from host_support import B_IP, host_info, host_port_for_big_frames, host_rings, rxsync_until

SLOTS = 16
SMALL = 999                         # the payload of the frame after the big one


def _big_then_small(backend):
    port = host_port_for_big_frames(backend, SLOTS)
    try:
        _, rx = host_rings(port)
        big = rx.nr_buf_size * SLOTS              # more than SLOTS - 1 buffers, under 64 KiB
        assert rx.num_slots == SLOTS and big + 42 <= 65535
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(bytes(big), (B_IP, 9))
            s.sendto(bytes(SMALL), (B_IP, 9))
            seen = rxsync_until(port, rx, lambda lengths: 14 + 20 + 8 + SMALL in lengths)
        info = host_info(port)
        return seen, big, int(info.rx_dropped), int(info.rx_truncated)
    finally:
        port.close()


@pytest.mark.parametrize("backend", ["afpacket", "afxdp"])
def test_a_frame_larger_than_the_ring_is_dropped_and_counted(netns, backend):
    seen, big, dropped, truncated = netns.run(_big_then_small, backend)
    assert 14 + 20 + 8 + SMALL in seen and max(seen) < big, seen
    assert (dropped, truncated) == (1, 0), (dropped, truncated)
