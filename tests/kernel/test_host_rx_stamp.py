"""ring->ts of a host RX ring is taken after its rxsync, as netmap's.

A host RX sync reads the port's tap once per frame, so one that finds many
large frames waiting lasts long (here 64 frames of 64 KiB).  netmap stamps
ring->ts after each sync, so the stamp is never earlier than a frame the
sync reports; the engine does so for every kind whose rxsync moves frames
through the kernel (rxsync_long: NIC ports and their host rings), and
stamps only the kinds that read one index in memory just before the sync
(tests/unit/test_ring_clock.py).
"""
from __future__ import annotations

import socket
import time

import pytest

from host_support import B_IP, held_frame_lengths, host_port_for_big_frames, host_rings

BIG = 65507                         # the largest UDP payload: a frame of 64 KiB and 13 bytes
FRAMES = 64
SLOTS = 4096                        # room for all of them (33 slots of 2 KiB each)
SLACK = 20e-6                       # the stamp's truncation to µs, a float's ulp
EARLIEST = 300e-6                   # s after the call: later than any stamp taken on entry


def _one_long_rxsync(backend):
    port = host_port_for_big_frames(backend, SLOTS)
    try:
        _, rx = host_rings(port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(FRAMES):
                s.sendto(bytes(BIG), (B_IP, 9))
        before = time.time()
        port.rxsync()
        after = time.time()
        held = [n for n in held_frame_lengths(rx) if n > 1500]
        return len(held), before, rx.ts, after
    finally:
        port.close()


@pytest.mark.parametrize("backend", ["afpacket", "afxdp"])
def test_a_long_host_rxsync_is_stamped_at_its_end(netns, backend):
    held, before, ts, after = netns.run(_one_long_rxsync, backend)
    assert held >= FRAMES // 2, f"only {held} large frames in one rxsync"
    assert ts <= after + SLACK, (before, ts, after)
    # Stamped at the start, ts would be microseconds after `before`; at the
    # end, the sync's length after it (2 ms here; more on a slower or
    # busier machine, never less: a preemption only lengthens it).
    assert after - before >= 2 * EARLIEST, f"a sync of {after - before:.6f} s: too short to tell"
    assert ts >= before + EARLIEST, \
        f"ring->ts {ts - before:.6f} s into a sync of {after - before:.6f} s: stamped at its start"
