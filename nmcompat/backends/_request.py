"""The engine's open request (struct nmc_pipe_req), filled from a parsed
name and the options every backend passes the same way."""
from __future__ import annotations

import os
from typing import List, Optional

from nmcompat import config
from nmcompat._ffi import ffi


def request(spec, parent: str, options: dict, keep: List, *, pipe_id: Optional[str] = None,
            role: int = 0):
    """A struct nmc_pipe_req for spec; the strings it points to are appended
    to keep (keep it alive until the engine call returns)."""
    req = ffi.new("struct nmc_pipe_req *")
    rundir = options.get("rundir")
    for name, value in (("rundir", None if rundir is None else os.fspath(rundir)),
                        ("parent", parent), ("pipe_id", pipe_id)):
        if value is not None:
            keep.append(ffi.new("char[]", value.encode()))
            setattr(req, name, keep[-1])
    req.role = role
    req.mode, req.ringid, req.flags = spec.mode, spec.ringid, spec.flags
    conf = options.get("conf") or {}
    for key in ("tx_rings", "rx_rings", "tx_slots", "rx_slots"):
        setattr(req, key, conf.get(key, 0))
    req.extra_bufs = options.get("extra_bufs", 0)
    req.buf_num, req.buf_size = options.get("buf_num", 0), options.get("buf_size", 0)
    spin = options.get("spin_us")
    req.spin_us = -1 if spin is None else spin
    req.no_timestamp = int(bool(options.get("no_timestamp")))
    return req


_REGION_VARS = ("NMCOMPAT_BUF_NUM", "NMCOMPAT_BUF_SIZE")


def check_environment(spec, req, region_vars=_REGION_VARS) -> None:
    """What the engine would take from the environment for req (the fields
    it left at 0 or -1), checked as the engine checks it: OptionError
    naming the variable.  region_vars: those of the region the open may
    make; a region named by mem_id or extmem reads none of them."""
    names = ["NMCOMPAT_SPIN_US"] if req.spin_us < 0 else []
    if not req.mem_id and req.extmem == ffi.NULL:
        names += [n for n in region_vars if not getattr(req, n[9:].lower())]
    config.check_environment(spec.text, *names)
