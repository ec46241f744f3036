"""What a runtime directory holds, and reclaiming what dead processes left.

    status(rundir)   regions (sizes, tmpfs bytes really used, names, ports,
                     holders with their pids), switches and their ports
    gc(rundir)       reclaim now everything whose holders are dead
    usage(rundir)    tmpfs bytes the directory's files really use
    verify(rundir)   raise unless rundir is a runtime directory (the check
                     every open makes); status and gc make it first

A runtime directory that does not exist holds nothing: status and gc of
one report nothing when must_exist is False (the default directory before
the first open), and raise ENOENT otherwise.

The engine reads each region under its region lock (nmc_region_status) and
does the reclaiming (nmc_rundir_gc); this module only lists files and
shapes the results.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Dict, List, Optional

from nmcompat import config
from nmcompat._ffi import check, ffi, lib, rundir_unusable
from nmcompat.errors import os_error, rundir_problem

__all__ = ["status", "gc", "usage", "verify", "region_ids", "other_rundirs"]


def verify(rundir: str, verb: str = "use", creating: bool = False) -> None:
    """Raise unless rundir is a runtime directory by the engine's check
    (nmc_rundir_verify): "couldn't <verb> runtime directory <rundir>: it
    <what is wrong, and the fix>" (creating: a missing one would be created
    by an open, and why it cannot be is the problem)."""
    err = rundir_unusable(rundir)
    if err:
        raise os_error(err, verb, f"runtime directory {rundir}",
                       "it " + rundir_problem(rundir, err, creating), fix="")


def region_ids(rundir: str) -> List[int]:
    """The ids of the regions (control files ctl.<id>) in rundir."""
    ids = []
    for entry in os.scandir(rundir):
        name = entry.name
        if name.startswith("ctl.") and name[4:].isdigit() and 2 <= int(name[4:]) <= 65535:
            ids.append(int(name[4:]))
    return sorted(ids)


def usage(rundir: str, regions: bool = True) -> int:
    """Bytes of tmpfs the files of rundir really use (allocated blocks);
    regions=False leaves out the region files (mem.<id>, ctl.<id>)."""
    total = 0
    for entry in os.scandir(rundir):
        if not regions and entry.name.startswith(("mem.", "ctl.")) and not entry.name.endswith(".sock"):
            continue
        if entry.is_file(follow_symlinks=False):
            total += entry.stat(follow_symlinks=False).st_blocks * 512
    return total


def _names(rundir: str) -> Dict[int, List[str]]:
    """{region id: names linked to it} from the parent.<hex name> links."""
    out: Dict[int, List[str]] = {}
    for entry in os.scandir(rundir):
        if not entry.name.startswith("parent."):
            continue
        try:
            target = os.readlink(entry.path)
            name = bytes.fromhex(entry.name[7:]).decode(errors="replace")
        except (OSError, ValueError):
            continue
        if target.startswith("mem.") and target[4:].isdigit():
            out.setdefault(int(target[4:]), []).append(name)
    return out


def _blocks(path: str) -> int:
    try:
        return os.lstat(path).st_blocks * 512
    except FileNotFoundError:
        return 0


def _port(p) -> dict:
    name, pipe_id = (ffi.string(x).decode(errors="replace") for x in (p.name, p.pipe_id))
    return {"name": f"{name}{{{pipe_id}" if pipe_id else name, "pipe_id": pipe_id,
            "kind": ffi.string(p.kind).decode(errors="replace"),
            "switch": ffi.string(p.sw).decode(errors="replace"),
            "persistent": bool(p.persistent), "ends": p.nends,
            "tx_rings": p.tx_rings, "rx_rings": p.rx_rings,
            "tx_slots": p.tx_slots, "rx_slots": p.rx_slots, "holders": p.holders}


def _holder(h, ports: Dict[int, dict]) -> dict:
    p = ports.get(h.port)
    name = "?" if p is None else p["name"]
    if p is not None and p["pipe_id"]:
        name = name.replace("{", "}" if h.end else "{", 1)
    return {"holder": h.index, "pid": h.pid, "alive": bool(h.alive), "port": name,
            "end": h.end, "extra_bufs": h.extra_bufs}


def region(rundir: str, mem_id: int) -> dict:
    """One region, read by the engine under its region lock."""
    st = ffi.new("struct nmc_region_status *")
    check(lib.nmc_region_status(rundir.encode(), mem_id, st), "read", f"region {mem_id} of {rundir}")
    ports = [_port(st.port[i]) for i in range(st.nports)]
    by_index = {st.port[i].index: ports[i] for i in range(st.nports)}
    return {
        "mem_id": st.mem_id, "buf_num": st.buf_num, "buf_size": st.buf_size,
        "buf_free": st.buf_free, "size": st.memsize + st.ctl_size,
        "used": _blocks(f"{rundir}/mem.{mem_id}") + _blocks(f"{rundir}/ctl.{mem_id}"),
        "opens": st.opens, "spare": bool(st.spare), "ports": ports,
        "holders": [_holder(st.holder[i], by_index) for i in range(st.nholders)],
    }


def status(rundir: str, must_exist: bool = True) -> dict:
    """Everything in rundir; a region removed while we look is left out."""
    if not must_exist and not os.path.lexists(rundir):
        return {"rundir": rundir, "used": 0, "regions": [], "switches": {}}
    verify(rundir, "read")
    names = _names(rundir)
    regions = []
    for mem_id in region_ids(rundir):
        try:
            r = region(rundir, mem_id)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                continue
            r = {"mem_id": mem_id, "error": str(exc)}
            if exc.errno == errno.EPROTO:
                r["foreign"] = foreign_state(rundir, mem_id)
        r["names"] = sorted(names.get(mem_id, []))
        regions.append(r)
    # the switches from the VALE ports of the regions (the switch each is
    # attached to, under the name vale-ctl lists): listing them through the
    # switch files would reclaim dead ports, and status changes nothing
    switches: Dict[str, List[str]] = {}
    for r in regions:
        for p in r.get("ports", []):
            if p["kind"] == "vale" and p["switch"]:
                on = f"{p['switch']}:{p['name']}" if p["persistent"] else p["name"]
                switches.setdefault(p["switch"], []).append(on)
    used = sum(r.get("used", 0) for r in regions) + usage(rundir, regions=False)
    return {"rundir": rundir, "used": used, "regions": regions,
            "switches": {sw: sorted(names) for sw, names in sorted(switches.items())}}


def foreign_state(rundir: str, mem_id: int) -> Optional[str]:
    """"held" or "unheld" for a region of another nmcompat build
    (nmc_region_foreign), None when it is not one."""
    rc = lib.nmc_region_foreign(os.fsencode(rundir), mem_id)
    return None if rc < 0 else ("held" if rc else "unheld")


def gc(rundir: Optional[str] = None, must_exist: bool = True, foreign: bool = False) -> dict:
    """Reclaim now what dead processes left in rundir (default: the
    configured one) by nmc_rundir_gc; regions of another nmcompat build
    are counted, and with ``foreign`` those nobody holds removed first."""
    rep = ffi.new("struct nmc_gc_report *")
    frep = ffi.new("struct nmc_foreign_report *")
    where = rundir or config.rundir()
    if must_exist or os.path.lexists(where):
        verify(where, "reclaim in")
        check(lib.nmc_rundir_foreign(where.encode(), int(foreign), frep),
              "remove regions of another build in", f"runtime directory {where}", rundir=where)
        check(lib.nmc_rundir_gc(where.encode(), rep), "reclaim in", f"runtime directory {where}",
              rundir=where)
    out = {k: getattr(rep, k) for k in ("regions", "reaped", "removed", "busy", "files", "other")}
    out.update({f"foreign_{k}": getattr(frep, k) for k in ("found", "held", "removed")})
    return out


def other_rundirs(rundir: str) -> List[str]:
    """Other runtime directories of this user beside rundir's parent
    (nmcompat-* directories of /dev/shm or wherever rundir lives)."""
    me, parent = os.geteuid(), Path(rundir).resolve().parent
    out = []
    try:
        for entry in os.scandir(parent):
            if entry.name.startswith("nmcompat") and entry.is_dir(follow_symlinks=False) \
                    and entry.stat(follow_symlinks=False).st_uid == me \
                    and Path(entry.path).resolve() != Path(rundir).resolve():
                out.append(entry.path)
    except OSError:
        pass
    return sorted(out)
