"""Several openers of one NIC queue (netmap: several fds on one kring).

In one process, every AF_XDP port of an interface with the same ring layout
binds the same rings (one netmap ring in memory per queue) and the same
AF_XDP socket per queue: a frame va receives arrives once, on the ring the
openers share, whichever of them syncs it.  ``/x`` (NR_EXCLUSIVE) refuses
any other opener of an overlapping ring with EBUSY, and is refused while
one is there.  Openers in other processes: test_nic_xproc.py.

Frames go from a plain packet socket on vb to va (one queue), in windows
the receivers drain before the next is sent.
"""
from __future__ import annotations

import errno
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nmcompat

from afxdp_support import (MAC_A, MAC_B, Child, frame, open_xdp, packet_sender, packet_socket, packet_recv,
                           quiet_ipv6, send_all, tag_seq, wait_tx_done)
from cprograms import devnetmap_program
from nic_support import peer_receiver, peer_recv, peer_sender
from test_devnetmap_nic import frame as devnetmap_frame
from test_nic_lifetime import accounted, nic_bufs

pytestmark = pytest.mark.kernel

MODES = ["drv", "skb"]
WINDOW = 64


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def _receive(port, want, timeout=5.0):
    """(tag, seq) of the test frames port receives, until `want` or timeout."""
    got = []

    def cb(hdr, data):
        if len(data) >= 22 and bytes(data[12:14]) == b"\x88\xb5":
            got.append(tag_seq(data))

    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        port.poll(nmcompat.POLLIN, 20)
        port.rxsync()
        port.dispatch(cb)
    return got


def _send_window(tx, tag, start):
    for i in range(start, start + WINDOW):
        tx.send(frame(i, 60 + i % 40, tag))
    return [(tag, i) for i in range(start, start + WINDOW)]


def _free(port):
    return port.stats()["buf_free"]


# -- two openers of one queue in one process --------------------------------------

def _two_openers(mode, close_first):
    """va and va-0 open at once: windows taken alternately by each; then the
    one named by close_first closes and the other takes one more window.  A
    port on vb keeps the process's region, to count its free buffers."""
    quiet_ipv6("va", "vb")
    sent, got = [], {"va": [], "va-0": [], "after": []}
    # stack_tx: the packet socket sends on vb through the qdisc layer, which
    # a port binding vb's TX rings would otherwise cut off, as netmap does
    with open_xdp("netmap:vb", mode, stack_tx=True) as keeper, packet_sender("vb") as tx:
        base = _free(keeper)
        ports = {"va": open_xdp("netmap:va", mode), "va-0": open_xdp("netmap:va-0", mode)}
        queues = {n: p.info.queues for n, p in ports.items()}
        for w in range(4):
            name = "va" if w % 2 == 0 else "va-0"
            sent += _send_window(tx, 1, w * WINDOW)
            got[name] += _receive(ports[name], WINDOW)
        late = {n: _receive(p, 1, timeout=0.2) for n, p in ports.items()}
        owned = (nic_bufs(ports["va"]) == nic_bufs(ports["va-0"]), accounted([keeper, ports["va"]]))
        ports.pop(close_first).close()
        (other,) = ports.values()
        sent_after = _send_window(tx, 2, 0)
        got["after"] = _receive(other, WINDOW)
        other.close()
        after = _free(keeper)
    return queues, sent, sent_after, got, late, owned, base, after


@pytest.mark.parametrize("close_first", ["va", "va-0"])
@pytest.mark.parametrize("mode", MODES)
def test_two_openers_share_the_queue_once(netns, mode, close_first):
    queues, sent, sent_after, got, late, owned, base, after = netns.run(_two_openers, mode, close_first)
    assert queues == {"va": (0,), "va-0": (0,)}
    assert got["va"] == sent[0:WINDOW] + sent[2 * WINDOW:3 * WINDOW], "va's windows"
    assert got["va-0"] == sent[WINDOW:2 * WINDOW] + sent[3 * WINDOW:], "va-0's windows"
    assert late == {"va": [], "va-0": []}, "a frame arrived twice"
    assert owned == (True, ""), "both openers list the buffers of their rings, once in the region"
    assert got["after"] == sent_after, f"after {close_first} closed"
    assert after == base, f"{base - after} buffers not given back"


def _rx_and_tx(mode):
    """va/R receives what vb sends; va/T sends what vb receives."""
    quiet_ipv6("va", "vb")
    with open_xdp("netmap:va/R", mode) as r, open_xdp("netmap:va/T", mode) as t, \
            packet_sender("vb") as tx, packet_socket("vb") as rx:
        shape = (r.info.queues, t.info.queues, (len(r.tx_rings), len(r.rx_rings)),
                 (len(t.tx_rings), len(t.rx_rings)))
        sent_in = _send_window(tx, 3, 0)
        got_in = _receive(r, WINDOW)
        out = [frame(i, 70, 4, src=MAC_A, dst=MAC_B) for i in range(WINDOW)]
        send_all(t, out)
        done = wait_tx_done(t)
        got_out = [tag_seq(f) for f in packet_recv(rx, WINDOW)]
        stray = _receive(r, 1, timeout=0.2)
    return shape, sent_in, got_in, [tag_seq(f) for f in out], got_out, done, stray


@pytest.mark.parametrize("mode", MODES)
def test_rx_only_and_tx_only_openers_of_one_queue(netns, mode):
    shape, sent_in, got_in, sent_out, got_out, done, stray = netns.run(_rx_and_tx, mode)
    assert shape[:2] == ((0,), (0,))
    assert shape[2] == (0, 1) and shape[3] == (1, 0), f"rings bound (tx, rx): {shape[2:]}"
    assert got_in == sent_in
    assert done and got_out == sent_out
    assert stray == [], "va/T's own frames came back on va/R"


# -- NR_EXCLUSIVE ----------------------------------------------------------------

def _open_errno(name, mode):
    try:
        open_xdp(name, mode).close()
        return 0, ""
    except OSError as exc:
        return exc.errno, str(exc)


def _exclusive(mode):
    out = {}
    with open_xdp("netmap:va", mode):
        out["va-0/x beside va"] = _open_errno("netmap:va-0/x", mode)
    with open_xdp("netmap:va/Rx", mode):
        out["va-0 beside va/Rx"] = _open_errno("netmap:va-0", mode)
        out["va/R beside va/Rx"] = _open_errno("netmap:va/R", mode)
        out["va/T beside va/Rx"] = _open_errno("netmap:va/T", mode)
    out["va-0/x alone"] = _open_errno("netmap:va-0/x", mode)
    return out


@pytest.mark.parametrize("mode", MODES)
def test_exclusive_refuses_every_other_opener_of_its_rings(netns, mode):
    out = netns.run(_exclusive, mode)
    for case in ("va-0/x beside va", "va-0 beside va/Rx", "va/R beside va/Rx"):
        assert out[case][0] == errno.EBUSY, (case, out[case])
        assert "NR_EXCLUSIVE" in out[case][1], out[case]
    assert out["va/T beside va/Rx"] == (0, ""), "a TX-only opener does not touch the RX ring"
    assert out["va-0/x alone"] == (0, "")


def _slots_of_the_first(mode):
    with open_xdp("netmap:va", mode, slots=512) as a, open_xdp("netmap:va-0", mode, slots=256) as b:
        return ([r.num_slots for r in a.rx_rings + a.tx_rings],
                [r.num_slots for r in b.rx_rings + b.tx_rings],
                (a.rx_rings[0]._offset, a.tx_rings[0]._offset) ==
                (b.rx_rings[0]._offset, b.tx_rings[0]._offset))


def test_a_second_opener_binds_the_same_rings_with_their_slot_counts(netns):
    """One netmap ring per queue, as netmap's krings: a slot count asked for
    applies to the open that makes the rings; a later opener binds them as
    they are."""
    first, second, same = netns.run(_slots_of_the_first, "skb")
    assert first == [512, 512] and second == [512, 512]
    assert same, "the two ports' rings are not the same rings"


# -- AF_PACKET (emulated mode) -------------------------------------------------------
# Packet sockets do not conflict, so each opener would get every frame: one
# opener per receive queue in the namespace, system-wide; TX-only openers
# each have their own TX ring, unless one holds the queue with /x.

def _open_pkt(name):
    return nmcompat.open(name, backend="afpacket")


def _pkt_errno(name):
    try:
        _open_pkt(name).close()
        return 0, ""
    except OSError as exc:
        return exc.errno, str(exc)


def _pkt_in_one_process():
    quiet_ipv6("va", "vb")
    out = {}
    with _open_pkt("netmap:va/R") as r:
        out["va-0"] = _pkt_errno("netmap:va-0")
        out["va/R"] = _pkt_errno("netmap:va/R")
        with _open_pkt("netmap:va/T") as t, _open_pkt("netmap:va/T") as t2, \
                packet_sender("vb") as tx, packet_socket("vb") as rx:
            sent_in = _send_window(tx, 5, 0)
            out["got_in"] = (sent_in, _receive(r, WINDOW), _receive(r, 1, timeout=0.2))
            sent_out = []
            for i, port in enumerate((t, t2)):
                frames = [frame(i * WINDOW + j, 80, 6, src=MAC_A, dst=MAC_B) for j in range(WINDOW)]
                send_all(port, frames)
                sent_out += [tag_seq(f) for f in frames]
            out["got_out"] = (sent_out, sorted(tag_seq(f) for f in packet_recv(rx, 2 * WINDOW)))
    out["again"] = _pkt_errno("netmap:va-0")
    with _open_pkt("netmap:va/Tx"):
        out["va/T beside va/Tx"] = _pkt_errno("netmap:va/T")
    with _open_pkt("netmap:va/T"):
        out["va/Tx beside va/T"] = _pkt_errno("netmap:va/Tx")
    return out


def test_emulated_openers_of_one_queue_in_one_process(netns):
    out = netns.run(_pkt_in_one_process)
    for name in ("va-0", "va/R"):
        assert out[name][0] == errno.EBUSY, (name, out[name])
        assert "one port per receive queue" in out[name][1], out[name]
    sent_in, got_in, stray = out["got_in"]
    assert got_in == sent_in and stray == [], "every frame once, on the one receiving port"
    sent_out, got_out = out["got_out"]
    assert got_out == sorted(sent_out), "both TX-only openers send"
    assert out["again"] == (0, ""), "closing the receiving port frees its queue"
    for case in ("va/T beside va/Tx", "va/Tx beside va/T"):
        assert out[case][0] == errno.EBUSY and "NR_EXCLUSIVE" in out[case][1], (case, out[case])


CHILD_HOLDS_PKT = """
import sys, nmcompat
p = nmcompat.open(sys.argv[1], backend="afpacket")
print("ready", flush=True)
sys.stdin.readline()
"""


def _pkt_other_process():
    out = {}
    holder = Child(CHILD_HOLDS_PKT, "netmap:va-0")
    try:
        holder.expect("ready")
        out["va"] = _pkt_errno("netmap:va")
        out["va/T"] = _pkt_errno("netmap:va/T")
    finally:
        holder.kill()                   # and reaped: its descriptors are closed
    out["after kill"] = _pkt_errno("netmap:va")
    holder = Child(CHILD_HOLDS_PKT, "netmap:va/Tx")
    try:
        holder.expect("ready")
        out["va/T beside another's va/Tx"] = _pkt_errno("netmap:va/T")
    finally:
        holder.kill()
    return out


def test_emulated_receive_queue_is_refused_to_another_process(netns):
    out = netns.run(_pkt_other_process)
    assert out["va"][0] == errno.EBUSY and "one port per receive queue" in out["va"][1], out["va"]
    assert out["va/T"] == (0, "")
    assert out["after kill"] == (0, "")
    busy = out["va/T beside another's va/Tx"]
    assert busy[0] == errno.EBUSY and "NR_EXCLUSIVE" in busy[1], busy


# -- two descriptors of one netmap program under exec --------------------------------

FRAMES = 256


@pytest.fixture(scope="module")
def nm_openers(tmp_path_factory) -> Path:
    return devnetmap_program(tmp_path_factory.mktemp("nmopeners") / "nm_openers", "nm_openers.c")


def _from_program(data) -> bool:
    return len(data) >= 18 and data[11] == 0x0A and data[12:14] == b"\x88\xb5"


def _run_program(argv, n, replies):
    """Inside the namespace: run the program, send it n of nm_nic.c's test
    frames from vb once it is ready, take `replies` frames from it on vb."""
    quiet_ipv6("va", "vb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMCOMPAT_")}
    with peer_receiver("vb") as rx, peer_sender("vb") as tx:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ready = proc.stdout.readline() if select.select([proc.stdout], [], [], 20)[0] else ""
            got = []
            if ready.startswith("ready "):
                for seq in range(n):
                    tx.send(devnetmap_frame(seq, 0x0B))
                got = peer_recv(rx, replies, keep=_from_program) if replies else []
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return ready, got, proc.returncode, out, err


@pytest.mark.parametrize("what", ["rt", "two"])
def test_two_descriptors_of_one_program_on_one_queue(netns, nm_openers, rundir, what):
    """`rt`: /R and /T on va's queue, frames both ways; `two`: two plain
    descriptors take the frames of one ring in turn, each frame once."""
    argv = [sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", str(rundir), "--",
            str(nm_openers), what, "va", str(FRAMES)]
    replies = FRAMES if what == "rt" else 0
    ready, got, rc, out, err = netns.run(_run_program, argv, FRAMES, replies)
    assert ready == "ready 1\n", err
    assert rc == 0 and out == f"{what} ok {FRAMES}\n", err
    assert got == [devnetmap_frame(seq, 0x0A) for seq in range(replies)]
