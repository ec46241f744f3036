"""VALE under load and under crashes, with sender and receiver processes
written in C (tests/engine/vale_traffic.c) and in Python (vale_child.py).

Every frame carries its sender id, a sequence number, its length and a
payload pattern derived from them; the receiver checks each one and the
order per sender.  Accounting is exact: whatever a sender handed to txsync
is either in the receiver's rings or counted in its rx_dropped.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nmcompat
from nmcompat import vale
from testlib import parse_kv, rundir_entries
from vale_helpers import (CHILD, BCAST, agents, bad_lines, done_line, frame, mac, max_progress,  # noqa: F401
                          max_seen, per_sender, swdump, vale_swdump, vale_traffic, wait_until)

RECV_ID = 200


def start_recv(procs, exe, port="vale0:r", ident=RECV_ID, *args):
    proc = procs.spawn([exe, "recv", "-p", port, "-i", ident, "-H", *args])
    proc.ready = parse_kv(proc.expect("ready recv"))
    return proc


def c_sender(procs, exe, port, ident, *args):
    proc = procs.spawn([exe, "send", "-p", port, "-i", ident, *args])
    proc.expect("ready send")
    return proc


def py_sender(procs, port, ident, dst, count, batch, minlen, maxlen, seed=1):
    proc = procs.spawn([sys.executable, CHILD, "send", port, ident, dst, count, batch, minlen, maxlen, seed])
    proc.expect("ready send", timeout=30)
    return proc


def assert_clean(recv, r):
    assert r["bad"] == 0, "\n".join(bad_lines(recv)) + "\n" + recv.describe()


# ---------------------------------------------------------------------------
# accounting


@pytest.mark.parametrize("sender,maxlen", [("c", 60), ("c", 5000), ("python", 1514)])
def test_overload_accounting_is_exact(procs, vale_traffic, sender, maxlen):
    """A fast sender into a 64-slot ring drained 16 frames at a time:
    sent = received + rx_dropped, exactly; frames that arrive are intact."""
    n = 40_000
    recv = start_recv(procs, vale_traffic, "vale0:r", RECV_ID, "-R", 64, "-n", n, "-w", 300, "-m", 16,
                      "-t", 20000)
    assert recv.ready["rx_slots"] == "64"
    if sender == "c":
        send = c_sender(procs, vale_traffic, "vale0:s", 1, "-d", RECV_ID, "-n", n, "-b", 256, "-l", 60, "-L", maxlen)
    else:
        send = py_sender(procs, "vale0:s", 1, RECV_ID, n, 256, 60, maxlen)
    send.finish(timeout=120)
    s = done_line(send)
    recv.finish(timeout=120)
    r = done_line(recv)
    assert_clean(recv, r)
    assert s["sent"] == n and s["tx_pkts"] == n and s["tx_dropped"] == 0
    assert r["pkts"] + r["rx_dropped"] == n, r
    assert r["forwarded"] == r["pkts"], r
    assert r["rx_dropped"] > 0 and r["pkts"] > 0, r           # it was an overload
    count, last = per_sender(r["ids"])[1]
    assert count == r["pkts"] and last <= n - 1


def test_concurrent_senders_into_one_ring(procs, vale_traffic):
    """Two C senders and a Python one fill one receiver ring at the same
    time (leases): every frame intact, in order per sender, and the sum of
    what was sent = received + dropped."""
    counts = {1: 60_000, 2: 60_000, 3: 30_000}
    total = sum(counts.values())
    recv = start_recv(procs, vale_traffic, "vale0:r", RECV_ID, "-n", total, "-t", 20000)
    senders = [
        c_sender(procs, vale_traffic, "vale0:s1", 1, "-d", RECV_ID, "-n", counts[1], "-b", 512, "-l", 60, "-L", 4000),
        c_sender(procs, vale_traffic, "vale0:s2", 2, "-d", RECV_ID, "-n", counts[2], "-b", 64, "-l", 60, "-L", 1514,
                 "-s", 7),
        py_sender(procs, "vale0:s3", 3, RECV_ID, counts[3], 256, 60, 1514, seed=3),
    ]
    sent = 0
    for proc in senders:
        proc.finish(timeout=120)
        sent += done_line(proc)["sent"]
    assert sent == total
    recv.finish(timeout=120)
    r = done_line(recv)
    assert_clean(recv, r)
    assert r["pkts"] + r["rx_dropped"] == total, r
    assert r["forwarded"] == r["pkts"]
    got = per_sender(r["ids"])
    assert sum(c for c, _ in got.values()) == r["pkts"]
    for ident, (count, last) in got.items():
        assert ident in counts and count <= counts[ident] and last < counts[ident]
    assert set(got) == set(counts), "every sender got frames through"


def test_broadcast_accounting_per_destination(procs, vale_traffic):
    """One broadcast sender, three receivers of different speeds: for each
    receiver, received + dropped = sent."""
    n = 20_000
    recvs = [start_recv(procs, vale_traffic, f"vale0:r{i}", RECV_ID + i, "-n", n, "-t", 20000, *extra)
             for i, extra in enumerate([(), ("-R", 128, "-w", 200, "-m", 32), ("-R", 32, "-w", 500, "-m", 4)])]
    send = c_sender(procs, vale_traffic, "vale0:s", 1, "-d", "ff", "-n", n, "-b", 128, "-l", 60, "-L", 1514)
    send.finish(timeout=120)
    s = done_line(send)
    assert s["sent"] == s["tx_pkts"] == n and s["tx_dropped"] == 0
    for recv in recvs:
        recv.finish(timeout=120)
        r = done_line(recv)
        assert_clean(recv, r)
        assert r["pkts"] + r["rx_dropped"] == n, r
        assert r["forwarded"] == r["pkts"] and r["other"] == 0


# ---------------------------------------------------------------------------
# crashes


def _wait_progress(recv, ident, timeout=10.0, what="the surviving sender's frames"):
    before = max_seen(recv, ident)
    wait_until(lambda: max_seen(recv, ident) > before, timeout,
               f"{what} stopped arriving (last seq {before})", recv.describe)


@pytest.mark.parametrize("reap", ["reaped", "zombie"])
def test_killed_senders_never_stall_the_destination(procs, vale_traffic, rundir, reap):
    """Senders in tight loops with big batches (C, chains up to 9000 bytes;
    Python, 1024-frame batches) SIGKILLed at random moments, again and
    again, while another sender keeps going: after each kill the receiver
    keeps getting the survivor's frames (the dead leases are padded), and
    nothing it gets is garbage.  With reap=zombie the killed process is
    not waited for until the next one is running (same port name, so
    the same region and holder slot may be reused)."""
    rng = random.Random(1234)
    recv = start_recv(procs, vale_traffic, "vale0:r", RECV_ID, "-R", 4096, "-t", 60000, "-T", 300)
    survivor = c_sender(procs, vale_traffic, "vale0:keep", 1, "-d", RECV_ID, "-b", 16, "-w", 300,
                        "-l", 60, "-L", 200)
    _wait_progress(recv, 1)
    pending = []
    for round_no in range(10):
        ident = 20 + round_no                # a new stream each time
        if round_no % 3 == 2:
            victim = py_sender(procs, "vale0:victim", ident, RECV_ID, 0, 1000, 1000, 1514, seed=round_no)
        else:
            victim = c_sender(procs, vale_traffic, "vale0:victim", ident, "-d", RECV_ID, "-b", 1024,
                              "-l", 1000, "-L", 9000, "-s", round_no)
        wait_until(lambda: max_progress(victim, ident) > 0, 30, "the victim did not start", victim.describe)
        time.sleep(rng.uniform(0.01, 0.2))
        os.kill(victim.pid, signal.SIGKILL)
        if reap == "reaped":
            victim.popen.wait(timeout=10)
        else:
            pending.append(victim)
            while len(pending) > 1:
                pending.pop(0).popen.wait(timeout=10)
        _wait_progress(recv, 1, what=f"after kill {round_no + 1}, the survivor's frames")
        assert not bad_lines(recv), recv.describe()
    for victim in pending:
        victim.popen.wait(timeout=10)
    survivor.kill(signal.SIGKILL)
    recv.kill(signal.SIGTERM)
    recv.finish(timeout=60)
    r = done_line(recv)
    assert_clean(recv, r)
    assert per_sender(r["ids"])[1][0] > 0


def test_killed_receiver_leaves_senders_running_and_its_port_reclaimed(procs, vale_traffic, vale_swdump, rundir):
    r1 = start_recv(procs, vale_traffic, "vale0:r1", 201, "-t", 60000)
    r2 = start_recv(procs, vale_traffic, "vale0:r2", 202, "-t", 60000)
    s1 = c_sender(procs, vale_traffic, "vale0:s1", 1, "-d", 201, "-b", 64, "-w", 200)
    s2 = c_sender(procs, vale_traffic, "vale0:s2", 2, "-d", 202, "-b", 64, "-w", 200)
    _wait_progress(r1, 1)
    _wait_progress(r2, 2)
    region1 = Path(r1.ready["region"])
    assert region1.exists()

    r1.kill(signal.SIGKILL)
    # nothing reaped it yet: its entry is still on the switch, and what s1
    # sends it piles up in its ring, then is counted as dropped
    drops = swdump(vale_swdump, rundir)["vale0:r1"]["drops"]
    wait_until(lambda: swdump(vale_swdump, rundir)["vale0:r1"]["drops"] > drops + 1000, 20,
               "drops for the dead receiver are not counted")
    p1 = max_progress(s1, 1)
    wait_until(lambda: max_progress(s1, 1) > p1, 10, "the sender to the dead receiver stalled", s1.describe)
    _wait_progress(r2, 2)

    names = [e.name for e in vale.ports()]              # a listing reaps the dead port
    assert "vale0:r1" not in names
    assert sorted(names) == ["vale0:r2", "vale0:s1", "vale0:s2"]
    assert not region1.exists(), rundir_entries(rundir)
    assert "vale0:r1" not in swdump(vale_swdump, rundir)
    # s1's frames are for an unknown MAC now: flooded, so r2 sees them too
    p1 = max_progress(s1, 1)
    wait_until(lambda: max_progress(s1, 1) > p1, 10, "the sender to the dead receiver stalled", s1.describe)
    _wait_progress(r2, 1, what="the flooded frames of s1")
    _wait_progress(r2, 2)
    assert s1.alive() and s2.alive()
    s1.kill()
    s2.kill()
    r2.kill(signal.SIGTERM)
    r2.finish(timeout=60)
    assert_clean(r2, done_line(r2))


def _rundir_files(rundir):
    return [n for n in rundir_entries(rundir) if n != "lock"]


def test_state_of_crashed_processes_is_reclaimed_on_the_next_open(agents, rundir, vale_swdump):
    ghosts = [agents.open(f"vale0:g{i}") for i in range(3)]
    ghosts[0].send([frame(BCAST, mac(1), b"learn", 60)])
    ghosts[1].send([frame(mac(1), mac(2), b"to-g0", 60)])
    before = _rundir_files(rundir)
    assert "vale.vale0" in before and sum(n.startswith("mem.") and "." not in n[4:] for n in before) == 3
    for g in ghosts:
        g.kill()
    assert _rundir_files(rundir) == before               # nothing cleaned yet: they were killed
    assert set(swdump(vale_swdump, rundir)) == {"vale0:g0", "vale0:g1", "vale0:g2"}

    with nmcompat.open("vale0:new") as p:
        table = swdump(vale_swdump, rundir)
        assert set(table) == {"vale0:new"}
        assert [e.name for e in vale.ports()] == ["vale0:new"]
        region = Path(p.info.region)
        left = _rundir_files(rundir)
        ctl = "ctl." + region.name.split(".")[1]
        assert sorted(left) == sorted(["vale.vale0", region.name, ctl, f"wake/{region.name}.h0.sock",
                                       f"wake/{region.name}.ctl", f"wake/{region.name}.mem",
                                       "parent." + b"vale0:new".hex()])
        # the learned MACs of the dead ports are gone: this goes nowhere
        p.inject(frame(mac(1), mac(7), b"to-a-dead-mac", 60))
        p.txsync()
        st = p.stats()
        assert st["tx_pkts"] == 1 and st["tx_dropped"] == 0
    assert _rundir_files(rundir) == []


def test_a_stale_entry_naming_a_free_mem_id_does_not_undo_the_next_port(agents, rundir, vale_swdump):
    """A process killed between putting a port on the switch and marking
    the port live leaves a switch entry whose region is reclaimed later;
    the next region created gets the same mem_id.  Reaping that stale entry
    must drop the entry, not reap (and unlink) the new port's region."""
    keep = agents.open("vale0:keep")                     # holds the switch and mem.2
    next_id = keep.info["mem_id"] + 1
    forge = subprocess.run([str(vale_swdump), str(rundir / "vale.vale0"), "forge", "5", "vale0:ghost",
                            str(next_id), "0", "1", "1", "1024"], capture_output=True, text=True)
    assert forge.returncode == 0, forge.stderr
    a = agents.open("vale0:a")
    assert a.info["mem_id"] == next_id
    assert Path(a.info["region"]).exists(), "the new port's region was unlinked under it"
    b = agents.open("vale0:b")
    assert b.info["mem_id"] != a.info["mem_id"]
    a.send([frame(BCAST, mac(1), b"a-to-all", 60)])
    assert [f[14:22] for f in b.frames()] == [b"a-to-all"]
    b.send([frame(mac(1), mac(2), b"b-to-a", 60)])
    assert [f[14:20] for f in a.frames()] == [b"b-to-a"]
    assert keep.frames()[0][14:22] == b"a-to-all"
    assert sorted(e.name for e in vale.ports()) == ["vale0:a", "vale0:b", "vale0:keep"]


def test_a_listing_reclaims_crashed_ports_too(agents, rundir):
    a, b = agents.open("vale0:a"), agents.open("vale1:b")
    assert sorted(e.name for e in vale.ports()) == ["vale0:a", "vale1:b"]
    a.kill()
    assert [e.name for e in vale.ports()] == ["vale1:b"]
    assert not (rundir / "vale.vale0").exists()          # an empty switch goes away
    b.kill()
    assert list(vale.ports()) == []
    assert _rundir_files(rundir) == []


@pytest.mark.parametrize("leftover", ["empty", "zeroed"])
def test_a_switch_file_left_half_created_is_reclaimed(rundir, leftover):
    """A process killed while it created the switch file (under the switch
    lock, between open(O_CREAT) and writing the header) leaves an empty or
    zero-filled vale.<sw>; the next open must not be refused forever."""
    with nmcompat.open("vale0:a"):
        size = (rundir / "vale.vale0").stat().st_size
    assert not (rundir / "vale.vale0").exists()
    path = rundir / "vale.vale0"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    if leftover == "zeroed":
        os.ftruncate(fd, size)
    os.close(fd)
    with nmcompat.open("vale0:a") as a, nmcompat.open("vale0:b") as b:
        a.inject(frame(BCAST, mac(1), b"after-recovery", 60))
        a.txsync()
        b.rxsync()
        hdr, data = b.nextpkt()
        assert bytes(data)[14:28] == b"after-recovery"
    assert _rundir_files(rundir) == []


def _kill_holders_of_vi0(procs, vale_traffic, rounds, seed):
    """Senders on persistent port vi0 SIGKILLed at random (often inside
    txsync), each followed by a new holder that sends 500 frames."""
    vale.newif("vi0")
    vale.attach("vale0:vi0")
    try:
        recv = start_recv(procs, vale_traffic, "vale0:r", RECV_ID, "-R", 4096, "-t", 60000, "-T", 300)
        rng = random.Random(seed)
        for round_no in range(rounds):
            victim = c_sender(procs, vale_traffic, "vi0", 20 + round_no, "-d", RECV_ID, "-b", 1024, "-l", 1000,
                              "-L", 9000, "-s", round_no)
            wait_until(lambda: max_progress(victim, 20 + round_no) > 0, 30, "the victim did not start",
                       victim.describe)
            time.sleep(rng.uniform(0.01, 0.1))
            victim.kill(signal.SIGKILL)
            after = c_sender(procs, vale_traffic, "vi0", 40 + round_no, "-d", RECV_ID, "-n", 500, "-b", 50,
                             "-w", 1000)
            after.finish(timeout=30)
            assert done_line(after)["sent"] == 500
            wait_until(lambda: max_seen(recv, 40 + round_no) >= 499, 10,
                       f"after kill {round_no + 1}, the next holder's frames do not arrive", recv.describe)
        recv.kill(signal.SIGTERM)
        recv.finish(timeout=60)
        return recv
    finally:
        vale.detach("vale0:vi0")
        vale.delif("vi0")


def test_a_holder_killed_inside_txsync_does_not_block_the_port(procs, vale_traffic, rundir):
    """A persistent port outlives its holders: a sender killed in the
    middle of its txsync must not leave the ring marked busy or its
    indexes inconsistent, or the next process that opens the port could
    never send again; and nothing received is torn or corrupt."""
    recv = _kill_holders_of_vi0(procs, vale_traffic, 6, 99)
    torn = [ln for ln in bad_lines(recv) if not ln.startswith("bad order")]
    assert not torn, recv.describe()
    for round_no in range(6):                 # each new holder's stream is whole and in order
        assert not [ln for ln in bad_lines(recv) if f"id={40 + round_no} " in ln]


def test_frames_of_a_holder_killed_mid_txsync_are_not_sent_twice(procs, vale_traffic, rundir):
    recv = _kill_holders_of_vi0(procs, vale_traffic, 8, 7)
    assert not bad_lines(recv), recv.describe()
