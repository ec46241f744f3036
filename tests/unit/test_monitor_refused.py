"""A sync the ring's state makes netmap refuse (cur before head: EINVAL and
a reinit) hands nothing to monitors: no zero-copy trade of slots the port
still owns, no copy of frames that are not sent."""
from __future__ import annotations

import errno

import nmcompat
from test_monitor import drain, frames, held, send


def refused(sync):
    try:
        rc = sync()
    except OSError as e:
        rc = -e.errno
    return rc == -errno.EINVAL


def test_refused_rxsync_trades_nothing(rundir):
    data = frames(4, seed=50, maxlen=1500)
    with nmcompat.open("netmap:rf{1") as m, nmcompat.open("netmap:rf}1") as s, \
            nmcompat.open("netmap:rf}1/z") as z:
        send(m, data)
        assert held(s) == data
        r = s.rx_rings[0]
        r.head = r.tail                         # cur stays before head: refused
        assert refused(s.rxsync)
        assert drain(z) == []
        assert drain(s) == data                 # the port's frames untouched
        assert drain(z) == data                 # and seen once, when released


def test_refused_txsync_copies_nothing(rundir):
    data = frames(3, seed=51, maxlen=1500)
    with nmcompat.open("netmap:rg{1") as m, nmcompat.open("netmap:rg}1") as s, \
            nmcompat.open("netmap:rg{1/t") as t:
        m.txsync()
        r = m.tx_rings[0]
        first = r.cur
        for d in data:
            slot = r.slots[r.cur]
            r.buf(int(slot["buf_idx"]))[:len(d)] = d
            slot["len"], slot["flags"] = len(d), 0
            r.cur = r.next(r.cur)
        r.head, r.cur = r.cur, first            # cur before head: refused
        assert refused(m.txsync)
        assert drain(t) == []                   # nothing was sent
        assert drain(s) == []
