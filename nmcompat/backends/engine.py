"""Ports the C engine serves in shared memory: netmap pipes, VALE ports, and
monitors of NIC ports.

No kernel feature is involved; both need only a tmpfs runtime directory.
"""
from __future__ import annotations

import errno

from nmcompat import _space, config
from nmcompat._ffi import check, ffi, lib, os_error
from nmcompat._portspec import (NR_MONITOR_RX, NR_MONITOR_TX, NR_REG_ALL_NIC, NR_REG_ONE_NIC,
                                NR_TX_RINGS_ONLY, NR_ZCOPY_MON)
from nmcompat.backends import _memopts
from nmcompat.backends._base import COMMON, Backend, Opened
from nmcompat.backends._request import _REGION_VARS, check_environment, request
from nmcompat.errors import PortSpecError


_MONITOR_FLAGS = NR_MONITOR_TX | NR_MONITOR_RX | NR_ZCOPY_MON


def _check_monitor_open(rc: int, spec, options: dict, buf_size: int) -> None:
    """Raise for a failed open of a monitor, saying why netmap refuses it."""
    if rc == -errno.EINVAL and spec.mode == NR_REG_ONE_NIC:
        check(rc, "open", spec.text, f"{spec.name} is not open, or it has no ring pair "
              f"{spec.ringid} (a monitor of X-k watches ring pair k of an open X)")
    if rc == -errno.EINVAL:
        check(rc, "open", spec.text, f"{spec.name} is not open (a monitor watches a port some "
              "process has open through nmcompat in this runtime directory, as in netmap)")
    if rc == -errno.EBUSY:
        check(rc, "open", spec.text, f"a ring of {spec.name} has as many monitors as it takes "
              "(8: copy monitors, and one for its chain of zero-copy ones)")
    check(rc, "open", spec.text, _space.detail(-rc, options, buf_size),
          rundir=options.get("rundir"))


def _refuse_blind_monitor(spec) -> None:
    """EINVAL for a monitor that would watch nothing (as the engine refuses it)."""
    if spec.flags & NR_TX_RINGS_ONLY:
        raise os_error(errno.EINVAL, "open", spec.text, "a monitor with /T binds none of its RX "
                       "rings, the only ones a monitor fills: it would watch nothing (drop /T)")


def _check_open(rc: int, spec, options: dict, einval: str = "",
                buf_size: int = config.DEFAULT_BUF_SIZE) -> None:
    """Raise for a failed open; an EINVAL for one ring pair says which, any
    other EINVAL says `einval`; buf_size: the size of the buffers the open
    makes when nothing chose one."""
    if rc < 0 and spec.flags & _MONITOR_FLAGS:
        _check_monitor_open(rc, spec, options, buf_size)
    if rc == -errno.EINVAL and spec.mode == NR_REG_ONE_NIC:
        check(rc, "open", spec.text, f"ring pair {spec.ringid} does not exist (-N counts "
              "from 0 to the port's ring count - 1; @conf:rings= sets the count)")
    detail = _memopts.extmem_detail(spec, rc)
    if not detail:
        detail = (einval if rc == -errno.EINVAL and einval
                  else _space.detail(-rc, options, buf_size))
    check(rc, "open", spec.text, detail, rundir=options.get("rundir"))


class _EngineBackend(Backend):
    takes = COMMON | {"buf_size"}

    def _request(self, spec, parent, options, keep, pipe_id=None, role=0):
        if spec.mode not in (NR_REG_ALL_NIC, NR_REG_ONE_NIC) and spec.flags & _MONITOR_FLAGS:
            raise os_error(errno.EINVAL, "open", spec.text, "a monitor of host rings ('^', '*') is "
                           "not supported: monitor the NIC rings (IF/r, IF-k/r) or a pipe or VALE port")
        if spec.mode not in (NR_REG_ALL_NIC, NR_REG_ONE_NIC):
            raise os_error(errno.EINVAL, "open", spec.text, "this port has no host rings: "
                           "open it whole or by one ring pair ('^' and '*' do not apply)")
        if spec.flags & _MONITOR_FLAGS:
            _refuse_blind_monitor(spec)
            _memopts.refuse(spec, "a monitor (it lives in the region of the port it watches)")
        req = request(spec, parent, options, keep, pipe_id=pipe_id, role=role)
        req.mem_id = _memopts.share_mem_id(spec, options.get("rundir"))
        req.extmem = _memopts.extmem(spec, keep, options)
        joins = _memopts.name_mem_id(options.get("rundir"), parent) > 0   # none is made
        check_environment(spec, req, region_vars=() if joins else _REGION_VARS)
        return req


_PIPE_EINVAL = ("the pipe cannot be made: a parent has at most 64 pipes (netmap's limit), "
                "a pipe lives in its parent's region (@mem_id, @share, @extmem), and a ring it binds "
                "must exist")


class PipeBackend(_EngineBackend):
    """A pipe end (``X{id`` master, ``X}id`` slave), whatever X is."""
    name = "pipe"

    def register(self, spec, options: dict) -> Opened:
        keep: list = []
        role = 0 if spec.pipe.role == "master" else 1
        req = self._request(spec, spec.pipe.parent, options, keep, spec.pipe.pipe_id, role)
        out = ffi.new("struct nmc_port **")
        _check_open(lib.nmc_pipe_open(req, out), spec, options, _PIPE_EINVAL)
        return Opened(out[0])


class ValeBackend(_EngineBackend):
    """A VALE port ``valeX:Y`` (created with its switch on first use), or a
    persistent one made by vale-ctl -n."""
    name = "vale"

    def register(self, spec, options: dict) -> Opened:
        if spec.vale_switch is not None and not spec.vale_port:
            prefix = f"{spec.vale_switch}:"
            raise PortSpecError(spec.text, f"a VALE port name needs a port after '{prefix}' "
                                f"(as in {prefix}a)", spec.text.find(prefix) + len(prefix))
        if not spec.flags & _MONITOR_FLAGS:     # a monitor copies as monitors do
            config.check_environment(spec.text, "NMCOMPAT_VALE_STREAM_MIN", "NMCOMPAT_BRIDGE_BATCH")
        keep: list = []
        req = self._request(spec, spec.name, options, keep)
        out = ffi.new("struct nmc_port **")
        rc = lib.nmc_vale_open(req, out)
        if rc == -errno.ENOMEM:
            check(rc, "open", spec.text, "the switch is full (252 ports), or "
                  + (_memopts.extmem_detail(spec, rc)
                     or _space.detail(-rc, options, config.VALE_BUF_SIZE)))
        _check_open(rc, spec, options, "" if spec.share is None else
                    f"@share={spec.share}: {spec.name} is open already, in another region (a "
                    "port stays in the region it was made in)", config.VALE_BUF_SIZE)
        return Opened(out[0])


class MonitorBackend(_EngineBackend):
    """A monitor (``/r``, ``/t``, ``/rt``, ``/z``) of a NIC port some process
    has open: the engine finds it in that process's region.  (Monitors of
    pipes and VALE ports are opened by their own backends.)"""
    name = "monitor"

    def register(self, spec, options: dict) -> Opened:
        import socket       # here: the pipe and VALE backends load without it (a process
        try:                # that dropped its privileges may no longer read the library)
            socket.if_nametoindex(spec.name)
        except OSError:
            raise os_error(errno.ENXIO, "open", spec.text,
                           f"there is no interface {spec.name} to monitor") from None
        keep: list = []
        req = self._request(spec, spec.name, options, keep)
        out = ffi.new("struct nmc_port **")
        _check_open(lib.nmc_monitor_open(req, out), spec, options)
        return Opened(out[0])
