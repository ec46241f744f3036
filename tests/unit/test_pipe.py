"""netmap pipes in one process: names in both grammars, parents, zero-copy
slot moves, back-pressure, whole-packet publication, @conf geometry, ring
binding (-k, /T, /R, /x), lifetime and counters."""
from __future__ import annotations

import dataclasses
import errno
import random

import numpy as np
import pytest

import nmcompat
from nmcompat import NS_BUF_CHANGED, NS_MOREFRAG, PortSpecError
from nmcompat._ffi import ffi, lib
from nmcompat._portspec import (NR_EXCLUSIVE, NR_REG_ALL_NIC, NR_REG_NIC_SW, NR_REG_ONE_NIC,
                                NR_REG_ONE_SW, NR_REG_SW, parse)
from testlib import rundir_entries


def u8(view) -> np.ndarray:
    return np.frombuffer(view, dtype=np.uint8)


def payloads(port):
    port.rxsync()
    out = []
    port.dispatch(lambda h, d: out.append(bytes(d)))
    port.rxsync()
    return out


def exchange(a, b, data=b"ping"):
    assert a.inject(data) == len(data)
    a.txsync()
    assert payloads(b) == [data]


def ring_ofs(port):
    """nifp->ring_ofs[] (at offset 56 of struct netmap_if)."""
    nifp = port.nifp
    total = nifp.ni_tx_rings + nifp.ni_host_tx_rings + nifp.ni_rx_rings + nifp.ni_host_rx_rings
    arr = ffi.cast("int64_t *", ffi.cast("char *", nifp) + 56)
    return [int(arr[i]) for i in range(total)]


# ---------------------------------------------------------------------------
# names


@pytest.mark.parametrize("master,slave,grammar,parent", [
    ("netmap:x{1", "netmap:x}1", "nmport", "x"),
    ("netmap:x{1", "netmap:x}1", "legacy", "x"),
    ("netmap:p{in", "netmap:p}in", "nmport", "p"),
    ("netmap:eth0{7", "netmap:eth0}7", "nmport", "eth0"),
    ("vale0:a{1", "vale0:a}1", "nmport", "vale0:a"),
    ("vale0:a{1", "vale0:a}1", "legacy", "vale0:a"),
])
def test_pipe_names(rundir, master, slave, grammar, parent):
    with nmcompat.open(master, grammar=grammar, slots=8) as m, \
            nmcompat.open(slave, grammar=grammar) as s:
        assert m.info.backend == s.info.backend == "pipe"
        assert m.info.mem_id == s.info.mem_id
        link = "parent." + parent.encode().hex()
        assert link in rundir_entries(rundir)               # the parent exists now
        exchange(m, s)
        exchange(s, m, b"pong")
    assert rundir_entries(rundir) == ["lock"]               # and goes with the pipe


def test_grammars_name_the_same_pipe(rundir):
    with nmcompat.open("netmap:x{3", grammar="legacy", slots=8) as m, \
            nmcompat.open("netmap:x}3") as s:
        exchange(m, s)


def test_pipes_of_one_parent_share_its_region(rundir):
    with nmcompat.open("netmap:x{1", slots=8) as a, nmcompat.open("netmap:x{2", slots=8) as b, \
            nmcompat.open("netmap:y{1", slots=8) as c:
        assert a.info.mem_id == b.info.mem_id != c.info.mem_id
        assert a.info.region == b.info.region != c.info.region
        with nmcompat.open("netmap:x}2") as d:
            exchange(b, d)
            with nmcompat.open("netmap:x}1") as e:
                exchange(a, e)


def test_same_id_on_two_parents_is_two_pipes(rundir):
    with nmcompat.open("netmap:a{1", slots=8) as a, nmcompat.open("netmap:b}1", slots=8) as b:
        a.inject(b"lost?")
        a.txsync()
        assert payloads(b) == []


def test_master_and_slave_are_crossed(rundir):
    with nmcompat.open("netmap:x}1", slots=8) as s, nmcompat.open("netmap:x{1") as m:
        exchange(s, m, b"slave first")          # the slave may create the pipe too
        exchange(m, s, b"master")


@pytest.mark.parametrize("text", ["netmap:x{1^", "netmap:x{1*", "netmap:x}1^", "netmap:x}1^2"])
def test_host_ring_modes_are_einval(rundir, text):
    with pytest.raises(PortSpecError) as ei:
        nmcompat.open(text)
    assert ei.value.errno == errno.EINVAL
    assert isinstance(ei.value, ValueError)
    assert rundir_entries(rundir) == []


@pytest.mark.parametrize("mode", [NR_REG_SW, NR_REG_NIC_SW, NR_REG_ONE_SW, 0, 7, 99])
def test_engine_refuses_other_modes(rundir, mode):
    """Below the parser: the Python backend and the C entry point both say EINVAL."""
    from nmcompat import backends
    spec = dataclasses.replace(parse("netmap:x{1"), mode=mode)
    with pytest.raises(OSError) as ei:
        backends.get("pipe").open(spec)
    assert ei.value.errno == errno.EINVAL
    keep = [ffi.new("char[]", b"x"), ffi.new("char[]", b"1")]
    req = ffi.new("struct nmc_pipe_req *")
    req.parent, req.pipe_id, req.mode, req.spin_us = keep[0], keep[1], mode, -1
    out = ffi.new("struct nmc_port **")
    assert lib.nmc_pipe_open(req, out) == -errno.EINVAL
    assert not any(n.startswith(("mem.", "ctl.", "parent.")) for n in rundir_entries(rundir))


def test_c_entry_point_validates_its_request(rundir):
    out = ffi.new("struct nmc_port **")
    assert lib.nmc_pipe_open(ffi.NULL, out) == -errno.EINVAL
    req = ffi.new("struct nmc_pipe_req *")
    req.mode = NR_REG_ALL_NIC
    assert lib.nmc_pipe_open(req, out) == -errno.EINVAL            # no parent, no id
    keep = [ffi.new("char[]", b"p" * 80), ffi.new("char[]", b"1"), ffi.new("char[]", b"x")]
    req.parent, req.pipe_id = keep[0], keep[1]
    assert lib.nmc_pipe_open(req, out) == -errno.ENAMETOOLONG
    req.parent, req.role = keep[2], 2
    assert lib.nmc_pipe_open(req, out) == -errno.EINVAL
    assert lib.nmc_port_close(ffi.NULL) == -errno.EINVAL


# ---------------------------------------------------------------------------
# zero copy


def test_slots_move_buffers_not_bytes(rundir):
    with nmcompat.open("netmap:x{1", slots=8) as m, nmcompat.open("netmap:x}1") as s:
        tx, rx = m.tx_rings[0], s.rx_rings[0]
        for rnd in range(5):                        # several laps around the ring
            sent = []
            for k in range(5):
                slot = tx.cur
                assert m.inject(b"%d.%d" % (rnd, k))
                sent.append((slot, int(tx.slots[slot]["buf_idx"])))
            m.txsync()
            s.rxsync()
            for slot, idx in sent:
                assert int(rx.slots[slot]["buf_idx"]) == idx
                assert bytes(u8(s.buf(idx))[:3]) == b"%d.%d" % (rnd, sent.index((slot, idx)))
            rx.head = rx.cur = rx.tail
            s.rxsync()
            m.txsync()


def test_receiver_swaps_a_buffer_and_the_sender_gets_it(rundir):
    with nmcompat.open("netmap:x{1", slots=4, buf_num=1024) as m, \
            nmcompat.open("netmap:x}1", extra_bufs=1) as s:
        tx, rx = m.tx_rings[0], s.rx_rings[0]
        spare = s.bufs_head
        assert m.inject(b"keep me")
        m.txsync()
        s.rxsync()
        taken = int(rx.slots[0]["buf_idx"])
        # keep the received buffer, give the ring the spare one (netmap's zero-copy receive)
        rx.slots[0]["buf_idx"] = spare
        rx.slots[0]["flags"] |= NS_BUF_CHANGED
        s.bufs_head = taken
        np.frombuffer(s.buf(taken), dtype="<u4", count=1)     # still ours, readable
        rx.head = rx.cur = 1
        s.rxsync()
        assert int(tx.slots[0]["buf_idx"]) == spare                 # handed back to the sender
        assert tx.slots[0]["flags"] & NS_BUF_CHANGED
        assert int(rx.slots[0]["flags"]) & NS_BUF_CHANGED == 0
        m.txsync()
        # go round the ring: slot 0 is used again, with the spare buffer
        for k in range(3):
            assert m.inject(b"lap %d" % k)
        m.txsync()
        assert payloads(s) == [b"lap 0", b"lap 1", b"lap 2"]
        m.txsync()
        assert tx.cur == 0
        assert m.inject(b"in the spare")
        assert tx.slots[0]["flags"] & NS_BUF_CHANGED                 # inject keeps the flag
        m.txsync()
        assert int(tx.slots[0]["flags"]) & NS_BUF_CHANGED == 0      # txsync clears it on TX
        s.rxsync()
        assert int(rx.slots[0]["buf_idx"]) == spare
        assert rx.slots[0]["flags"] & NS_BUF_CHANGED                 # the receiver is told
        assert bytes(u8(s.buf(spare))[:12]) == b"in the spare"


def test_sender_swaps_a_buffer(rundir):
    with nmcompat.open("netmap:x{1", slots=4, buf_num=1024, extra_bufs=1) as m, \
            nmcompat.open("netmap:x}1") as s:
        tx, rx = m.tx_rings[0], s.rx_rings[0]
        spare, old = m.bufs_head, int(tx.slots[0]["buf_idx"])
        u8(m.buf(spare))[:4] = list(b"swap")
        tx.slots[0]["buf_idx"] = spare
        tx.slots[0]["len"] = 4
        tx.slots[0]["flags"] = NS_BUF_CHANGED
        m.bufs_head = old
        tx.head = tx.cur = 1
        m.txsync()
        s.rxsync()
        assert int(rx.slots[0]["buf_idx"]) == spare
        assert rx.slots[0]["flags"] & NS_BUF_CHANGED
        assert payloads(s) == [b"swap"]


# ---------------------------------------------------------------------------
# back-pressure


def test_back_pressure_never_drops(rundir):
    with nmcompat.open("netmap:x{1", slots=16, buf_num=1024) as m, nmcompat.open("netmap:x}1") as s:
        tx, rx = m.tx_rings[0], s.rx_rings[0]
        n = 0
        while m.inject(b"%d" % n):
            n += 1
        assert n == 15
        m.txsync()
        assert m.inject(b"more") == 0 and tx.space() == 0
        m.txsync()
        assert tx.space() == 0                   # still full: nobody released
        s.rxsync()
        assert rx.space() == 15
        rx.head = rx.cur = 4                     # release 4
        s.rxsync()
        assert tx.space() == 0                   # the sender learns it at its sync
        m.txsync()
        assert tx.space() == 4


def test_a_sending_txsync_fetches_releases_only_when_half_the_ring_is_used(rundir):
    """The tail a txsync that queued slots reports lags the receiver's
    releases while at least half the ring is free by it; a txsync that
    queued nothing reports every release (netmap's drain loop)."""
    with nmcompat.open("netmap:x{1", slots=16, buf_num=1024) as m, nmcompat.open("netmap:x}1") as s:
        tx, rx = m.tx_rings[0], s.rx_rings[0]
        for k in range(4):
            assert m.inject(b"a%d" % k)
        m.txsync()
        assert tx.tail == 15 and tx.space() == 11
        s.rxsync()
        rx.head = rx.cur = rx.tail               # release all 4
        s.rxsync()
        assert m.inject(b"b")
        m.txsync()                               # queued one: 10 of 16 still free by its tail
        assert tx.tail == 15 and tx.space() == 10
        m.txsync()                               # queued nothing: fetches the releases
        assert tx.tail == 3 and tx.space() == 14
        for k in range(6):
            assert m.inject(b"c%d" % k)
        m.txsync()                               # 8 free by the tail seen: still kept
        assert tx.tail == 3 and tx.space() == 8
        assert m.inject(b"d")
        m.txsync()                               # 7 free, under half: fetched again
        assert tx.tail == 3 and tx.space() == 7
        s.rxsync()
        rx.head = rx.cur = rx.tail
        s.rxsync()
        assert m.inject(b"e")
        m.txsync()
        assert tx.tail == 11 and tx.space() == 14


def test_a_sender_that_never_waits_never_finds_a_drained_ring_full(rundir):
    with nmcompat.open("netmap:x{1", slots=16, buf_num=1024) as m, nmcompat.open("netmap:x}1") as s:
        tx, rx = m.tx_rings[0], s.rx_rings[0]
        got = []
        for rnd in range(200):
            for k in range(rnd % 5 + 1):
                assert m.inject(b"%d.%d" % (rnd, k))
            m.txsync()
            assert tx.space() >= 16 // 2 - 5        # stale by less than half the ring
            got += payloads(s)
        assert len(got) == sum(r % 5 + 1 for r in range(200))


def test_stream_with_random_releases_keeps_every_packet(rundir):
    rng = random.Random(5)
    total = 3000
    with nmcompat.open("netmap:x{1", slots=32, buf_num=1024) as m, nmcompat.open("netmap:x}1") as s:
        rx = s.rx_rings[0]
        sent = 0
        received = []
        while len(received) < total:
            while sent < total and m.inject(b"%06d" % sent + bytes(rng.randrange(0, 5000))):
                sent += 1
            m.txsync()
            s.rxsync()
            take = rng.randrange(0, 12)          # take some, leave the rest for later
            if take:
                s.dispatch(lambda h, d: received.append((int(bytes(d[:6])), h.len)), count=take)
            assert rx.head == rx.cur
        assert [r[0] for r in received] == list(range(total))
        s.rxsync()
        m.txsync()
        assert m.stats()["tx_pkts"] == s.stats()["rx_pkts"] == total
        assert m.stats()["tx_bytes"] == s.stats()["rx_bytes"] == sum(r[1] for r in received)


# ---------------------------------------------------------------------------
# whole packets only


def _write_chain(port, ring, start, parts):
    j = start
    for k, part in enumerate(parts):
        idx = int(ring.slots[j]["buf_idx"])
        u8(port.buf(idx))[:len(part)] = list(part)
        ring.slots[j]["len"] = len(part)
        ring.slots[j]["flags"] = NS_MOREFRAG if k + 1 < len(parts) else 0
        j = ring.next(j)
    return j


def test_a_sync_mid_chain_publishes_nothing_of_it(rundir):
    with nmcompat.open("netmap:x{1", slots=16, buf_num=1024) as m, nmcompat.open("netmap:x}1") as s:
        tx, rx = m.tx_rings[0], s.rx_rings[0]
        end1 = _write_chain(m, tx, 0, [b"whole"])
        end2 = _write_chain(m, tx, end1, [b"a" * 2048, b"b" * 2048, b"c"])
        tx.head = tx.cur = end2 - 1                   # the last fragment not yet given
        m.txsync()
        s.rxsync()
        assert rx.tail == end1                        # only the complete packet
        assert payloads(s) == [b"whole"]
        tx.head = tx.cur = end2
        m.txsync()
        s.rxsync()
        assert rx.tail == end2
        assert payloads(s) == [b"a" * 2048 + b"b" * 2048 + b"c"]


def test_chain_written_in_several_syncs(rundir):
    with nmcompat.open("netmap:x{1", slots=16, buf_num=1024) as m, nmcompat.open("netmap:x}1") as s:
        tx, rx = m.tx_rings[0], s.rx_rings[0]
        parts = [bytes([65 + k]) * 2048 for k in range(4)] + [b"end"]
        _write_chain(m, tx, 0, parts)
        for k in range(1, 5):
            tx.head = tx.cur = k
            m.txsync()
            s.rxsync()
            assert rx.tail == 0
        tx.head = tx.cur = 5
        m.txsync()
        assert payloads(s) == [b"".join(parts)]


# ---------------------------------------------------------------------------
# geometry


def _geometry(port):
    return ([r.num_slots for r in port.tx_rings], [r.num_slots for r in port.rx_rings])


def test_conf_rings_and_slots(rundir):
    with nmcompat.open("netmap:x{2@conf:rings=4,slots=256") as m, nmcompat.open("netmap:x}2") as s:
        for p in (m, s):
            assert _geometry(p) == ([256] * 4, [256] * 4)
            assert (p.info.tx_rings, p.info.rx_rings, p.info.tx_slots, p.info.rx_slots) == (4, 4, 256, 256)
            assert [r.ringid for r in p.tx_rings] == [0, 1, 2, 3]


def test_conf_asymmetric_is_swapped_for_the_slave(rundir):
    with nmcompat.open("netmap:x{3@conf:tx-rings=2,rx-rings=3,tx-slots=128,rx-slots=64") as m, \
            nmcompat.open("netmap:x}3") as s:
        assert _geometry(m) == ([128] * 2, [64] * 3)
        assert _geometry(s) == ([64] * 3, [128] * 2)
        # ring k of one end's TX is ring k of the other end's RX
        for k in range(2):
            _write_chain(m, m.tx_rings[k], 0, [b"m%d" % k])
            m.tx_rings[k].head = m.tx_rings[k].cur = 1
        for k in range(3):
            _write_chain(s, s.tx_rings[k], 0, [b"s%d" % k])
            s.tx_rings[k].head = s.tx_rings[k].cur = 1
        m.txsync()
        s.txsync()
        s.rxsync()
        m.rxsync()
        assert [r.tail for r in s.rx_rings] == [1, 1]
        assert [r.tail for r in m.rx_rings] == [1, 1, 1]
        for k in range(2):
            assert bytes(u8(s.buf(int(s.rx_rings[k].slots[0]["buf_idx"])))[:2]) == b"m%d" % k
        for k in range(3):
            assert bytes(u8(m.buf(int(m.rx_rings[k].slots[0]["buf_idx"])))[:2]) == b"s%d" % k


def test_conf_given_by_the_slave_is_as_the_slave_sees_it(rundir):
    with nmcompat.open("netmap:x}4@conf:tx-rings=2,rx-rings=3") as s, nmcompat.open("netmap:x{4") as m:
        assert (len(s.tx_rings), len(s.rx_rings)) == (2, 3)
        assert (len(m.tx_rings), len(m.rx_rings)) == (3, 2)


def test_conf_applies_only_when_the_pipe_is_created(rundir):
    with nmcompat.open("netmap:x{5", rings=2, slots=64) as m, \
            nmcompat.open("netmap:x}5@conf:rings=4,slots=512") as s:
        assert _geometry(s) == ([64] * 2, [64] * 2)
        assert _geometry(m) == ([64] * 2, [64] * 2)


def test_open_keywords_override_conf(rundir):
    with nmcompat.open("netmap:x{6@conf:rings=4,slots=512", rings=3, tx_slots=128) as m:
        assert _geometry(m) == ([128] * 3, [512] * 3)
    with pytest.raises(TypeError):
        nmcompat.open("netmap:x{6", colour=3)


def test_geometry_bounds(rundir):
    with nmcompat.open("netmap:x{7", slots=1) as m:           # a 1-slot ring could hold nothing
        assert _geometry(m) == ([2], [2])
        with nmcompat.open("netmap:x}7") as s:
            exchange(m, s)
    with nmcompat.open("netmap:x{8", slots=100000, rings=1) as m:
        assert _geometry(m) == ([4096], [4096])
    with nmcompat.open("netmap:x{9", rings=300, slots=2) as m:
        assert (len(m.tx_rings), len(m.rx_rings)) == (256, 256)
    assert rundir_entries(rundir) == ["lock"]


def test_default_geometry(rundir):
    with nmcompat.open("netmap:x{1") as m:
        assert _geometry(m) == ([1024], [1024])


def test_at_most_64_pipes_per_parent(rundir):
    """netmap's NM_MAXPIPES: 64 pipes of one parent fit with default options
    (its region reserves netmap's 163840 buffers, claimed as used), the 65th
    is EINVAL as netmap's."""
    ports = []
    try:
        for k in range(64):
            ports.append(nmcompat.open(f"netmap:q{{{k}"))
        assert len({p.info.mem_id for p in ports}) == 1
        with pytest.raises(OSError) as ei:
            nmcompat.open("netmap:q{64")
        assert ei.value.errno == errno.EINVAL and "at most 64 pipes" in str(ei.value)
        ports.append(nmcompat.open("netmap:q}63"))          # existing pipes still open
        ports.append(nmcompat.open("netmap:r{0", slots=2))  # other parents too
    finally:
        for p in ports:
            p.close()
    assert rundir_entries(rundir) == ["lock"]


# ---------------------------------------------------------------------------
# binding


def test_one_ring_pair_binding(rundir):
    with nmcompat.open("netmap:x{1@conf:rings=4", slots=16) as whole, \
            nmcompat.open("netmap:x}1-2") as one:
        assert one.info.bound_tx == range(2, 3) and one.info.bound_rx == range(2, 3)
        assert [r.ringid for r in one.tx_rings] == [2] and [r.ringid for r in one.rx_rings] == [2]
        ofs = ring_ofs(one)                       # tx 0..3, host tx, rx 0..3, host rx
        assert len(ofs) == 10
        assert [i for i, o in enumerate(ofs) if o] == [2, 7]
        assert all(o for i, o in enumerate(ring_ofs(whole)) if i not in (4, 9))
        assert ring_ofs(whole)[4] == ring_ofs(whole)[9] == 0     # fake host rings
        one.inject(b"on ring 2")
        one.txsync()
        whole.rxsync()
        assert [r.tail for r in whole.rx_rings] == [0, 0, 1, 0]
        got = []
        whole.dispatch(lambda h, d: got.append((h.ring, bytes(d))))
        assert got == [(2, b"on ring 2")]


def test_one_ring_binding_with_fewer_rings_in_a_direction(rundir):
    with nmcompat.open("netmap:x{1@conf:tx-rings=4,rx-rings=1", slots=8) as whole, \
            nmcompat.open("netmap:x{1-2") as one:
        assert one.info.bound_tx == range(2, 3)
        assert one.info.bound_rx == range(0, 1)        # only ring 0 that way
        with pytest.raises(OSError) as ei:
            nmcompat.open("netmap:x{1-7")
        assert ei.value.errno == errno.EINVAL
        assert len(whole.tx_rings) == 4


@pytest.mark.parametrize("flag,tx,rx", [("T", 1, 0), ("R", 0, 1)])
def test_tx_only_and_rx_only(rundir, flag, tx, rx):
    with nmcompat.open(f"netmap:x{{1/{flag}", slots=8) as p, nmcompat.open("netmap:x}1") as peer:
        assert (len(p.tx_rings), len(p.rx_rings)) == (tx, rx)
        ofs = ring_ofs(p)
        assert bool(ofs[0]) == bool(tx) and bool(ofs[2]) == bool(rx)
        if tx:
            exchange(p, peer)
        else:
            exchange(peer, p)


def test_exclusive_binding(rundir):
    with nmcompat.open("netmap:x{1/x", slots=8) as m:
        with pytest.raises(OSError) as ei:
            nmcompat.open("netmap:x{1")
        assert ei.value.errno == errno.EBUSY
        with nmcompat.open("netmap:x}1") as s:            # the other end is another port
            exchange(m, s)
    with nmcompat.open("netmap:x{1", slots=8):
        with pytest.raises(OSError) as ei:
            nmcompat.open("netmap:x{1/x")
        assert ei.value.errno == errno.EBUSY
        assert parse("netmap:x{1/x").flags & NR_EXCLUSIVE


def test_exclusive_on_disjoint_ring_pairs(rundir):
    with nmcompat.open("netmap:x{1-0/x@conf:rings=2", slots=8) as a, \
            nmcompat.open("netmap:x{1-1/x") as b:
        assert (a.info.bound_tx, b.info.bound_tx) == (range(0, 1), range(1, 2))
        with pytest.raises(OSError) as ei:
            nmcompat.open("netmap:x{1-1")
        assert ei.value.errno == errno.EBUSY


def test_two_holders_of_one_end_share_its_rings(rundir):
    with nmcompat.open("netmap:x{1", slots=8) as a, nmcompat.open("netmap:x{1") as b, \
            nmcompat.open("netmap:x}1") as s:
        assert a.info.nr_offset != b.info.nr_offset
        a.inject(b"from a")
        assert b.tx_rings[0].head == 1                      # same ring in memory
        b.txsync()                                          # either holder may sync it
        assert payloads(s) == [b"from a"]


def test_mode_from_parser_reaches_the_engine(rundir):
    spec = parse("netmap:x{1-1@conf:rings=2")
    assert (spec.mode, spec.ringid) == (NR_REG_ONE_NIC, 1)
    with nmcompat.open("netmap:x{1-1@conf:rings=2", slots=8) as p:
        assert p.info.bound_tx == range(1, 2)


# ---------------------------------------------------------------------------
# lifetime, counters, wakeups


def test_an_end_lives_while_any_holder_has_it(rundir):
    s = nmcompat.open("netmap:x}1", slots=16)
    with nmcompat.open("netmap:x{1") as m:
        for k in range(3):
            m.inject(b"q%d" % k)
        m.txsync()
        head = m.tx_rings[0].head
    # the sender is gone, the pipe is not
    assert payloads(s) == [b"q0", b"q1", b"q2"]
    with nmcompat.open("netmap:x{1") as m:
        assert m.tx_rings[0].head == head                   # ring state carried over
        exchange(m, s)
    s.close()
    assert rundir_entries(rundir) == ["lock"]
    with nmcompat.open("netmap:x{1", slots=16) as m:        # a fresh pipe now
        assert m.tx_rings[0].head == 0


def test_counters(rundir):
    with nmcompat.open("netmap:x{1", slots=256) as m, nmcompat.open("netmap:x}1") as s:
        rng = random.Random(3)
        sizes = [rng.randrange(1, 9001) for _ in range(40)]
        for n in sizes:
            assert m.inject(bytes(n)) == n
        m.txsync()
        assert [len(p) for p in payloads(s)] == sizes
        ms, ss = m.stats(), s.stats()
        assert (ms["tx_pkts"], ms["tx_bytes"]) == (40, sum(sizes))
        assert (ss["rx_pkts"], ss["rx_bytes"]) == (40, sum(sizes))
        # the other direction is counted separately
        exchange(s, m, b"back")
        assert m.stats()["rx_pkts"] == 1 and s.stats()["tx_pkts"] == 1


def test_no_wakeup_while_nobody_sleeps(rundir):
    """A receiver that keeps up by syncing (its fd never taken) costs the
    sender no system call; once its fd is handed out, an rxsync that finds
    the ring empty declares it asleep, and exactly one bell is sent."""
    import select
    with nmcompat.open("netmap:x{1", slots=64) as m, nmcompat.open("netmap:x}1") as s:
        for k in range(200):
            m.inject(b"%d" % k)
            m.txsync()
            assert payloads(s) == [b"%d" % k]           # ends with an rxsync on an empty ring
        assert m.stats()["wakeups_sent"] == 0
        fd = s.fileno()
        s.rxsync()                                      # empty: asleep now
        assert select.select([fd], [], [], 0)[0] == []
        m.inject(b"wake")
        m.txsync()
        assert m.stats()["wakeups_sent"] == 1
        m.inject(b"again")
        m.txsync()
        assert m.stats()["wakeups_sent"] == 1           # one bell is enough
        assert select.select([fd], [], [], 1)[0] == [fd]
        assert payloads(s) == [b"wake", b"again"]
        assert select.select([fd], [], [], 0)[0] == []  # rxsync drained the bell
