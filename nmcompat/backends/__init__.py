"""Backend registry: an ordered table, imported lazily.

Pipes (``X{id`` / ``X}id``) are served by the engine in shared memory
whatever the parent is.  Other names need a NIC or VALE backend; each entry
says why it cannot serve a port, and when none can, the error lists every
reason.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Dict, Tuple

from nmcompat.errors import BackendUnavailable

# name -> module providing probe() and open(spec, **options)
NIC_BACKENDS: Tuple[Tuple[str, str], ...] = (
    ("native", "nmcompat.backends.native"),
    ("afxdp", "nmcompat.backends.afxdp"),
    ("afpacket", "nmcompat.backends.afpacket"),
)


@dataclass(frozen=True)
class Probe:
    ok: bool
    reason: str


def probe_all() -> Dict[str, Probe]:
    """Every NIC backend's probe result, in selection order."""
    return {name: importlib.import_module(mod).probe() for name, mod in NIC_BACKENDS}


def open_nic(spec, **options):
    """Open a NIC port on the first backend whose probe passes (or the one
    asked for by ``backend=`` / $NMCOMPAT_BACKEND); returns a Port."""
    from nmcompat._port import Port
    forced = options.pop("backend", None) or os.environ.get("NMCOMPAT_BACKEND")
    reasons = {}
    for name, result in probe_all().items():
        if forced and name != forced:
            reasons[name] = f"not chosen ({forced} was asked for)"
            continue
        if result.ok:
            module = importlib.import_module(dict(NIC_BACKENDS)[name])
            handle, details, closer = module.open(spec, **options)
            return Port(spec.text, name, handle, details, closer)
        reasons[name] = result.reason
    raise BackendUnavailable(spec.text, reasons)
