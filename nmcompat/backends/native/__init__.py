"""The real netmap module through /dev/netmap (NIOCCTRL).  Not in this version."""
from __future__ import annotations

import os


def probe():
    from nmcompat.backends import Probe
    if not os.path.exists("/dev/netmap"):
        return Probe(False, "no /dev/netmap (the netmap module is not loaded)")
    return Probe(False, "/dev/netmap exists, but the native backend is not in this version")


def open(spec, **options):  # noqa: A001 - netmap's verb
    raise NotImplementedError("native backend")
