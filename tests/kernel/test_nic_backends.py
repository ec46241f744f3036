"""Every NIC backend held to the same behaviour, on a veth pair.

One suite, parametrized over the NIC backends: AF_PACKET (netmap's emulated
mode) and AF_XDP in native (drv) and generic (skb) XDP mode.  nmcompat opens
``va`` on exactly that backend; the other end, ``vb``, is a plain AF_PACKET
socket, so what is checked is what the kernel really carried.  Each test gets
its own network namespace with the veth pair (conftest.py's ``netns``, removed
afterwards, also on failure; reshaped here for jumbo MTU or four queues) and
its own runtime directory; the bodies run inside the namespace through
``netns.run``.

What is checked, on every backend alike:

- data: frames of 60 to 9000 bytes, many of them, each with a sequence number,
  arrive byte-exact and in order in both directions; frames larger than a
  buffer arrive as NS_MOREFRAG chains (``dispatch`` reassembles them) and
  chains written on TX, by ``inject`` or slot by slot, leave as one frame;
  an RX ring too small for a burst is filled with whole chains only; VLAN
  headers (802.1Q, 802.1ad) are kept both ways;
- ring semantics (netmap's): txsync hands [hwcur, head) to the kernel, which
  sends all of it with no further call, and the TX tail advances as the
  kernel completes; the RX tail changes only in rxsync, and rxsync never
  moves head or cur;
- poll() POLLIN/POLLOUT, and the bare fileno() is readable while frames wait;
- a port does not receive the frames it sends;
- ``ring->ts`` is set by every rxsync, not with no_timestamp (unless the
  ring's NR_TIMESTAMP flag asks for it), and never on TX rings;
- NS_REPORT on TX slots is accepted: netmap uses it only to request a TX
  completion event, which these backends need not ask for (the TX tail
  advances as the kernel completes), so what is checked is that such slots
  go out unchanged and are all given back;
- NS_BUF_CHANGED: AF_XDP RX sets it on every received slot (the frame
  arrives in a buffer of the kernel's choosing); AF_PACKET copies into the
  slot's own buffer, also one the user swapped in, and leaves it clear;
  on TX, a buffer swapped in with NS_BUF_CHANGED is sent, and txsync clears
  the flag;
- a four-queue veth: per-queue ports ``netmap:va-k`` together receive every
  frame exactly once, and ring k of ``netmap:va`` gets what queue k got.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import closing

import pytest

import nmcompat
from nmcompat import NS_BUF_CHANGED, NS_MOREFRAG, NS_REPORT
from nmcompat._ring import NR_TIMESTAMP

from nic_support import (JUMBO, MAC_A, MAC_B, PACKET_AUXDATA, SOL_PACKET,
                         carries_magic, describe_mismatch, frame, peer_recv_wire, vlan_frame,
                         give_extra, group_by, is_ours, open_nic, open_nic_retrying, peer_quiet,
                         peer_receiver, peer_recv, peer_sender, port_collect, port_drain,
                         port_quiet, port_send, put_chain, quiet, readable, reshape_veth,
                         ring_frames, set_mtu, take_extra, tx_done, udp_frame, udp_seq,
                         wait_until)

pytestmark = pytest.mark.kernel

ETH_P_ALL = 3

SIZES = [60, 61, 1514, 2047, 2048, 2049, 4096, 9000]


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def count_for(size: int) -> int:
    return 2000 if size <= 1514 else 600 if size <= 4096 else 300


def window_for(size: int) -> int:
    """Frames in flight at once: well inside every ring on the way."""
    return 256 if size <= 1514 else 64


def to_peer(seq: int, size: int, tag: int = 0) -> bytes:
    return frame(seq, size, tag, src=MAC_A, dst=MAC_B)


def chain_text(chain) -> str:
    return ", ".join(f"{c['slot']}:{c['len']}/{c['flags']:#x}" for c in chain)


# -- byte-exact exchange with a plain socket, both directions -----------------------

def _peer_to_port(backend, mode, size, count):
    quiet()
    window = window_for(size)
    with open_nic("netmap:va", backend, mode) as port, closing(peer_sender()) as tx:
        expected = [frame(i, size) for i in range(count)]
        got = []
        sent = 0
        while sent < count:
            for f in expected[sent:sent + window]:
                tx.send(f)
            sent = min(sent + window, count)
            if not port_drain(port, lambda: len(got) >= sent, lambda h, d: got.append(d)):
                break
        got += port_quiet(port, 0.2)
        problem = describe_mismatch(got, expected)
        assert not problem, f"{backend}/{mode}: {count} x {size} B from vb: {problem}"


def _port_to_peer(backend, mode, size, count):
    quiet()
    window = window_for(size)
    with open_nic("netmap:va", backend, mode) as port, closing(peer_receiver()) as rx:
        expected = [to_peer(i, size) for i in range(count)]
        got = []
        for start in range(0, count, window):
            batch = expected[start:start + window]
            port_send(port, batch)
            assert tx_done(port), "the TX ring was not given back"  # nm_tx_pending() loop
            got += peer_recv(rx, start + len(batch) - len(got))
        got += peer_quiet(rx, 0.2)
        problem = describe_mismatch(got, expected)
        assert not problem, f"{backend}/{mode}: {count} x {size} B to vb: {problem}"
        assert tx_done(port), "the TX ring was not given back"


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("direction", ["rx", "tx"])
def test_exchange_byte_exact(netns, nic, direction, size):
    if size > 1514:
        set_mtu(netns, JUMBO)
    body = _peer_to_port if direction == "rx" else _port_to_peer
    netns.run(body, *nic, size, count_for(size))


# -- NS_MOREFRAG chains -------------------------------------------------------------

def _rx_chains(backend, mode):
    quiet()
    with open_nic("netmap:va", backend, mode) as port, closing(peer_sender()) as tx:
        ring = port.rx_rings[0]
        bs = ring.nr_buf_size
        expected = [frame(i, JUMBO) for i in range(20)]
        for f in expected:
            tx.send(f)
        got = []
        deadline = time.monotonic() + 10
        while len(got) < len(expected) and time.monotonic() < deadline:
            port.poll(nmcompat.POLLIN, 100)
            got += [(c, d) for c, d in ring_frames(port, ring) if is_ours(d)]
        assert [d for _, d in got] == expected
        for chain, data in got:
            assert len(chain) >= math.ceil(JUMBO / bs), chain_text(chain)
            assert all(c["flags"] & NS_MOREFRAG for c in chain[:-1]), chain_text(chain)
            assert not chain[-1]["flags"] & NS_MOREFRAG, chain_text(chain)
            assert all(0 < c["len"] <= bs for c in chain), chain_text(chain)
            assert [c["slot"] for c in chain] == \
                [(chain[0]["slot"] + k) % ring.num_slots for k in range(len(chain))]


def test_rx_large_frames_arrive_as_morefrag_chains(netns, nic):
    """A 9000-byte frame fills consecutive slots, NS_MOREFRAG on all but the
    last, each at most a buffer; read slot by slot it is the frame sent."""
    set_mtu(netns, JUMBO)
    netns.run(_rx_chains, *nic)


def _tx_chains(backend, mode):
    quiet()
    pieces_at = [0, 1000, 3048, 4548, 6596, 8644, JUMBO]   # 1000, 2048, 1500, 2048, 2048, 356 B
    with open_nic("netmap:va", backend, mode) as port, closing(peer_receiver()) as rx:
        ring = port.tx_rings[0]
        n = ring.num_slots
        # a chain from slots, then one that wraps past the end of the ring
        first = to_peer(0, JUMBO)
        put_chain(ring, [first[a:b] for a, b in zip(pieces_at, pieces_at[1:])])
        port.txsync()
        assert peer_recv(rx, 1) == [first]
        assert tx_done(port)
        fillers = [to_peer(1 + i, 60, tag=1) for i in range(n - 2 - ring.head)]
        for start in range(0, len(fillers), 256):
            port_send(port, fillers[start:start + 256])
            assert peer_recv(rx, len(fillers[start:start + 256])) == fillers[start:start + 256]
        assert tx_done(port) and ring.head == n - 2
        wrapped = to_peer(9999, JUMBO, tag=2)
        put_chain(ring, [wrapped[a:b] for a, b in zip(pieces_at, pieces_at[1:])])
        assert ring.head == 4
        port.txsync()
        assert peer_recv(rx, 1) == [wrapped]
        # half a chain is held back until the rest of it is there
        third = to_peer(10000, JUMBO, tag=3)
        pieces = [third[a:b] for a, b in zip(pieces_at, pieces_at[1:])]
        put_chain(ring, pieces[:2], more=True)             # the chain goes on
        port.txsync()
        assert peer_quiet(rx, 0.3) == [], "half a chain went out as a frame"
        put_chain(ring, pieces[2:])
        port.txsync()
        assert peer_recv(rx, 1) == [third]
        # inject() of a frame larger than a buffer makes a chain
        fourth = to_peer(10001, JUMBO, tag=4)
        head = ring.head
        assert port.inject(fourth) == JUMBO
        assert ring.head == (head + math.ceil(JUMBO / ring.nr_buf_size)) % n
        assert all(ring.slots[(head + k) % n]["flags"] & NS_MOREFRAG for k in range(4))
        port.txsync()
        assert peer_recv(rx, 1) == [fourth]
        assert peer_quiet(rx, 0.2) == []
        assert tx_done(port)


def test_tx_morefrag_chains_leave_whole(netns, nic):
    """Chains written slot by slot (also across the end of the ring, also
    completed only by a later txsync) and by inject() arrive as one frame."""
    set_mtu(netns, JUMBO)
    netns.run(_tx_chains, *nic)


def _rx_ring_full(backend, mode, count):
    quiet()
    with open_nic("netmap:va", backend, mode, rx_slots=64) as port, closing(peer_sender()) as tx:
        ring = port.rx_rings[0]
        assert ring.num_slots == 64
        sent = [frame(i, JUMBO, tag=3) for i in range(count)]   # 5 slots each
        for f in sent:
            tx.send(f)
        assert readable(port.fileno(), 10)
        time.sleep(0.2)                         # let every frame reach the kernel's side
        port.rxsync()
        first = ring_frames(port, ring)         # a full ring holds whole chains only
        assert 0 < len(first) <= 12, [len(c) for c, _ in first]
        got = [d for _, d in first]
        deadline = time.monotonic() + 10
        while len(got) < count and time.monotonic() < deadline:
            port.poll(nmcompat.POLLIN, 100)
            got += [d for _, d in ring_frames(port, ring)]
        assert got == sent, describe_mismatch(got, sent)


@pytest.mark.parametrize("count", [13, 30])
def test_rx_full_ring_takes_whole_chains(netns, nic, count):
    """A ring too small for the burst: rxsync stops before a chain that does
    not fit (never half a frame at tail) and the next rxsyncs bring the rest,
    in order.  (count 30 needs 150 buffers: the kernel side must hold them
    while the 64-slot ring is full.)"""
    set_mtu(netns, JUMBO)
    netns.run(_rx_ring_full, *nic, count)


# -- VLAN headers ---------------------------------------------------------------------

VLAN_TAGS = [[(0x8100, 5)], [(0x8100, 0)], [(0x8100, 0xE123)], [(0x88A8, 100), (0x8100, 7)]]


def _vlan(backend, mode):
    quiet()
    specs = [(tags, size) for tags in VLAN_TAGS for size in (64, 1514, JUMBO) for _ in range(5)]
    with open_nic("netmap:va", backend, mode) as port, closing(peer_sender()) as tx, \
            closing(peer_receiver(proto=ETH_P_ALL)) as rx:
        rx.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        frames = [vlan_frame(seq, size, tags) for seq, (tags, size) in enumerate(specs)]
        for f in frames:
            tx.send(f)
        got = port_collect(port, len(frames), keep=carries_magic)
        assert got == frames, describe_mismatch(got, frames)
        back = [vlan_frame(seq, size, tags, src=MAC_A, dst=MAC_B)
                for seq, (tags, size) in enumerate(specs)]
        port_send(port, back)
        assert tx_done(port)
        out = peer_recv_wire(rx, len(back))
        assert out == back, describe_mismatch(out, back)


def test_vlan_headers_kept(netns, nic):
    """Frames with 802.1Q and 802.1ad/802.1Q headers arrive as they were on
    the wire, both ways.  (The kernel moves the outer VLAN header of a
    received frame into metadata before packet sockets see it; AF_XDP gets
    the frame before that.  netmap's emulated mode loses the header; the
    peer here puts it back from PACKET_AUXDATA, as libpcap does.)"""
    set_mtu(netns, JUMBO)
    netns.run(_vlan, *nic)


# -- ring semantics -------------------------------------------------------------------

def _tx_ring(backend, mode):
    quiet()
    with open_nic("netmap:va", backend, mode) as port, closing(peer_receiver()) as rx:
        ring = port.tx_rings[0]
        n = ring.num_slots
        assert (ring.head, ring.cur, ring.tail) == (0, 0, n - 1)
        frames = [to_peer(i, 100) for i in range(10)]
        for f in frames:
            put_chain(ring, [f])
        assert (ring.head, ring.cur, ring.tail) == (10, 10, n - 1), "moved without a sync"
        port.txsync()
        assert (ring.head, ring.cur) == (10, 10), "txsync moved head or cur"
        assert tx_done(port)
        assert ring.tail == 9, "the TX tail did not advance to head - 1"
        assert peer_recv(rx, 10) == frames
        # cur may run ahead of head: only [hwcur, head) goes out
        more = [to_peer(10 + i, 100) for i in range(4)]
        for f in more:
            put_chain(ring, [f])
        ring.head = 12
        port.txsync()
        assert peer_recv(rx, 2) == more[:2]
        assert peer_quiet(rx, 0.3) == [], "slots past head were sent"
        ring.head = 14
        port.txsync()
        assert peer_recv(rx, 2) == more[2:]
        assert tx_done(port) and ring.tail == 13


def test_tx_ring_indexes(netns, nic):
    netns.run(_tx_ring, *nic)


def _one_txsync(backend, mode, count):
    quiet()
    with open_nic("netmap:va", backend, mode) as port, closing(peer_receiver()) as rx:
        ring = port.tx_rings[0]
        frames = [to_peer(i, 60) for i in range(count)]
        for f in frames:
            put_chain(ring, [f])
        port.txsync()
        assert ring.head == count
        got = peer_recv(rx, count)          # the port is not touched again
        assert got == frames, describe_mismatch(got, frames)
        assert tx_done(port)


@pytest.mark.parametrize("count", [200, 600])
def test_one_txsync_sends_every_slot(netns, nic, count):
    """netmap: txsync hands [hwcur, head) to the NIC, which sends all of it
    with no further system call.  ``count`` slots in one txsync, then only
    the peer is watched."""
    netns.run(_one_txsync, *nic, count)


def _rx_ring(backend, mode):
    quiet()
    with open_nic("netmap:va", backend, mode) as port, closing(peer_sender()) as tx:
        ring = port.rx_rings[0]
        port.rxsync()
        assert ring.head == ring.cur == ring.tail == 0
        fd = port.fileno()
        frames = [frame(i, 100) for i in range(10)]
        for f in frames:
            tx.send(f)
        assert readable(fd, 10), "fileno() not readable with frames waiting"
        time.sleep(0.05)
        assert ring.tail == 0, "the RX tail moved outside rxsync"
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 10 and time.monotonic() < deadline:
            before = (ring.head, ring.cur)
            port.rxsync()
            assert (ring.head, ring.cur) == before, "rxsync moved head or cur"
            got += [d for _, d in ring_frames(port, ring) if is_ours(d)]
            if len(got) < 10:
                readable(fd, 0.1)
        assert got == frames
        port.rxsync()
        assert ring.head == ring.cur == ring.tail == 10
        # released slots are not seen again, and nothing is left to read
        assert port_quiet(port, 0.2) == []
        assert wait_until(lambda: not readable(fd, 0), 5), "fileno() readable with nothing waiting"


def test_rx_tail_changes_only_in_rxsync(netns, nic):
    netns.run(_rx_ring, *nic)


def _poll(backend, mode):
    quiet()
    with open_nic("netmap:va", backend, mode) as port, closing(peer_sender()) as tx:
        assert port.poll(nmcompat.POLLOUT, 0) == nmcompat.POLLOUT
        assert port.poll(nmcompat.POLLIN, 200) == 0, "POLLIN with nothing sent"
        assert port.poll(nmcompat.POLLIN, 0) == 0
        tx.send(frame(0, 60))
        deadline = time.monotonic() + 10
        revents = 0
        while not revents & nmcompat.POLLIN and time.monotonic() < deadline:
            revents = port.poll(nmcompat.POLLIN | nmcompat.POLLOUT, 1000)
        assert revents == nmcompat.POLLIN | nmcompat.POLLOUT
        assert port_collect(port, 1) == [frame(0, 60)]
        assert port.poll(nmcompat.POLLIN, 100) == 0
        # POLLOUT again once a full TX batch has been handed to the kernel
        port_send(port, [to_peer(i, 60) for i in range(200)])
        assert wait_until(lambda: port.poll(nmcompat.POLLOUT, 100) == nmcompat.POLLOUT)


def test_poll_pollin_pollout(netns, nic):
    netns.run(_poll, *nic)


def _fileno(backend, mode):
    quiet()
    with open_nic("netmap:va", backend, mode) as port, closing(peer_sender()) as tx:
        fd = port.fileno()
        assert fd >= 0 and port.fileno() == fd
        assert not readable(fd, 0.1)
        for round_ in range(3):
            tx.send(frame(round_, 200))
            assert readable(fd, 10), f"round {round_}: not readable with a frame waiting"
            assert port_collect(port, 1) == [frame(round_, 200)]
            assert wait_until(lambda: not readable(fd, 0), 5), \
                f"round {round_}: still readable after the frame was taken"


def test_fileno_readable_when_frames_wait(netns, nic):
    netns.run(_fileno, *nic)


def _own_frames(backend, mode):
    quiet()
    with open_nic("netmap:va", backend, mode) as port, closing(peer_receiver()) as rx, \
            closing(peer_sender()) as tx:
        mine = [to_peer(i, 64 + i) for i in range(100)]
        port_send(port, mine)
        assert peer_recv(rx, 100) == mine
        assert port_quiet(port, 0.5) == [], "the port received frames it sent"
        theirs = [frame(i, 64 + i, tag=7) for i in range(5)]
        for f in theirs:
            tx.send(f)
        assert port_collect(port, 5) == theirs
        assert port_quiet(port, 0.2) == []


def test_own_frames_are_not_received(netns, nic):
    netns.run(_own_frames, *nic)


# -- ring->ts and NS_REPORT ----------------------------------------------------------

def _zero_ts(ring) -> None:
    ring._c.ts.tv_sec = 0
    ring._c.ts.tv_usec = 0


def _timestamps(backend, mode, env_off):
    quiet()
    if env_off:
        os.environ["NMCOMPAT_NO_TIMESTAMP"] = "1"
    with open_nic("netmap:va", backend, mode) as port, closing(peer_sender()) as tx:
        ring = port.rx_rings[0]
        stamped = not env_off
        _zero_ts(ring)
        _zero_ts(port.tx_rings[0])
        port.rxsync()
        if stamped:
            assert abs(ring.ts - time.time()) < 3600, f"ring->ts {ring.ts} after rxsync"
        else:
            assert ring.ts == 0, "ring->ts set although timestamps are off"
        first = ring.ts
        port.rxsync()
        assert ring.ts >= first
        tx.send(frame(1, 60))
        hdrs = []
        port_drain(port, lambda: bool(hdrs), lambda h, d: hdrs.append(h))
        assert len(hdrs) == 1
        assert hdrs[0].ts == ring.ts, "the packet header's ts is not the ring's"
        assert (ring.ts > 0) == stamped
        put_chain(port.tx_rings[0], [to_peer(0, 60)])
        port.txsync()
        assert port.tx_rings[0].ts == 0, "a TX ring was stamped"
        if not stamped:                 # NR_TIMESTAMP asks for it per ring
            ring.flags = ring.flags | NR_TIMESTAMP
            port.rxsync()
            assert abs(ring.ts - time.time()) < 3600
            ring.flags = ring.flags & ~NR_TIMESTAMP
            _zero_ts(ring)
            port.rxsync()
            assert ring.ts == 0


@pytest.mark.parametrize("timestamps", ["on", "env_off"])
def test_ring_timestamps(netns, nic, timestamps):
    """ring->ts is set by every rxsync (even one that brings nothing) unless
    NMCOMPAT_NO_TIMESTAMP=1, when only NR_TIMESTAMP in ring->flags asks for
    it; dispatch() headers carry it; TX rings are not stamped."""
    netns.run(_timestamps, *nic, timestamps == "env_off")


def _no_timestamp_option(backend, mode):
    quiet()
    for off in (True, False, True):
        with open_nic_retrying("netmap:va", backend, mode, no_timestamp=off) as port:
            ring = port.rx_rings[0]
            _zero_ts(ring)
            port.rxsync()
            assert (ring.ts == 0) == off, f"no_timestamp={off}: ring->ts {ring.ts}"


def test_no_timestamp_option(netns, nic):
    """open(no_timestamp=True) is netmap's no_timestamp for that port."""
    netns.run(_no_timestamp_option, *nic)


def _ns_report(backend, mode):
    quiet()
    with open_nic("netmap:va", backend, mode) as port, closing(peer_receiver()) as rx:
        ring = port.tx_rings[0]
        frames = [to_peer(i, 60 + 17 * i) for i in range(64)]
        for i, f in enumerate(frames):
            put_chain(ring, [f], flags=NS_REPORT if i % 2 == 0 else 0)
        big = to_peer(64, 5000)
        put_chain(ring, [big[:2048], big[2048:4096], big[4096:]], flags=NS_REPORT)
        port.txsync()
        assert peer_recv(rx, 65) == frames + [big]
        assert peer_quiet(rx, 0.2) == []
        assert tx_done(port), "TX slots with NS_REPORT were not given back"
        assert ring.tail == ring.head - 1
        assert port.poll(nmcompat.POLLOUT, 1000) == nmcompat.POLLOUT


def test_ns_report_accepted(netns, nic):
    """netmap: NS_REPORT asks for a completion event on that slot; here the
    slots go out unchanged and come back as every other slot does."""
    set_mtu(netns, JUMBO)
    netns.run(_ns_report, *nic)


# -- NS_BUF_CHANGED ---------------------------------------------------------------------

def _rx_buf_changed(backend, mode):
    quiet()
    with open_nic("netmap:va", backend, mode, rx_slots=64, extra_bufs=2) as port, \
            closing(peer_sender()) as tx:
        ring = port.rx_rings[0]
        n = ring.num_slots
        assert n == 64
        own = [int(b) for b in ring.slots["buf_idx"]]
        extras_before = port.info.extra_bufs

        def receive(count, tag):
            sent = [frame(i, 100 + i, tag=tag) for i in range(count)]
            got = []
            for start in range(0, count, 16):      # well inside the 64 slots
                for f in sent[start:start + 16]:
                    tx.send(f)
                deadline = time.monotonic() + 10
                while len(got) < min(start + 16, count) and time.monotonic() < deadline:
                    port.poll(nmcompat.POLLIN, 100)
                    got += [(c, d) for c, d in ring_frames(port, ring) if is_ours(d)]
            assert [d for _, d in got] == sent
            return [c[0] for c, _ in got]

        first = receive(1, 0)[0]
        j = first["slot"]
        if backend == "afxdp":
            assert first["flags"] & NS_BUF_CHANGED, "AF_XDP RX slot without NS_BUF_CHANGED"
        else:
            assert not first["flags"] & NS_BUF_CHANGED
            assert first["buf_idx"] == own[j], "AF_PACKET changed the slot's buffer"
        # swap the buffer of the slot just received for an extra one, release it
        swapped = take_extra(port)
        give_extra(port, first["buf_idx"])
        ring.slots[j]["buf_idx"] = swapped
        ring.slots[j]["flags"] = NS_BUF_CHANGED
        # a full turn of the ring brings a frame into slot j again
        slots = receive(n, 1)
        again = [s for s in slots if s["slot"] == j]
        assert len(again) == 1
        for s in slots:
            if backend == "afxdp":
                assert s["flags"] & NS_BUF_CHANGED, f"slot {s} without NS_BUF_CHANGED"
            else:
                assert not s["flags"] & NS_BUF_CHANGED, f"slot {s} with NS_BUF_CHANGED"
                want = swapped if s["slot"] == j else own[s["slot"]]
                assert s["buf_idx"] == want, f"slot {s}: AF_PACKET did not use the slot's buffer"
        assert all(2 <= s["buf_idx"] < port.info.buf_num for s in slots)
        port.rxsync()
        # the extra-buffer list still holds as many buffers as it was given
        count, idx = 0, port.bufs_head
        while idx:
            count += 1
            idx = int.from_bytes(port.buf(idx)[:4], "little")
        assert count == extras_before == 2


def test_rx_ns_buf_changed(netns, nic):
    netns.run(_rx_buf_changed, *nic)


def _tx_buf_changed(backend, mode):
    quiet()
    with open_nic("netmap:va", backend, mode, extra_bufs=4) as port, \
            closing(peer_receiver()) as rx:
        ring = port.tx_rings[0]
        sent = []
        for i in range(3):
            data = to_peer(i, 300 + i)
            mine = take_extra(port)
            port.buf(mine)[:len(data)] = data
            j = ring.head
            slot = ring.slots[j]
            give_extra(port, int(slot["buf_idx"]))
            slot["buf_idx"], slot["len"], slot["flags"] = mine, len(data), NS_BUF_CHANGED
            ring.head = ring.cur = ring.next(j)
            sent.append((j, mine, data))
        port.txsync()
        assert peer_recv(rx, 3) == [d for _, _, d in sent]
        for j, mine, _ in sent:
            assert int(ring.slots[j]["buf_idx"]) == mine
            assert not ring.slots[j]["flags"] & NS_BUF_CHANGED, "txsync left NS_BUF_CHANGED"
        assert tx_done(port)
        # the swapped-in buffers stay in the ring and are used again
        later = [to_peer(10 + i, 80) for i in range(ring.num_slots + 8)]
        for start in range(0, len(later), 256):
            port_send(port, later[start:start + 256])
            assert peer_recv(rx, len(later[start:start + 256])) == later[start:start + 256]
        assert tx_done(port)


def test_tx_ns_buf_changed(netns, nic):
    netns.run(_tx_buf_changed, *nic)


# -- four queues ---------------------------------------------------------------------------

QUEUES = 4
FLOWS = 64


def _multiqueue(backend, mode):
    quiet()
    expected = {i: udp_frame(i, 2000 + i % FLOWS) for i in range(8 * FLOWS)}
    keep = lambda d: udp_seq(d) is not None        # noqa: E731
    with closing(peer_sender()) as tx:
        # one port per queue: together they get every frame exactly once
        ports = [open_nic(f"netmap:va-{q}", backend, mode) for q in range(QUEUES)]
        try:
            for q, p in enumerate(ports):
                assert p.info.queues == (q,) and len(p.rx_rings) == 1 and len(p.tx_rings) == 1
            for f in expected.values():
                tx.send(f)
            by_queue = {q: [] for q in range(QUEUES)}
            deadline = time.monotonic() + 10
            while sum(map(len, by_queue.values())) < len(expected) and \
                    time.monotonic() < deadline:
                for q, p in enumerate(ports):
                    p.rxsync()
                    p.dispatch(lambda h, d, q=q: keep(d) and by_queue[q].append(bytes(d)))
                time.sleep(0.01)
            for q, p in enumerate(ports):
                by_queue[q] += port_quiet(p, 0.1, keep)
        finally:
            for p in ports:
                p.close()
        union = [f for fs in by_queue.values() for f in fs]
        assert sorted(map(udp_seq, union)) == sorted(expected), \
            f"per-queue ports got {len(union)} of {len(expected)} " \
            f"({ {q: len(v) for q, v in by_queue.items()} })"
        assert all(f == expected[udp_seq(f)] for f in union)
        queue_of = {udp_seq(f): q for q, fs in by_queue.items() for f in fs}
        assert len(set(queue_of.values())) > 1, "every flow on one queue"
        for q, fs in by_queue.items():   # each queue in sending order
            seqs = [udp_seq(f) for f in fs]
            assert seqs == sorted(seqs), f"queue {q} reordered"

        # the port of all queues: ring k gets what queue k got
        with open_nic_retrying("netmap:va", backend, mode) as port:
            assert len(port.rx_rings) == QUEUES and port.info.queues == tuple(range(QUEUES))
            fd = port.fileno()
            assert not readable(fd, 0.05)
            for f in expected.values():
                tx.send(f)
            assert readable(fd, 10), "fileno() of a 4-queue port not readable"
            by_ring = {}
            port_drain(port, lambda: len(by_ring) >= len(expected),
                       lambda h, d: by_ring.setdefault(udp_seq(d), []).append((h.ring, d)),
                       keep=keep)
            by_ring_extra = port_quiet(port, 0.2, keep)
            assert not by_ring_extra and sorted(by_ring) == sorted(expected)
            assert all(len(v) == 1 and v[0][1] == expected[s] for s, v in by_ring.items())
            moved = {s: (queue_of[s], v[0][0]) for s, v in by_ring.items()
                     if v[0][0] != queue_of[s]}
            assert not moved, f"(queue, ring) of frames on another ring: {list(moved.items())[:8]}"

            # every TX ring sends
            with closing(peer_receiver(proto=0x0800)) as rx:
                sent = []
                for k, ring in enumerate(port.tx_rings):
                    for i in range(50):
                        f = udp_frame(10000 + 100 * k + i, 3000 + i)
                        f = MAC_B + MAC_A + f[12:]
                        put_chain(ring, [f])
                        sent.append(f)
                port.txsync()
                got = peer_recv(rx, len(sent), keep=keep)
                assert sorted(got) == sorted(sent)
                assert tx_done(port)
                by_ring_tx = group_by(got, lambda f: (udp_seq(f) - 10000) // 100)
                for k, fs in by_ring_tx.items():   # each TX ring in order
                    assert fs == [f for f in sent if (udp_seq(f) - 10000) // 100 == k]


def test_four_queues(netns, nic):
    reshape_veth(netns, QUEUES)
    netns.run(_multiqueue, *nic)
