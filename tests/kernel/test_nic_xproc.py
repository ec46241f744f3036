"""Several openers of one AF_XDP NIC queue in different processes (netmap:
fds of any process on one kring).

A second process that opens a queue the first one binds joins the first's
NIC region and record: one netmap ring per queue, one AF_XDP socket per
queue (a duplicate, taken with pidfd_getfd), one buffer ledger in the
record's share memory.  Each opener is a child process (``ip netns exec``)
started through the tests' Procs helper; the test talks to it by signals
(SIGUSR1: send a window, SIGUSR2: report and close) and reads its lines.
Frames to va come from a packet socket on vb, frames from va go to one.
"""
from __future__ import annotations

import errno
import json
import os
import queue
import signal
import sys
import time
from pathlib import Path

import pytest

from afxdp_support import frame, packet_recv, packet_sender, packet_socket, quiet_ipv6, tag_seq
from nic_support import reshape_veth

pytestmark = pytest.mark.kernel

HERE = Path(__file__).resolve().parent
MODES = ["drv", "skb"]
WINDOW = 64

OPENER = r"""
import json, os, signal, sys
sigs = {signal.SIGUSR1, signal.SIGUSR2}
signal.pthread_sigmask(signal.SIG_BLOCK, sigs)     # before any thread starts (numpy's)
sys.path[:0] = [sys.argv[1]]
import nmcompat
from afxdp_support import MAC_A, MAC_B, frame, quiet_ipv6, send_all, tag_seq, wait_tx_done
from test_nic_lifetime import accounted, free_buffers, nic_bufs

name, mode, keeper, hardened = sys.argv[2], sys.argv[3], sys.argv[4] == "1", sys.argv[5]
quiet_ipv6("va", "vb")
if hardened == "undumpable":        # pidfd_getfd on us then needs CAP_SYS_PTRACE
    import ctypes
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)         # PR_SET_DUMPABLE 0
if hardened == "noptrace":          # no CAP_SYS_PTRACE in our effective set
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    assert libc.capget(hdr, data) == 0
    data[0] &= ~(1 << 19)           # CAP_SYS_PTRACE
    assert libc.capset(hdr, data) == 0, ctypes.get_errno()
if hardened == "gate":              # open when the test says (SIGUSR1), all openers at once
    print("armed", flush=True)
    signal.sigwait({signal.SIGUSR1})
# stack_tx: the test's packet socket sends on vb through the qdisc layer
k = nmcompat.open("netmap:vb", backend="afxdp", xdp_mode=mode, stack_tx=True) if keeper else None
base = free_buffers(k) if k else 0
try:
    p = nmcompat.open(name, xdp_mode=mode)
except OSError as exc:
    print("error", exc.errno, json.dumps(str(exc)), flush=True)
    sys.exit(0)
print("ready", p.info.backend, p.info.region, flush=True)

def on_frame(hdr, data):
    if len(data) >= 22 and bytes(data[12:14]) == b"\x88\xb5":
        print("f %d %d" % tag_seq(data), flush=True)

while True:
    if p.rx_rings:
        p.poll(nmcompat.POLLIN, 20)
        p.rxsync()
        p.dispatch(on_frame)
        info = signal.sigtimedwait(sigs, 0)
        sig = info.si_signo if info else None
    else:
        sig = signal.sigwait(sigs)
    if sig == signal.SIGUSR1:
        send_all(p, [frame(i, 70, 4, src=MAC_A, dst=MAC_B) for i in range(64)])
        print("sent", wait_tx_done(p), flush=True)
    elif sig == signal.SIGUSR2:
        break
print("bufs", json.dumps(sorted(nic_bufs(p))), flush=True)
print("accounted", json.dumps(accounted([k, p]) if k else ""), flush=True)
p.close()
print("closed", flush=True)
if k:
    signal.sigwait({signal.SIGUSR2})
    print("free", free_buffers(k), base, flush=True)
"""


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def _opener(procs, netns, name, mode, keeper=False, hardened="-"):
    """A child holding `name` open; its "ready" line (or "error ...")."""
    proc = procs.spawn(["ip", "netns", "exec", netns.name, sys.executable, "-c", OPENER, HERE,
                        name, mode, "1" if keeper else "0", hardened])
    line = proc.expect("", timeout=20)
    while not line.startswith(("ready", "error")):
        line = proc.expect("", timeout=20)
    return proc, line


def _send_to_va(tag, start, n=WINDOW):
    quiet_ipv6("va", "vb")
    with packet_sender("vb") as tx:
        for i in range(start, start + n):
            tx.send(frame(i, 60 + i % 40, tag))
    return [(tag, i) for i in range(start, start + n)]


def _frames(children, want, timeout=10.0):
    """(tag, seq) of the frames the children print, until `want` came (or
    the timeout), each child's lines waited on in turn."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for c in children:
            try:
                line = c._lines.get(timeout=0.02)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail("an opener exited\n" + c.describe())
            if line.startswith("f "):
                got.append(tuple(int(v) for v in line.split()[1:3]))
    return got


def _report(child):
    """Ask a child to list its buffers and close; (bufs, accounted)."""
    child.kill(signal.SIGUSR2)
    bufs = json.loads(child.expect("bufs ").split(" ", 1)[1])
    acc = json.loads(child.expect("accounted ").split(" ", 1)[1])
    child.expect("closed")
    return bufs, acc


def _late_frames(child):
    return [line for line in child.out[:] if line.startswith("f ")]


# -- IF-0 in two processes -------------------------------------------------------------

@pytest.mark.parametrize("close_first", ["keeper's process", "the other"])
@pytest.mark.parametrize("mode", MODES)
def test_one_queue_in_two_processes_receives_each_frame_once(netns, procs, mode, close_first):
    """A (with a keeper port on vb in its region, which counts the free
    buffers) and B open va-0; then one closes and the other keeps
    receiving.  When A closes first, B's close is the record's last, in
    another process than the region's creator: it gives every buffer back
    into A's region."""
    a, ready_a = _opener(procs, netns, "netmap:va-0", mode, keeper=True)
    b, ready_b = _opener(procs, netns, "netmap:va-0", mode)
    assert ready_a.startswith("ready afxdp") and ready_b.startswith("ready afxdp"), (ready_a, ready_b)
    assert ready_a.split()[2] == ready_b.split()[2], "the second process is not in the first's region"
    sent = []
    for w in range(4):
        sent += netns.run(_send_to_va, 1, w * WINDOW)
    got = _frames([a, b], len(sent))
    first, other = (a, b) if close_first == "keeper's process" else (b, a)
    bufs_first, acc_first = _report(first)
    after = netns.run(_send_to_va, 2, 0)
    got_after = _frames([other], len(after))
    bufs_other, acc_other = _report(other)
    a.kill(signal.SIGUSR2)
    free, base = (int(v) for v in a.expect("free ").split()[1:3])
    assert sorted(got) == sorted(sent), "frames missing or received twice"
    received = [tuple(int(v) for v in line.split()[1:3]) for line in _late_frames(a) + _late_frames(b)]
    assert sorted(received) == sorted(sent + after), "a frame arrived twice, or was lost"
    assert got_after == after, "after the first process closed"
    assert (acc_first if first is a else acc_other) == "", (acc_first, acc_other)
    assert bufs_first and len(bufs_other) == len(bufs_first), "both list the record's buffers"
    assert free == base, f"{base - free} buffers not given back"


# -- IF/R in one process, IF/T in another -------------------------------------------------

def _receive_what_b_sends(b_pid):
    quiet_ipv6("va", "vb")
    with packet_socket("vb") as rx:
        os.kill(b_pid, signal.SIGUSR1)
        return [tag_seq(f) for f in packet_recv(rx, WINDOW)]


@pytest.mark.parametrize("mode", MODES)
def test_rx_only_and_tx_only_openers_in_two_processes(netns, procs, mode):
    r, ready_r = _opener(procs, netns, "netmap:va/R", mode)
    t, ready_t = _opener(procs, netns, "netmap:va/T", mode)
    assert ready_r.startswith("ready afxdp") and ready_t.startswith("ready afxdp"), (ready_r, ready_t)
    assert ready_r.split()[2] == ready_t.split()[2]
    sent_in = netns.run(_send_to_va, 3, 0)
    got_in = _frames([r], len(sent_in))
    got_out = netns.run(_receive_what_b_sends, t.pid)
    assert t.expect("sent ") == "sent True"
    _report(t)
    _report(r)
    assert got_in == sent_in
    assert got_out == [(4, i) for i in range(WINDOW)]
    assert not [x for x in _late_frames(r) if x.startswith("f 4 ")], "va/T's frames came back on va/R"


# -- the first opener killed --------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_second_process_keeps_receiving_after_the_first_is_killed(netns, procs, mode):
    a, ready_a = _opener(procs, netns, "netmap:va-0", mode)
    b, ready_b = _opener(procs, netns, "netmap:va-0", mode)
    assert ready_a.startswith("ready afxdp") and ready_b.startswith("ready afxdp"), (ready_a, ready_b)
    first = netns.run(_send_to_va, 1, 0)
    got = _frames([a, b], len(first))
    a.kill(signal.SIGKILL)
    second = netns.run(_send_to_va, 2, 0, 4 * WINDOW)
    got_second = _frames([b], len(second))
    bufs, _ = _report(b)
    assert sorted(got) == sorted(first)
    assert got_second == second, "the second opener stopped receiving when the first died"
    assert bufs, "the survivor lists its record's buffers"


@pytest.mark.parametrize("mode", MODES)
def test_killed_opener_leaks_nothing(netns, procs, mode):
    """A keeps a keeper (vb) in its region; B joins va-0 there and dies; A's
    close of va-0 is then the last and gives every buffer back."""
    a, ready_a = _opener(procs, netns, "netmap:va-0", mode, keeper=True)
    b, ready_b = _opener(procs, netns, "netmap:va-0", mode)
    assert ready_a.startswith("ready afxdp") and ready_b.startswith("ready afxdp"), (ready_a, ready_b)
    sent = netns.run(_send_to_va, 1, 0)
    _frames([a, b], len(sent))
    b.kill(signal.SIGKILL)
    after = netns.run(_send_to_va, 2, 0)
    got_after = _frames([a], len(after))
    _, acc = _report(a)
    a.kill(signal.SIGUSR2)
    free, base = (int(v) for v in a.expect("free ").split()[1:3])
    assert got_after == after
    assert acc == "", acc
    assert free == base, f"{base - free} buffers not given back"


# -- NR_EXCLUSIVE across processes --------------------------------------------------------

@pytest.mark.parametrize("first,second", [("netmap:va/Rx", "netmap:va-0"),
                                          ("netmap:va-0", "netmap:va-0/x")])
def test_exclusive_across_processes(netns, procs, first, second):
    a, ready_a = _opener(procs, netns, first, "skb")
    b, ready_b = _opener(procs, netns, second, "skb")
    assert ready_a.startswith("ready afxdp"), ready_a
    assert ready_b.startswith(f"error {errno.EBUSY} "), ready_b
    assert "NR_EXCLUSIVE" in ready_b, ready_b
    _report(a)


# -- pidfd_getfd refused ------------------------------------------------------------------

def test_refused_duplicate_is_ebusy_with_the_reason(netns, procs):
    """The first opener is not dumpable and the second has no
    CAP_SYS_PTRACE: the kernel refuses its pidfd_getfd.  The open fails
    (EBUSY, saying why and what to do), on the default admode too: never
    a second stream on another backend."""
    a, ready_a = _opener(procs, netns, "netmap:va-0", "skb", hardened="undumpable")
    b, ready_b = _opener(procs, netns, "netmap:va-0", "skb", hardened="noptrace")
    assert ready_a.startswith("ready afxdp"), ready_a
    assert ready_b.startswith(f"error {errno.EBUSY} "), ready_b
    assert "pidfd_getfd" in ready_b and "ptrace" in ready_b and str(a.pid) in ready_b, ready_b
    _report(a)


# -- two queues of one record, in two processes --------------------------------------------

def test_other_queue_of_the_record_in_another_process(netns, procs):
    """A binds queue 0 of a two-queue va, B queue 1 of the same record: B's
    socket is a new one on A's UMEM (bound to a duplicate of A's).  Once B
    closed, that socket is gone; C binds queue 1 again and gets a new one,
    stocked with what the ledger says the old one held.  Every buffer is
    accounted for while they are open, and back when they are closed."""
    reshape_veth(netns, queues=2)
    a, ready_a = _opener(procs, netns, "netmap:va-0", "skb", keeper=True)
    b, ready_b = _opener(procs, netns, "netmap:va-1", "skb")
    assert ready_a.startswith("ready afxdp") and ready_b.startswith("ready afxdp"), (ready_a, ready_b)
    assert ready_a.split()[2] == ready_b.split()[2]
    bufs_b, _ = _report(b)
    c, ready_c = _opener(procs, netns, "netmap:va-1", "skb")
    assert ready_c.startswith("ready afxdp") and ready_c.split()[2] == ready_a.split()[2], ready_c
    bufs_c, _ = _report(c)
    bufs_a, acc_a = _report(a)
    a.kill(signal.SIGUSR2)
    free, base = (int(v) for v in a.expect("free ").split()[1:3])
    assert acc_a == "", acc_a
    assert len(bufs_b) == len(bufs_c) == len(bufs_a), "the record's buffers, as each process lists them"
    assert free == base, f"{base - free} buffers not given back"


# -- the record's process limit -----------------------------------------------------------

def test_a_record_full_of_processes_refuses_the_next_with_the_limit(netns, procs):
    """A record's share memory lists NMC_NIC_MAX_PROCS (16) processes: the
    17th opener of the queue gets EBUSY saying so, not the generic reason."""
    from nmcompat._ffi import lib
    limit = lib.NMC_NIC_MAX_PROCS
    openers = [_opener(procs, netns, "netmap:va/T", "skb") for _ in range(limit + 1)]
    assert all(line.startswith("ready afxdp") for _, line in openers[:limit]), [line for _, line in openers]
    last = openers[limit][1]
    assert last.startswith(f"error {errno.EBUSY} "), last
    assert f"shared by {limit} processes already" in last, last
    for child, _ in openers[:limit]:
        _report(child)


# -- first opens racing ---------------------------------------------------------------------

RACERS = 6


@pytest.mark.parametrize("round_", range(2))
def test_first_opens_racing_in_several_processes_all_join_one_port(netns, procs, round_):
    """RACERS processes open va at the same moment (each released by a
    signal once armed), none having a record to join yet: those whose
    record lost the race for the queue's bind open again and join the
    winner's, so every open succeeds, all in one region, and the XDP
    program attached by one is joined by the others (its link found)."""
    racers = [procs.spawn(["ip", "netns", "exec", netns.name, sys.executable, "-c", OPENER, HERE,
                           "netmap:va", "skb", "0", "gate"]) for _ in range(RACERS)]
    for r in racers:
        r.expect("armed", timeout=30)
    for r in racers:
        r.kill(signal.SIGUSR1)
    lines = []
    for r in racers:
        line = r.expect("", timeout=30)
        while not line.startswith(("ready", "error")):
            line = r.expect("", timeout=30)
        lines.append(line)
    assert all(line.startswith("ready afxdp") for line in lines), lines
    assert len({line.split()[2] for line in lines}) == 1, lines
    for r in racers:
        _report(r)
