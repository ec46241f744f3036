"""The real netmap module through /dev/netmap (NIOCCTRL).  Not in this version."""
from __future__ import annotations

import errno
import os

from nmcompat.backends._base import Opened, Probe
from nmcompat.backends._nic import NicBackend
from nmcompat.errors import BackendUnusable


class NativeBackend(NicBackend):
    name = "native"

    def probe(self) -> Probe:
        if not os.path.exists("/dev/netmap"):
            return Probe(False, "no /dev/netmap (the netmap module is not loaded)")
        return Probe(False, "/dev/netmap exists, but the native backend is not in this version")

    def register(self, spec, options: dict) -> Opened:
        raise BackendUnusable(errno.EOPNOTSUPP, f"couldn't open {spec.text}: the native "
                              "backend is not in this version", spec.text)
