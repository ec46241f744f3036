"""AF_PACKET RX: frames wait in the kernel's ring while the program does not
sync, however sparse the traffic.

The emulated NIC backend receives into a TPACKET_V3 ring, whose blocks the
kernel hands over when they are full or, at the latest, 1 ms after they were
opened.  Sparse traffic therefore takes a block per millisecond however small
its frames are, and a ring of a few large blocks (it had 8 of 1 MiB) lost
every frame after the eighth millisecond a program spent without rxsync, such
as a receiver preempted on a loaded machine.  The ring now has 64 blocks of
128 KiB: the same memory, eight times as many milliseconds.

The frames are sent one by one, 3 ms apart, so that each takes a block of its
own: the spacing is the traffic under test, not a wait for an event.
"""
from __future__ import annotations

import time
from contextlib import closing

import pytest

from nic_support import frame, open_nic, peer_sender, port_collect, port_quiet, quiet

pytestmark = pytest.mark.kernel

FRAMES = 48         # more than the old ring's 8 blocks, fewer than the 64 of the new
SPACING = 0.003     # s between two frames: three times the ring's block timeout


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def _sparse_frames_wait_in_the_ring():
    quiet()
    sent = [frame(seq, 60) for seq in range(FRAMES)]
    with open_nic("netmap:va", "afpacket", None) as port, closing(peer_sender()) as tx:
        for f in sent:
            tx.send(f)
            time.sleep(SPACING)
        got = port_collect(port, FRAMES, timeout=5.0)
        got += port_quiet(port, 0.2)
    assert len(got) == FRAMES, f"{FRAMES - len(got)} of {FRAMES} sparse frames lost"
    assert got == sent


def test_sparse_frames_wait_in_the_ring_until_rxsync(netns):
    netns.run(_sparse_frames_wait_in_the_ring)
