"""AF_PACKET TX: the kernel's TX ring is smaller than the netmap ring.

The emulated NIC backend keeps the kernel's TX ring small enough to stay in
cache (csrc/transport/nic/pkt.c: at most 512 KiB of frames), never more
frames than the netmap TX ring has slots.  A txsync with more slots than
that sends what it queued once the kernel's ring is full and goes on with
the frames the send() gave back: on veth, whose transmit frees each frame
within the send(), one txsync of a full netmap ring sends all of it, in
order, every byte as queued.  Frames a failed send() left requested (the
interface down) go at the next txsync, with or without frames of its own.
(Frames a device still holds after send() returns, as a NIC does until TX
completion, wait for a later txsync; no device here holds them: a veth
gives each frame back within the send(), whatever its receive path does.)
"""
from __future__ import annotations

import subprocess
import time
from contextlib import closing

import pytest

from nic_support import frame, open_nic, peer_receiver, peer_recv, quiet, tx_done
from nmcompat._ffi import ffi, lib

pytestmark = pytest.mark.kernel

MAX_FRAME = 1514                        # the veth pair's MTU (1500) and the Ethernet header


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def _wait_up(dev: str, timeout: float = 10.0) -> None:
    """Wait (bounded) until dev's carrier is up again."""
    deadline = time.monotonic() + timeout
    while "LOWER_UP" not in subprocess.run(["ip", "-o", "link", "show", "dev", dev], check=True,
                                           capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, f"{dev} did not come back up"
        time.sleep(0.01)                # polling the interface state, bounded


def _kernel_tx_frames(port) -> int:
    info = ffi.new("struct nmc_pkt_info *")
    assert lib.nmc_pkt_info(port._h, 0, info) == 0
    return info.tx_frames


def _full_ring_in_one_txsync():
    quiet()
    with open_nic("netmap:va", "afpacket", None) as port, closing(peer_receiver()) as rx:
        ring = port.tx_rings[0]
        frames = [frame(i, 60 + (i * 37) % (MAX_FRAME - 59)) for i in range(ring.num_slots - 1)]
        for f in frames:
            assert port.inject(f) == len(f)
        port.txsync()
        one_sync = not ring.tx_pending()
        done = tx_done(port)
        got = peer_recv(rx, len(frames), timeout=10.0)
        got += peer_recv(rx, 1, timeout=0.3)            # nothing more may come
        return _kernel_tx_frames(port), ring.num_slots, one_sync, done, got == frames, len(got)


def test_one_txsync_sends_a_ring_larger_than_the_kernels(netns):
    kframes, slots, one_sync, done, same, ngot = netns.run(_full_ring_in_one_txsync)
    assert 32 <= kframes <= 256 < slots - 1, (kframes, slots)
    assert one_sync, f"one txsync left slots pending ({kframes} kernel frames, {slots} slots)"
    assert done
    assert ngot == slots - 1 and same, f"{ngot} of {slots - 1} frames, in order and intact: {same}"


def _small_ring(slots):
    quiet()
    with open_nic("netmap:va", "afpacket", None, tx_slots=slots) as port:
        return _kernel_tx_frames(port), port.tx_rings[0].num_slots


@pytest.mark.parametrize("slots", [63, 64, 2])
def test_the_kernel_ring_never_has_more_frames_than_the_netmap_ring(netns, slots):
    kframes, got_slots = netns.run(_small_ring, slots)
    assert got_slots == slots and 2 <= kframes <= slots, (kframes, slots)


def _owed_kick():
    """Frames queued while the interface is down stay requested in the
    kernel's ring (its send() fails); once the interface is up again, a
    txsync with nothing new of its own sends them."""
    quiet()
    with open_nic("netmap:va", "afpacket", None) as port, closing(peer_receiver()) as rx:
        frames = [frame(i, 60 + i) for i in range(20)]
        subprocess.run(["ip", "link", "set", "dev", "va", "down"], check=True)
        try:
            for f in frames:
                assert port.inject(f) == len(f)
            port.txsync()
        finally:
            subprocess.run(["ip", "link", "set", "dev", "va", "up"], check=True)
        _wait_up("va")
        got, deadline = [], time.monotonic() + 10.0
        while len(got) < len(frames) and time.monotonic() < deadline:
            port.txsync()                                   # nothing new: only the owed kick
            got += peer_recv(rx, len(frames) - len(got), timeout=0.1)
        return got == frames, len(got)


def test_frames_refused_while_down_go_at_a_later_txsync(netns):
    same, ngot = netns.run(_owed_kick)
    assert ngot == 20 and same, f"{ngot} of 20 frames after the interface came back"
