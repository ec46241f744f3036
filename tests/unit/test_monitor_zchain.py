"""Several zero-copy monitors on one ring, as netmap chains them: a /z that
is not the first monitors the one before it, gets the buffers once that one
releases them (its rxsync, in whatever process, hands them on), and a
monitor leaving the chain, closed or SIGKILLed, relinks it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import nmcompat
from nmcompat._ring import NS_TXMON
from testlib import rundir_entries
from test_monitor import drain, frames, held, send


def check_clean(rundir):
    proc = subprocess.run([sys.executable, "-m", "nmcompat.tools", "check", "--json"],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, NMCOMPAT_RUNDIR=str(rundir)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["violations"] == 0, proc.stdout


def test_second_zero_copy_monitor_sees_what_the_first_released(rundir):
    data = frames(6, seed=40, maxlen=2000)
    with nmcompat.open("netmap:c{1") as m, nmcompat.open("netmap:c}1") as s, \
            nmcompat.open("netmap:c}1/z") as z1, nmcompat.open("netmap:c}1/z") as z2:
        send(m, data)
        assert drain(s) == data
        assert drain(z2) == []                  # the first has them, not released
        assert held(z1) == data
        assert drain(z2) == []
        assert drain(z1) == data                # released: handed on
        assert drain(z2, True) == [(d, 0) for d in data]
        send(m, data[:3])                       # the traded buffers keep working
        assert drain(s) == data[:3]
        assert drain(z1) == data[:3]
        assert drain(z2) == data[:3]
        check_clean(rundir)
    assert rundir_entries(rundir) == ["lock"]


def test_chain_keeps_ns_txmon(rundir):
    data = frames(4, seed=41, maxlen=1500)
    with nmcompat.open("netmap:d{1") as m, nmcompat.open("netmap:d}1") as s, \
            nmcompat.open("netmap:d{1/z") as z1, nmcompat.open("netmap:d{1/z") as z2, \
            nmcompat.open("netmap:d{1/z") as z3:
        send(m, data)
        assert drain(s) == data
        m.txsync()                              # completions reach the first
        assert drain(z2) == []
        assert drain(z1, True) == [(d, NS_TXMON) for d in data]
        assert drain(z3) == []
        assert drain(z2, True) == [(d, NS_TXMON) for d in data]
        assert drain(z3, True) == [(d, NS_TXMON) for d in data]


def test_closing_one_relinks_the_chain(rundir):
    data = frames(5, seed=42, maxlen=1000)
    with nmcompat.open("netmap:e{1") as m, nmcompat.open("netmap:e}1") as s:
        z1, z2, z3 = (nmcompat.open("netmap:e}1/z") for _ in range(3))
        try:
            z2.close()                          # from the middle
            send(m, data)
            assert drain(s) == data
            assert drain(z1) == data
            assert drain(z3) == data
            z1.close()                          # the first
            send(m, data[:2])
            assert drain(s) == data[:2]
            assert drain(z3) == data[:2]
            z4 = nmcompat.open("netmap:e}1/z")  # joins after the last
            send(m, data[2:])
            assert drain(s) == data[2:]
            assert drain(z4) == []
            assert drain(z3) == data[2:]
            assert drain(z4) == data[2:]
            z4.close()
        finally:
            for z in (z1, z2, z3):
                z.close()
        send(m, data)                           # no monitor left: no trade
        assert drain(s) == data
        check_clean(rundir)
    assert rundir_entries(rundir) == ["lock"]


RELEASER = textwrap.dedent("""
    import signal, sys, nmcompat
    mon = nmcompat.open(sys.argv[1])
    print("monitoring", flush=True)
    want, got = int(sys.argv[2]), 0
    while got < want and mon.poll(nmcompat.POLLIN, 10000) > 0:
        r = mon.rx_rings[0]
        got += (r.tail - r.cur) % r.num_slots
        r.head = r.cur = r.tail
        mon.rxsync()                            # release: the next monitor gets them
    print("released", got, flush=True)
    signal.pause()                              # stays linked until killed
""")

HOLDER = textwrap.dedent("""
    import sys, signal, nmcompat
    mon = nmcompat.open(sys.argv[1])
    print("monitoring", flush=True)
    signal.pause()                              # holds, releases nothing, until killed
""")


def test_first_in_another_process_hands_on_when_it_releases(rundir, procs):
    data = frames(7, seed=43, maxlen=1500)
    with nmcompat.open("netmap:f{1") as m, nmcompat.open("netmap:f}1") as s:
        child = procs.spawn([sys.executable, "-c", RELEASER, "netmap:f}1/z", str(len(data))])
        child.expect("monitoring")
        with nmcompat.open("netmap:f}1/z") as z2:
            send(m, data)
            assert drain(s) == data             # wakes the child: it releases
            assert child.expect("released", timeout=30).split() == ["released", str(len(data))]
            assert drain(z2) == data
            child.kill()
            child.wait()


def test_sigkilled_first_is_unlinked(rundir, procs):
    data = frames(6, seed=44, maxlen=1500)
    with nmcompat.open("netmap:g{1") as m, nmcompat.open("netmap:g}1") as s:
        child = procs.spawn([sys.executable, "-c", HOLDER, "netmap:g}1/z"])
        child.expect("monitoring")
        with nmcompat.open("netmap:g}1/z") as z2:
            send(m, data[:3])
            assert drain(s) == data[:3]
            assert drain(z2) == []              # the child holds them
            child.kill()
            child.wait()
            nmcompat.open("netmap:g}1/r").close()   # an open reaps the dead holder
            send(m, data[3:])
            assert drain(s) == data[3:]
            assert drain(z2) == data[3:]
            check_clean(rundir)


def put(ring, data):
    s = ring.slots[ring.cur]
    ring.buf(int(s["buf_idx"]))[:len(data)] = data
    s["len"], s["flags"] = len(data), 0
    ring.head = ring.cur = ring.next(ring.cur)


def test_chain_of_one_ring_pair(rundir):
    a, b = frames(2, seed=45)
    with nmcompat.open("netmap:h{1", rings=2) as m, nmcompat.open("netmap:h}1", rings=2) as s, \
            nmcompat.open("netmap:h}1-1/z") as one, nmcompat.open("netmap:h}1/z") as every:
        put(m.tx_rings[0], a)
        put(m.tx_rings[1], b)
        m.txsync()
        assert sorted(drain(s)) == sorted([a, b])
        assert drain(every) == [a]              # ring 0: first in its chain
        assert drain(one) == [b]                # ring 1: first is the one-ring monitor
        assert drain(every) == [b]
        one.close()
        put(m.tx_rings[1], a)
        m.txsync()
        assert drain(s) == [a]
        assert drain(every) == [a]
