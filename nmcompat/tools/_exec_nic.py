"""NIC ports for programs under `nmcompat exec`: the privileged half.

The /dev/netmap emulation (csrc/devnetmap/nmd_nic.c) serves a REGISTER of
an interface name by asking this control plane, over the SOCK_SEQPACKET
socket named by $NMCOMPAT_EXEC_SOCKET, one connection per request:

  program -> server   "open" and key=value lines: name, mode, ringid,
                      host_rings (the larger count asked for, 0: none),
                      flags (NR_* register flags: NR_RX_RINGS_ONLY), and
                      the program's own NMCOMPAT_* settings (admode...)
  server -> program   "ok BACKEND QUEUES NSOCKS SLOTS HOLD TAP NLINKS" with
                      the sockets (then the XDP link when HOLD is 1, the
                      host rings' tap when TAP is 1, and NLINKS TCX links:
                      host side, AF_PACKET's stack cut-off) over
                      SCM_RIGHTS, in messages of at most MAX_FDS; or
                      "err ERRNO MESSAGE"
  program -> server   "bound" once its engine port uses the sockets, or
                      "failed ERRNO"
  server -> program   "ok" (with AF_XDP, once every bound queue is in the
                      XDP program's XSKMAP), or "err ERRNO MESSAGE"

An information request (PORT_INFO_GET, POOLS_INFO_GET, NIOCGINFO) sends
"info" with the same lines and gets "ok BACKEND QUEUES 0 SLOTS 0 0 0" (no
descriptor, no socket made, no XDP program attached): the first backend
in admode order that is usable and serves the interface, as grant() would
try it; or "err ERRNO MESSAGE".  "peek" is the same, sent before an open
to see whether it can join another process's port (nmd_nic.c,
join_live): its refusal is not logged, the open that follows says why.

The backend is chosen as nmcompat.open() chooses it (netmap's admode,
NMCOMPAT_BACKEND).  The server creates the kernel sockets (AF_XDP, or an
RX and a TX AF_PACKET socket per queue), attaches or joins nmcompat's XDP
program, and puts the program's bound sockets in its XSKMAP; then it keeps
nothing: the program's port holds the sockets and a reference to the XDP
link, so the XDP program stays exactly as long as a port uses it, in this
program or any other process (docs/DESIGN.md section 14).
"""
from __future__ import annotations

import errno
import os
import socket
from types import SimpleNamespace
from typing import Dict, List, Optional, Tuple

from nmcompat import backends, config
from nmcompat.errors import BackendUnusable

AF_XDP = 44
MAX_FDS = 250                   # below the kernel's SCM_MAX_FD (253)
ENV_KEYS = ("NMCOMPAT_ADMODE", "NMCOMPAT_BACKEND", "NMCOMPAT_SLOTS", "NMCOMPAT_GENERIC_RINGSIZE",
            "NMCOMPAT_XDP_PROG", "NMCOMPAT_STACK_TX")
_PRIVILEGE = {"afxdp": "AF_XDP needs root (CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF)",
              "afpacket": "AF_PACKET needs CAP_NET_RAW (root)"}


class Refusal(Exception):
    """A request the program gets an errno for; str() says why and the fix."""

    def __init__(self, err: int, message: str) -> None:
        super().__init__(message)
        self.errno = err


class Grant:
    """The sockets (and XDP link) handed to one program for one port."""

    def __init__(self, backend: str, queues: List[int], socks: List[socket.socket],
                 slots: int, att=None) -> None:
        self.backend, self.queues, self.socks, self.slots, self.att = backend, queues, socks, slots, att
        self.side = None                # the host side (_host.HostSide), when there is one

    def head(self, nq: int) -> str:
        tap = int(self.side is not None and self.side.tap_fd >= 0)
        links = len(self.side.link_fds) if self.side is not None else 0
        return f"ok {self.backend} {nq} {len(self.socks)} {self.slots} " \
               f"{int(self.att is not None)} {tap} {links}"

    def fds(self) -> List[int]:
        fds = [s.fileno() for s in self.socks]
        if self.att is not None:
            fds.append(self.att.link.fd if hasattr(self.att, "link") else self.att.link_fd)
        if self.side is not None:
            fds += ([self.side.tap_fd] if self.side.tap_fd >= 0 else []) + list(self.side.link_fds)
        return fds

    def wire(self, used: List[int]) -> None:
        """The program bound the sockets of indices `used`: redirect their
        queues to them (a queue the program bound before keeps its socket)."""
        for k in used:
            self.att.add_queue(self.queues[k], self.socks[k].fileno())

    def release(self) -> None:
        """Keep nothing: the program's port holds what it uses."""
        for sock in self.socks:
            sock.close()
        self.socks = []
        if self.side is not None:
            side, self.side = self.side, None
            side.close()
        if self.att is not None:
            from nmcompat.backends.afxdp._attach import release_program
            att, self.att = self.att, None
            release_program(att)


def _sockets(backend: str, family: int, count: int) -> List[socket.socket]:
    socks: List[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(socket.socket(family, socket.SOCK_RAW, 0))
    except OSError as exc:
        for s in socks:
            s.close()
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise BackendUnusable(errno.EPERM, _PRIVILEGE[backend]) from None
        raise BackendUnusable(exc.errno, f"couldn't create {backend} sockets: {exc.strerror}") from None
    return socks


def _grant_afxdp(spec, ifindex: int, queues: List[int]) -> Grant:
    from nmcompat.backends.afxdp._attach import attach_program
    if not queues:                      # host rings only: no socket, no XDP program
        return Grant("afxdp", queues, [], 0)
    socks = _sockets("afxdp", AF_XDP, len(queues))
    try:
        att = attach_program(ifindex, "auto")
    except OSError as exc:              # the XDP hook is not ours to use here
        for s in socks:
            s.close()
        raise BackendUnusable(exc.errno or errno.EIO, str(exc).split("] ", 1)[-1]) from exc
    return Grant("afxdp", queues, socks, 0, att)


def _grant_afpacket(spec, ifindex: int, queues: List[int]) -> Grant:
    slots = config.default_slots(emulated=True)        # a bad setting before any socket
    return Grant("afpacket", queues, _sockets("afpacket", socket.AF_PACKET, 2 * len(queues)), slots)


_GRANTS = {"afxdp": _grant_afxdp, "afpacket": _grant_afpacket}


def grant(name: str, mode: int, ringid: int, host_rings: int = 0, flags: int = 0) -> Tuple[Grant, int]:
    """(the grant, the interface's queue count) for NIC port name, chosen
    in admode order; Refusal with netmap's errno when none can serve it."""
    spec = SimpleNamespace(text=f"netmap:{name}", name=name, mode=mode, ringid=ringid, flags=flags)
    try:
        names = backends.candidates(config.admode(), os.environ.get("NMCOMPAT_BACKEND", ""))
    except ValueError as exc:
        raise Refusal(errno.EINVAL, f"couldn't open {spec.text}: {exc}") from None
    reasons: Dict[str, Tuple[int, str]] = {}
    for bname in names:
        backend = backends.get(bname)
        if bname not in _GRANTS:
            reasons[bname] = (errno.EOPNOTSUPP, backend.probe().reason)
            continue
        ifindex, nq = backend.interface(spec, host_rings)       # ENXIO, EINVAL: the request's
        queues = list(backend.hw_queues(spec, nq))
        try:
            g = _GRANTS[bname](spec, ifindex, queues)
        except BackendUnusable as exc:
            reasons[bname] = (exc.errno, exc.strerror)
            continue
        try:
            g.side = _host_side(spec, bname, ifindex, queues, backend.stack_drop(spec, nq, {}))
        except BaseException:
            g.release()
            raise
        return g, nq
    err = errno.EPERM if any(e == errno.EPERM for e, _ in reasons.values()) else \
        list(reasons.values())[-1][0]
    lines = "; ".join(f"{k}: {why}" for k, (_, why) in reasons.items())
    raise Refusal(err, f"couldn't open {spec.text}: no backend can serve it with admode "
                       f"{config.admode()} ({lines})")


def _host_side(spec, bname: str, ifindex: int, queues: List[int], drop: bool):
    """The host rings' tap and links, AF_PACKET's stack cut-off and the
    drop of the stack's frames (backends/_host.py), or None when the port
    needs none."""
    from nmcompat.backends._host import open_host_side
    from nmcompat.backends._nic import HOST_MODES
    host, cut = spec.mode in HOST_MODES, queues if bname == "afpacket" else []
    return open_host_side(spec.text, spec.name, ifindex, host, cut, drop) if host or cut or drop else None


def describe(name: str, mode: int, ringid: int, host_rings: int = 0, flags: int = 0) -> Tuple[str, int, int]:
    """(backend, queue count, slots) a grant() for name would start with,
    creating nothing; Refusal with netmap's errno when none can serve it."""
    spec = SimpleNamespace(text=f"netmap:{name}", name=name, mode=mode, ringid=ringid)
    try:
        names = backends.candidates(config.admode(), os.environ.get("NMCOMPAT_BACKEND", ""))
    except ValueError as exc:
        raise Refusal(errno.EINVAL, f"couldn't describe {spec.text}: {exc}") from None
    reasons: List[str] = []
    for bname in names:
        backend = backends.get(bname)
        probe = backend.probe()
        if bname not in _GRANTS or not probe.ok:
            reasons.append(f"{bname}: {probe.reason}")
            continue
        _, nq = backend.interface(spec, host_rings)             # ENXIO, EINVAL, EOPNOTSUPP: the request's
        slots = config.default_slots(emulated=True) if bname == "afpacket" else 0
        return bname, nq, slots
    raise Refusal(errno.EOPNOTSUPP, f"couldn't describe {spec.text}: no backend can serve it "
                                    f"with admode {config.admode()} ({'; '.join(reasons)})")


class _Settings:
    """The program's NMCOMPAT_* settings in force while one request is served."""

    def __init__(self, given: Dict[str, str]) -> None:
        self.given, self.saved = given, {}

    def __enter__(self):
        for key in ENV_KEYS:
            self.saved[key] = os.environ.pop(key, None)
            if key in self.given:
                os.environ[key] = self.given[key]

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            os.environ.pop(key, None)
            if value is not None:
                os.environ[key] = value


VERBS = ("open", "info", "peek")       # peek: info before an open, its refusal not logged


def parse_request(data: bytes) -> Tuple[str, str, int, Tuple[int, int, int], Dict[str, str]]:
    """(verb, name, mode, (ringid, host rings, flags), the program's settings) of a request."""
    lines = data.decode("utf-8", "replace").split("\n")
    if not lines or lines[0] not in VERBS:
        raise Refusal(errno.EINVAL, "couldn't serve a NIC request: not an open or info request")
    odd = [line for line in lines[1:] if "=" not in line]
    if odd:
        raise Refusal(errno.EINVAL, f"couldn't serve a NIC request: lines that are no key=value {odd}")
    fields = dict(line.split("=", 1) for line in lines[1:])
    try:
        name, mode, ringid = fields.pop("name"), int(fields.pop("mode")), int(fields.pop("ringid"))
        host_rings, flags = int(fields.pop("host_rings", "0")), int(fields.pop("flags", "0"))
    except (KeyError, ValueError):
        raise Refusal(errno.EINVAL, "couldn't serve a NIC request: name, mode or ringid missing") from None
    unknown = set(fields) - set(ENV_KEYS)
    if unknown:
        raise Refusal(errno.EINVAL, f"couldn't serve a NIC request: unknown keys {sorted(unknown)}")
    return lines[0], name, mode, (ringid, host_rings, flags), fields


def _send_grant(conn: socket.socket, g: Grant, nq: int) -> None:
    fds = g.fds()
    head = g.head(nq).encode()
    first = True
    while first or fds:
        chunk, fds = fds[:MAX_FDS], fds[MAX_FDS:]
        socket.send_fds(conn, [head if first else b"fds"], chunk)
        first = False


def _choose(how, name: str, mode: int, ring: Tuple[int, int, int], settings: Dict[str, str]):
    """how (grant or describe) under the program's settings, its failures
    as Refusals."""
    with _Settings(settings):
        try:
            return how(name, mode, *ring)
        except OSError as exc:
            raise Refusal(exc.errno or errno.EIO, str(exc).split("] ", 1)[-1]) from None
        except ValueError as exc:           # a setting of the program's that is no number
            raise Refusal(errno.EINVAL, f"couldn't open netmap:{name}: {exc}") from None


def _complete(conn: socket.socket, g: Grant, name: str) -> None:
    """After the hand-over: once the program says its port is bound, its
    AF_XDP sockets go in the XSKMAP; "ok"."""
    words = conn.recv(4096).decode("ascii", "replace").split()
    if not words:
        raise Refusal(errno.EPROTO, f"couldn't complete netmap:{name}: the program closed the "
                      "connection without saying whether its port uses the sockets")
    if words[0] == "failed":
        raise _failed(g, name, words[1:])
    if words[0] != "bound":
        raise Refusal(errno.EPROTO, f"couldn't complete netmap:{name}: the program answered "
                      f"{' '.join(words)!r}, not 'bound' or 'failed ERRNO'")
    if g.backend == "afxdp":
        try:
            g.wire(_used(words[1:], len(g.socks)))
        except OSError as exc:
            raise Refusal(exc.errno or errno.EIO, f"couldn't add netmap:{name}'s queues to "
                          f"the XDP program: {exc.strerror}") from None
    conn.send(b"ok")


def _failed(g: Grant, name: str, words: List[str]) -> Refusal:
    """The program's engine could not open the port on the sockets granted
    ("failed 16": the kernel refused a bind): the reason, as a Python open
    of that backend words it."""
    if len(words) != 1 or not words[0].isdigit() or int(words[0]) == 0:
        return Refusal(errno.EPROTO, f"couldn't read the program's failure: "
                       f"{' '.join(['failed', *words])!r} (expected 'failed ERRNO')")
    err = int(words[0])
    hint = ""
    if err == errno.EBUSY and g.backend == "afxdp":
        from nmcompat.backends.afxdp._open import _HINTS
        hint = _HINTS[errno.EBUSY].format(q=",".join(map(str, g.queues)), ifname=name)
    elif err == errno.EBUSY and g.backend == "afpacket":
        from nmcompat.backends.afpacket import _BUSY
        hint = _BUSY.format(ifname=name)
    return Refusal(err, f"couldn't open netmap:{name}: {os.strerror(err)}" + (f": {hint}" if hint else ""))


def _used(words: List[str], count: int) -> List[int]:
    """The indices of "bound 0 2": the granted sockets the program's port
    uses (each at most once, below count)."""
    if not all(w.isdigit() for w in words) or len(set(words)) != len(words) or \
            any(int(w) >= count for w in words):
        raise Refusal(errno.EPROTO, f"couldn't read the program's bound sockets: {' '.join(words)!r}")
    return [int(w) for w in words]


def _refuse(conn: socket.socket, err: int, message: str) -> None:
    try:
        conn.send(f"err {err} {message}".encode())
    except OSError:
        pass


def serve_one(conn: socket.socket, log) -> None:
    """One program's NIC request, start to end; the reason of a refusal
    goes to log (the program gets only the errno, as from netmap).  The
    server keeps nothing of it afterwards."""
    g: Optional[Grant] = None
    verb = ""
    try:
        data = conn.recv(4096)
        if data.startswith((b"adopted\n", b"joined\n")):   # adopted or joined: _exec_adopt.py
            from nmcompat.tools._exec_adopt import serve as serve_adopted
            serve_adopted(conn, data, log)
            return
        verb, name, mode, ring, settings = parse_request(data)
        if verb in ("info", "peek"):
            bname, nq, slots = _choose(describe, name, mode, ring, settings)
            conn.send(f"ok {bname} {nq} 0 {slots} 0 0 0".encode())
            return
        g, nq = _choose(grant, name, mode, ring, settings)
        _send_grant(conn, g, nq)
        _complete(conn, g, name)
    except Refusal as exc:
        if verb != "peek":              # the open that follows says why
            log(str(exc))
        _refuse(conn, exc.errno, str(exc))
    except OSError as exc:                  # the program went away mid-request
        log(f"couldn't serve a NIC request: {exc.strerror or exc}")
    except Exception as exc:                # a defect here: EIO for this request, the server goes on
        log(f"couldn't serve a NIC request: {type(exc).__name__}: {exc}")
        _refuse(conn, errno.EIO, str(exc))
    finally:
        if g is not None:
            g.release()
