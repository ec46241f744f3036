"""AF_XDP: netmap rings over XSK sockets.  Not in this version."""
from __future__ import annotations


def probe():
    from nmcompat.backends import Probe
    return Probe(False, "the AF_XDP backend is not in this version")


def open(spec, **options):  # noqa: A001 - netmap's verb
    raise NotImplementedError("afxdp backend")
