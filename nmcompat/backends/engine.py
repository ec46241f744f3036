"""Ports the C engine serves in shared memory: netmap pipes and VALE ports.

No kernel feature is involved; both need only a tmpfs runtime directory.
"""
from __future__ import annotations

import errno

from nmcompat import _space
from nmcompat._ffi import check, ffi, lib, os_error
from nmcompat._portspec import NR_REG_ALL_NIC, NR_REG_ONE_NIC
from nmcompat.backends import _memopts
from nmcompat.backends._base import COMMON, Backend, Opened
from nmcompat.backends._request import request
from nmcompat.errors import PortSpecError


def _check_open(rc: int, spec, options: dict, einval: str = "") -> None:
    """Raise for a failed open; an EINVAL for one ring pair says which, any
    other EINVAL says `einval`."""
    if rc == -errno.EINVAL and spec.mode == NR_REG_ONE_NIC:
        check(rc, "open", spec.text, f"ring pair {spec.ringid} does not exist (-N counts "
              "from 0 to the port's ring count - 1; @conf:rings= sets the count)")
    detail = _memopts.extmem_detail(spec, rc)
    if not detail:
        detail = einval if rc == -errno.EINVAL and einval else _space.detail(-rc, options)
    check(rc, "open", spec.text, detail, rundir=options.get("rundir"))


class _EngineBackend(Backend):
    takes = COMMON | {"buf_size"}

    def _request(self, spec, parent, options, keep, pipe_id=None, role=0):
        if spec.mode not in (NR_REG_ALL_NIC, NR_REG_ONE_NIC):
            raise os_error(errno.EINVAL, "open", spec.text, "this port has no host rings: "
                           "open it whole or by one ring pair ('^' and '*' do not apply)")
        req = request(spec, parent, options, keep, pipe_id=pipe_id, role=role)
        req.mem_id = _memopts.share_mem_id(spec, options.get("rundir"))
        req.extmem = _memopts.extmem(spec, keep)
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
        keep: list = []
        req = self._request(spec, spec.name, options, keep)
        out = ffi.new("struct nmc_port **")
        rc = lib.nmc_vale_open(req, out)
        if rc == -errno.ENOMEM:
            check(rc, "open", spec.text, "the switch is full (252 ports), or "
                  + _space.detail(-rc, options))
        _check_open(rc, spec, options)
        return Opened(out[0])
