"""VALE control: netmap's persistent ports, attach/detach, listing, info.

The same requests ``vale-ctl`` makes (NETMAP_REQ_VALE_NEWIF/DELIF/ATTACH/
DETACH/LIST, PORT_INFO_GET), with netmap's errnos raised as OSError:
EEXIST for a second newif, EBUSY to delete an attached or open port or to
attach twice, ENXIO for an unknown port, ENOENT past the end of a listing,
EINVAL for names of the wrong kind.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Iterator, Optional

from nmcompat import _vale_nic, config
from nmcompat._ffi import check, ffi, lib, os_error

_IFNAMSIZ = 16


@dataclass(frozen=True)
class PortEntry:
    name: str
    bridge_idx: int
    port_idx: int


def _dir(rundir: Optional[str]):
    return ffi.NULL if rundir is None else rundir.encode()


def check_persistent_name(name: str) -> None:
    """EINVAL (naming what is wrong) unless name can be a persistent port:
    "netmap:<name>" must parse back to exactly that name, with no pipe, VALE
    prefix, ring selector, flag or option, and it must fit IFNAMSIZ."""
    from nmcompat._portspec import parse_nmport
    from nmcompat.errors import PortSpecError

    def bad(why: str):
        return os_error(errno.EINVAL, "create", repr(name), why, filename=name)
    if not isinstance(name, str) or not name:
        raise bad("a persistent port needs a non-empty name")
    if len(name.encode()) >= _IFNAMSIZ:
        raise bad(f"the name is longer than {_IFNAMSIZ - 1} bytes")
    try:
        spec = parse_nmport("netmap:" + name)
    except PortSpecError as exc:
        raise bad(f"open('netmap:{name}') would fail: {exc.reason}") from None
    if spec.name != name:
        cut = len(spec.name)
        raise bad(f"'{name[cut]}' is not allowed in a port name (open('netmap:{name}') "
                  f"would read it as a ring selector, flag or option)")
    if name.startswith("vale") or spec.pipe is not None or ":" in name:
        raise bad("the name of a VALE port ('vale...', ':') or a pipe ('{', '}') "
                  "cannot be a persistent port")


def _check_environment(verb: str, name: str, *variables: str) -> None:
    """EINVAL naming the first of variables that is set but malformed (the
    engine refuses it too, unnamed)."""
    problem = config.env_problem(*variables)
    if problem:
        raise os_error(errno.EINVAL, verb, name, problem)


def newif(name: str, *, tx_slots: int = 0, rx_slots: int = 0, tx_rings: int = 0,
          rx_rings: int = 0, mem_id: int = 0, rundir: Optional[str] = None) -> None:
    """Create persistent port `name` (on no switch until attach()); the name
    is checked by check_persistent_name()."""
    check_persistent_name(name)
    if not mem_id:                      # a region it makes
        _check_environment("create", name, "NMCOMPAT_BUF_NUM", "NMCOMPAT_BUF_SIZE")
    req = ffi.new("struct nmc_pipe_req *")
    keep = [ffi.new("char[]", name.encode())]
    req.parent = keep[0]
    if rundir is not None:
        keep.append(ffi.new("char[]", rundir.encode()))
        req.rundir = keep[1]
    req.mode = 1
    req.tx_slots, req.rx_slots, req.tx_rings, req.rx_rings = tx_slots, rx_slots, tx_rings, rx_rings
    req.mem_id = mem_id
    check(lib.nmc_vale_newif(req), "create", name, rundir=rundir)


def delif(name: str, *, rundir: Optional[str] = None) -> None:
    """Delete persistent port `name` (EBUSY while attached or open)."""
    check(lib.nmc_vale_delif(_dir(rundir), name.encode()), "delete", name, rundir=rundir)


def attach(name: str, *, rundir: Optional[str] = None) -> int:
    """Attach a persistent port to a switch ("vale0:vi0"); returns its port index."""
    _check_environment("attach", name, "NMCOMPAT_BRIDGE_BATCH")    # if it creates the switch
    rc = lib.nmc_vale_attach(_dir(rundir), name.encode())
    if rc == -errno.EOPNOTSUPP:         # a NIC: a forwarding process bridges it
        _vale_nic.attach(name)
        return lookup(name, rundir=rundir).port_idx
    return check(rc, "attach", name, rundir=rundir)


def detach(name: str, *, rundir: Optional[str] = None) -> int:
    """Detach a persistent port from its switch; returns the index it had."""
    if ":" in name:
        try:
            idx = lookup(name, rundir=rundir).port_idx
        except OSError:
            idx = -1
        if _vale_nic.detach(name):
            return idx
    return check(lib.nmc_vale_detach(_dir(rundir), name.encode()), "detach", name, rundir=rundir)


def lookup(name: str, *, rundir: Optional[str] = None) -> PortEntry:
    """VALE_LIST for one port: its bridge and port index (ENOENT if absent)."""
    lst = ffi.new("struct nmc_vale_list *")
    lst.name = name.encode()
    check(lib.nmc_vale_list(_dir(rundir), lst), "list", name, rundir=rundir)
    return PortEntry(ffi.string(lst.name).decode(), lst.bridge_idx, lst.port_idx)


def ports(*, rundir: Optional[str] = None) -> Iterator[PortEntry]:
    """Every port of every switch, in (bridge_idx, port_idx) order.  ENOENT
    ends the listing; any other error (EACCES: the runtime directory is
    another user's) is raised."""
    lst = ffi.new("struct nmc_vale_list *")
    while True:
        rc = lib.nmc_vale_list(_dir(rundir), lst)
        if rc == -errno.ENOENT:
            return
        check(rc, "list the ports of", rundir or "the runtime directory", rundir=rundir)
        yield PortEntry(ffi.string(lst.name).decode(), lst.bridge_idx, lst.port_idx)
        lst.name = b""
        lst.port_idx += 1


def port_info(name: str, *, rundir: Optional[str] = None) -> dict:
    """PORT_INFO_GET: memsize, rings, slots and mem_id of a VALE or persistent port."""
    info = ffi.new("struct nmc_port_info *")
    check(lib.nmc_vale_port_info(_dir(rundir), name.encode(), info), "get info of", name, rundir=rundir)
    return {"memsize": info.nr_memsize, "tx_slots": info.nr_tx_slots, "rx_slots": info.nr_rx_slots,
            "tx_rings": info.nr_tx_rings, "rx_rings": info.nr_rx_rings, "mem_id": info.nr_mem_id}


def is_persistent(name: str, *, rundir: Optional[str] = None) -> bool:
    """Is `name` a persistent port (so that "netmap:<name>" opens it)?"""
    info = ffi.new("struct nmc_port_info *")
    return ":" not in name and lib.nmc_vale_port_info(_dir(rundir), name.encode(), info) == 0
