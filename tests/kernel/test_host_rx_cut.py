"""Host RX frames longer than a chain of the ring takes (64 KiB: the tap's
read) are cut and counted in nmc_host_info().rx_truncated, once per frame
however many rxsyncs the frame then waits for room (docs/DESIGN.md §12).
va's MTU is 65535, so va's stack sends a 65549-byte frame: a UDP datagram
of 65507 bytes to a neighbour entered by hand (no ARP first)."""
from __future__ import annotations

import socket

import pytest

from host_support import B_IP, held_frame_lengths, host_info, host_port_for_big_frames, host_rings, rxsync_until

BIG = 65507                         # the largest UDP payload: an IP packet of 65535 bytes
SLOTS = 64                          # a 64 KiB frame takes 32 of them


def _rx_truncated(port) -> int:
    return host_info(port).rx_truncated


def _big(lengths: list) -> list:
    """The big frames' lengths (not the stack's own small ones)."""
    return [n for n in lengths if n > 1500]


def _two_big_frames(backend):
    port = host_port_for_big_frames(backend, SLOTS)
    try:
        _, rx = host_rings(port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(bytes(BIG), (B_IP, 9))
            first = _big(rxsync_until(port, rx, _big))
            s.sendto(bytes(BIG), (B_IP, 9))
            for _ in range(5):      # no room for the second: it waits, read once
                port.rxsync()
            waiting = (_big(held_frame_lengths(rx)), _rx_truncated(port))
            rx.head = rx.cur = rx.tail
            port.rxsync()
            second = _big(rxsync_until(port, rx, _big))
        return first, waiting, second, _rx_truncated(port)
    finally:
        port.close()


@pytest.mark.parametrize("backend", ["afpacket", "afxdp"])
def test_a_frame_longer_than_64k_is_cut_and_counted_once(netns, backend):
    first, waiting, second, truncated = netns.run(_two_big_frames, backend)
    assert first == [65536], first
    assert waiting == ([65536], 2), waiting         # the second read, cut, waiting for room
    assert second == [65536] and truncated == 2, (second, truncated)
