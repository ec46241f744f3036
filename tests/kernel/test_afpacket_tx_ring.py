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
import threading
import time
from contextlib import closing

import pytest

from nic_support import frame, open_nic, peer_receiver, peer_recv, quiet, tx_done, wait_link_up
from nmcompat import POLLOUT
from nmcompat._ffi import ffi, lib

pytestmark = pytest.mark.kernel

WINDOW = 0.3                            # s: poll()'s wakeups counted while the interface is down
MAX_FRAME = 1514                        # the veth pair's MTU (1500) and the Ethernet header


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


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
        wait_link_up("va")
        got, deadline = [], time.monotonic() + 10.0
        while len(got) < len(frames) and time.monotonic() < deadline:
            port.txsync()                                   # nothing new: only the owed kick
            got += peer_recv(rx, len(frames) - len(got), timeout=0.1)
        return got == frames, len(got)


def test_frames_refused_while_down_go_at_a_later_txsync(netns):
    same, ngot = netns.run(_owed_kick)
    assert ngot == 20 and same, f"{ngot} of 20 frames after the interface came back"


def _poll_across_the_link_coming_back():
    """poll(POLLOUT) on a netmap ring left full while the interface was down
    (the kernel's ring full of frames its send() refused) sleeps rather than
    spins (the TX socket reads writable all along), and once the interface
    is up again the waiting poll() sends them and finds room."""
    quiet()
    with open_nic("netmap:va", "afpacket", None) as port, closing(peer_receiver()) as rx:
        ring = port.tx_rings[0]
        frames = [frame(i, 60 + i % 200) for i in range(2 * ring.num_slots)]
        out, result = iter(frames), {}
        subprocess.run(["ip", "link", "set", "dev", "va", "down"], check=True)
        try:
            for _ in range(2):                          # the kernel's ring, then the netmap ring
                while ring.space() and port.inject(next(out)):
                    pass
                port.txsync()
            queued = len(frames) - sum(1 for _ in out)
            assert ring.space() == 0, "the netmap ring did not stay full"
            sleeps = port.stats()["sleeps"]
            waiter = threading.Thread(target=lambda: result.update(ev=port.poll(POLLOUT, 20000)))
            waiter.start()
            deadline = time.monotonic() + 10.0
            while port.stats()["sleeps"] == sleeps and time.monotonic() < deadline:
                time.sleep(0.005)       # polling a counter until the waiter sleeps, bounded
            before = port.stats()["sleeps"]
            time.sleep(WINDOW)          # a window to count the waiter's wakeups in
            waits = port.stats()["sleeps"] - before
        finally:
            subprocess.run(["ip", "link", "set", "dev", "va", "up"], check=True)
        waiter.join(30.0)
        assert tx_done(port)
        got = peer_recv(rx, queued, timeout=10.0)
        return result.get("ev"), got == frames[:queued], len(got), queued, waits


def test_a_poll_waiting_for_room_sends_once_the_interface_is_back(netns):
    ev, same, ngot, queued, waits = netns.run(_poll_across_the_link_coming_back)
    # it waits 10 ms at a time (pkt_wait): about 30 in the window; a spin, 100,000s
    assert waits < WINDOW * 1000, f"poll() woke {waits} times in {WINDOW} s: it spins"
    assert ev == POLLOUT, f"poll(POLLOUT) gave {ev} once the interface was back"
    assert ngot == queued and same, f"{ngot} of {queued} frames, in order: {same}"
