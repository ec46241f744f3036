"""ring->ts, netmap's microtime() of an rxsync (csrc/core/clock.c): the TSC
scaled against CLOCK_REALTIME, anchored again every millisecond.  Every
stamp lies between the wall clock read before and after the rxsync, to
within a few microseconds, across many anchors, and moves with the clock
between anchors (it is not the anchor's time)."""
from __future__ import annotations

import contextlib
import errno
import time

import pytest

import nmcompat

SLACK = 20e-6          # truncation to µs, a float's ulp, the scaled TSC (about 1 µs)


def _stamps_follow_the_wall_clock(port):
    ring = port.rx_rings[0]
    stamps, late = [], []
    end = time.monotonic() + 0.05  # about 50 anchors
    while time.monotonic() < end:
        before = time.time()
        port.rxsync()
        ts = ring.ts
        after = time.time()
        stamps.append(ts)
        if not before - SLACK <= ts <= after + SLACK:
            late.append((before, ts, after))
    assert not late, f"{len(late)} of {len(stamps)} stamps off the wall clock, first {late[:3]}"
    assert len(set(stamps)) > len(stamps) // 4, "stamps do not move between anchors"


def test_rxsync_stamps_follow_the_wall_clock(rundir):
    with nmcompat.open("netmap:c{1") as m, nmcompat.open("netmap:c}1") as s:
        _stamps_follow_the_wall_clock(s)
        ring = s.rx_rings[0]
        m.inject(b"x")
        m.txsync()
        before = time.time()
        s.rxsync()
        assert before - SLACK <= ring.ts <= time.time() + SLACK


@pytest.mark.parametrize("kind", ["vale", "monitor", "pipe end with a monitor"])
def test_every_kind_stamps_from_the_same_clock(rundir, kind):
    """VALE ports and monitors stamp ring->ts as pipes do (nmc_ring_stamp);
    NIC ports are checked in the kernel tier's timestamp tests."""
    with contextlib.ExitStack() as stack:
        if kind == "vale":
            port = stack.enter_context(nmcompat.open("vale0:clk"))
        elif kind == "monitor":
            stack.enter_context(nmcompat.open("netmap:c{3"))
            stack.enter_context(nmcompat.open("netmap:c}3"))
            port = stack.enter_context(nmcompat.open("netmap:c}3/r"))
        else:
            stack.enter_context(nmcompat.open("netmap:c{4"))
            port = stack.enter_context(nmcompat.open("netmap:c}4"))
            stack.enter_context(nmcompat.open("netmap:c}4/r"))
        _stamps_follow_the_wall_clock(port)


def test_stamps_after_an_idle_gap_are_exact(rundir):
    with nmcompat.open("netmap:c{2"), nmcompat.open("netmap:c}2") as s:
        ring = s.rx_rings[0]
        for _ in range(5):
            for _ in range(200):
                s.rxsync()
            gap = time.monotonic() + 0.003          # past the anchor's window
            while time.monotonic() < gap:
                pass
            before = time.time()
            s.rxsync()
            assert before - SLACK <= ring.ts <= time.time() + SLACK


@pytest.mark.parametrize("kind", ["pipe", "vale", "monitor"])
def test_a_failed_rxsync_stamps_too(rundir, kind):
    """netmap stamps ring->ts at every rxsync of a ring it entered, one whose
    head the prologue refused (the ring reinitialised, EINVAL) as well."""
    with contextlib.ExitStack() as stack:
        if kind == "pipe":
            stack.enter_context(nmcompat.open("netmap:c{5"))
            port = stack.enter_context(nmcompat.open("netmap:c}5"))
        elif kind == "vale":
            port = stack.enter_context(nmcompat.open("vale0:clkbad"))
        else:
            stack.enter_context(nmcompat.open("netmap:c{6"))
            stack.enter_context(nmcompat.open("netmap:c}6"))
            port = stack.enter_context(nmcompat.open("netmap:c}6/r"))
        ring = port.rx_rings[0]
        ring._c.ts.tv_sec = ring._c.ts.tv_usec = 0
        ring.head = ring.num_slots           # out of range
        before = time.time()
        with pytest.raises(OSError) as ei:
            port.rxsync()
        assert ei.value.errno == errno.EINVAL
        assert before - SLACK <= ring.ts <= time.time() + SLACK, f"ring->ts {ring.ts}"
        assert port.stats()["reinits"] >= 1
