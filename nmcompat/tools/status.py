"""nmcompat status: what a runtime directory holds.

    nmcompat status [--rundir DIR] [--json]

Per region (mem.<id> + ctl.<id>): its size and the tmpfs bytes it really
uses, its buffers, the names linked to it (pipe parents, VALE ports, NIC
regions nic.<pid>), its ports (kind, rings and slots, live holders) and its
holders (pid, alive or dead and not yet reaped).  Then the VALE switches
and their ports, the XDP programs attached to the interfaces of this
network namespace (nmcompat's are named nmc_*) and the TCX programs on
their ingress and egress (host rings and the stack cut-off), and other runtime
directories of this user.  Each region is read under its region lock, and
nothing is changed: dead holders stay listed until an open or `gc`
reclaims them (the switches are listed from their ports' regions, not
through the switch files, whose listing reclaims dead ports).

A directory that is not a runtime directory (not yours, not private, not
on tmpfs: the check every open makes) is refused; the default directory
before the first open holds nothing.
Exit status: 0; 2 on bad usage or a runtime directory that cannot be read.
"""
from __future__ import annotations

import json
import os
import socket

from nmcompat import rundir as rd
from nmcompat.errors import NmcompatError
from nmcompat.tools._cli import run, rundir_command, rundir_failure


def xdp_programs() -> list:
    """[{ifname, mode, prog ids, names}] of interfaces with XDP programs."""
    from nmcompat.bpf.loader import attached_programs
    from nmcompat.bpf.netlink import xdp_query
    out = []
    for ifindex, name in socket.if_nameindex():
        try:
            state = xdp_query(ifindex)
        except OSError:
            continue
        if not state.attached:
            continue
        try:
            names = [info.name for info in attached_programs(ifindex)[1].values()]
        except OSError:             # opening programs by id needs CAP_BPF
            names = []
        out.append({"ifname": name, "mode": state.mode, "prog_ids": list(state.prog_ids),
                    "names": names})
    return out


def tcx_programs() -> list:
    """[{ifname, hook, prog ids, names}] of interfaces with TCX programs
    (host rings and the stack cut-off of NIC ports: docs/DESIGN.md §12)."""
    from nmcompat.bpf import syscall
    out = []
    for ifindex, name in socket.if_nameindex():
        for hook, kind in (("ingress", syscall.BPF_TCX_INGRESS), ("egress", syscall.BPF_TCX_EGRESS)):
            try:
                ids = syscall.tcx_prog_ids(ifindex, kind)
            except OSError:             # no TCX (before Linux 6.6), or no CAP_BPF
                continue
            if ids:
                out.append({"ifname": name, "hook": hook, "prog_ids": ids,
                            "names": [_prog_name(i) for i in ids]})
    return out


def _prog_name(prog_id: int) -> str:
    from nmcompat.bpf import syscall
    try:
        fd = syscall.prog_get_fd_by_id(prog_id)
    except OSError:
        return "?"
    try:
        return syscall.prog_info(fd).name
    finally:
        os.close(fd)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _print_region(r: dict) -> None:
    if "error" in r:
        print(f"  mem.{r['mem_id']}: {r['error']}")
        if r.get("foreign") == "unheld":
            print("    a region of another nmcompat build that no process holds: "
                  "'nmcompat gc --foreign' removes it")
        elif r.get("foreign") == "held":
            print("    a region of another nmcompat build, held by a process of that build: "
                  "it goes when that process closes it")
        return
    names = ", ".join(r["names"]) or ("spare: kept for the next region of its shape; gc returns it"
                                      if r.get("spare") else "no name")
    print(f"  mem.{r['mem_id']} ({names}): {_mib(r['size'])}, {_mib(r['used'])} used; "
          f"{r['buf_num']} buffers of {r['buf_size']} B, {r['buf_free']} free")
    for p in r["ports"]:
        rings = f"{p['tx_rings']}x{p['tx_slots']} tx, {p['rx_rings']}x{p['rx_slots']} rx"
        extra = ", persistent" if p["persistent"] else ""
        name = f"{p['name']} / {p['name'].replace('{', '}')}" if p["pipe_id"] else p["name"]
        print(f"    port {name} [{p['kind']}{extra}]: {rings}, {p['holders']} live holders")
    for h in r["holders"]:
        state = "alive" if h["alive"] else "DEAD (not yet reclaimed)"
        print(f"    holder {h['holder']}: pid {h['pid']}, {h['port']}, {state}")


def main(argv=None) -> int:
    return run("nmcompat status", _main, argv)


def _main(argv) -> int:
    args, where = rundir_command("nmcompat status", "what a runtime directory holds", argv)
    try:
        st = rd.status(where, must_exist=args.rundir is not None)
    except NmcompatError as exc:
        return rundir_failure("nmcompat status", exc)
    st["xdp"] = xdp_programs()
    st["tcx"] = tcx_programs()
    st["other_rundirs"] = rd.other_rundirs(where)
    if args.json:
        print(json.dumps(st, indent=1))
        return 0
    n = len(st['regions'])
    print(f"{st['rundir']}: {n} region{'' if n == 1 else 's'}, {_mib(st['used'])} of tmpfs used")
    for r in st["regions"]:
        _print_region(r)
    for sw, ports in sorted(st["switches"].items()):
        print(f"  switch {sw}: {', '.join(ports)}")
    for x in st["xdp"]:
        print(f"  XDP on {x['ifname']} ({x['mode']}): ids {x['prog_ids']} {' '.join(x['names'])}")
    for t in st["tcx"]:
        print(f"  tc {t['hook']} on {t['ifname']}: ids {t['prog_ids']} {' '.join(t['names'])}")
    for other in st["other_rundirs"]:
        print(f"  other runtime directory: {other}")
    return 0
