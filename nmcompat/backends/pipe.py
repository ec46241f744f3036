"""netmap pipes, served by the engine in shared memory (no kernel feature)."""
from __future__ import annotations

import errno

from nmcompat._ffi import check, ffi, lib, os_error
from nmcompat._portspec import NR_REG_ALL_NIC, NR_REG_ONE_NIC

_CONF_KEYS = ("tx_rings", "rx_rings", "tx_slots", "rx_slots")


def open(spec, *, rundir=None, extra_bufs=0, buf_num=0, buf_size=0, spin_us=None,  # noqa: A001
         no_timestamp=False, conf=None):
    """Register a pipe end in the engine; returns the C handle."""
    if spec.mode not in (NR_REG_ALL_NIC, NR_REG_ONE_NIC):
        raise os_error(errno.EINVAL, "open", spec.text, "a pipe is opened whole or by one ring "
                       "pair (no host rings: '^' and '*' do not apply)")
    keep = []
    req = ffi.new("struct nmc_pipe_req *")
    for field, value in (("rundir", rundir), ("parent", spec.pipe.parent),
                         ("pipe_id", spec.pipe.pipe_id)):
        if value is not None:
            keep.append(ffi.new("char[]", value.encode()))
            setattr(req, field, keep[-1])
    req.role = 0 if spec.pipe.role == "master" else 1
    req.mode, req.ringid, req.flags, req.mem_id = spec.mode, spec.ringid, spec.flags, spec.mem_id
    for key in _CONF_KEYS:
        setattr(req, key, (conf or {}).get(key, 0))
    req.extra_bufs, req.buf_num, req.buf_size = extra_bufs, buf_num, buf_size
    req.spin_us = -1 if spin_us is None else spin_us
    req.no_timestamp = int(bool(no_timestamp))
    out = ffi.new("struct nmc_port **")
    check(lib.nmc_pipe_open(req, out), "open", spec.text)
    return out[0]
