"""netmap pipes between unrelated processes: data, a pollable fd woken by
the other process, wakeups only for sleepers, and what happens when a
holder is SIGKILLed (reclaim, TX repair, nobody blocked for ever)."""
from __future__ import annotations

import select
import time

import numpy as np
import pytest

import nmcompat
from nmcompat import POLLIN, POLLOUT
from testlib import parse_kv, rundir_entries


def payloads(port):
    port.rxsync()
    out = []
    port.dispatch(lambda h, d: out.append(bytes(d)))
    port.rxsync()
    return out


def fill(port):
    """Queue packets until the TX ring is full; returns how many."""
    n = 0
    while port.inject(b"fill %d" % n):
        n += 1
    port.txsync()
    return n


SENDER = """
    import hashlib, random, sys, time, nmcompat
    from nmcompat import POLLOUT
    n, seed = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with nmcompat.open("netmap:xp{1", slots=256) as p:
        print("ready", flush=True)
        for k in range(n):
            pkt = k.to_bytes(8, "little") + rng.randbytes(rng.randrange(0, 8993))
            while not p.inject(pkt):
                if not p.poll(POLLOUT, 10000) & POLLOUT:
                    sys.exit("no room for 10 s")
            digest.update(pkt)
        p.txsync()
        deadline = time.monotonic() + 20
        while p.tx_rings[0].tx_pending() and time.monotonic() < deadline:
            time.sleep(0.001)
            p.txsync()
        st = p.stats()
        print("done", "sent=%d" % n, "sha=" + digest.hexdigest(), "tx_pkts=%d" % st["tx_pkts"],
              "tx_bytes=%d" % st["tx_bytes"], flush=True)
"""

RECEIVER = """
    import hashlib, sys, nmcompat
    from nmcompat import POLLIN
    n = int(sys.argv[1])
    digest = hashlib.sha256()
    state = {"next": 0, "bytes": 0}
    def take(hdr, data):
        seq = int.from_bytes(bytes(data[:8]), "little")
        if seq != state["next"]:
            sys.exit("got %d, expected %d" % (seq, state["next"]))
        if hdr.len != len(data):
            sys.exit("length %d != %d" % (hdr.len, len(data)))
        digest.update(bytes(data))
        state["next"] += 1
        state["bytes"] += len(data)
    with nmcompat.open("netmap:xp}1") as p:
        print("ready", flush=True)
        while state["next"] < n:
            if not p.poll(POLLIN, 10000) & POLLIN:
                sys.exit("nothing for 10 s after %d" % state["next"])
            p.dispatch(take)
        p.rxsync()
        st = p.stats()
        print("done", "got=%d" % state["next"], "sha=" + digest.hexdigest(),
              "rx_pkts=%d" % st["rx_pkts"], "rx_bytes=%d" % st["rx_bytes"],
              "bytes=%d" % state["bytes"], flush=True)
"""


def test_two_unrelated_processes(procs, rundir):
    n = 4000
    rx = procs.python(RECEIVER, str(n))
    tx = procs.python(SENDER, str(n), "99")
    s = parse_kv(tx.finish(60).splitlines()[-1])
    r = parse_kv(rx.finish(30).splitlines()[-1])
    assert int(r["got"]) == int(s["sent"]) == n
    assert r["sha"] == s["sha"]
    assert int(r["rx_pkts"]) == int(s["tx_pkts"]) == n
    assert r["rx_bytes"] == s["tx_bytes"] == r["bytes"]
    assert rundir_entries(rundir) == ["lock"]


# ---------------------------------------------------------------------------
# the fd is pollable across processes

SEND_LATER = """
    import os, sys, time, nmcompat
    with nmcompat.open("netmap:x{1") as p:
        print("ready", flush=True)
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.005)
        p.inject(b"from afar")
        p.txsync()
        print("sent", flush=True)
        time.sleep(float(sys.argv[2]))
"""

DRAIN_LATER = """
    import os, sys, time, nmcompat
    with nmcompat.open("netmap:x}1") as p:
        print("ready", flush=True)
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.005)
        time.sleep(float(sys.argv[2]))
        p.rxsync()
        r = p.rx_rings[0]
        n = (r.tail - r.head) % r.num_slots
        r.head = r.cur = r.tail
        p.rxsync()
        print("drained", n, flush=True)
        time.sleep(float(sys.argv[3]))
"""


@pytest.mark.parametrize("armed_by", ["rxsync", "port.poll"])
@pytest.mark.parametrize("waiter", ["poll", "select", "epoll"])
def test_fd_becomes_readable_when_another_process_sends(procs, rundir, waiter, armed_by):
    go = rundir / "go"
    with nmcompat.open("netmap:x}1", slots=64, spin_us=0) as rx:
        fd = rx.fileno()
        if armed_by == "rxsync":
            rx.rxsync()                               # finds the ring empty
        else:
            assert rx.poll(POLLIN, 50) == 0           # waited, found nothing, gave up
        child = procs.python(SEND_LATER, str(go), "5")
        child.expect("ready", timeout=20)
        assert select.select([fd], [], [], 0.05)[0] == []    # nothing yet, no false alarm
        go.touch()
        if waiter == "poll":
            pl = select.poll()
            pl.register(fd, select.POLLIN)
            events = pl.poll(5000)
            assert events and events[0][1] & select.POLLIN
        elif waiter == "select":
            assert select.select([fd], [], [], 5)[0] == [fd]
        else:
            ep = select.epoll()
            ep.register(fd, select.EPOLLIN)
            assert ep.poll(5)
            ep.close()
        assert payloads(rx) == [b"from afar"]
        child.expect("sent")
        assert select.select([fd], [], [], 0)[0] == []       # drained by the rxsync
        child.kill()


def test_port_poll_pollin_wakes_on_another_process(procs, rundir):
    go = rundir / "go"
    with nmcompat.open("netmap:x}1", slots=64, spin_us=0) as rx:
        child = procs.python(SEND_LATER, str(go), "5")
        child.expect("ready", timeout=20)
        assert rx.poll(POLLIN, 50) == 0
        go.touch()
        assert rx.poll(POLLIN, 5000) & POLLIN
        assert rx.stats()["sleeps"] >= 1
        assert payloads(rx) == [b"from afar"]


def test_port_poll_pollout_wakes_when_another_process_drains(procs, rundir):
    go = rundir / "go"
    with nmcompat.open("netmap:x{1", slots=64, spin_us=0) as tx:
        child = procs.python(DRAIN_LATER, str(go), "0.3", "5")
        child.expect("ready", timeout=20)
        assert fill(tx) == 63
        assert tx.poll(POLLOUT, 0) == 0
        go.touch()
        rv = tx.poll(POLLOUT, 5000)
        assert rv & POLLOUT, rv
        assert child.expect("drained").split()[1] == "63"
        assert tx.tx_rings[0].space() == 63
        assert tx.stats()["sleeps"] >= 1


@pytest.mark.parametrize("armed_by", ["port.poll", "txsync"])
def test_fd_becomes_writable_when_another_process_drains(procs, rundir, armed_by):
    go = rundir / "go"
    with nmcompat.open("netmap:x{1", slots=64, spin_us=0) as tx:
        fd = tx.fileno()
        child = procs.python(DRAIN_LATER, str(go), "0.2", "5")
        child.expect("ready", timeout=20)
        assert fill(tx) == 63                       # a txsync that leaves the ring full
        if armed_by == "port.poll":
            assert tx.poll(POLLOUT, 100) == 0       # found it full, timed out
        pl = select.poll()
        pl.register(fd, select.POLLOUT)
        assert pl.poll(50) == [], "writable while the ring is full"
        go.touch()
        events = pl.poll(5000)
        assert events and events[0][1] & select.POLLOUT, "not writable after the drain"
        child.expect("drained")
        tx.txsync()
        assert tx.tx_rings[0].space() == 63


def test_sender_waiting_for_a_reader_that_opens_later(procs, rundir):
    """POLLOUT with no reader at all: poll() waits and the reader's open
    wakes it."""
    go = rundir / "go"
    go.touch()
    with nmcompat.open("netmap:x{1", slots=16, spin_us=0) as tx:
        fill(tx)
        assert tx.poll(POLLOUT, 50) == 0
        child = procs.python(DRAIN_LATER, str(go), "0.2", "5")
        assert tx.poll(POLLOUT, 8000) & POLLOUT
        child.expect("drained")


# ---------------------------------------------------------------------------
# wakeups cost a system call only for sleepers

SPINNER = """
    import sys, nmcompat
    from nmcompat import POLLIN
    n, how = int(sys.argv[1]), sys.argv[2]
    got = [0]
    def take(hdr, data):
        got[0] += 1
    with nmcompat.open("netmap:xw}1", spin_us=int(sys.argv[3])) as p:
        print("ready", flush=True)
        while got[0] < n:
            if how == "rxsync":
                p.rxsync()
            else:
                p.poll(POLLIN, 5000)
            p.dispatch(take)
        p.rxsync()
        st = p.stats()
        print("done got=%d sleeps=%d polls=%d" % (got[0], st["sleeps"], st["polls"]), flush=True)
"""


@pytest.mark.parametrize("how,spin_us", [("rxsync", 0), ("poll", 300000)])
def test_no_wakeups_for_a_receiver_that_does_not_sleep(procs, rundir, how, spin_us):
    n = 20000
    with nmcompat.open("netmap:xw{1", slots=512) as tx:
        child = procs.python(SPINNER, str(n), how, str(spin_us))
        child.expect("ready", timeout=20)
        batch = np.zeros((64, 60), dtype=np.uint8)
        sent = 0
        deadline = time.monotonic() + 60
        while sent < n:
            k = tx.send(batch[:min(64, n - sent)])
            sent += k
            if k == 0:
                tx.poll(POLLOUT, 1000)
            assert time.monotonic() < deadline
        d = parse_kv(child.finish(60).splitlines()[-1])
        wakeups = tx.stats()["wakeups_sent"]
    assert int(d["got"]) == n
    if how == "rxsync":
        assert wakeups == 0                         # it never declared it sleeps
    else:
        assert wakeups <= int(d["sleeps"]) + 2      # a bell only for a sleeper
        assert wakeups <= n // 200


# ---------------------------------------------------------------------------
# holders that exit or are killed

HOLD = """
    import os, signal, sys, time, numpy, nmcompat
    p = nmcompat.open(sys.argv[1], slots=16)
    for word in sys.argv[2:]:
        if word == "sync":
            p.txsync()
        elif word == "die":
            print("dying", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        elif word == "exit":
            p.close()
            print("closed", flush=True)
            sys.exit(0)
        elif word.startswith("chain:"):
            # a chain of k fragments of which only the first f are given to the ring
            k, f = map(int, word[6:].split("/"))
            r = p.tx_rings[0]
            j = r.head
            for i in range(k):
                s = r.slots[j]
                numpy.frombuffer(p.buf(int(s["buf_idx"])), numpy.uint8)[:5] = list(b"torn%d" % i)
                r.slots[j]["len"] = 5
                r.slots[j]["flags"] = nmcompat.NS_MOREFRAG if i + 1 < k else 0
                j = r.next(j)
                if i + 1 == f:
                    r.head = r.cur = j
        else:
            p.inject(word.encode())
    print("ready", flush=True)
    time.sleep(60)
"""


def test_end_stays_alive_after_the_other_process_exits(procs, rundir):
    with nmcompat.open("netmap:x}1", slots=16) as rx:
        procs.python(HOLD, "netmap:x{1", "a", "b", "c", "sync", "exit").finish(20)
        assert payloads(rx) == [b"a", b"b", b"c"]
        procs.python(HOLD, "netmap:x{1", "d", "sync", "exit").finish(20)
        assert payloads(rx) == [b"d"]
    assert rundir_entries(rundir) == ["lock"]


def test_killed_sender_is_reclaimed_and_the_stream_continues(procs, rundir):
    with nmcompat.open("netmap:x}1", slots=16) as rx:
        child = procs.python(HOLD, "netmap:x{1", "a", "b", "sync", "c")
        child.expect("ready", timeout=20)
        child.kill()
        assert payloads(rx) == [b"a", b"b"]
        with nmcompat.open("netmap:x{1") as tx:             # reaps the dead holder
            assert len([n for n in rundir_entries(rundir) if n.endswith(".sock")]) == 2
            tx.txsync()                                      # "c" was queued, never synced
            assert payloads(rx) == [b"c"]
            tx.inject(b"d")
            tx.txsync()
            assert payloads(rx) == [b"d"]
    assert rundir_entries(rundir) == ["lock"]


@pytest.mark.parametrize("script,expected", [
    # a chain copied to the peer (txsync mid-chain), never finished
    (["whole", "chain:3/2", "sync", "die"], [b"whole"]),
    # a user head in the middle of a chain, never synced
    (["whole", "sync", "chain:3/1", "die"], [b"whole"]),
    # complete packets queued but not synced are kept; the half chain after them is not
    (["p1", "sync", "p2", "p3", "chain:4/3", "die"], [b"p1", b"p2", b"p3"]),
    (["p1", "sync", "p2", "chain:4/3", "sync", "die"], [b"p1", b"p2"]),
])
def test_killed_writer_leaves_no_torn_chain(procs, rundir, script, expected):
    with nmcompat.open("netmap:x}1", slots=16) as rx:
        child = procs.python(HOLD, "netmap:x{1", *script)
        child.expect("dying", timeout=20)
        child.wait(10)
        with nmcompat.open("netmap:x{1") as tx:
            tx.inject(b"fresh")
            tx.txsync()
            assert payloads(rx) == expected + [b"fresh"]
            tx.inject(b"fresh2")
            tx.txsync()
            assert payloads(rx) == [b"fresh2"]


def test_killed_receiver_never_blocks_the_sender(procs, rundir):
    go = rundir / "go"
    with nmcompat.open("netmap:x{1", slots=16, spin_us=0) as tx:
        child = procs.python(DRAIN_LATER, str(go), "0", "60")
        child.expect("ready", timeout=20)
        fill(tx)
        child.kill()
        assert tx.poll(POLLOUT, 300) == 0                # times out, does not hang
        assert tx.inject(b"x") == 0                      # and nothing was dropped to make room
        go.touch()
        new = procs.python(DRAIN_LATER, str(go), "0", "5")
        assert tx.poll(POLLOUT, 8000) & POLLOUT          # the new reader drains what is queued
        assert new.expect("drained").split()[1] == "15"


def test_killed_receiver_unread_packets_go_to_the_next_one(procs, rundir):
    with nmcompat.open("netmap:x{1", slots=16) as tx:
        child = procs.python(HOLD, "netmap:x}1")
        child.expect("ready", timeout=20)
        for k in range(5):
            tx.inject(b"m%d" % k)
        tx.txsync()
        child.kill()
        with nmcompat.open("netmap:x}1") as rx:
            assert payloads(rx) == [b"m%d" % k for k in range(5)]
