"""Buffer ownership: every buffer of a region in exactly one place, kept
through a zero-copy forwarder killed half-way through a buffer swap, and
`nmcompat check` reporting the state (clean, or the buffer in two places)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import nmcompat
from testlib import SANITIZER_ENV, parse_kv

FRAMES = 6


def frame(tag: bytes, i: int) -> bytes:
    return tag + b"-%04d-" % i + bytes([i & 0xff]) * (60 + 7 * i)


def run_check(rundir, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, NMCOMPAT_RUNDIR=str(rundir))
    return subprocess.run([sys.executable, "-m", "nmcompat.tools", "check", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def check_json(rundir) -> dict:
    proc = run_check(rundir, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def send(port, frames) -> None:
    for f in frames:
        assert port.inject(f) == len(f)
    port.txsync()


def receive(port, count: int):
    """count frames, waiting for each with a bounded poll."""
    out = []
    while len(out) < count:
        port.rxsync()
        port.dispatch(lambda h, d: out.append(bytes(d)))
        if len(out) < count:
            assert port.poll(nmcompat.POLLIN, 10000) & nmcompat.POLLIN, f"only {len(out)} frames"
    port.rxsync()
    return out


def test_kill_between_the_two_stores_of_a_swap(rundir, procs, swap_kill):
    send1 = nmcompat.open("netmap:k{1")     # the forwarder reads k}1 ...
    recv2 = nmcompat.open("netmap:k}2")     # ... and writes k{2
    child = procs.spawn([swap_kill, rundir, "k"])
    child.expect("ready", timeout=30)
    first = [frame(b"first", i) for i in range(FRAMES)]
    send(send1, first)
    _, shared, rx_slot, tx_slot, lost = child.expect("stored", timeout=30).split()
    child.kill()
    child.wait()

    # before the next reap: the dead forwarder's buffer is in two places
    proc = run_check(rundir)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"buffer {shared} in two places: k}}1 rx ring 0 slot {rx_slot} and " \
           f"k{{2 tx ring 0 slot {tx_slot}" in proc.stdout, proc.stdout

    # the next open reaps: one owner per buffer, the lost one freed
    recv1 = nmcompat.open("netmap:k}1")
    send2 = nmcompat.open("netmap:k{2")
    report = check_json(rundir)
    assert report["violations"] == 0, report
    (region,) = report["regions"]
    assert region["unplaced"] == 0 and region["empty_slots"] == 0, region
    assert region["free_bufs"] + region["in_rings"] == region["buf_num"] - 2, region

    # traffic: writing k{2 must not touch the frame still waiting in k}1
    second = [frame(b"second", i) for i in range(FRAMES)]
    send(send2, second)
    assert receive(recv1, FRAMES) == first
    assert receive(recv2, FRAMES) == second
    third = [frame(b"third", i) for i in range(3 * FRAMES)]
    send(send1, third)
    assert receive(recv1, len(third)) == third
    assert run_check(rundir).returncode == 0
    assert int(lost) >= 2
    for p in (send1, recv2, recv1, send2):
        p.close()


def test_check_names_a_planted_duplicate(rundir):
    a = nmcompat.open("netmap:d{1")
    b = nmcompat.open("netmap:d}1")
    assert run_check(rundir).returncode == 0
    slots = a.tx_rings[0].slots
    dup = int(slots[1]["buf_idx"])
    slots[0]["buf_idx"] = dup                   # slot 0's own buffer is now nowhere
    proc = run_check(rundir)
    assert proc.returncode == 1, proc.stdout
    assert f"buffer {dup} in two places: d{{1 tx ring 0 slot 0 and d{{1 tx ring 0 slot 1" \
        in proc.stdout, proc.stdout
    report = check_json(rundir)
    (region,) = report["regions"]
    whats = sorted(v["what"] for v in region["listed"])
    assert whats == ["duplicate", "lost"], region["listed"]
    assert region["violations"] == 2 and region["unplaced"] == 1
    a.close()
    b.close()


def test_check_counts_extra_buffers_kept_off_the_list(rundir):
    p = nmcompat.open("netmap:e{1", extra_bufs=4)
    q = nmcompat.open("netmap:e}1")
    report = check_json(rundir)
    (region,) = report["regions"]
    assert region["in_extra"] == 4 and report["violations"] == 0, region
    p.bufs_head = 0                             # an application took all four
    (region,) = check_json(rundir)["regions"]
    assert region["in_extra"] == 0 and region["unplaced"] == 4 and region["private_max"] == 4
    assert region["violations"] == 0
    p.close()
    q.close()


def test_check_without_regions_and_usage(rundir, tmp_path):
    assert run_check(rundir).returncode == 0
    proc = run_check(rundir, "--rundir", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "couldn't read runtime directory" in proc.stderr
    assert run_check(rundir, "--bogus").returncode == 2
    assert not (tmp_path / "missing").exists()
    np.testing.assert_equal(sorted(os.listdir(rundir)), [])


def test_destroyed_pipe_frees_no_buffer_a_forwarder_moved_on(rundir):
    """A pipe's RX slot and the writer's TX slot at one position carry the
    same buffer until the reader releases it; a forwarder that swapped it
    away and closed without an rxsync leaves it in the TX slot only as a
    stale copy.  Destroying the pipe must not free it under its new owner."""
    s1, r1 = nmcompat.open("netmap:f{1"), nmcompat.open("netmap:f}1")
    w2, q2 = nmcompat.open("netmap:f{2"), nmcompat.open("netmap:f}2")
    send(s1, [frame(b"moved", 0)])
    r1.rxsync()
    assert r1.forward(w2) == 1                  # buffer swap, no sync yet
    w2.txsync()
    r1.close()
    s1.close()                                  # pipe f1 destroyed
    assert run_check(rundir).returncode == 0, run_check(rundir).stdout
    z = [nmcompat.open(f"netmap:f{{{i}") for i in range(3, 6)]   # new buffers from the allocator
    assert receive(q2, 1) == [frame(b"moved", 0)]
    assert run_check(rundir).returncode == 0
    for p in (w2, q2, *z):
        p.close()


def test_sweeps_beside_a_forwarder_that_keeps_swapping(rundir, procs, pipe_stream):
    """Holders of the region die and are swept again and again while a
    zero-copy bridge swaps buffers in the same region: the stream through
    it stays exact (no buffer freed under the bridge, none shared by two
    packets) and the region checks clean afterwards."""
    n = 100_000
    recv = procs.spawn([pipe_stream, "recv", "-p", "s", "-i", "2", "-r", "slave", "-n", n, "-s", 7,
                        "-T", 120])
    recv.expect("ready recv")
    bridge = procs.spawn([sys.executable, "-m", "nmcompat.tools", "bridge", "-w", "0",
                          "-i", "netmap:s}1", "-i", "netmap:s{2"])
    send = procs.spawn([pipe_stream, "send", "-p", "s", "-i", "1", "-n", n, "-s", 7, "-x", "-T", 120])
    send.expect("ready send")
    sweeps = 0
    while send.alive() and sweeps < 20:
        # its open reaps the one killed before; it fills every buffer of its
        # TX ring, so a buffer it shared with the stream would garble it
        holder = procs.spawn([pipe_stream, "send", "-p", "s", "-i", "9", "-n", 1 << 30, "-q",
                              "-t", 9, "-T", 60])
        holder.expect("sent")
        holder.kill()
        holder.wait()
        sweeps += 1
    s = parse_kv(send.finish(timeout=120).splitlines()[-1])
    r = parse_kv(recv.finish(timeout=60).splitlines()[-1])
    assert int(r["pkts"]) == n and r["sum"] == s["sum"] and r["bytes"] == s["bytes"]
    assert sweeps >= 2, "the stream ended before the region was swept twice"
    report = check_json(rundir)
    assert report["violations"] == 0, report
    assert bridge.alive()


def kill_a_holder(procs, pipe_stream, parent: str) -> None:
    """A holder of parent's region, SIGKILLed: the next open sweeps."""
    holder = procs.spawn([pipe_stream, "recv", "-p", parent, "-i", "9", "-r", "slave", "-n", 1,
                          "-T", 60])
    holder.expect("ready recv")
    holder.kill()
    holder.wait()


def test_sweep_frees_nothing_a_live_holder_is_moving(rundir, procs, pipe_stream):
    """A live holder half-way through a swap (one buffer in two of its
    slots, one in none) when another holder's death is swept: the buffer
    in no place is its own, in flight, and must stay allocated."""
    a, b = nmcompat.open("netmap:m{1"), nmcompat.open("netmap:m}1")
    tx = a.tx_rings[0].slots
    in_flight = int(tx[3]["buf_idx"])
    tx[3]["buf_idx"] = int(tx[4]["buf_idx"])         # first store: tx 4's buffer in slots 3 and 4
    kill_a_holder(procs, pipe_stream, "m")
    nmcompat.open("netmap:m{8").close()              # reap: sweep beside the half-done swap
    tx[4]["buf_idx"] = in_flight                     # second store: the swap completes
    report = check_json(rundir)
    assert report["violations"] == 0, report
    a.close()
    b.close()


def test_sweep_frees_no_extra_buffer_a_live_holder_keeps(rundir, procs, pipe_stream):
    """Extra buffers a live application took off its list (as lb does) are
    in no place the engine sees; a sweep must leave them allocated."""
    p, q = nmcompat.open("netmap:n{1", extra_bufs=8), nmcompat.open("netmap:n}1")
    head = p.bufs_head
    p.bufs_head = 0                                  # the application keeps all eight
    kill_a_holder(procs, pipe_stream, "n")
    nmcompat.open("netmap:n{8").close()
    p.bufs_head = head                               # and gives them back
    (region,) = check_json(rundir)["regions"]
    assert region["violations"] == 0 and region["in_extra"] == 8, region
    p.close()
    q.close()


def test_repair_and_check_under_sanitizers(rundir, procs, swap_kill, swap_kill_asan):
    """The sweep and the check run in a program built with AddressSanitizer
    and UBSan (the engine too): the repaired region checks clean."""
    send1, recv2 = nmcompat.open("netmap:k{1"), nmcompat.open("netmap:k}2")
    child = procs.spawn([swap_kill, rundir, "k"])
    child.expect("ready", timeout=30)
    send(send1, [frame(b"asan", i) for i in range(FRAMES)])
    child.expect("stored", timeout=30)
    child.kill()
    child.wait()
    checker = procs.spawn([swap_kill_asan, rundir, "k", "check"], env=SANITIZER_ENV)
    out = checker.finish(timeout=120)
    r = parse_kv(out.splitlines()[0])
    assert r["violations"] == "0" and r["unplaced"] == "0", out
    assert int(r["in_rings"]) + int(r["free"]) == int(r["buf_num"]) - 2, out
    send1.close()
    recv2.close()
