"""The pipe's txsync copies each slot to the crossed RX ring only where the
peer slot differs (an unchanged line stays shared): whichever single field
changes from one lap to the next (length, flags, ptr) still reaches the
receiver, and the buffer index is checked before anything is copied."""
from __future__ import annotations

import pytest

import nmcompat

NS_REPORT = 0x0002

# (len, flags, ptr) sent at slot 0 on successive laps: each differs from the
# previous one in a single field, and the last goes back to the first
LAPS = [(10, 0, 1), (10, 0, 2), (11, 0, 2), (11, NS_REPORT, 2), (11, NS_REPORT, 1 << 63),
        (10, 0, 1)]


def lap(m, s, length, flags, ptr):
    tx, rx = m.tx_rings[0], s.rx_rings[0]
    j = tx.cur
    tx.slots[j]["len"] = length
    tx.slots[j]["flags"] = flags
    tx.slots[j]["ptr"] = ptr
    tx.head = tx.cur = (j + 1) % tx.num_slots
    m.txsync()
    s.rxsync()
    got = rx.slots[j]
    assert (int(got["len"]), int(got["flags"]), int(got["ptr"])) == (length, flags, ptr)
    assert int(got["buf_idx"]) == int(tx.slots[j]["buf_idx"])
    rx.head = rx.cur = (j + 1) % rx.num_slots
    s.rxsync()
    m.txsync()
    return j


def test_a_change_of_any_single_field_reaches_the_receiver(rundir):
    with nmcompat.open("netmap:cp{1", slots=2) as m, nmcompat.open("netmap:cp}1") as s:
        for length, flags, ptr in LAPS:
            assert lap(m, s, length, flags, ptr) == 0
            assert lap(m, s, 60, 0, 0) == 1        # the other position, in between


@pytest.mark.parametrize("bad", ["zero", "one", "past_the_pool"])
def test_an_index_out_of_the_pool_is_not_copied(rundir, bad):
    with nmcompat.open("netmap:cp{2", slots=4, buf_num=1024) as m, nmcompat.open("netmap:cp}2") as s:
        tx, rx = m.tx_rings[0], s.rx_rings[0]
        before = int(rx.slots[0]["buf_idx"])
        tx.slots[0]["buf_idx"] = {"zero": 0, "one": 1, "past_the_pool": 1024}[bad]
        tx.slots[0]["len"] = 8
        tx.head = tx.cur = 1
        with pytest.raises(nmcompat.NmcompatError):
            m.txsync()
        s.rxsync()
        assert rx.tail == 0                         # nothing published
        assert int(rx.slots[0]["buf_idx"]) == before
