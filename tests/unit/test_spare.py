"""Regions a close keeps for the next region of their shape (csrc/core/spare.c),
and the bounded liveness questions a reap asks (csrc/core/reap.c)."""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

import nmcompat
from nmcompat import rundir as rd
from testlib import rundir_entries
from vale_helpers import BCAST, frame, mac


def spares(rundir) -> dict:
    """spare link name -> region id."""
    return {n: int(os.readlink(rundir / n)[4:]) for n in os.listdir(rundir) if n.startswith("spare.")}


def test_a_closed_vale_port_leaves_a_spare_the_next_port_takes(rundir):
    with nmcompat.open("valesp:a") as a:
        first = a.info.mem_id
    assert list(spares(rundir).values()) == [first]
    st = rd.region(str(rundir), first)
    assert st["spare"] and st["ports"] == [] and st["holders"] == []
    used = st["used"]
    with nmcompat.open("valesp:b") as b:      # another name, the same shape
        assert b.info.mem_id == first
        assert spares(rundir) == {}
        assert rd.region(str(rundir), first)["used"] == used, "the spare's memory was claimed already"
        assert rd.region(str(rundir), first)["spare"] is False
    assert rundir_entries(rundir) == ["lock"]


def test_traffic_through_ports_in_reused_regions(rundir):
    with nmcompat.open("valesp:a"), nmcompat.open("valesp:b"):
        pass
    kept = set(spares(rundir).values())
    assert len(kept) == 2
    with nmcompat.open("valesp:c") as c, nmcompat.open("valesp:d") as d:
        assert {c.info.mem_id, d.info.mem_id} == kept
        for i in range(3):
            c.inject(frame(BCAST, mac(3), bytes([i]) * 8, 60))
        c.txsync()
        d.rxsync()
        got = [bytes(d.nextpkt()[1])[14] for _ in range(3)]
        assert got == [0, 1, 2]


def test_at_most_four_spares(rundir):
    ports = [nmcompat.open(f"valesp:p{i}") for i in range(6)]
    ids = {p.info.mem_id for p in ports}
    for p in ports:
        p.close()
    kept = spares(rundir)
    assert len(kept) == 4 and set(kept.values()) <= ids
    assert rd.region_ids(str(rundir)) == sorted(kept.values()), "the other two were removed"
    assert rundir_entries(rundir) == ["lock"]


def test_spares_of_a_shape_nobody_opens_now_give_way(rundir):
    """Four spares of 2048-byte buffers (ports that asked for them, a NIC's
    switch port, an earlier build) must not keep a default VALE port's
    region (2112-byte buffers) from being kept: one of them is removed."""
    ports = [nmcompat.open(f"valesp:o{i}", buf_size=2048) for i in range(4)]
    old = {p.info.mem_id for p in ports}
    for p in ports:
        p.close()
    assert set(spares(rundir).values()) == old
    with nmcompat.open("valesp:new") as a:
        assert a.info.buf_size == 2112 and a.info.mem_id not in old
        new = a.info.mem_id
    kept = set(spares(rundir).values())
    assert new in kept and len(kept) == 4 and len(kept & old) == 3
    assert rd.region_ids(str(rundir)) == sorted(kept), "the spare that gave way was removed"
    with nmcompat.open("valesp:again") as b:   # the next default port takes it
        assert b.info.mem_id == new


def test_the_per_open_collection_leaves_spares_and_gc_returns_them(rundir):
    with nmcompat.open("valesp:a"):
        pass
    kept = spares(rundir)
    for i in range(6):                          # each open looks at a few regions
        with nmcompat.open(f"netmap:o{i}{{0", buf_size=4096):      # another shape
            pass
    assert spares(rundir) == kept
    with nmcompat.open("netmap:o{0", buf_size=2112) as pipe:    # a pipe's region of that shape takes it
        assert pipe.info.mem_id in kept.values()
    assert spares(rundir) == {}, "a pipe's region is not kept"
    with nmcompat.open("valesp:a"):
        pass
    out = subprocess.run([sys.executable, "-m", "nmcompat.tools", "gc"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(rundir)) == ["lock", "wake"] and not os.listdir(rundir / "wake")


def test_a_spare_link_to_a_region_that_is_gone(rundir):
    with nmcompat.open("valesp:a") as a:
        mem_id = a.info.mem_id
    (link,) = spares(rundir)
    for name in (f"wake/mem.{mem_id}.ctl", f"wake/mem.{mem_id}.mem", f"mem.{mem_id}", f"ctl.{mem_id}"):
        os.unlink(rundir / name)                # as a removal cut short would leave it
    with nmcompat.open("valesp:b") as b:
        assert b.info.mem_id != mem_id
    assert link in spares(rundir)               # b's region, kept in the freed link
    assert rundir_entries(rundir) == ["lock"]


EXEC_AWAY = """
    import os, sys, nmcompat
    port = nmcompat.open(sys.argv[1])
    print("opened", port.info.mem_id, flush=True)
    # the engine's descriptors are close-on-exec: the holder dies, the pid lives
    os.execv(sys.executable, [sys.executable, "-c",
             "import signal; print('execd', flush=True); signal.pause()"])
"""


def test_an_exclusive_open_reaps_a_holder_whose_process_exec_d(rundir, procs):
    """Sixteen live holders of ours, then the child's: the reaps of the
    child's open and of ours ask other holders (NMC_REAP_ASK_BUDGET round
    robin), so it is the open that meets the dead holder in its way that
    asks its byte, reaps, and opens again (without that, EBUSY)."""
    held = [nmcompat.open(f"netmap:ex{{{i}", slots=64) for i in range(1, 17)]
    try:
        child = procs.python(EXEC_AWAY, "netmap:ex{0/x")
        child.expect("execd", timeout=30)
        assert child.alive()
        with nmcompat.open("netmap:ex{0/x") as again:         # not EBUSY
            assert again.info.mem_id == held[0].info.mem_id
            with pytest.raises(nmcompat.NmcompatError) as exc:
                nmcompat.open("netmap:ex{0/x")             # a live holder: refused still
            assert exc.value.errno == errno.EBUSY
    finally:
        for p in held:
            p.close()


def test_a_reap_finds_a_holder_whose_process_exec_d(rundir, procs):
    """The region is held (by us), so the per-open collection leaves it to
    the reap of the open, which asks the byte of its few live holders."""
    with nmcompat.open("netmap:ea{1") as ours:
        child = procs.python(EXEC_AWAY, "netmap:ea{0")
        child.expect("execd", timeout=30)
        pids = {h["pid"] for h in rd.region(str(rundir), ours.info.mem_id)["holders"]}
        assert pids == {os.getpid(), child.pid}
        with nmcompat.open("netmap:ea}1"):
            holders = rd.region(str(rundir), ours.info.mem_id)["holders"]
            assert {h["pid"] for h in holders} == {os.getpid()}, holders
    assert rundir_entries(rundir) == ["lock"]
    assert child.alive()


def test_a_switch_port_whose_process_exec_d_goes_at_the_next_open(rundir, procs):
    """Its region is its own, so the per-open collection or the switch's
    reaping (whichever reaches it first) removes it."""
    child = procs.python(EXEC_AWAY, "valeex:dead")
    child.expect("execd", timeout=30)
    with nmcompat.open("valeex:live"):
        ports = {p["name"] for r in rd.status(str(rundir))["regions"] for p in r.get("ports", [])}
        assert ports == {"valeex:live"}
    assert child.alive()


def test_a_spare_gets_back_the_buffers_a_corrupted_ring_lost(rundir):
    with nmcompat.open("valesp:a") as a:
        whole = rd.region(str(rundir), a.info.mem_id)["buf_free"]
        slots = a.tx_rings[0].slots
        slots[0]["buf_idx"] = int(slots[1]["buf_idx"])     # slot 0's own buffer is now nowhere
        slots[2]["buf_idx"] = 0xFFFFFFF0                   # and slot 2's, for an index out of range
        mem_id = a.info.mem_id
    st = rd.region(str(rundir), mem_id)
    assert st["spare"]
    assert st["buf_free"] == st["buf_num"] - 2, "the lost buffers are free again"
    with nmcompat.open("valesp:b") as b:
        assert b.info.mem_id == mem_id
        assert rd.region(str(rundir), mem_id)["buf_free"] == whole
    assert rundir_entries(rundir) == ["lock"]
