"""The one interface every backend implements.

A backend serves one kind of port: netmap pipes and VALE ports (the engine
in shared memory, ``engine.py``), NIC ports over AF_XDP, AF_PACKET or the
real netmap module.  ``nmcompat.open()`` knows backends only through this
class and the registry in ``nmcompat.backends``, as httpcore knows its
network backends only through ``NetworkBackend``:

- ``probe()`` says whether the backend can work here (cheap; no side effect
  is kept);
- ``open(spec, **options)`` checks every option (``validate``), registers
  the port in the engine and returns an ``Opened``: the engine's
  ``struct nmc_port *``, what the backend adds to ``PortInfo``, and a closer
  run after the engine port is closed;
- ``takes`` names the options it uses, ``conf_takes`` the ``@conf:`` keys.
  Any other option must keep its default value: a value given to a backend
  that would not use it is refused (``OptionError`` naming it), never
  silently dropped.
"""
from __future__ import annotations

import abc
import os
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, FrozenSet, Optional

from nmcompat.errors import OptionError


@dataclass(frozen=True)
class Probe:
    ok: bool
    reason: str


@dataclass(frozen=True)
class Opened:
    """What a backend's open() returns."""
    handle: Any                                     # struct nmc_port * (cffi)
    details: Dict[str, Any] = field(default_factory=dict)   # extra PortInfo fields
    closer: Optional[Callable[[], None]] = None     # after nmc_port_close()


def _u32(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 32


@dataclass(frozen=True)
class Option:
    default: Any
    allowed: str                    # the values it takes, as the error message says
    ok: Callable[[Any], bool]
    used_by: str                    # which ports use it, for "not used by" messages


_ALL = "every port"
_NIC = "NIC ports on AF_XDP"
_NIC_ENGINE = "NIC ports on AF_XDP or AF_PACKET"
OPTIONS: Dict[str, Option] = {
    "rundir": Option(None, "a directory path", lambda v: v is None or isinstance(v, (str, os.PathLike)),
                     _ALL),
    "extra_bufs": Option(0, "an integer in [0, 2**32)", _u32, _ALL),
    "buf_num": Option(0, "0 (the default) or an integer in [64, 2**24]",
                      lambda v: _u32(v) and (v == 0 or 64 <= v <= 1 << 24), "ports that create a region"),
    "buf_size": Option(0, "0 (the default) or a multiple of 64 in [64, 65536]",
                       lambda v: _u32(v) and v % 64 == 0 and v <= 65536,
                       "pipe and VALE ports that create a region"),
    "spin_us": Option(None, "None (the default) or microseconds in [0, 2**31)",
                      lambda v: v is None or (_u32(v) and v < 1 << 31), _ALL),
    "no_timestamp": Option(False, "True or False", lambda v: isinstance(v, bool), _ALL),
    "xdp_mode": Option("auto", "'auto', 'drv' or 'skb'", lambda v: v in ("auto", "drv", "skb"), _NIC),
    "zerocopy": Option(None, "None, True or False", lambda v: v is None or isinstance(v, bool), _NIC),
    "multibuffer": Option(True, "True or False", lambda v: isinstance(v, bool), _NIC),
    "stack_tx": Option(None, "None ($NMCOMPAT_STACK_TX), True or False",
                       lambda v: v is None or isinstance(v, bool), _NIC_ENGINE),
}
CONF_KEYS = ("tx_rings", "rx_rings", "tx_slots", "rx_slots", "host_tx_rings", "host_rx_rings")
COMMON: FrozenSet[str] = frozenset(("rundir", "extra_bufs", "buf_num", "spin_us", "no_timestamp"))


class Backend(abc.ABC):
    """What serves one kind of port.  Subclasses set name/takes/conf_takes
    and implement register(); the instance is the registry's entry."""

    name: ClassVar[str]
    port_class: ClassVar[Any] = None        # the Port subclass of its ports (None: Port)
    takes: ClassVar[FrozenSet[str]] = COMMON
    conf_takes: ClassVar[FrozenSet[str]] = frozenset(("tx_rings", "rx_rings", "tx_slots", "rx_slots"))

    def probe(self) -> Probe:
        return Probe(True, f"{self.name} ports need only the runtime directory")

    def open(self, spec, **options) -> Opened:
        """Open the port named by spec (a nmcompat.PortSpec) with options
        (see OPTIONS; conf= holds the ring and slot counts)."""
        self.validate(spec, options)
        return self.register(spec, options)

    @abc.abstractmethod
    def register(self, spec, options: dict) -> Opened:
        """Open the port; options are valid for this backend."""

    def validate(self, spec, options: dict) -> None:
        """Refuse an unknown option, a value out of its range, and a
        non-default value of an option this backend does not use."""
        for key, value in options.items():
            if key == "conf":
                self._validate_conf(spec, value or {})
                continue
            opt = OPTIONS.get(key)
            if opt is None:
                raise OptionError(spec.text, key, "unknown option")
            if not opt.ok(value):
                raise OptionError(spec.text, key, f"takes {opt.allowed}, not {value!r}")
            if key not in self.takes and value is not opt.default and value != opt.default:
                raise OptionError(spec.text, key, f"not used by {self.name} ports "
                                  f"(it applies to {opt.used_by})", unused=True)

    def _validate_conf(self, spec, conf: dict) -> None:
        for key, value in conf.items():
            if key not in CONF_KEYS:
                raise OptionError(spec.text, key, "unknown ring or slot count")
            if not _u32(value):
                raise OptionError(spec.text, key, f"takes an integer in [0, 2**32), not {value!r}")
            if key not in self.conf_takes and value:
                raise OptionError(spec.text, key, f"{self.name} ports have no such setting "
                                  f"({self.conf_why})", unused=True)

    conf_why: ClassVar[str] = "they have no host rings"
