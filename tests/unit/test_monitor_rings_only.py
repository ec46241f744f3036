"""Monitors with the rings-only flags, as netmap's (netmap_monitor.c: a
watched ring is linked to each monitor RX ring the monitor binds, in the
directions of the monitor flags; /R and /T choose the monitor's own rings).
/R binds every monitor RX ring, so /tR sees what X sends, /rtR and /zR both
directions; /T binds none of them and is refused (test_monitor_blind.py).
Through Python and the engine's C API (nmc_monitor_open)."""
from __future__ import annotations

import nmcompat
from nmcompat._ffi import ffi, lib
from nmcompat._portspec import NR_MONITOR_TX, NR_REG_ALL_NIC, NR_RX_RINGS_ONLY
from nmcompat._ring import NS_TXMON
from test_monitor import drain, frames, held, pipe_monitor_sees_both_directions, release, send


def test_t_with_rx_rings_only_sees_what_the_port_sends(rundir):
    out, back = frames(4, seed=21), frames(3, seed=22)
    with nmcompat.open("netmap:ro{1") as m, nmcompat.open("netmap:ro}1") as s, \
            nmcompat.open("netmap:ro{1/tR") as mon:
        assert mon.nifp.ni_rx_rings == 1
        send(m, out)
        assert drain(s) == out
        send(s, back)
        assert drain(m) == back
        assert drain(mon, True) == [(d, NS_TXMON) for d in out]


def test_rt_with_rx_rings_only_sees_both_directions(rundir):
    pipe_monitor_sees_both_directions("rr", "rtR", (23, 24), (5, 6))


def test_zero_copy_with_rx_rings_only_sees_both_directions(rundir):
    out, back = frames(3, seed=25, maxlen=1500), frames(4, seed=26, maxlen=1500)
    with nmcompat.open("vale0:zr1") as a, nmcompat.open("vale0:zr2") as b, \
            nmcompat.open("vale0:zr1/zR") as zm:
        send(a, out)
        assert held(b) == out
        release(b)
        a.txsync()                              # a's TX slots completed: the /z takes them
        send(b, back)
        assert held(a) == back
        release(a)                              # a's RX slots released: the /z takes them
        seen = drain(zm, True)
        assert sorted(seen) == sorted([(d, NS_TXMON) for d in out] + [(d, 0) for d in back])


def test_the_engine_watches_tx_with_rx_rings_only(rundir):
    data = frames(3, seed=27, maxlen=1500)      # one slot each
    keep = [ffi.new("char[]", str(rundir).encode()), ffi.new("char[]", b"ce"), ffi.new("char[]", b"1")]
    req = ffi.new("struct nmc_pipe_req *")
    req.rundir, req.parent, req.pipe_id = keep
    req.mode, req.flags, req.spin_us = NR_REG_ALL_NIC, NR_MONITOR_TX | NR_RX_RINGS_ONLY, -1
    out = ffi.new("struct nmc_port **")
    with nmcompat.open("netmap:ce{1", rundir=str(rundir)) as m, \
            nmcompat.open("netmap:ce}1", rundir=str(rundir)) as s:
        assert lib.nmc_monitor_open(req, out) == 0
        try:
            send(m, data)
            assert drain(s) == data
            assert lib.nmc_rxsync(out[0]) == 0
            nslots = ffi.new("uint32_t *")
            ring = lib.nmc_port_ring(out[0], 1, 0, nslots)
            assert (ring.tail - ring.head) % nslots[0] == len(data)
        finally:
            lib.nmc_port_close(out[0])
