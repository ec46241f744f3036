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

from nmcompat.errors import BackendUnavailable, BackendUnusable

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


def candidates(mode: str, forced: str = "") -> Tuple[str, ...]:
    """Backend names to try, in order, for netmap's admode (or one forced)."""
    if forced:
        if forced not in dict(NIC_BACKENDS):
            raise ValueError(f"unknown backend {forced!r} (known: {', '.join(dict(NIC_BACKENDS))})")
        return (forced,)
    return {"best": ("native", "afxdp", "afpacket"), "native": ("native",),
            "emulated": ("afpacket",)}[mode]


def open_nic(spec, *, admode=None, **options):
    """Open a NIC port on the first backend that works, in admode order
    (or the one ``backend=`` / $NMCOMPAT_BACKEND names).  The port's
    info.backend says which, info.why why; when none works the error lists
    every backend's reason."""
    from nmcompat import config
    from nmcompat._port import Port
    forced = options.pop("backend", None) or os.environ.get("NMCOMPAT_BACKEND", "")
    mode = config.admode(admode)
    reasons: Dict[str, str] = {}
    for name in candidates(mode, forced):
        module = importlib.import_module(dict(NIC_BACKENDS)[name])
        result = module.probe()
        if not result.ok:
            reasons[name] = result.reason
            continue
        try:
            handle, details, closer = module.open(spec, **options)
        except BackendUnusable as exc:  # the mechanism, not the request: try the next
            if len(candidates(mode, forced)) == 1:
                raise
            reasons[name] = str(exc)
            continue
        why = "; ".join(f"{k} unusable: {v}" for k, v in reasons.items()) or f"first choice ({mode})"
        return Port(spec.text, name, handle, dict(details, why=why), closer)
    raise BackendUnavailable(spec.text, reasons)
