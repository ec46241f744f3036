"""Log lines and number formats of netmap's tools.

``dlog()`` prints netmap's debug-line prefix ``SSS.uuuuuu func [line] ``
(seconds modulo 1000, microseconds, the calling function and its line) to
stderr; ``norm()`` writes a rate as netmap's tools do (``%.3f`` with the
suffixes "", K, M, G, T in steps of 1000).
"""
from __future__ import annotations

import sys
import time


def dlog(msg: str, *, func: str = "", file=None) -> None:
    """One line as netmap's D() macro prints it."""
    now = time.time()
    frame = sys._getframe(1)
    name = func or frame.f_code.co_name
    print(f"{int(now) % 1000:03d}.{int(now * 1e6) % 1_000_000:06d} {name} [{frame.f_lineno}] {msg}",
          file=file or sys.stderr, flush=True)


def norm(value: float, raw: bool = False) -> str:
    """1234567 -> '1.235 M'; raw=True (pkt-gen's -N) -> '1234567 '."""
    if raw:
        return f"{value:.0f} "
    for suffix in ("", "K", "M", "G"):
        if abs(value) < 1000:
            return f"{value:.3f} {suffix}"
        value /= 1000
    return f"{value:.3f} T"


def port_name(text: str) -> str:
    """A bare interface name gets netmap's "netmap:" prefix (pkt-gen, lb)."""
    if text.startswith(("netmap:", "vale")):
        return text
    return "netmap:" + text
