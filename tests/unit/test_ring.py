"""Ring semantics (initial state, ownership, who moves tail), the txsync /
rxsync prologue checks and reinit, and the Python Port/Ring API over a
netmap pipe in one process."""
from __future__ import annotations

import errno
import itertools
import select

import numpy as np
import pytest

import nmcompat
from nmcompat import NM_MORE_PKTS, NS_BUF_CHANGED, NS_MOREFRAG, POLLERR, POLLIN, POLLOUT

_ids = itertools.count()


def u8(view) -> np.ndarray:
    return np.frombuffer(view, dtype=np.uint8)


@pytest.fixture
def pipe(rundir):
    """(master, slave) of a fresh 16-slot pipe."""
    name = f"r{next(_ids)}"
    with nmcompat.open(f"netmap:x{{{name}", slots=16, buf_num=1024) as m, \
            nmcompat.open(f"netmap:x}}{name}") as s:
        yield m, s


def ring_state(ring):
    return ring.head, ring.cur, ring.tail


def send_n(port, n, size=60, start=0):
    for k in range(start, start + n):
        assert port.inject(bytes([k & 0xFF]) * size) == size
    port.txsync()


def receive_all(port):
    """rxsync, then every packet (bytes) via dispatch; released by the next sync."""
    port.rxsync()
    out = []
    port.dispatch(lambda hdr, data: out.append(bytes(data)))
    return out


def write_slot(port, ring, slot, payload: bytes, flags=0):
    s = ring.slots[slot]
    u8(port.buf(int(s["buf_idx"])))[:len(payload)] = list(payload)
    ring.slots[slot]["len"] = len(payload)
    ring.slots[slot]["flags"] = flags


# ---------------------------------------------------------------------------
# initial state and ownership


def test_initial_state(rundir):
    with nmcompat.open("netmap:x{1") as m, nmcompat.open("netmap:x}1") as s:
        for port in (m, s):
            (tx,), (rx,) = port.tx_rings, port.rx_rings
            assert tx.num_slots == rx.num_slots == 1024
            assert ring_state(tx) == (0, 0, 1023)
            assert ring_state(rx) == (0, 0, 0)
            assert (tx.dir, rx.dir, tx.ringid, rx.ringid) == (0, 1, 0, 0)
            assert tx.nr_buf_size == rx.nr_buf_size == 2048
            assert tx.space() == 1023 and rx.space() == 0
            assert not tx.empty() and rx.empty()
            assert not tx.tx_pending()
            for ring in (tx, rx):
                assert ring.slots.dtype.names == ("buf_idx", "len", "flags", "ptr")
                assert (ring.slots["len"] == 2048).all()
                assert (ring.slots["flags"] == 0).all()
                assert (ring.slots["buf_idx"] >= 2).all()
                assert len(set(ring.slots["buf_idx"].tolist())) == 1024


def test_tx_capacity_is_one_less_than_the_ring(pipe):
    m, s = pipe
    tx = m.tx_rings[0]
    n = 0
    while m.inject(b"x" * 64):
        n += 1
        assert n < 100
    assert n == 15 and tx.space() == 0 and tx.head == tx.tail == 15
    m.txsync()
    assert m.inject(b"y") == 0                  # nobody released anything
    assert len(receive_all(s)) == 15


def test_tail_moves_only_in_the_ports_own_sync(pipe):
    m, s = pipe
    tx, rx = m.tx_rings[0], s.rx_rings[0]
    send_n(m, 3)
    assert ring_state(rx) == (0, 0, 0)          # the peer published, we did not sync
    m.poll(POLLOUT, 0)
    assert rx.tail == 0
    s.rxsync()
    assert ring_state(rx) == (0, 0, 3)
    rx.head = rx.cur = 3                        # release
    assert tx.tail == 15                        # TX tail untouched so far
    s.rxsync()
    assert tx.tail == 15                        # still: the sender has not synced
    m.txsync()
    assert tx.tail == 2 and tx.space() == 15    # prev(released head)
    assert not tx.tx_pending()


def test_nothing_moves_without_a_sync(pipe):
    m, s = pipe
    m.inject(b"a")
    m.inject(b"b")
    assert m.tx_rings[0].head == 2
    s.rxsync()
    assert s.rx_rings[0].tail == 0              # inject does not sync
    m.txsync()
    s.rxsync()
    assert s.rx_rings[0].tail == 2


def test_cur_ahead_of_head_is_legal(pipe):
    m, s = pipe
    tx = m.tx_rings[0]
    for k in range(4):
        write_slot(m, tx, k, b"p%d" % k)
    tx.head, tx.cur = 2, 4              # release 2, keep 2 reserved
    m.txsync()
    assert receive_all(s) == [b"p0", b"p1"]
    tx.head = 4
    m.txsync()
    assert receive_all(s) == [b"p2", b"p3"]


def test_ring_can_be_used_to_its_full_capacity(pipe):
    m, s = pipe
    tx, rx = m.tx_rings[0], s.rx_rings[0]
    for k in range(15):
        write_slot(m, tx, k, b"f%d" % k)
    tx.head = tx.cur = 15               # head == tail: allowed
    m.txsync()
    s.rxsync()
    assert rx.tail == 15 and len(receive_all(s)) == 15


# ---------------------------------------------------------------------------
# prologue validation, reinit


def _warm(pipe, k=5):
    m, s = pipe
    send_n(m, k)
    s.rxsync()
    return m, s


TX_BAD_INDEXES = {
    "head_out_of_range": dict(head=16),
    "head_far_out": dict(head=0xFFFFFFFF),
    "cur_out_of_range": dict(cur=17),
    "cur_far_out": dict(cur=0x80000000),
    "head_behind_hwcur": dict(head=4, cur=4),
    "cur_behind_head": dict(head=7, cur=6),
    "head_beyond_tail": dict(head=0, cur=0),     # tail is 15, hwcur 5: 0 is past the tail
}


@pytest.mark.parametrize("how", ["txsync", "poll"])
@pytest.mark.parametrize("case", sorted(TX_BAD_INDEXES))
def test_tx_prologue_rejects_bad_indexes(pipe, case, how):
    m, s = _warm(pipe)
    tx = m.tx_rings[0]
    before = m.stats()["reinits"]
    for k, v in TX_BAD_INDEXES[case].items():
        setattr(tx, k, v)
    if how == "txsync":
        with pytest.raises(OSError) as ei:
            m.txsync()
        assert ei.value.errno == errno.EINVAL
    else:
        assert m.poll(POLLOUT, 0) & POLLERR
        assert m.poll(POLLOUT, 0) == POLLOUT     # the error is reported once
    assert ring_state(tx) == (5, 5, 15)          # head = cur = hwcur, tail = hwtail
    assert m.stats()["reinits"] == before + 1
    # the ring keeps working, in order
    send_n(m, 3, start=5)
    assert [p[0] for p in receive_all(s)] == [0, 1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("bad", ["idx0", "idx1", "idx_num", "idx_far", "len"])
def test_tx_prologue_rejects_bad_slots(pipe, bad):
    m, s = _warm(pipe)
    tx = m.tx_rings[0]
    buf_num = m.info.buf_num
    good = int(tx.slots[5]["buf_idx"])
    write_slot(m, tx, 5, b"bad")
    if bad == "len":
        tx.slots[5]["len"] = 2049
    else:
        tx.slots[5]["buf_idx"] = {"idx0": 0, "idx1": 1, "idx_num": buf_num,
                                  "idx_far": 0xFFFFFFFF}[bad]
    tx.head = tx.cur = 6
    with pytest.raises(OSError) as ei:
        m.txsync()
    assert ei.value.errno == errno.EINVAL
    assert ring_state(tx) == (5, 5, 15)
    if bad == "len":
        assert int(tx.slots[5]["len"]) == 0 and int(tx.slots[5]["buf_idx"]) == good
    else:                                        # a buffer of its own again, empty
        fresh = int(tx.slots[5]["buf_idx"])
        assert 2 <= fresh < buf_num and int(tx.slots[5]["len"]) == 0
        assert fresh not in [int(b) for k, b in enumerate(tx.slots["buf_idx"]) if k != 5]
    assert receive_all(s) == [bytes([k]) * 60 for k in range(5)]    # nothing more went out
    send_n(m, 2, start=5)                        # no repair needed from the application
    assert [p[0] for p in receive_all(s)] == [5, 6]


def test_tx_good_slots_before_a_bad_one_go_out(pipe):
    m, s = pipe
    tx = m.tx_rings[0]
    for k in range(3):
        write_slot(m, tx, k, b"ok%d" % k)
    write_slot(m, tx, 3, b"bad")
    tx.slots[3]["buf_idx"] = 1
    tx.head = tx.cur = 4
    with pytest.raises(OSError):
        m.txsync()
    assert tx.head == tx.cur and tx.head in (0, 3)
    got = receive_all(s)
    assert got in ([], [b"ok0", b"ok1", b"ok2"])
    assert b"bad" not in got


def test_len_equal_to_buffer_size_is_fine(pipe):
    m, s = pipe
    tx = m.tx_rings[0]
    write_slot(m, tx, 0, b"\x01" * 2048)
    tx.head = tx.cur = 1
    m.txsync()
    assert receive_all(s) == [b"\x01" * 2048]


RX_BAD_INDEXES = {
    "head_past_hwtail": dict(head=6, cur=6),
    "head_out_of_range": dict(head=16),
    "head_far_out": dict(head=0xFFFFFFFF),
    "cur_out_of_range": dict(cur=16),
    "cur_behind_head": dict(head=3, cur=2),
    "cur_past_hwtail": dict(cur=9),
}


@pytest.mark.parametrize("how", ["rxsync", "poll"])
@pytest.mark.parametrize("case", sorted(RX_BAD_INDEXES))
def test_rx_prologue_rejects_bad_indexes(pipe, case, how):
    m, s = _warm(pipe)
    rx = s.rx_rings[0]
    assert ring_state(rx) == (0, 0, 5)
    for k, v in RX_BAD_INDEXES[case].items():
        setattr(rx, k, v)
    if how == "rxsync":
        with pytest.raises(OSError) as ei:
            s.rxsync()
        assert ei.value.errno == errno.EINVAL
    else:
        assert s.poll(POLLIN, 0) & POLLERR
    assert ring_state(rx) == (0, 0, 5)
    assert s.stats()["reinits"] >= 1
    got = []
    s.dispatch(lambda h, d: got.append(bytes(d)))     # nothing was lost
    assert [p[0] for p in got] == [0, 1, 2, 3, 4]


def test_rx_head_behind_hwcur_is_rejected(pipe):
    m, s = _warm(pipe)
    rx = s.rx_rings[0]
    rx.head = rx.cur = 3
    s.rxsync()                           # releases 3: hwcur = 3
    rx.head = rx.cur = 2
    with pytest.raises(OSError) as ei:
        s.rxsync()
    assert ei.value.errno == errno.EINVAL
    assert ring_state(rx) == (3, 3, 5)


@pytest.mark.parametrize("idx", [0, 1, "num", 0xFFFFFFFF])
def test_rx_bad_swapped_buffer_is_rejected(pipe, idx):
    m, s = _warm(pipe)
    rx, tx = s.rx_rings[0], m.tx_rings[0]
    tx_before = tx.slots.copy()
    rx.slots[1]["buf_idx"] = s.info.buf_num if idx == "num" else idx
    rx.slots[1]["flags"] = NS_BUF_CHANGED
    rx.head = rx.cur = 3
    with pytest.raises(OSError) as ei:
        s.rxsync()
    assert ei.value.errno == errno.EINVAL
    fresh = int(rx.slots[1]["buf_idx"])                # a buffer of its own again
    assert 2 <= fresh < s.info.buf_num and fresh not in tx_before["buf_idx"].tolist()
    assert (tx.slots["buf_idx"] >= 2).all()           # no bad index reached the sender
    assert set(tx.slots["buf_idx"].tolist()) <= set(tx_before["buf_idx"].tolist())


def test_overwritten_tail_is_restored_silently(pipe):
    m, s = _warm(pipe)
    tx, rx = m.tx_rings[0], s.rx_rings[0]
    tx.tail = 3
    m.txsync()
    assert tx.tail == 15
    rx.tail = 12
    s.rxsync()
    assert rx.tail == 5
    assert m.stats()["reinits"] == s.stats()["reinits"] == 0


def test_poll_reports_pollerr_then_recovers(pipe):
    m, s = _warm(pipe)
    s.rx_rings[0].head = 99
    assert s.poll(POLLIN, 0) & POLLERR
    assert s.poll(POLLIN, 0) == POLLIN


def test_corrupted_ring_never_crashes_the_peer(pipe):
    m, s = _warm(pipe)
    tx, rx = m.tx_rings[0], s.rx_rings[0]
    # the receiver scribbles over every slot it was handed
    rx.slots["buf_idx"] = 0xFFFFFFFF
    rx.slots["len"] = 0xFFFF
    rx.slots["flags"] = 0xFFFF
    rx.head = rx.cur = 5                 # and hands them back
    with pytest.raises(OSError):
        s.rxsync()
    m.txsync()                           # the sender is unaffected
    assert (tx.slots["buf_idx"] >= 2).all() and (tx.slots["buf_idx"] < m.info.buf_num).all()


# ---------------------------------------------------------------------------
# the Python API


def test_port_is_a_context_manager_and_close_is_idempotent(rundir):
    with nmcompat.open("netmap:x{1", slots=8) as p:
        ring = p.tx_rings[0]
        assert isinstance(p.fileno(), int) and p.fileno() >= 0
        assert repr(p).startswith("<Port netmap:x{1")
        assert "head=0" in repr(ring)
    p.close()
    p.close()
    for call in (p.txsync, p.rxsync, p.fileno, p.stats, lambda: p.poll(POLLIN, 0),
                 lambda: p.inject(b"x"), p.nextpkt, lambda: ring.head, lambda: ring.space()):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(ValueError):
        ring.head = 1
    assert "closed" in repr(p)


def test_info(rundir):
    with nmcompat.open("netmap:x{1@conf:tx-rings=2,rx-rings=3,tx-slots=64,rx-slots=32",
                       extra_bufs=3) as m, nmcompat.open("netmap:x}1") as s:
        i = m.info
        assert i.backend == "pipe" and i.name == "netmap:x{1@conf:tx-rings=2,rx-rings=3,tx-slots=64,rx-slots=32"
        assert (i.tx_rings, i.rx_rings, i.tx_slots, i.rx_slots) == (2, 3, 64, 32)
        assert (i.host_tx_rings, i.host_rx_rings) == (0, 0)
        assert i.extra_bufs == 3 and i.bound_tx == range(0, 2) and i.bound_rx == range(0, 3)
        assert i.mem_id >= 2 and i.memsize > 0 and i.buf_size == 2048
        j = s.info
        assert (j.tx_rings, j.rx_rings, j.tx_slots, j.rx_slots) == (3, 2, 32, 64)
        assert j.mem_id == i.mem_id and j.memsize == i.memsize and j.region == i.region
        assert j.nr_offset != i.nr_offset
        nifp = m.nifp
        assert (nifp.ni_tx_rings, nifp.ni_rx_rings) == (2, 3)
        assert (nifp.ni_host_tx_rings, nifp.ni_host_rx_rings) == (1, 1)   # fake host rings
        assert nmcompat._ffi.ffi.string(nifp.ni_name) == b"x{1"
        assert nmcompat._ffi.ffi.string(s.nifp.ni_name) == b"x}1"
        assert nifp.ni_flags & 1                                    # NI_PRIV_MEM


def test_ring_index_helpers(pipe):
    m, s = pipe
    tx, rx = m.tx_rings[0], s.rx_rings[0]
    assert [tx.next(i) for i in (0, 14, 15)] == [1, 15, 0]
    send_n(m, 4)
    assert tx.space() == 11 and tx.tx_pending()
    s.rxsync()
    assert rx.space() == 4 and not rx.empty()
    rx.head = rx.cur = 4
    s.rxsync()
    assert rx.empty()
    m.txsync()
    assert not tx.tx_pending() and tx.space() == 15


def test_head_cur_tail_flags_are_settable(pipe):
    m, _ = pipe
    tx = m.tx_rings[0]
    tx.cur = 3
    tx.head = 2
    assert (tx.head, tx.cur) == (2, 3)
    tx.flags = nmcompat._ring.NR_TIMESTAMP
    assert tx.flags == nmcompat._ring.NR_TIMESTAMP
    tx.head = tx.cur = 0


def test_slots_array_is_shared_memory(pipe):
    m, s = pipe
    tx, rx = m.tx_rings[0], s.rx_rings[0]
    assert tx.slots.shape == (16,) and tx.slots.flags.writeable
    write_slot(m, tx, 0, b"hello zero copy", flags=0)
    tx.slots[0]["ptr"] = 0x1234
    tx.head = tx.cur = 1
    m.txsync()
    s.rxsync()
    assert int(rx.slots[0]["len"]) == 15
    assert int(rx.slots[0]["buf_idx"]) == int(tx.slots[0]["buf_idx"])   # the buffer moved, not the bytes
    assert bytes(u8(s.buf(int(rx.slots[0]["buf_idx"])))[:15]) == b"hello zero copy"
    # a second view of the same ring sees the same memory
    again = s.rx_rings[0].slots
    assert np.shares_memory(again, rx.slots) or int(again[0]["len"]) == 15


def test_buf_views_are_writable_and_bounded(pipe):
    m, s = pipe
    n = m.info.buf_num
    v = m.buf(n - 1)
    assert len(v) == 2048
    u8(v)[:3] = [1, 2, 3]
    assert bytes(u8(s.buf(n - 1))[:3]) == b"\x01\x02\x03"      # same region, other port
    for bad in (-1, n, n + 5):
        with pytest.raises(IndexError):
            m.buf(bad)
    with pytest.raises(IndexError):
        m.tx_rings[0].buf(n)


def test_inject_morefrag_chain_and_dispatch(pipe):
    m, s = pipe
    tx, rx = m.tx_rings[0], s.rx_rings[0]
    data = bytes(np.random.default_rng(1).integers(0, 256, 9000, dtype=np.uint8))
    assert m.inject(data) == 9000
    assert tx.head == tx.cur == 5
    assert [int(x) for x in tx.slots["len"][:5]] == [2048] * 4 + [808]
    assert [bool(f & NS_MOREFRAG) for f in tx.slots["flags"][:5]] == [True] * 4 + [False]
    m.txsync()
    s.rxsync()
    assert rx.tail == 5
    assert [int(x) for x in rx.slots["len"][:5]] == [2048] * 4 + [808]
    assert [bool(f & NS_MOREFRAG) for f in rx.slots["flags"][:5]] == [True] * 4 + [False]
    got = []
    assert s.dispatch(lambda h, d: got.append((h, bytes(d)))) == 1
    (hdr, payload), = got
    assert payload == data and hdr.len == hdr.caplen == 9000 and hdr.slot == 0 and hdr.ring == 0
    assert hdr.flags == 0
    assert rx.head == rx.cur == 5


def test_nextpkt_gives_single_slots(pipe):
    m, s = pipe
    data = bytes(range(256)) * 35 + b"tail"        # 8964 bytes
    m.inject(data)
    m.inject(b"short")
    m.txsync()
    s.rxsync()
    pieces = []
    while (item := s.nextpkt()) is not None:
        hdr, view = item
        pieces.append((hdr.len, hdr.caplen, hdr.slot, bytes(view)))
    assert [p[0] for p in pieces] == [2048, 2048, 2048, 2048, 772, 5]
    assert all(p[0] == p[1] for p in pieces)
    assert [p[2] for p in pieces] == [0, 1, 2, 3, 4, 5]
    assert b"".join(p[3] for p in pieces[:5]) == data and pieces[5][3] == b"short"
    assert s.rx_rings[0].head == 6


def test_dispatch_flags_count_and_order(pipe):
    m, s = pipe
    sizes = [10, 3000, 1, 2048, 2049, 60]
    for k, n in enumerate(sizes):
        assert m.inject(bytes([k]) * n) == n
    m.txsync()
    s.rxsync()
    got = []
    assert s.dispatch(lambda h, d: got.append((h.flags, h.len, bytes(d))), count=2) == 2
    assert s.dispatch(lambda h, d: got.append((h.flags, h.len, bytes(d)))) == 4
    assert [g[1] for g in got] == sizes
    assert [g[2] for g in got] == [bytes([k]) * n for k, n in enumerate(sizes)]
    assert [g[0] for g in got] == [NM_MORE_PKTS, 0, NM_MORE_PKTS, NM_MORE_PKTS, NM_MORE_PKTS, 0]
    assert s.dispatch(lambda h, d: None) == 0


def test_inject_needs_room_for_the_whole_chain(pipe):
    m, s = pipe
    send_n(m, 12)                         # 3 slots left
    assert m.inject(b"z" * 9000) == 0     # needs 5
    assert m.tx_rings[0].head == 12
    assert m.inject(b"z" * 6000) == 6000  # 3 fit exactly


def test_inject_too_long_for_any_chain(pipe):
    m, _ = pipe
    with pytest.raises(OSError) as ei:
        m.inject(bytes(65 * 2048))
    assert ei.value.errno == errno.EMSGSIZE


def test_timestamps(rundir):
    with nmcompat.open("netmap:x{1", slots=8) as m, nmcompat.open("netmap:x}1") as s, \
            nmcompat.open("netmap:x{2", slots=8) as m2, nmcompat.open("netmap:x}2", no_timestamp=True) as s2:
        for tx_port, rx_port in ((m, s), (m2, s2)):
            tx_port.inject(b"t")
            tx_port.txsync()
            rx_port.rxsync()
        assert s.rx_rings[0].ts > 1e9
        assert m.tx_rings[0].ts == 0                  # TX rings are not stamped
        assert s2.rx_rings[0].ts == 0
        s2.rx_rings[0].flags = nmcompat._ring.NR_TIMESTAMP
        s2.rxsync()
        assert s2.rx_rings[0].ts > 1e9
        got = []
        s.dispatch(lambda h, d: got.append(h.ts))
        assert got == [pytest.approx(s.rx_rings[0].ts)]


def test_send_and_recv_batches(pipe):
    m, s = pipe
    rng = np.random.default_rng(7)
    lens = np.array([1, 60, 2048, 2049, 5000, 100], dtype=np.uint32)
    pkts = rng.integers(0, 256, (len(lens), 5000), dtype=np.uint8)
    assert m.send(pkts, lens) == len(lens)           # 1+1+1+2+3+1 = 9 slots
    data, got_lens = s.recv(max_packets=64, snaplen=6000)
    assert list(got_lens) == list(lens)
    for k, n in enumerate(lens):
        assert bytes(data[k, :n]) == bytes(pkts[k, :n])
    # snaplen shorter than the packet: truncated copy, full length reported
    m.send(pkts[4:5], lens[4:5])
    data, got_lens = s.recv(snaplen=100)
    assert data.shape == (1, 100) and list(got_lens) == [5000]
    assert bytes(data[0]) == bytes(pkts[4, :100])


def test_send_stops_when_the_ring_is_full(pipe):
    m, s = pipe
    pkts = np.zeros((40, 64), dtype=np.uint8)
    pkts[:, 0] = np.arange(40)
    assert m.send(pkts) == 15
    data, lens = s.recv()
    assert list(data[:, 0]) == list(range(15))
    assert m.send(pkts[15:]) == 0                # room appears only after both sync
    s.rxsync()
    m.txsync()
    assert m.send(pkts[15:]) == 15
    data, lens = s.recv()
    assert list(data[:, 0]) == list(range(15, 30))


def test_send_recv_argument_checks(pipe):
    m, s = pipe
    with pytest.raises(ValueError):
        m.send(np.zeros(10, dtype=np.uint8))
    with pytest.raises(ValueError):
        m.send(np.zeros((2, 10), dtype=np.uint8), np.array([1, 2, 3]))
    with pytest.raises(ValueError):
        s.recv(out=np.zeros((4, 10), dtype=np.uint16))
    # a length longer than the row is refused, not clipped (test_api_refusals.py)
    with pytest.raises(nmcompat.BadArgument):
        m.send(np.ones((1, 10), dtype=np.uint8), np.array([50]))


def test_recv_into_caller_arrays(pipe):
    m, s = pipe
    out = np.zeros((8, 128), dtype=np.uint8)
    lens = np.zeros(8, dtype=np.uint32)
    m.send(np.full((3, 20), 7, dtype=np.uint8))
    data, got = s.recv(out=out, lengths=lens)
    assert data.base is out or np.shares_memory(data, out)
    assert list(got) == [20, 20, 20] and (out[:3, :20] == 7).all()


def test_stats_count_packets_and_bytes(pipe):
    m, s = pipe
    sizes = [100, 3000, 9000, 1]
    for n in sizes:
        m.inject(b"q" * n)
    m.txsync()
    got = receive_all(s)
    s.rxsync()                                   # releases them: counted now
    ms, ss = m.stats(), s.stats()
    assert [len(g) for g in got] == sizes
    assert ms["tx_pkts"] == 4 and ms["tx_bytes"] == sum(sizes)
    assert ss["rx_pkts"] == 4 and ss["rx_bytes"] == sum(sizes)
    assert ms["rx_pkts"] == 0 and ss["tx_pkts"] == 0
    assert ms["txsyncs"] >= 1 and ss["rxsyncs"] >= 2
    assert ms["reinits"] == ss["reinits"] == 0
    assert set(ms) >= {"tx_pkts", "tx_bytes", "rx_pkts", "rx_bytes", "txsyncs", "rxsyncs",
                       "reinits", "wakeups_sent", "sleeps", "polls"}


def test_poll_timeouts_and_readiness(pipe):
    m, s = pipe
    assert s.poll(POLLIN, 0) == 0
    assert s.poll(POLLIN, 30) == 0
    assert m.poll(POLLOUT, 0) == POLLOUT
    send_n(m, 15)
    assert m.poll(POLLOUT, 20) == 0               # full, nobody drains
    assert s.poll(POLLIN, 0) == POLLIN
    assert s.poll(POLLIN | POLLOUT, 0) == POLLIN | POLLOUT


def test_fileno_is_a_socket_select_accepts(pipe):
    m, s = pipe
    fds = {m.fileno(), s.fileno()}
    assert len(fds) == 2
    r, w, x = select.select([s.fileno()], [], [], 0)
    assert r == []


def test_a_txsync_that_fails_after_publishing_still_wakes_the_reader(pipe):
    """Good slots before a bad one are published, and the reader asleep on
    its fd must hear of them, although the sync returns an error: that
    path wakes at once instead of leaving it to the end of the sync."""
    m, s = pipe
    fd = s.fileno()
    s.rxsync()                                   # empty: the fd is armed
    assert select.select([fd], [], [], 0)[0] == []
    tx = m.tx_rings[0]
    write_slot(m, tx, 0, b"first")
    write_slot(m, tx, 1, b"bad")
    tx.slots[1]["buf_idx"] = 1
    tx.head = tx.cur = 2
    with pytest.raises(OSError):
        m.txsync()
    assert select.select([fd], [], [], 10)[0] == [fd], "the reader was not woken"
    assert receive_all(s) == [b"first"]
