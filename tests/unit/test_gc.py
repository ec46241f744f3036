"""Reclaiming what killed processes leave anywhere in the runtime directory,
and seeing it: every open reclaims a few regions nobody holds, `nmcompat gc`
reclaims everything now, `nmcompat status` lists regions, ports and holders.

The measure is the tmpfs the directory really uses (allocated blocks): after
a SIGKILL and the next open or a gc, it is what it was before."""
from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys

import nmcompat
from nmcompat import rundir as rd

F_OFD_SETLK = 37

HOLD = """
    import sys, nmcompat
    ports = [nmcompat.open(name) for name in sys.argv[1:]]
    for p in ports:
        p.inject(b"x" * 60)
        p.txsync()
    print("ready", flush=True)
    __import__("time").sleep(600)
"""


def killed_holding(procs, *names) -> int:
    """A process that opens names, sends a frame on each and is SIGKILLed."""
    child = procs.python(HOLD, *names)
    child.expect("ready", timeout=30)
    child.kill()
    return child.pid


def nmcompat_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmcompat.tools", *args], capture_output=True,
                          text=True, timeout=120)


def test_the_next_open_reclaims_what_a_killed_process_left(rundir, procs):
    with nmcompat.open("netmap:base{0"):
        pass
    baseline = rd.usage(str(rundir))
    killed_holding(procs, "netmap:k1{1", "netmap:k1}1", "netmap:k2{0", "vale1:k")
    assert rd.usage(str(rundir)) > baseline
    with nmcompat.open("netmap:other{0"):       # another name: its open reclaims the rest
        pass
    assert rd.usage(str(rundir)) == baseline
    assert sorted(os.listdir(rundir)) == ["lock", "wake"] and not os.listdir(rundir / "wake")


def test_every_open_reclaims_a_bounded_number_of_regions(rundir, procs):
    """Twelve dead regions: each open looks at four, so three opens (whose
    own regions come and go) leave none."""
    with nmcompat.open("netmap:base{0"):
        pass
    baseline = rd.usage(str(rundir))
    killed_holding(procs, *[f"netmap:d{i}{{0" for i in range(12)])
    left = []
    for i in range(3):
        with nmcompat.open(f"netmap:o{i}{{0"):
            pass
        left.append(len(rd.region_ids(str(rundir))))
    assert left[0] > 0, "one open reclaimed every region: the budget is not bounded"
    assert left[-1] == 0
    assert rd.usage(str(rundir)) == baseline


def test_gc_reclaims_everything_and_orphan_files(rundir, procs):
    with nmcompat.open("netmap:base{0"):
        pass
    baseline = sorted(os.listdir(rundir))
    killed_holding(procs, *[f"netmap:g{i}{{0" for i in range(10)], "vale2:a", "vale2:b")
    with nmcompat.open("netmap:alive{0") as alive:
        live = alive.info.mem_id
        # what a crash in the middle of creating or removing a region leaves
        (rundir / "mem.60000").write_bytes(b"\0" * 4096)          # memory without control
        (rundir / "ctl.60001").write_bytes(b"")                     # never finished
        (rundir / "mem.60001").write_bytes(b"")
        (rundir / "wake" / "mem.60002.h3.sock").write_bytes(b"")   # socket of a gone region
        os.link(rundir / "ctl.60001", rundir / "wake" / "mem.60001.ctl")   # its second name
        for kind in ("ctl", "mem"):                                  # second names of a gone region
            (rundir / "wake" / f"mem.60004.{kind}").write_bytes(b"")
        os.symlink("mem.60003", rundir / "parent.6e6f6e65")         # name of a gone region
        dead = set(rd.region_ids(str(rundir))) - {live, 60001}
        assert len(dead) >= 6, "the open reclaimed more than its budget"
        out = nmcompat_cli("gc", "--json")
        assert out.returncode == 0, out.stderr
        rep = json.loads(out.stdout)
        assert rep["removed"] == len(dead) and rep["files"] == 8, rep
        assert rd.region_ids(str(rundir)) == [live]
        assert sorted(n for n in os.listdir(rundir / "wake") if not n.endswith(".sock")) == \
            [f"mem.{live}.ctl", f"mem.{live}.mem"]          # the dead regions' went with them
        assert not any(n.startswith("vale.") for n in os.listdir(rundir))
    assert sorted(os.listdir(rundir)) == baseline


def test_gc_leaves_a_region_someone_has_locked(rundir, procs):
    killed_holding(procs, "netmap:busy{0")
    [mem_id] = rd.region_ids(str(rundir))
    with open(rundir / f"ctl.{mem_id}", "rb") as f:
        fcntl.fcntl(f, F_OFD_SETLK, struct.pack("hh4xqqi4x", fcntl.F_RDLCK, os.SEEK_SET, 0, 1, 0))
        rep = rd.gc(str(rundir))
        assert rep["busy"] == 1 and rep["removed"] == 0, rep
    assert rd.gc(str(rundir))["removed"] == 1
    assert rd.region_ids(str(rundir)) == []


def test_status_lists_regions_ports_and_holders(rundir, procs):
    with nmcompat.open("vale3:s"):
        dead = killed_holding(procs, "netmap:st{7")     # no open since: not reclaimed yet
        st = rd.status(str(rundir))
        by_name = {tuple(r["names"]): r for r in st["regions"]}
        pipe, sw = by_name[("st",)], by_name[("vale3:s",)]
        assert [(p["name"], p["kind"], p["holders"]) for p in pipe["ports"]] == [("st{7", "pipe", 0)]
        assert [(h["pid"], h["port"], h["alive"]) for h in pipe["holders"]] == [(dead, "st{7", False)]
        assert [(p["name"], p["kind"], p["holders"]) for p in sw["ports"]] == [("vale3:s", "vale", 1)]
        assert [(h["pid"], h["alive"]) for h in sw["holders"]] == [(os.getpid(), True)]
        assert st["switches"] == {"vale3": ["vale3:s"]}
        assert pipe["used"] > 0 and pipe["size"] >= pipe["used"]
        text = nmcompat_cli("status")
        assert text.returncode == 0, text.stderr
        assert f"pid {dead}, st{{7, DEAD" in text.stdout and "port vale3:s [vale]" in text.stdout
        with nmcompat.open("netmap:st}7") as end:        # the open reaps the dead holder
            [pipe] = [r for r in rd.status(str(rundir))["regions"] if r["names"] == ["st"]]
            assert end.info.mem_id == pipe["mem_id"]
            assert [(h["pid"], h["port"], h["alive"]) for h in pipe["holders"]] == \
                [(os.getpid(), "st}7", True)]


def test_gc_and_status_of_a_missing_directory(tmp_path):
    for cmd in ("gc", "status"):
        out = nmcompat_cli(cmd, "--rundir", str(tmp_path / "none"))
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (cmd, out.stderr)
        assert "none" in out.stderr


def test_status_changes_nothing(rundir, procs):
    """A VALE port whose holder was killed stays listed, dead, by every
    status (listing the switch files would have reclaimed it), and the
    directory's total is what its regions add up to."""
    dead = killed_holding(procs, "vale4:ja", "netmap:sn{1")
    before = sorted(os.listdir(rundir))
    for _ in range(2):
        st = rd.status(str(rundir))
        assert sorted(os.listdir(rundir)) == before
        [vp] = [r for r in st["regions"] if r["names"] == ["vale4:ja"]]
        assert [(h["pid"], h["alive"]) for h in vp["holders"]] == [(dead, False)]
        assert st["switches"] == {"vale4": ["vale4:ja"]}
        assert st["used"] == rd.usage(str(rundir)) >= sum(r["used"] for r in st["regions"])
