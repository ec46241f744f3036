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
    # what the engine takes from the environment instead, checked as it checks it
    config.check_environment(spec.text, *(["NMCOMPAT_BUF_NUM"] if not req.buf_num else []),
                             *(["NMCOMPAT_BUF_SIZE"] if not req.buf_size else []),
                             *(["NMCOMPAT_SPIN_US"] if spin is None else []))
    req.spin_us = -1 if spin is None else spin
    req.no_timestamp = int(bool(options.get("no_timestamp")))
    return req
