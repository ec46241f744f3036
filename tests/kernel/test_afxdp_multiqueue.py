"""AF_XDP ports per queue on a 4-queue veth pair: one port per queue, opened
in one process (they share one region and one UMEM) and from separate
processes.

Which receive queue of va a frame reaches is decided by the sender on vb:

- an AF_XDP socket on vb queue k (nmcompat's ``netmap:vb-k``) transmits on
  vb's TX queue k;
- a plain AF_PACKET socket transmits on the queue the kernel's flow hash
  picks, so IPv4/UDP frames with different source ports spread out.

With native (drv) XDP, veth delivers TX queue k of vb to RX queue k of va,
so the mapping is checked exactly.  With generic (skb) XDP the kernel
computes rx_queue_index from the skb's queue mapping minus one (vb's TX
queues 0 and 1 both reach RX queue 0 of va, and RX queue 3 is never used on
kernels up to at least 6.18); there the tests only require that one sender
queue lands on one port.  In every mode: the union of the ports receives
every frame once, and each flow arrives on one port only.
"""
from __future__ import annotations

import json
import time

import nmcompat
import pytest

from afxdp_support import (Child, kill_all, make_veth, open_xdp, packet_sender, quiet_ipv6, send_all,
                           take, udp_frame, udp_seq, udp_sport, wait_tx_done)

pytestmark = pytest.mark.kernel

QUEUES = 4
MODES = ["drv", "skb"]
PER_QUEUE = 300
FLOWS = 64
PACKET_FRAMES = 2000


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


@pytest.fixture
def mq(netns):
    make_veth(netns, queues=QUEUES)
    return netns


WINDOW = 128


def _xsk_traffic(mode: str, pace):
    """Frames sent from vb-k (k = 0..3), seq = k * PER_QUEUE + i, sport 2000 + k.
    pace(n) is called after every window with the number sent so far."""
    sent = {}
    for k in range(QUEUES):
        frames = [udp_frame(k * PER_QUEUE + i, 2000 + k) for i in range(PER_QUEUE)]
        with open_xdp(f"netmap:vb-{k}", mode) as tx:
            assert tx.info.queues == (k,)
            for start in range(0, PER_QUEUE, WINDOW):
                send_all(tx, frames[start:start + WINDOW])
                for f in frames[start:start + WINDOW]:
                    sent[udp_seq(f)] = k
                pace(len(sent))
            assert wait_tx_done(tx), tx.xdp_stats()
    return sent


def _packet_traffic(base: int, pace, already: int):
    """AF_PACKET frames of FLOWS flows (source ports 1000..), seq from base."""
    sent = {}
    with packet_sender("vb") as tx:
        for i in range(PACKET_FRAMES):
            f = udp_frame(base + i, 1000 + i % FLOWS)
            tx.send(f)
            sent[base + i] = 1000 + i % FLOWS
            if (i + 1) % WINDOW == 0 or i + 1 == PACKET_FRAMES:
                pace(already + len(sent))
    return sent


def _receive_until(ports, got, count, timeout=5.0):
    """Take from every port until the ports hold count frames in all."""
    deadline = time.monotonic() + timeout
    while sum(len(v) for v in got.values()) < count and time.monotonic() < deadline:
        for i, p in enumerate(ports):
            p.poll(nmcompat.POLLIN, 5)
            take(p, lambda f, ring, i=i: got[i if len(ports) > 1 else ring].append(f))


def _sleep_pace(n):
    time.sleep(0.03)          # the receivers are other processes: a moderate rate


def _check(mode: str, got, xsk_sent, pkt_sent, stats):
    """got: {queue: [frames]}.  Asserts the union and the per-queue rules."""
    seqs = [udp_seq(f) for frames in got.values() for f in frames]
    want = set(xsk_sent) | set(pkt_sent)
    assert len(seqs) == len(set(seqs)), "a frame arrived twice"
    missing = want - set(seqs)
    assert not missing, f"{len(missing)} of {len(want)} frames never arrived " \
                        f"(per queue: { {q: len(v) for q, v in got.items()} }); xdp_stats {stats}"
    assert set(seqs) == want
    # each AF_PACKET flow and each AF_XDP sender queue on exactly one port
    port_of_flow = {}
    for q, frames in got.items():
        for f in frames:
            s = udp_seq(f)
            key = ("xsk", xsk_sent[s]) if s in xsk_sent else ("flow", udp_sport(f))
            port_of_flow.setdefault(key, set()).add(q)
    split = {k: v for k, v in port_of_flow.items() if len(v) > 1}
    assert not split, f"flows seen on several queues: {split}"
    if mode == "drv":
        for k in range(QUEUES):
            assert port_of_flow[("xsk", k)] == {k}, \
                f"frames sent on vb queue {k} arrived on {port_of_flow[('xsk', k)]}"
    used = {q for q, frames in got.items() if frames}
    assert len(used) >= 2, f"the flows all landed on one queue: {used}"


def _one_process(mode: str):
    quiet_ipv6()
    ports = [open_xdp(f"netmap:va-{q}", mode) for q in range(QUEUES)]
    try:
        assert [p.info.queues for p in ports] == [(q,) for q in range(QUEUES)]
        assert len({p.info.region for p in ports}) == 1, "one process: one region"
        assert all(p.info.xdp_mode == mode for p in ports)
        got = {q: [] for q in range(QUEUES)}
        pace = lambda n: _receive_until(ports, got, n)            # noqa: E731
        xsk_sent = _xsk_traffic(mode, pace)
        pkt_sent = _packet_traffic(100000, pace, len(xsk_sent))
        stats = [p.xdp_stats() for p in ports]
        _check(mode, got, xsk_sent, pkt_sent, stats)
        return {q: len(v) for q, v in got.items()}
    finally:
        for p in ports:
            p.close()


@pytest.mark.parametrize("mode", MODES)
def test_one_port_per_queue_in_one_process(mq, mode):
    per_queue = mq.run(_one_process, mode)
    assert sum(per_queue.values()) == QUEUES * PER_QUEUE + PACKET_FRAMES


RECEIVER = """
import json, select, sys, nmcompat
q, mode = int(sys.argv[1]), sys.argv[2]
p = nmcompat.open(f"netmap:va-{q}", backend="afxdp", xdp_mode=mode)
print("ready", p.info.xdp_mode, p.info.queues[0], flush=True)
got = []
def keep(h, d):
    d = bytes(d)
    if len(d) >= 50 and d[42:46] == b"NMCX":
        got.append([int.from_bytes(d[46:50], "big"), int.from_bytes(d[34:36], "big")])
while not select.select([sys.stdin], [], [], 0)[0]:
    p.poll(nmcompat.POLLIN, 50)
    p.dispatch(keep)
p.poll(nmcompat.POLLIN, 50)
p.dispatch(keep)
print("got", json.dumps({"frames": got, "stats": p.xdp_stats()}), flush=True)
"""


def _separate_processes(mode: str):
    quiet_ipv6()
    children = []
    try:
        for q in range(QUEUES):
            children.append(Child(RECEIVER, q, mode))
            line = children[-1].expect("ready")
            assert line.split()[1:] == [mode, str(q)], line
        xsk_sent = _xsk_traffic(mode, _sleep_pace)
        pkt_sent = _packet_traffic(100000, _sleep_pace, len(xsk_sent))
        time.sleep(0.5)
        got, stats = {}, []
        for q, c in enumerate(children):
            c.say("stop")
            report = json.loads(c.expect("got").split(" ", 1)[1])
            got[q] = [udp_frame(seq, sport) for seq, sport in report["frames"]]
            stats.append(report["stats"])
        _check(mode, got, xsk_sent, pkt_sent, stats)
        return {q: len(v) for q, v in got.items()}
    finally:
        kill_all(children)


@pytest.mark.parametrize("mode", MODES)
def test_one_port_per_queue_in_separate_processes(mq, mode):
    """Four processes, each with the port of one queue of the same interface."""
    per_queue = mq.run(_separate_processes, mode)
    assert sum(per_queue.values()) == QUEUES * PER_QUEUE + PACKET_FRAMES


def _all_queues_one_port(mode: str):
    quiet_ipv6()
    with open_xdp("netmap:va", mode) as port:
        assert port.info.queues == tuple(range(QUEUES))
        assert len(port.rx_rings) == QUEUES and len(port.tx_rings) == QUEUES
        got = {q: [] for q in range(QUEUES)}
        pace = lambda n: _receive_until([port], got, n)           # noqa: E731
        xsk_sent = _xsk_traffic(mode, pace)
        pkt_sent = _packet_traffic(100000, pace, len(xsk_sent))
        _check(mode, got, xsk_sent, pkt_sent, port.xdp_stats())
        return {q: len(v) for q, v in got.items()}


@pytest.mark.parametrize("mode", MODES)
def test_one_port_for_all_queues(mq, mode):
    """netmap:va binds every queue: one socket per queue, one ring pair each."""
    per_ring = mq.run(_all_queues_one_port, mode)
    assert sum(per_ring.values()) == QUEUES * PER_QUEUE + PACKET_FRAMES
