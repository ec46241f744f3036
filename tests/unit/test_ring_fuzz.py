"""Property test: whatever an application writes into the shared rings of
either end (head, cur, tail, buf_idx, len, flags) and however it then
syncs, the engine answers with EINVAL/POLLERR at worst, keeps every index
it owns in range, and the pipe works again once the slots hold their
buffers back."""
from __future__ import annotations

import errno
import itertools

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import nmcompat  # noqa: E402
from nmcompat import POLLERR, POLLIN, POLLOUT  # noqa: E402

BUF_NUM = 1024
_ids = itertools.count()

u32 = st.one_of(st.integers(0, 20), st.sampled_from([0xFFFFFFFF, 0x80000000, 0xFFFF]),
                st.integers(0, 2**32 - 1))
buf_idx = st.one_of(st.sampled_from([0, 1, BUF_NUM - 1, BUF_NUM, BUF_NUM + 1, 0xFFFFFFFF]),
                    st.integers(2, BUF_NUM - 1), st.integers(0, 2**32 - 1))
u16 = st.one_of(st.sampled_from([0, 2048, 2049, 0xFFFF, 0x20, 0x21, 0x01]), st.integers(0, 0xFFFF))
ring_sel = st.integers(0, 3)         # master tx, master rx, slave tx, slave rx
port_sel = st.integers(0, 1)

ops = st.one_of(
    st.tuples(st.just("index"), ring_sel, st.sampled_from(["head", "cur", "tail"]), u32),
    st.tuples(st.just("slot"), ring_sel, st.integers(0, 63), st.just("buf_idx"), buf_idx),
    st.tuples(st.just("slot"), ring_sel, st.integers(0, 63), st.sampled_from(["len", "flags"]), u16),
    st.tuples(st.just("inject"), port_sel, st.integers(0, 9000)),
    st.tuples(st.just("release"), port_sel, st.integers(0, 20)),
    st.tuples(st.just("sync"), port_sel, st.sampled_from(["tx", "rx", "in", "out", "both"])),
)


def _sync(port, kind):
    """One sync; only EINVAL / POLLERR may come back.  Returns the rings it touched."""
    try:
        if kind == "tx":
            port.txsync()
            return port.tx_rings
        if kind == "rx":
            port.rxsync()
            return port.rx_rings
    except OSError as e:
        assert e.errno == errno.EINVAL, e
        return port.tx_rings if kind == "tx" else port.rx_rings
    events = {"in": POLLIN, "out": POLLOUT, "both": POLLIN | POLLOUT}[kind]
    rv = port.poll(events, 0)
    assert rv >= 0 and rv & ~(POLLIN | POLLOUT | POLLERR) == 0, rv
    return port.tx_rings + (port.rx_rings if events & POLLIN else [])


def _in_range(ring):
    n = ring.num_slots
    assert ring.head < n and ring.cur < n and ring.tail < n, ring


def _drain(port):
    port.rxsync()
    for rx in port.rx_rings:
        rx.head = rx.cur = rx.tail
    port.rxsync()


def _restore(m, s, snap) -> bool:
    """Slots get their buffers back; rings are brought to a consistent state
    through the API.  False if a chain as long as the ring blocks it for good."""
    for port, peer, key in ((m, s, 0), (s, m, 1)):
        for tx, rx in zip(port.tx_rings, peer.rx_rings):
            for ring in (tx, rx):
                ring.slots["buf_idx"] = snap[key]
                ring.slots["len"] = 2048
                ring.slots["flags"] = 0
    for p in (m, s):                      # first round may reinit
        for fn in (p.txsync, p.rxsync):
            try:
                fn()
            except OSError as e:
                assert e.errno == errno.EINVAL
    for p in (m, s):                      # now nothing is wrong any more
        p.txsync()
        p.rxsync()
    for p in (m, s):
        _drain(p)
    for p in (m, s):
        p.txsync()
        tx = p.tx_rings[0]
        tx.cur = tx.head                  # drop a reservation (cur ahead of head)
        if tx.space() == 0:
            return False
        assert p.inject(b"flush") == 5   # ends any chain left open
        p.txsync()
    for p in (m, s):
        _drain(p)
    for p in (m, s):
        p.txsync()
    return True


def _verify(a, b):
    """2n+3 packets a -> b, each whole and in order."""
    n = a.tx_rings[0].num_slots
    want = [b"%d:" % k + bytes([k % 251]) * (k % 5 * 700) for k in range(2 * n + 3)]
    want = [w for w in want if (len(w) + 2047) // 2048 < n] or [b"x"]
    got = []

    def pull():
        b.rxsync()
        b.dispatch(lambda h, d: got.append(bytes(d)))
        b.rxsync()
        a.txsync()

    for pkt in want:
        for _ in range(3):
            if a.inject(pkt):
                break
            a.txsync()
            pull()
        else:
            pytest.fail(f"no room for a {len(pkt)}-byte packet in a {n}-slot ring after draining")
    a.txsync()
    pull()
    assert got == want


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(slots=st.sampled_from([2, 3, 4, 8, 16, 64]), script=st.lists(ops, max_size=40))
def test_random_corruption_of_both_ends(rundir, slots, script):
    name = f"z{next(_ids)}"
    with nmcompat.open(f"netmap:fz{{{name}", slots=slots, buf_num=BUF_NUM) as m, \
            nmcompat.open(f"netmap:fz}}{name}") as s:
        rings = [m.tx_rings[0], m.rx_rings[0], s.tx_rings[0], s.rx_rings[0]]
        snap = [m.tx_rings[0].slots["buf_idx"].copy(), s.tx_rings[0].slots["buf_idx"].copy()]
        ports = (m, s)
        for op in script:
            kind = op[0]
            if kind == "index":
                setattr(rings[op[1]], op[2], op[3])
            elif kind == "slot":
                ring = rings[op[1]]
                ring.slots[op[2] % slots][op[3]] = op[4]
            elif kind == "inject":
                rv = ports[op[1]].inject(bytes(op[2]))
                assert rv in (0, op[2])
            elif kind == "release":
                rx = ports[op[1]].rx_rings[0]
                if rx.head < slots and rx.tail < slots:
                    h = rx.head
                    for _ in range(min(op[2], rx.space())):
                        h = rx.next(h)
                    rx.head = rx.cur = h
            else:
                for ring in _sync(ports[op[1]], op[2]):
                    _in_range(ring)
        restored = _restore(m, s, snap)
        hypothesis.event(f"restored={restored}")
        if restored:
            _verify(m, s)
            _verify(s, m)
