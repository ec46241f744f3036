"""The compiled engine, and the one place where C errors become Python ones."""
from __future__ import annotations

from nmcompat.errors import os_error

try:
    from nmcompat._nmc import ffi, lib
except ImportError as exc:  # pragma: no cover - a broken install
    raise ImportError(
        "couldn't import the nmcompat engine (nmcompat._nmc): "
        f"{exc}; build it with 'pip install -e .' from the source tree") from exc

__all__ = ["ffi", "lib", "check", "os_error"]


def check(rc: int, verb: str, obj: str, detail: str = "") -> int:
    """Return rc when it is >= 0, else raise the matching NmcompatOSError."""
    if rc < 0:
        raise os_error(-rc, verb, obj, detail)
    return rc
