"""A region of another nmcompat build (its header's layout stamp differs):
status says what it is and how to remove it; `nmcompat gc` counts it and,
with --foreign, removes it when no process holds it, never when one does."""
from __future__ import annotations

import json
import struct

from nmcompat import rundir as rd

from test_gc import HOLD, nmcompat_cli

LAYOUT_OFS = 8                          # struct nmc_region_hdr: magic, then the layout stamp


def _make_foreign(rundir, mem_id):
    with open(rundir / f"ctl.{mem_id}", "r+b") as f:
        f.seek(LAYOUT_OFS)
        stamp = struct.unpack("<Q", f.read(8))[0]
        f.seek(LAYOUT_OFS)
        f.write(struct.pack("<Q", stamp ^ 0x5A5A))


def _gc(rundir, *flags):
    out = nmcompat_cli("gc", "--rundir", str(rundir), *flags)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_held_region_of_another_build_is_left_alone(rundir, procs):
    child = procs.python(HOLD, "netmap:fh{0")
    child.expect("ready", timeout=30)
    [mem_id] = rd.region_ids(str(rundir))
    _make_foreign(rundir, mem_id)
    status = nmcompat_cli("status", "--rundir", str(rundir)).stdout
    assert "another nmcompat build, held by a process" in status, status
    text = _gc(rundir, "--foreign")
    assert "1 regions of another nmcompat build: 0 removed, 1 held" in text, text
    assert rd.region_ids(str(rundir)) == [mem_id]
    assert (rundir / f"mem.{mem_id}").exists()
    child.kill()


def test_an_unheld_region_of_another_build_is_removed_with_foreign(rundir, procs):
    child = procs.python(HOLD, "netmap:fu{0")
    child.expect("ready", timeout=30)
    [mem_id] = rd.region_ids(str(rundir))
    _make_foreign(rundir, mem_id)
    child.kill()
    status = nmcompat_cli("status", "--rundir", str(rundir)).stdout
    assert "incompatible nmcompat build" in status, status
    assert "that no process holds: 'nmcompat gc --foreign' removes it" in status, status
    text = _gc(rundir)
    assert "'nmcompat gc --foreign' removes the 1 no process holds" in text, text
    assert rd.region_ids(str(rundir)) == [mem_id], "not without --foreign"
    rep = json.loads(_gc(rundir, "--json", "--foreign"))
    assert (rep["foreign_found"], rep["foreign_removed"], rep["foreign_held"]) == (1, 1, 0), rep
    assert rd.region_ids(str(rundir)) == []
    left = sorted(p.name for p in rundir.iterdir() if p.name != "lock")
    assert not [n for n in left if n.startswith(("mem.", "ctl.", "parent."))], left
