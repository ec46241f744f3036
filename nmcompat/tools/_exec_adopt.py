"""A NIC port's descriptor adopted, or another process's port joined, under
`nmcompat exec`: the control plane's part.

A program that received a registered NIC descriptor with SCM_RIGHTS adopts
its port at its first netmap call (csrc/core/adopt.c, joining the opener's
record); its /dev/netmap emulation (csrc/devnetmap/nmd_nic.c) then tells
this control plane how it went, one connection:

  program -> server   "adopted" and key=value lines: name (the interface),
                      kind (afxdp, afpacket), host_rings, err (0, or the
                      errno of the refusal), refused and pid (why a join
                      was refused: nmc_nic_refusal())
  server -> program   adopted AF_XDP: "ok afxdp 0 0 0 1 0 0" with the XDP
                      link (a hold the port keeps, as its opener's port
                      does, so the program and its XSKMAP stay while it is
                      open); refused: "err ERRNO MESSAGE", the reason also
                      printed as exec prints a refused open's

A program's REGISTER of a NIC port whose queues another process's live
AF_XDP record binds joins that record (nmd_nic.c, join_live): it reports
"joined" with the same keys, and gets the same answer.
"""
from __future__ import annotations

import errno
import os
import socket
from typing import Dict

VERBS = ("adopted", "joined")
KEYS = ("name", "kind", "host_rings", "err", "refused", "pid")


class BadReport(ValueError):
    """An "adopted" message this server cannot read."""


def parse(data: bytes) -> Dict[str, str]:
    lines = data.decode("utf-8", "replace").split("\n")
    fields = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    if lines[0] not in VERBS or sorted(fields) != sorted(KEYS) or \
            not all(fields[k].lstrip("-").isdigit() for k in ("host_rings", "err", "refused", "pid")):
        raise BadReport(f"couldn't read an adoption report: {data[:200]!r}")
    fields["verb"] = lines[0]
    return fields


def reason(f: Dict[str, str]) -> str:
    """Why the adoption of netmap:NAME's descriptor was refused."""
    from nmcompat.backends.afxdp._open import refusal_text
    name, err = f["name"], int(f["err"])
    if f.get("verb") == "joined":
        return joined_reason(f)
    head = f"couldn't adopt the netmap:{name} descriptor this program received: {os.strerror(err)}: "
    if err == errno.EOPNOTSUPP and int(f["host_rings"]):
        why = ("a port with host rings is not shared with another process (its tap is its "
               f"opener's alone); open netmap:{name} in this process instead")
    elif err == errno.EOPNOTSUPP:
        kind = {"afpacket": "AF_PACKET", "afxdp": "AF_XDP"}.get(f["kind"], f["kind"])
        why = (f"a port over {kind} is not shared with another process (its rings are copies "
               f"its opener's packet sockets fill); open netmap:{name} in this process instead")
    elif err == errno.EOWNERDEAD:
        why = ("its opener closed the port, and its AF_XDP sockets with it, before this "
               f"process used the descriptor, or kept it across its own exec; open "
               f"netmap:{name} in this process instead")
    elif err == errno.EXDEV:
        why = (f"the port's interface {name} is in another network namespace than this "
               f"process (its sockets are bound there); open an interface of this namespace")
    elif err == errno.EBUSY and int(f["refused"]):
        why = refusal_text(int(f["refused"]), int(f["pid"]), None, name)
    else:
        why = f"the opener's record of {name} could not be joined"
    return head + why


def joined_reason(f: Dict[str, str]) -> str:
    """Why the program's join of another process's netmap:NAME port was refused."""
    from nmcompat.backends.afxdp._open import refusal_text
    name, err = f["name"], int(f["err"])
    why = refusal_text(int(f["refused"]), int(f["pid"]), None, name) if err == errno.EBUSY else ""
    if not why and err == errno.EBUSY:
        why = (f"another process's port holds the queues of {name} and this open cannot join it: "
               f"a port holds its rings with NR_EXCLUSIVE (/x) or this open asks for NR_EXCLUSIVE "
               f"beside it, or a closed socket is still being released (retry)")
    return f"couldn't open netmap:{name}: {os.strerror(err)}" + (
        f": {why}" if why else f": the live port of {name} another process holds could not be joined")


def serve(conn: socket.socket, data: bytes, log) -> None:
    """One report, start to end; a refusal's reason goes to log."""
    from nmcompat.backends.afxdp._attach import hold_link
    try:
        f = parse(data)
    except BadReport as exc:
        log(str(exc))
        conn.send(f"err {errno.EPROTO} {exc}".encode())
        return
    if int(f["err"]):
        text = reason(f)
        log(text)
        conn.send(f"err {int(f['err'])} {text}".encode())
        return
    try:
        fd = hold_link(socket.if_nametoindex(f["name"]))
    except OSError as exc:
        what = f"open netmap:{f['name']}" if f["verb"] == "joined" else \
            f"adopt the netmap:{f['name']} descriptor this program received"
        text = f"couldn't {what}: {str(exc).split('] ', 1)[-1]}"
        log(text)
        conn.send(f"err {exc.errno or errno.EIO} {text}".encode())
        return
    try:
        socket.send_fds(conn, [b"ok afxdp 0 0 0 1 0 0"], [fd])
    finally:
        os.close(fd)
