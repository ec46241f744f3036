"""nmcompat gc: reclaim now what processes that died left behind.

    nmcompat gc [--rundir DIR] [--json] [--foreign]

Every region whose holders are all dead is reaped (ports freed, the region
removed with its names when no port is left), dead holders of live regions
are released, and files no region owns are removed (a memory file without
its control file, a socket or name of a region that is gone, a switch with
no live port).  Regions locked by another process at that moment are left
to it (counted as busy).  Every open also reclaims a few regions nobody
holds, so this is for reclaiming everything at once.

Regions of another nmcompat build (an open says "incompatible nmcompat
build", EPROTO) are counted, never read beyond their header; with
--foreign those no process holds (no lock on their files: every build's
holders keep one) are removed.  A held one is left to its process.

Prints what was reclaimed and the tmpfs bytes used before and after.  A
directory that is not a runtime directory (not yours, not private, not on
tmpfs: the check every open makes) is refused and left untouched; the
default directory before the first open has nothing to reclaim.
Exit status: 0; 2 on bad usage or a runtime directory that cannot be read.
"""
from __future__ import annotations

import json
import os

from nmcompat import rundir as rd
from nmcompat.errors import NmcompatError
from nmcompat.tools._cli import run, rundir_command, rundir_failure


def main(argv=None) -> int:
    return run("nmcompat gc", _main, argv)


def _main(argv) -> int:
    args, where = rundir_command("nmcompat gc", "reclaim what dead processes left", argv,
                                 [("--foreign", "also remove regions of another nmcompat build "
                                                "that no process holds")])
    exists = args.rundir is not None or os.path.lexists(where)
    try:
        if exists:
            rd.verify(where, "reclaim in")
        before = rd.usage(where) if exists else 0
        rep = rd.gc(where, must_exist=exists, foreign=args.foreign)
    except NmcompatError as exc:
        return rundir_failure("nmcompat gc", exc)
    rep.update(rundir=where, used_before=before, used_after=rd.usage(where) if exists else 0)
    if args.json:
        print(json.dumps(rep, indent=1))
        return 0
    print(f"nmcompat gc: {where}: {rep['regions']} regions looked at, {rep['reaped']} reclaimed "
          f"from, {rep['removed']} removed, {rep['busy']} busy (left to their owner); "
          f"{rep['files']} orphan files and {rep['other']} switches removed; tmpfs used "
          f"{rep['used_before']} -> {rep['used_after']} bytes")
    if rep["foreign_found"]:
        print(f"nmcompat gc: {_foreign(rep, args.foreign)}")
    return 0


def _foreign(rep: dict, removing: bool) -> str:
    found, held = rep["foreign_found"], rep["foreign_held"]
    text = f"{found} regions of another nmcompat build"
    if removing:
        return (f"{text}: {rep['foreign_removed']} removed, {held} held by a process "
                f"(left alone: close it there)")
    unheld = found - held
    return (f"{text} ({held} held by a process, {unheld} by none) left alone"
            + (f"; 'nmcompat gc --foreign' removes the {unheld} no process holds" if unheld else ""))
