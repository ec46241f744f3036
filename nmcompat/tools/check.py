"""nmcompat check: does every buffer of every region have exactly one owner?

    nmcompat check [--rundir DIR] [--json]

For each region (``mem.<id>``) of the runtime directory (default:
$NMCOMPAT_RUNDIR, else /dev/shm/nmcompat-<uid>) the engine walks, under its
region lock and without changing anything, every place a buffer can be: the
owning slots of every live port's rings, every holder's extra-buffer list,
and the allocation bitmap (NIC queues are not enumerated: a region with NIC
ports reports the buffers it could not place, but not as a violation).  It
prints per region the buffers free, in rings, in extra lists and kept by
holders off their lists, then each violation: a buffer in two places, a
buffer in a place yet marked free, a buffer in no place beyond what live
holders may keep, an index out of range, reserved buffers not reserved, a
free counter that disagrees with the bitmap.

Exit status: 0 when every region is clean (also when the default runtime
directory does not exist: no region), 1 on a violation, 2 on bad usage, a
--rundir that does not exist, a directory that is not a runtime directory
(the check every open makes), or a region that could not be read.  Results are exact while the ports are
idle; a process moving buffers during the walk can show a passing duplicate.
"""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import List

from nmcompat._ffi import check as c_check, ffi, lib
from nmcompat import rundir as rundir_lib
from nmcompat.errors import NmcompatError
from nmcompat.tools._cli import run, rundir_command, rundir_failure

_WHAT = {
    lib.NMC_VIOL_DUPLICATE: "duplicate",
    lib.NMC_VIOL_FREE_INUSE: "free-in-use",
    lib.NMC_VIOL_LOST: "lost",
    lib.NMC_VIOL_BAD_INDEX: "bad-index",
    lib.NMC_VIOL_RESERVED: "reserved",
    lib.NMC_VIOL_FREE_COUNT: "free-count",
}


def _place(p) -> dict:
    name = ffi.string(p.name).decode(errors="replace")
    if p.kind == lib.NMC_PLACE_SLOT:
        return {"kind": "slot", "port": name, "dir": "rx" if p.dir else "tx",
                "ring": p.ring, "slot": p.slot}
    return {"kind": "extra", "port": name, "holder": p.holder, "position": p.slot}


def _place_text(p: dict) -> str:
    if p["kind"] == "slot":
        return f"{p['port']} {p['dir']} ring {p['ring']} slot {p['slot']}"
    return f"extra-buffer list of holder {p['holder']} ({p['port']}) position {p['position']}"


def _violation(v, free_bufs: int) -> dict:
    what = _WHAT.get(v.what, str(v.what))
    idx = v.buf_idx
    places = [_place(p) for p in (v.a, v.b) if p.kind != lib.NMC_PLACE_NONE]
    texts = [_place_text(p) for p in places]
    if what == "duplicate":
        text = f"buffer {idx} in two places: " + " and ".join(texts or ["?"])
    elif what == "free-in-use":
        text = f"buffer {idx} in {texts[0] if texts else '?'} but marked free"
    elif what == "lost":
        text = f"buffer {idx} allocated but in no place"
    elif what == "bad-index":
        text = f"{texts[0] if texts else '?'} holds buffer index {idx} (out of range or reserved)"
    elif what == "reserved":
        text = f"reserved buffer {idx} is not marked reserved"
    else:
        text = f"the free counter says {idx}, the bitmap {free_bufs}"
    return {"what": what, "buf_idx": idx, "places": places, "text": text}


def check_region(rundir: str, mem_id: int) -> dict:
    """The engine's report on one region, as a dict."""
    rep = ffi.new("struct nmc_check_report *")
    c_check(lib.nmc_region_check(rundir.encode(), mem_id, rep), "check", f"region {mem_id} of {rundir}")
    out = {k: getattr(rep, k) for k in (
        "mem_id", "buf_num", "buf_size", "free_bufs", "in_rings", "in_extra", "unplaced",
        "private_max", "empty_slots", "ports", "holders", "dead_holders", "violations")}
    out["nic_opaque"] = bool(rep.nic_opaque)
    out["listed"] = [_violation(rep.v[i], rep.free_bufs) for i in range(rep.listed)]
    return out


def region_ids(rundir: Path) -> List[int]:
    ids = []
    for p in rundir.glob("mem.*"):
        suffix = p.name[4:]
        if suffix.isdigit() and 2 <= int(suffix) <= 65535:
            ids.append(int(suffix))
    return sorted(ids)


def check_rundir(rundir: str, must_exist: bool = True) -> List[dict]:
    """Reports for every region of rundir; a region removed meanwhile is left
    out.  A missing directory has no regions, or is an error if must_exist;
    a directory that is not a runtime directory is refused (rundir.verify)."""
    if not must_exist and not os.path.lexists(rundir):
        return []
    rundir_lib.verify(rundir, "read")
    reports = []
    for mem_id in region_ids(Path(rundir)):
        try:
            reports.append(check_region(rundir, mem_id))
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
    return reports


def _summary(r: dict) -> str:
    where = "NIC queues are not enumerated" if r["nic_opaque"] else \
        f"live holders may keep {r['private_max']} off their lists"
    dead = f" ({r['dead_holders']} dead, not yet reaped)" if r["dead_holders"] else ""
    return (f"mem.{r['mem_id']}: {r['buf_num']} buffers of {r['buf_size']} B: {r['free_bufs']} free, "
            f"{r['in_rings']} in rings, {r['in_extra']} in extra lists, "
            f"{r['unplaced']} in no ring or list ({where}), {r['empty_slots']} empty slots; "
            f"{r['ports']} ports, {r['holders']} holders{dead}; {r['violations']} violations")


def main(argv=None) -> int:
    return run("nmcompat check", _main, argv)


def _main(argv) -> int:
    args, rundir = rundir_command("nmcompat check",
                                  "verify that every buffer of every region has one owner", argv)
    try:
        reports = check_rundir(rundir, must_exist=args.rundir is not None)
    except NmcompatError as exc:
        return rundir_failure("nmcompat check", exc)
    total = sum(r["violations"] for r in reports)
    if args.json:
        print(json.dumps({"rundir": rundir, "regions": reports, "violations": total}, indent=1))
    else:
        for r in reports:
            print(_summary(r))
            for v in r["listed"]:
                print(f"  VIOLATION {v['text']}")
            if r["violations"] > len(r["listed"]):
                print(f"  ... and {r['violations'] - len(r['listed'])} more")
        print(f"nmcompat check: {len(reports)} regions, {total} violations")
    return 1 if total else 0
