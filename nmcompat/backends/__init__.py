"""Backend registry: every backend behind one interface (``_base.Backend``),
imported lazily.

``backend="native"`` or admode 1 (keyword, or $NMCOMPAT_BACKEND /
$NMCOMPAT_ADMODE) sends every name to the netmap module through
/dev/netmap, or fails saying why (never the engine instead).  Otherwise,
where /dev/netmap is a real netmap module, every name goes there too.
Without one, pipes (``X{id`` / ``X}id``) go to ``pipe`` whatever X is; VALE
names (``valeX:Y``, and persistent ports made by vale-ctl -n) to ``vale``;
other names are NIC ports, served by the first NIC backend that works in
netmap's ``admode`` order, or the one ``backend=`` / $NMCOMPAT_BACKEND
forces.  When none can, the error lists every backend's reason.
"""
from __future__ import annotations

import errno
import importlib
import os
from typing import Dict, Tuple

from nmcompat import config
from nmcompat._portspec import NR_MONITOR_RX, NR_MONITOR_TX, NR_ZCOPY_MON
from nmcompat.backends._base import Backend, Opened, Probe
from nmcompat.errors import BackendUnavailable, BackendUnusable, OptionError, os_error

# name -> (module, class); the order of the NIC ones is admode "best"
REGISTRY: Dict[str, Tuple[str, str]] = {
    "pipe": ("nmcompat.backends.engine", "PipeBackend"),
    "vale": ("nmcompat.backends.engine", "ValeBackend"),
    "native": ("nmcompat.backends.native", "NativeBackend"),
    "afxdp": ("nmcompat.backends.afxdp", "AfxdpBackend"),
    "afpacket": ("nmcompat.backends.afpacket", "AfpacketBackend"),
}
NIC_BACKENDS: Tuple[str, ...] = ("native", "afxdp", "afpacket")
_ADMODE_ORDER = {"best": NIC_BACKENDS, "native": ("native",), "emulated": ("afpacket",)}
_instances: Dict[str, Backend] = {}

__all__ = ["Backend", "Opened", "Probe", "REGISTRY", "NIC_BACKENDS", "get", "probe_all",
           "candidates", "open_port"]


def get(name: str) -> Backend:
    """The registered backend called name."""
    backend = _instances.get(name)
    if backend is None:
        module, cls = REGISTRY[name]
        backend = _instances[name] = getattr(importlib.import_module(module), cls)()
    return backend


def probe_all() -> Dict[str, Probe]:
    """Every NIC backend's probe result, in selection order."""
    return {name: get(name).probe() for name in NIC_BACKENDS}


def candidates(mode: str, forced: str = "") -> Tuple[str, ...]:
    """NIC backend names to try, in order, for netmap's admode (or one forced)."""
    if forced:
        if forced not in NIC_BACKENDS:
            raise ValueError(f"unknown backend {forced!r} (known: {', '.join(NIC_BACKENDS)})")
        return (forced,)
    return _ADMODE_ORDER[mode]


def _engine_kind(spec, rundir) -> str:
    """'pipe' or 'vale' when the engine alone serves spec, else ''."""
    if spec.pipe is not None:
        return "pipe"
    if spec.vale_switch is not None:
        return "vale"
    from nmcompat import vale
    if spec.subsys == "netmap" and vale.is_persistent(spec.name, rundir=rundir):
        return "vale"
    return ""


# register flags the grammar accepts that no backend implements yet
_UNIMPLEMENTED_FLAGS = ((NR_MONITOR_RX, "/r", "a monitor of the port's received packets"),
                        (NR_MONITOR_TX, "/t", "a monitor of the port's transmitted packets"),
                        (NR_ZCOPY_MON, "/z", "a zero-copy monitor"))


def refuse_unimplemented(spec) -> None:
    """EOPNOTSUPP naming the first flag or option of spec that is parsed
    but not implemented: monitors (/r, /t, /z)."""
    for bit, flag, what in _UNIMPLEMENTED_FLAGS:
        if spec.flags & bit:
            raise os_error(errno.EOPNOTSUPP, "open", spec.text,
                           f"flag '{flag}' ({what}) is not supported")


def open_port(spec, *, backend=None, admode=None, **options):
    """Open spec on the backend that serves it and return a Port.
    info.backend says which backend, info.why why."""
    refuse_unimplemented(spec)
    why = _native_wanted(spec, backend, admode)
    if why:
        return _open_native(spec, options, why)
    kind = _engine_kind(spec, options.get("rundir"))
    if kind:
        _check_nic_choice(spec, backend, admode)
        if backend not in (None, kind):
            raise OptionError(spec.text, "backend", f"this name is served by {kind!r} or "
                              f"'native', not {backend!r} (the others are NIC backends)")
        if admode is not None and config.admode(admode) == "emulated":
            raise OptionError(spec.text, "admode", "emulated (2) applies to NIC ports only")
        if backend is None and get("native").probe().ok:
            return _open_native(spec, options, "first choice (best): /dev/netmap is the "
                                "netmap kernel module")
        opened = get(kind).open(spec, **options)
        return _port(kind, spec, opened, {})
    return _open_nic(spec, backend, admode, options)


def _port(name: str, spec, opened: Opened, details: dict):
    from nmcompat._port import Port
    cls = get(name).port_class or Port
    return cls(spec.text, name, opened.handle, dict(opened.details, **details), opened.closer)


def _native_wanted(spec, backend, admode) -> str:
    """Why spec must go to the native backend ("" when it need not): forced
    by backend= / $NMCOMPAT_BACKEND, or admode 1 with no other backend
    forced (forcing one beats admode)."""
    mode = _admode(spec, admode)
    forced = backend or os.environ.get("NMCOMPAT_BACKEND", "")
    if forced:
        return f"forced (backend={forced!r})" if forced == "native" else ""
    return "admode 1 (native)" if mode == "native" else ""


def _open_native(spec, options: dict, why: str):
    """spec on the netmap module (or the emulation of nmcompat exec); its
    absence is an error naming what is missing, never another backend."""
    native = get("native")
    result = native.probe(forced=True)
    if not result.ok:
        raise BackendUnavailable(spec.text, {"native": result.reason})
    return _port("native", spec, native.open(spec, **options), {"why": why})


def _admode(spec, admode) -> str:
    """config.admode(admode), or an OptionError naming admode= or, for a
    value from the environment, $NMCOMPAT_ADMODE."""
    raw = admode if admode is not None else os.environ.get("NMCOMPAT_ADMODE", "0")
    problem = config.admode_problem(raw)
    if problem:
        raise OptionError(spec.text, "admode", problem,
                          variable=None if admode is not None else "NMCOMPAT_ADMODE")
    return config.admode(admode)


def _backend_takes(value) -> str:
    return f"takes {', '.join(map(repr, NIC_BACKENDS))} or None, not {value!r}"


def _check_nic_choice(spec, backend, admode) -> None:
    """OptionError naming backend= or admode= when its value is not one
    they take (checked whatever the port, before asking if it applies)."""
    if backend is not None and backend not in NIC_BACKENDS and backend not in REGISTRY:
        raise OptionError(spec.text, "backend", _backend_takes(backend))
    if admode is not None:
        _admode(spec, admode)


def _nic_choice(spec, forced, admode) -> Tuple[str, Tuple[str, ...]]:
    """(admode, backends to try) from the arguments, else $NMCOMPAT_ADMODE
    and $NMCOMPAT_BACKEND (an OptionError names the variable)."""
    _check_nic_choice(spec, forced, admode)
    if forced and forced not in NIC_BACKENDS:
        raise OptionError(spec.text, "backend", f"this name is a NIC's, served by "
                          f"{', '.join(map(repr, NIC_BACKENDS))}, not {forced!r}")
    mode = _admode(spec, admode)
    env_backend = os.environ.get("NMCOMPAT_BACKEND", "")
    if not forced and env_backend and env_backend not in NIC_BACKENDS:
        raise OptionError(spec.text, "backend", _backend_takes(env_backend).replace(" or None", ""),
                          variable="NMCOMPAT_BACKEND")
    return mode, candidates(mode, forced or env_backend)


def _open_nic(spec, forced, admode, options):
    """The first NIC backend that works, in admode order; when none does,
    BackendUnavailable lists every reason."""
    mode, names = _nic_choice(spec, forced, admode)
    reasons: Dict[str, str] = {}
    for name in names:
        backend = get(name)
        result = backend.probe()
        if not result.ok:
            reasons[name] = result.reason
            continue
        try:
            opened = backend.open(spec, **options)
        except (BackendUnusable, OptionError) as exc:   # this backend, not the request
            if len(names) == 1 or (isinstance(exc, OptionError) and not exc.unused):
                raise
            reasons[name] = exc.strerror
            continue
        why = "; ".join(f"{k} unusable: {v}" for k, v in reasons.items()) or f"first choice ({mode})"
        return _port(name, spec, opened, {"why": why})
    raise BackendUnavailable(spec.text, reasons)
