"""NIC ports over their lifetime: their state per region, their buffers, fork().

- Two runtime directories in one process each have their own NIC region, and
  the AF_XDP sockets of each bind to their own region's UMEM: frames sent and
  received through both arrive byte-exact.
- Closing a NIC port returns every buffer it owns to its region, by what its
  rings and queues hold at close time: after 1,000 opens and closes next to a
  port that stays open, the region has exactly as many free buffers as before,
  and buffers moved between two ports by ``forward`` (buffer swaps) stay with
  the port that holds them.
- A child forked after the open cannot use the parent's NIC port by accident:
  txsync, rxsync and poll fail with EOWNERDEAD and say why; the child's close
  frees only its own copies, and the parent's port keeps working.

Each test runs in its own network namespace (va <-> vb) and runtime directory.
"""
from __future__ import annotations

import errno
import os
import pickle
import select
import signal
import time
import traceback
from contextlib import closing

import pytest

import nmcompat
from nmcompat._ffi import ffi, lib

from nic_support import (BACKEND_IDS, BACKENDS, MAC_A, MAC_B, describe_mismatch, frame,
                         open_nic, open_nic_retrying, peer_receiver, peer_recv, peer_sender,
                         port_collect, port_send, quiet, reshape_veth, tx_done)

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("rundir")]

WINDOW = 128
CYCLES = 1000
WORKERS = 10


def exchange(src, dst, count: int, size: int, tag: int, src_mac: bytes, dst_mac: bytes) -> str:
    """Send ``count`` frames from port src to port dst, a window at a time;
    '' when dst received exactly them, in order, else what differs."""
    expected = [frame(i, size, tag, src=src_mac, dst=dst_mac) for i in range(count)]
    got = []
    for start in range(0, count, WINDOW):
        batch = expected[start:start + WINDOW]
        port_send(src, batch)
        got += port_collect(dst, len(batch), keep=lambda d: d[6:12] == src_mac and d[:6] == dst_mac)
    return describe_mismatch(got, expected)


def free_buffers(port) -> int:
    return port.stats()["buf_free"]


# -- two runtime directories in one process ---------------------------------------------

def _two_rundirs(backend, mode, second):
    quiet()
    with open_nic("netmap:va", backend, mode) as a, \
            open_nic("netmap:vb", backend, mode, rundir=second) as b:
        assert os.path.dirname(a.info.region) != os.path.dirname(b.info.region)
        there = exchange(a, b, 1000, 600, 1, MAC_A, MAC_B)
        back = exchange(b, a, 1000, 600, 2, MAC_B, MAC_A)
    return there, back


def test_two_runtime_directories_in_one_process(netns, nic, rundir):
    there, back = netns.run(_two_rundirs, *nic, str(rundir / "second"))
    assert not there, f"va (first directory) -> vb (second): {there}"
    assert not back, f"vb (second directory) -> va (first): {back}"


# -- every buffer back on close ---------------------------------------------------------

def _cycle_worker(backend, mode, w, cycles, rundir):
    """Worker w: a port on vb stays open while ports on va are opened and
    closed ``cycles`` times, in the worker's own runtime directory.  A queue
    is one process's at a time (AF_XDP: its UMEM; AF_PACKET: one receiving
    port per queue): the worker's port on vb is on queue w, and those on va
    on queues 2w and 2w + 1 in turn (the kernel releases a closed AF_XDP
    queue a moment later)."""
    with open_nic(f"netmap:vb-{w}", backend, mode, slots=64, rundir=rundir) as anchor:
        before = free_buffers(anchor)
        for i in range(cycles):
            name = f"netmap:va-{2 * w + i % 2}"
            open_nic_retrying(name, backend, mode, slots=64, rundir=rundir).close()
        return before, free_buffers(anchor)


def read_all(fd: int, timeout: float) -> bytes:
    """Everything written to pipe fd until its writer closes it (waiting at
    most timeout seconds); closes fd."""
    data, deadline = b"", time.monotonic() + timeout
    while select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    return data


def in_children(fn, calls, timeout: float):
    """fn(*args) for each args of calls, each in a forked child, all at
    once; their results (an exception in a child fails the test)."""
    children = []
    for args in calls:
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:                                    # pragma: no cover - the child
            os.close(rfd)
            try:
                out = pickle.dumps(("ok", fn(*args)))
            except BaseException:
                out = pickle.dumps(("error", traceback.format_exc()))
            os.write(wfd, out)
            os._exit(0)
        os.close(wfd)
        children.append((pid, rfd))
    results, deadline = [], time.monotonic() + timeout
    for pid, rfd in children:
        data = read_all(rfd, max(0.0, deadline - time.monotonic()))
        if not data:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert data, f"child {pid} gave no answer in {timeout} s"
        kind, value = pickle.loads(data)
        assert kind == "ok", value
        results.append(value)
    return results


def _open_close_cycles(backend, mode, base):
    quiet()
    calls = [(backend, mode, w, CYCLES // WORKERS, os.path.join(base, f"w{w}"))
             for w in range(WORKERS)]
    return in_children(_cycle_worker, calls, timeout=240)


@pytest.mark.parametrize("nic_cycled", [BACKENDS[0], BACKENDS[2]], ids=[BACKEND_IDS[0],
                                                                         BACKEND_IDS[2]])
def test_open_close_does_not_grow_the_region(netns, nic_cycled, rundir):
    """CYCLES opens and closes in all, by WORKERS processes at once (closing
    a kernel socket waits for an RCU grace period: in turn, they would take
    minutes)."""
    reshape_veth(netns, queues=2 * WORKERS)
    for w, (before, after) in enumerate(netns.run(_open_close_cycles, *nic_cycled, str(rundir))):
        assert after == before, f"worker {w}: {before - after} buffers kept"


def nic_bufs(port):
    """{buffer: where} of everything a NIC port owns (nmc_nic_bufs)."""
    n = lib.nmc_nic_bufs(port._h, ffi.NULL, ffi.NULL, 0)
    assert n >= 0, os.strerror(-n)
    idx, where = ffi.new("uint32_t[]", n + 1), ffi.new("uint8_t[]", n + 1)
    assert lib.nmc_nic_bufs(port._h, idx, where, n + 1) == n
    out = {int(idx[k]): int(where[k]) for k in range(n)}
    assert len(out) == n, "a buffer listed twice"
    return out


def accounted(ports) -> str:
    """'' when the ports' buffers are disjoint and, with the free ones and the
    two reserved ones, make up the whole region; else what is wrong."""
    sets = [nic_bufs(p) for p in ports]
    total = sum(len(s) for s in sets)
    union = set().union(*sets)
    if len(union) != total:
        return f"{total - len(union)} buffers owned by two ports"
    missing = ports[0].info.buf_num - 2 - free_buffers(ports[0]) - total
    return f"{missing} buffers owned by nobody" if missing else ""


def _bridge_then_close(backend, mode):
    """A plain socket on va sends to the port on vb, which forwards (buffer
    swaps) to the port on vc, whose peer vd receives; vc's port is closed and
    opened again between rounds."""
    quiet()
    problems = []
    with open_nic("netmap:vb", backend, mode) as a, closing(peer_sender("va")) as tx, \
            closing(peer_receiver("vd")) as rx:
        base, own = free_buffers(a), len(nic_bufs(a))
        for round_ in range(3):
            with open_nic_retrying("netmap:vc", backend, mode) as b:
                problems.append(accounted([a, b]))
                expected = [frame(i, 300 + round_, round_) for i in range(600)]
                got = []
                for start in range(0, len(expected), WINDOW):
                    batch = expected[start:start + WINDOW]
                    for f in batch:
                        tx.send(f)
                    moved, deadline = 0, time.monotonic() + 10
                    while moved < len(batch) and time.monotonic() < deadline:
                        a.poll(select.POLLIN, 100)
                        moved += a.forward(b)
                        b.txsync()
                    got += peer_recv(rx, len(batch))
                problems.append(describe_mismatch(got, expected))
                problems.append("" if tx_done(b) else "vc's TX ring was not given back")
                problems.append(accounted([a, b]))
            problems.append("" if (free_buffers(a), len(nic_bufs(a))) == (base, own) else
                            f"after close: {base - free_buffers(a)} buffers not freed, "
                            f"vb's port owns {len(nic_bufs(a)) - own} more")
            problems.append(accounted([a]))
    return [p for p in problems if p]


def test_swapped_buffers_stay_with_their_port(netns, nic):
    netns.ip("link", "add", "vc", "type", "veth", "peer", "name", "vd")
    for dev in ("vc", "vd"):
        netns.ip("link", "set", "dev", dev, "up")
    problems = netns.run(_bridge_then_close, *nic)
    assert not problems, problems


# -- fork ---------------------------------------------------------------------------------

def frames_to(port, tag: int) -> str:
    """'' when 300 frames a plain socket on vb sends arrive exactly at port."""
    with closing(peer_sender("vb")) as tx:
        expected = [frame(i, 200, tag) for i in range(300)]
        got = []
        for start in range(0, len(expected), WINDOW):
            for f in expected[start:start + WINDOW]:
                tx.send(f)
            got += port_collect(port, min(WINDOW, len(expected) - start))
        return describe_mismatch(got, expected)


def _inherited_port_child(port, out_fd: int, go_fd: int, done_fd: int) -> None:  # pragma: no cover
    """In the child: try the parent's port, report; close it when told to."""
    out = []
    for name, call in (("txsync", port.txsync), ("rxsync", port.rxsync),
                       ("poll", lambda: port.poll(select.POLLIN, 100)),
                       ("get the descriptor of", port.fileno)):
        try:
            call()
            out.append(f"{name}: no error")
        except nmcompat.NmcompatError as exc:
            out.append(f"{name}: {exc.errno} {exc.strerror}")
    os.write(out_fd, "\n".join(out).encode())
    os.close(out_fd)
    select.select([go_fd], [], [], 60)
    try:
        port.close()
        os.write(done_fd, b"close: ok")
    except OSError as exc:
        os.write(done_fd, f"close: {exc}".encode())
    os._exit(0)


def _child_uses_parents_port(backend, mode):
    quiet()
    out_r, out_w = os.pipe()
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    port = open_nic("netmap:va", backend, mode)
    pid = os.fork()
    if pid == 0:                                        # pragma: no cover - the child
        _inherited_port_child(port, out_w, go_r, done_w)
    for fd in (out_w, go_r, done_w):
        os.close(fd)
    try:
        lines = read_all(out_r, 20).decode().splitlines()
        works = [frames_to(port, 1)]                    # the child tried, the port still works
        port.close()
        # the child still lives, but holds no copy of the sockets: the
        # queue is free again (AF_XDP: no lasting EBUSY)
        with open_nic_retrying("netmap:va", backend, mode) as again:
            works.append(frames_to(again, 2))
            os.write(go_w, b"go")
            closed = read_all(done_r, 20).decode()
            works.append(frames_to(again, 3))           # the child closed its copy
    finally:
        port.close()
        os.close(go_w)
        _, status = os.waitpid(pid, 0)
    return os.getpid(), lines, closed, status, works


def test_forked_child_cannot_use_the_parents_nic_port(netns, nic):
    parent, lines, closed, status, works = netns.run(_child_uses_parents_port, *nic)
    what = "AF_XDP" if nic[0] == "afxdp" else "AF_PACKET"
    assert len(lines) == 4, lines
    for line in lines:
        name = line.split(":")[0]
        assert line == (f"{name}: {errno.EOWNERDEAD} couldn't {name} netmap:va: "
                        f"the port's {what} sockets belong to process {parent} "
                        "(ports do not survive fork(); open the port again in the child)"), lines
    assert closed == "close: ok" and status == 0, (closed, status)
    assert works == ["", "", ""], works
