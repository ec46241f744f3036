"""NIC ports (AF_PACKET, AF_XDP drv and skb) on a veth pair in the test's own
network namespace: the port's descriptor with select, poll, epoll and
asyncio from the moment the port is opened, and every TX/RX ring repair
followed by traffic that arrives exactly.  The other end, vb, is a plain
AF_PACKET socket (for asyncio: in a child process)."""
from __future__ import annotations

import asyncio
import errno
import os
import threading
from contextlib import closing

import pytest

import nmcompat
from nmcompat import POLLIN

from testlib import fd_readable, thread_waiting
from nic_support import (BACKEND_IDS, BACKENDS, MAC_A, MAC_B, describe_mismatch, frame,
                         open_nic, peer_receiver, peer_recv, peer_sender, port_collect,
                         port_quiet, port_send, quiet)

pytestmark = pytest.mark.kernel

WAIT_S = 10.0


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


@pytest.fixture(params=BACKENDS, ids=BACKEND_IDS)
def nic(request):
    return request.param


def to_peer(seq: int, size: int = 100) -> bytes:
    return frame(seq, size, src=MAC_A, dst=MAC_B)


# -- the descriptor -------------------------------------------------------------------

def _fd_fresh(backend, mode):
    quiet()
    with open_nic("netmap:va", backend, mode) as port, closing(peer_sender()) as tx:
        fd = port.fileno()
        for seq, how in enumerate(("select", "poll", "epoll")):    # the first on a fresh port
            assert not fd_readable(fd, how, 0), how
            me = threading.get_native_id()
            sender = threading.Thread(target=lambda: (thread_waiting(me), tx.send(frame(seq, 80))))
            sender.start()
            try:
                assert fd_readable(fd, how, WAIT_S), f"{how}: a frame came, the fd did not say so"
            finally:
                sender.join()
            assert port_collect(port, 1) == [frame(seq, 80)]
    with open_nic("netmap:va", backend, mode) as port, closing(peer_sender()) as tx:
        port.rxsync()
        port.poll(POLLIN, 0)
        tx.send(frame(9, 80))                           # queued before the fd is taken
        assert fd_readable(port.fileno(), "poll", WAIT_S), "a frame waits, not readable"
        assert port_collect(port, 1) == [frame(9, 80)]
    return True


def test_fd_of_a_fresh_port_wakes_for_frames(netns, nic):
    assert netns.run(_fd_fresh, *nic)


ROUNDS, BURST = 10, 16


def _peer_child(wfd_ready: int, rfd_go: int) -> None:  # pragma: no cover - the child
    """Send BURST frames to va for every byte read from rfd_go."""
    try:
        with closing(peer_sender()) as tx:
            os.write(wfd_ready, b"r")
            for r in range(ROUNDS):
                if os.read(rfd_go, 1) != b"g":
                    os._exit(2)
                for k in range(BURST):
                    tx.send(frame(r * BURST + k, 90, tag=5))
        os._exit(0)
    except BaseException:
        os._exit(1)


def _asyncio(backend, mode):
    quiet()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(ready_r)
        os.close(go_w)
        _peer_child(ready_w, go_r)
    os.close(ready_w)
    os.close(go_r)
    expected = [frame(i, 90, tag=5) for i in range(ROUNDS * BURST)]
    try:
        with open_nic("netmap:va", backend, mode) as port:
            assert os.read(ready_r, 1) == b"r"

            async def receive():
                loop = asyncio.get_running_loop()
                got, done = [], loop.create_future()

                def on_readable():
                    # one rxsync (it also releases what the last call read), then
                    # read: a NIC port's fd follows the kernel's RX queue (DESIGN
                    # section 8), so an rxsync after the dispatch could take the
                    # burst's last frames into the ring where no wakeup comes for them
                    port.rxsync()
                    before = len(got)
                    port.dispatch(lambda h, d: got.append(bytes(d)))
                    if len(got) // BURST > before // BURST and len(got) < len(expected):
                        os.write(go_w, b"g")
                    if len(got) >= len(expected) and not done.done():
                        done.set_result(None)

                loop.add_reader(port.fileno(), on_readable)
                os.write(go_w, b"g")
                try:
                    await asyncio.wait_for(done, 30)
                finally:
                    loop.remove_reader(port.fileno())
                return got

            got = asyncio.run(receive())
            got = [g for g in got if g[12:14] == b"\x88\xb5"]
            assert got == expected, describe_mismatch(got, expected)
    finally:
        os.close(go_w)
        os.close(ready_r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return True


def test_asyncio_add_reader_receives_from_another_process(netns, nic):
    assert netns.run(_asyncio, *nic)


# -- ring repairs ---------------------------------------------------------------------

TX_CASES = [("buf_idx", 0), ("buf_idx", 1), ("buf_idx", 70000), ("buf_idx", 2**32 - 1),
            ("len", 0xFFFF), ("head", 2**32 - 1), ("cur", 10**6)]


def _tx_repair(backend, mode):
    quiet()
    with open_nic("netmap:va", backend, mode) as port, closing(peer_receiver()) as rx:
        ring = port.tx_rings[0]
        n = ring.num_slots
        seq = 0
        for field, value in TX_CASES:
            if field in ("buf_idx", "len"):
                slot = ring.head
                ring.slots[slot][field] = value
                ring.head = ring.cur = ring.next(slot)
            else:
                setattr(ring, field, value)
            with pytest.raises(OSError) as ei:
                port.txsync()
            assert ei.value.errno == errno.EINVAL, (field, value)
            frames = [to_peer(seq + i) for i in range(2 * n)]    # two laps of the ring
            seq += len(frames)
            port_send(port, frames)
            got = peer_recv(rx, len(frames))
            assert got == frames, f"{field}={value}: " + describe_mismatch(got, frames)
    return True


def test_tx_repair_then_traffic_arrives(netns, nic):
    assert netns.run(_tx_repair, *nic)


RX_CASES = [("head", 2**32 - 1), ("cur", 10**6), ("head", "past_tail")]


def _rx_repair(backend, mode):
    quiet()
    with open_nic("netmap:va", backend, mode) as port, closing(peer_sender()) as tx:
        ring = port.rx_rings[0]
        seq = 0
        for field, value in RX_CASES:
            tx.send(frame(seq, 80, tag=1))
            assert len(port_collect(port, 1)) == 1
            port.rxsync()
            setattr(ring, field, (ring.tail + 1) % ring.num_slots if value == "past_tail" else value)
            with pytest.raises(OSError) as ei:
                port.rxsync()
            assert ei.value.errno == errno.EINVAL, (field, value)
            port_quiet(port, 0.1)
            frames = [frame(seq + 1 + i, 80, tag=2) for i in range(64)]
            seq += 1 + len(frames)
            for f in frames:
                tx.send(f)
            got = port_collect(port, len(frames))
            assert got == frames, f"{field}={value}: " + describe_mismatch(got, frames)
    return True


def test_rx_repair_then_traffic_arrives(netns, nic):
    assert netns.run(_rx_repair, *nic)
