"""The compiled engine, and the one place where C errors become Python ones."""
from __future__ import annotations

import errno as _errno
import os

try:
    from nmcompat._nmc import ffi, lib
except ImportError as exc:  # pragma: no cover - a broken install
    raise ImportError(
        "couldn't import the nmcompat engine (nmcompat._nmc): "
        f"{exc}; build it with 'pip install -e .' from the source tree") from exc

__all__ = ["ffi", "lib", "check", "os_error"]

_FIXES = {
    _errno.EPERM: " (needs root, or CAP_NET_ADMIN and CAP_BPF for NIC ports)",
    _errno.EACCES: " (the runtime directory or region belongs to another user;"
                   " set NMCOMPAT_RUNDIR to a directory of yours on tmpfs)",
    _errno.EXDEV: " (the runtime directory must be on tmpfs or hugetlbfs,"
                  " e.g. under /dev/shm; set NMCOMPAT_RUNDIR)",
}

_REASONS = {
    _errno.EXDEV: "runtime directory is not on tmpfs",
}


def os_error(err: int, verb: str, obj: str, detail: str = "") -> OSError:
    """OSError (its errno subclass) saying "couldn't <verb> <obj>: <reason>"."""
    reason = detail or _REASONS.get(err) or os.strerror(err)
    return OSError(err, f"couldn't {verb} {obj}: {reason}{_FIXES.get(err, '')}")


def check(rc: int, verb: str, obj: str, detail: str = "") -> int:
    """Return rc when it is >= 0, else raise the matching OSError."""
    if rc < 0:
        raise os_error(-rc, verb, obj, detail)
    return rc
