"""Ports the C engine serves in shared memory: netmap pipes and VALE ports.

No kernel feature is involved; both need only a tmpfs runtime directory.
"""
from __future__ import annotations

import errno

from nmcompat._ffi import check, ffi, lib, os_error
from nmcompat._portspec import NR_REG_ALL_NIC, NR_REG_ONE_NIC

_CONF_KEYS = ("tx_rings", "rx_rings", "tx_slots", "rx_slots")


def _request(spec, parent, pipe_id, role, *, rundir=None, extra_bufs=0, buf_num=0, buf_size=0,
             spin_us=None, no_timestamp=False, conf=None):
    """A struct nmc_pipe_req, plus the buffers it points into (keep them alive)."""
    if spec.mode not in (NR_REG_ALL_NIC, NR_REG_ONE_NIC):
        raise os_error(errno.EINVAL, "open", spec.text, "this port has no host rings: "
                       "open it whole or by one ring pair ('^' and '*' do not apply)")
    keep = []
    req = ffi.new("struct nmc_pipe_req *")
    for field, value in (("rundir", rundir), ("parent", parent), ("pipe_id", pipe_id)):
        if value is not None:
            keep.append(ffi.new("char[]", value.encode()))
            setattr(req, field, keep[-1])
    req.role = role
    req.mode, req.ringid, req.flags, req.mem_id = spec.mode, spec.ringid, spec.flags, spec.mem_id
    for key in _CONF_KEYS:
        setattr(req, key, (conf or {}).get(key, 0))
    req.extra_bufs, req.buf_num, req.buf_size = extra_bufs, buf_num, buf_size
    req.spin_us = -1 if spin_us is None else spin_us
    req.no_timestamp = int(bool(no_timestamp))
    return req, keep


def open_pipe(spec, **options):
    """Register a pipe end (``X{id`` master, ``X}id`` slave); returns the C handle."""
    role = 0 if spec.pipe.role == "master" else 1
    req, _keep = _request(spec, spec.pipe.parent, spec.pipe.pipe_id, role, **options)
    out = ffi.new("struct nmc_port **")
    check(lib.nmc_pipe_open(req, out), "open", spec.text)
    return out[0]


def open_vale(spec, **options):
    """Register a VALE port ``valeX:Y`` (created with its switch on first use)."""
    req, _keep = _request(spec, spec.name, None, 0, **options)
    out = ffi.new("struct nmc_port **")
    rc = lib.nmc_vale_open(req, out)
    if rc == -errno.ENOMEM:
        check(rc, "open", spec.text, "the switch is full (252 ports) or the region has no room")
    check(rc, "open", spec.text)
    return out[0]
