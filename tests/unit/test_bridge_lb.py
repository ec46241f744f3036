"""The bridge and lb tools over pipes.

No root: everything runs on netmap pipes in a private runtime directory.
Pipes of one parent (p{1, p{2) share a region, so the bridge swaps
buffers between them; pipes of different parents (a{1, b{1) do not.
"""
from __future__ import annotations

import signal
import sys
import threading
import time

import numpy as np
import pytest

import nmcompat
from nmcompat._ffi import ffi, lib
from nmcompat.tools.bridge import Bridge
from nmcompat.tools.lb import LoadBalancer, base_name, parse_group, pipe_names
from tools_helpers import drain, send_recording, seq_of, stderr_line, udp

# ---------------------------------------------------------------------------
# bridge


class Running:
    """A Bridge running in a thread until stopped."""

    def __init__(self, br: Bridge) -> None:
        self.br, self._stop = br, []
        self.t = threading.Thread(target=br.run, args=(lambda: bool(self._stop), 0, 20), daemon=True)
        self.t.start()

    def stop(self) -> None:
        self._stop.append(1)
        self.t.join(10)
        assert not self.t.is_alive()


def bridge_both_ways(ends, br: Bridge, n: int = 600):
    """n frames each way through the bridge; returns what each end got and
    the buffers frames left in / arrived in."""
    x, y = (nmcompat.open(e) for e in ends)
    run = Running(br)
    try:
        out_x = [udp(1, 2, 10, 20, seq=i, size=60 + i % 900) for i in range(n)]
        out_y = [udp(2, 1, 20, 10, seq=i, size=1400 - i % 700) for i in range(n)]
        got_x, got_y, bufs_y = [], [], []
        sent_x = send_recording(x, out_x[: n // 2])
        sent_y = send_recording(y, out_y[: n // 2])
        deadline = time.monotonic() + 20
        while (len(got_x) < n or len(got_y) < n) and time.monotonic() < deadline:
            if len(sent_x) < n and len(got_y) >= len(sent_x) - 200:
                sent_x += send_recording(x, out_x[len(sent_x): len(sent_x) + 100])
                sent_y += send_recording(y, out_y[len(sent_y): len(sent_y) + 100])
            drain(y, got_y, bufs_y)
            drain(x, got_x)
    finally:
        run.stop()
        x.close()
        y.close()
    assert got_y == out_x, "x -> y: frames lost, damaged or out of order"
    assert got_x == out_y, "y -> x: frames lost, damaged or out of order"
    return sent_x, bufs_y


def test_bridge_zero_copy_swaps_buffers(rundir):
    with Bridge("netmap:p{1", "netmap:p{2") as br:
        assert br.zerocopy
        sent, arrived = bridge_both_ways(("netmap:p}1", "netmap:p}2"), br)
        assert br.moved() == (600, 600)
    # every frame reached the far end in the very buffer it was sent in
    assert arrived == sent


@pytest.mark.parametrize("ports,copy", [(("p{1", "p{2"), True), (("a{1", "b{1"), False)],
                         ids=["same-region-forced-copy", "two-regions"])
def test_bridge_copy(rundir, ports, copy):
    a, b = ports
    with Bridge(f"netmap:{a}", f"netmap:{b}", copy=copy) as br:
        assert not br.zerocopy
        ends = (f"netmap:{a.replace('{', '}')}", f"netmap:{b.replace('{', '}')}")
        sent, arrived = bridge_both_ways(ends, br)
    if copy:                # same region: the indexes are comparable, and never equal
        assert not set(arrived) & set(sent)


def test_bridge_loopback(rundir):
    with Bridge("netmap:l{1", "netmap:l{1", burst=64) as br:
        end = nmcompat.open("netmap:l}1")
        run = Running(br)
        try:
            frames = [udp(1, 2, 3, 4, seq=i) for i in range(200)]
            send_recording(end, frames)
            got, deadline = [], time.monotonic() + 10
            while len(got) < 200 and time.monotonic() < deadline:
                drain(end, got)
        finally:
            run.stop()
            end.close()
    assert got == frames


def test_bridge_command(rundir, procs):
    proc = procs.spawn([sys.executable, "-m", "nmcompat.tools", "bridge",
                        "-w", "0", "-i", "netmap:c{1", "-i", "netmap:c{2"])
    assert "zerocopy supported" in stderr_line(proc, "zerocopy")
    stderr_line(proc, "Ready to go, netmap:c{1 0x0/1 <-> netmap:c{2 0x0/1.")
    with nmcompat.open("netmap:c}1") as x, nmcompat.open("netmap:c}2") as y:
        frames = [udp(5, 6, 7, 8, seq=i) for i in range(50)]
        send_recording(x, frames)
        got, deadline = [], time.monotonic() + 10
        while len(got) < 50 and time.monotonic() < deadline:
            drain(y, got)
        assert got == frames
        proc.kill(signal.SIGINT)
        assert proc.wait(10) == 0
    assert "netmap:c{1 -> netmap:c{2: 50 slots" in stderr_line(proc, "slots")


def test_bridge_command_copy_and_host_rings(rundir, procs):
    proc = procs.spawn([sys.executable, "-m", "nmcompat.tools", "bridge", "-c", "-w", "0",
                        "netmap:d{1", "netmap:d{2", "64"])
    assert "zerocopy NOT supported" in stderr_line(proc, "zerocopy")
    proc.kill(signal.SIGTERM)
    assert proc.wait(10) == 0
    one = procs.spawn([sys.executable, "-m", "nmcompat.tools", "bridge", "-w", "0", "-i", "netmap:eth9"])
    assert one.wait(10) == 1                # the host rings of a NIC that is not there
    err = "".join(one.err)
    assert "same interface, endpoint 0 goes to host" in err and "netmap:eth9^" in err, err


# ---------------------------------------------------------------------------
# lb


def test_lb_names():
    assert base_name("netmap:eth0-2/R@3") == "eth0"
    assert base_name("vale0:a{3") == "vale0:a"
    assert parse_group("4") == ("", 4) and parse_group("out:3") == ("out", 3)
    assert parse_group("out:") == ("out", 2)
    with pytest.raises(ValueError):
        parse_group(":3")
    assert pipe_names("netmap:in}0", [("", 2), ("x", 1), ("", 1)], 7) == [
        ["netmap:in{0/xT@7", "netmap:in{1/xT@7"], ["netmap:x{0/xT@7"], ["netmap:in{2/xT@7"]]


def lb_hash(frame: bytes):
    non_ip = ffi.new("uint32_t *")
    h = lib.nmc_lb_hash(frame, len(frame), non_ip)
    return h, non_ip[0]


def test_lb_hash_is_symmetric_and_per_flow():
    h, non_ip = lb_hash(udp(0x0A000001, 0x0A000002, 1234, 80))
    assert non_ip == 0
    assert lb_hash(udp(0x0A000002, 0x0A000001, 80, 1234))[0] == h        # reverse direction
    assert lb_hash(udp(0x0A000001, 0x0A000002, 1234, 80, seq=9, size=300))[0] == h
    assert lb_hash(udp(0x0A000001, 0x0A000002, 1234, 80, vlan=True))[0] == h
    assert lb_hash(udp(0x0A000001, 0x0A000002, 1234, 80, proto=6))[0] != h
    assert lb_hash(udp(0x0A000001, 0x0A000002, 1235, 80))[0] != h
    arp = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01\x08\x06" + b"\0" * 28
    assert lb_hash(arp)[1] == 1
    assert lb_hash(b"\x01\x02")[1] == 1                                   # runt: no crash


def frames_array(frames):
    arr = np.zeros((len(frames), max(map(len, frames))), np.uint8)
    lens = np.array([len(f) for f in frames], np.uint32)
    for i, f in enumerate(frames):
        arr[i, :len(f)] = np.frombuffer(f, np.uint8)
    return arr, lens


def lb_traffic(lb, sender, readers, frames, read_after: float = 0.0, until=None):
    """Send frames into lb's input, run lb, read every pipe; returns what
    each reader got, per group: [[[seq, ...] per pipe] per group]."""
    arr, lens = frames_array(frames)
    got = [[[] for _ in grp] for grp in readers]
    i, t0 = 0, time.monotonic()
    until = until or (lambda g: all(sum(map(len, x)) >= len(frames) for x in g))
    while time.monotonic() - t0 < 10:
        if i < len(frames):
            i += sender.send(arr[i:i + 128], lens[i:i + 128])
        lb.step(1)
        if time.monotonic() - t0 >= read_after:
            for g, grp in enumerate(readers):
                for k, r in enumerate(grp):
                    data, _ = r.recv(256)
                    got[g][k] += [seq_of(row) for row in data]
            if until(got):
                break
    return got


FLOWS = [(0x0A000000 + f, 0x0A010001, 1000 + f, 80) for f in range(64)]


def flow_frames(n: int):
    return [udp(*FLOWS[i % len(FLOWS)], seq=i) for i in range(n)]


def pipe_of_flow(got_group) -> dict:
    where = {}
    for k, seqs in enumerate(got_group):
        for s in seqs:
            assert where.setdefault(s % len(FLOWS), k) == k, "a flow reached two pipes"
    return where


@pytest.mark.parametrize("copy", [False, True], ids=["zero-copy", "copy"])
def test_lb_spreads_flows(rundir, copy):
    sender = nmcompat.open("netmap:src{0")
    with LoadBalancer("netmap:src}0", [("out", 4)], copy=copy) as lb:
        readers = [[nmcompat.open(f"netmap:out}}{k}") for k in range(4)]]
        got = lb_traffic(lb, sender, readers, flow_frames(4000))
        st = lb.stats()
        for r in readers[0]:
            r.close()
    sender.close()
    assert st["zerocopy_pipes"] == (0 if copy else 4)
    assert st["received"] == st["forwarded"] == 4000 and st["dropped"] == 0
    assert sorted(s for seqs in got[0] for s in seqs) == list(range(4000))
    where = pipe_of_flow(got[0])
    assert set(where.values()) == {0, 1, 2, 3}, "some pipe got no flow"
    for seqs in got[0]:
        assert seqs == sorted(seqs)


def walk_bufs(port) -> list:
    idx, seen = port.bufs_head, []
    while idx and len(seen) <= port.info.extra_bufs:
        seen.append(idx)
        idx = int(np.frombuffer(port.buf(idx)[:4], np.uint32)[0])
    return seen


@pytest.mark.parametrize("extra", [0, 600])
def test_lb_overflow_uses_extra_buffers(rundir, extra):
    sender = nmcompat.open("netmap:src{0")
    lb = LoadBalancer("netmap:src}0", [("out", 2)], extra_bufs=extra)
    readers = [[nmcompat.open(f"netmap:out}}{k}") for k in range(2)]]
    try:
        # readers start late: the 1023-slot pipe rings fill up first
        got = lb_traffic(lb, sender, readers, flow_frames(2600), read_after=0.3,
                         until=lambda g: sum(map(len, g[0])) + lb.stats()["dropped"] >= 2600)
        st = lb.stats()
        assert st["extra_bufs"] == extra
        assert st["received"] == 2600
        assert sum(map(len, got[0])) + st["dropped"] == 2600      # every packet accounted for
        assert sum(p["pkts"] for p in st["pipes"]) == st["forwarded"] == sum(map(len, got[0]))
        if extra:
            assert st["dropped"] == 0 and st["free_bufs"] == extra
        else:
            assert st["dropped"] > 0
        assert lb.release() == extra
        bufs = walk_bufs(lb.input)       # all back on ni_bufs_head, once each
        assert len(bufs) == len(set(bufs)) == extra
    finally:
        lb.close()
        for r in readers[0]:
            r.close()
        sender.close()


def test_lb_group_chain(rundir):
    """Two groups: every packet reaches one pipe of each (the second group
    gets a packet once the first group's reader releases it; the pipe keeps
    the last released slot, so one packet per first-group pipe waits)."""
    sender = nmcompat.open("netmap:src{0")
    with LoadBalancer("netmap:src}0", [("a", 2), ("b", 3)]) as lb:
        readers = [[nmcompat.open(f"netmap:a}}{k}") for k in range(2)],
                   [nmcompat.open(f"netmap:b}}{k}") for k in range(3)]]
        got = lb_traffic(lb, sender, readers, flow_frames(1500),
                         until=lambda g: sum(map(len, g[0])) >= 1500 and sum(map(len, g[1])) >= 1498)
        for grp in readers:
            for r in grp:
                r.close()
    sender.close()
    first = sorted(s for seqs in got[0] for s in seqs)
    second = sorted(s for seqs in got[1] for s in seqs)
    assert first == list(range(1500))
    assert len(second) == len(set(second)) >= 1498 and set(second) <= set(first)
    pipe_of_flow(got[0])
    pipe_of_flow(got[1])


def test_lb_command(rundir, procs):
    sender = nmcompat.open("netmap:in{0")
    proc = procs.spawn([sys.executable, "-m", "nmcompat.tools", "lb", "-i", "netmap:in}0",
                        "-p", "o:2", "-B", "100", "-w", "0", "-o", "0.2"])
    stderr_line(proc, "obtained 100 extra buffers")
    proc.expect("===> aggregate", timeout=10)
    readers = [nmcompat.open(f"netmap:o}}{k}") for k in range(2)]
    arr, lens = frames_array(flow_frames(500))
    sent, got, deadline = 0, 0, time.monotonic() + 10
    while got < 500 and time.monotonic() < deadline:
        if sent < 500:
            sent += sender.send(arr[sent:sent + 100], lens[sent:sent + 100])
        for r in readers:
            got += len(r.recv(256)[0])
    proc.kill(signal.SIGINT)
    assert proc.wait(10) == 0
    for r in readers:
        r.close()
    sender.close()
    assert got == 500
    assert proc.out[-1].strip() == "500 packets forwarded.  0 packets dropped. Total 500"
    assert "added 100 buffers to netmap free list" in "".join(proc.err)
