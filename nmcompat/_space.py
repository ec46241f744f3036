"""Why an open found no memory: the reason and the fix for ENOSPC, ENOMEM
and ENOBUFS, naming the parameter that asked for too much.

The engine claims region memory on the runtime directory's tmpfs before it
uses it (csrc/core/claim.c): a full tmpfs is ENOSPC, a region without room
ENOMEM, an AF_XDP UMEM beyond RLIMIT_MEMLOCK ENOBUFS.
"""
from __future__ import annotations

import errno
import os

from nmcompat.config import DEFAULT_BUF_SIZE

MAX_BUFS = (1 << 24) - 2        # buffers a region holds at most, besides the two reserved


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""  # pragma: no cover


def _setting(options: dict, key: str, env: str, default: int) -> int:
    value = options.get(key) or 0
    if not value:
        try:
            value = int(os.environ.get(env) or "0", 0)
        except ValueError:
            value = 0
    return value or default


def _rundir(options: dict) -> str:
    rundir = options.get("rundir")
    return os.fspath(rundir) if rundir else (os.environ.get("NMCOMPAT_RUNDIR")
                                             or f"/dev/shm/nmcompat-{os.geteuid()}")


def _free(rundir: str) -> int:
    try:
        st = os.statvfs(rundir)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def _no_space(options: dict, buf_size: int) -> str:
    rundir = _rundir(options)
    free = _free(rundir)
    size = _setting(options, "buf_size", "NMCOMPAT_BUF_SIZE", buf_size)
    extra = options.get("extra_bufs") or 0
    buf_num = _setting(options, "buf_num", "NMCOMPAT_BUF_NUM", 0)
    where = f"the runtime directory {rundir} (tmpfs) has {_size(free)} free"
    fix = "or set NMCOMPAT_RUNDIR (rundir=) to a tmpfs with more room"
    if extra and extra * size > free:
        return (f"extra_bufs={extra} needs {_size(extra * size)} ({size}-byte buffers) and "
                f"{where}: ask for fewer, {fix}")
    if buf_num and buf_num * size > free:
        return (f"buf_num={buf_num} needs {_size(buf_num * size)} ({size}-byte buffers) and "
                f"{where}: ask for fewer, {fix}")
    return (f"no room left for the port's rings and buffers: {where}; close ports, use "
            f"fewer or smaller rings (slots=, rings=), {fix}")


def _no_room(options: dict) -> str:
    extra = options.get("extra_bufs") or 0
    if extra > MAX_BUFS:
        return f"extra_bufs={extra} is more than a region holds (at most {MAX_BUFS})"
    return ("its region has too few free buffers: ask for fewer extra_bufs, or give a new "
            "region more with buf_num=")


def _memlock() -> str:
    import resource             # here: only NIC ports need it
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    limit = "unlimited" if soft == resource.RLIM_INFINITY else _size(soft)
    return ("the AF_XDP UMEM (the NIC region's buffer pool, buf_num x buf_size) is more than "
            f"RLIMIT_MEMLOCK ({limit}) allows: raise it (ulimit -l, LimitMEMLOCK=), run with "
            "CAP_IPC_LOCK, or lower buf_num")


def detail(err: int, options: dict, buf_size: int = DEFAULT_BUF_SIZE) -> str:
    """The reason and fix for errno err of an open with these options, or "";
    buf_size: the buffer size of the region the open makes when neither
    buf_size= nor $NMCOMPAT_BUF_SIZE says (2112 for a VALE port)."""
    if err == errno.ENOSPC:
        return _no_space(options, buf_size)
    if err == errno.ENOMEM:
        return _no_room(options)
    if err == errno.ENOBUFS:
        return _memlock()
    return ""
