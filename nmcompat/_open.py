"""nmcompat.open(): resolve a port name to a backend and open it."""
from __future__ import annotations

import operator

from nmcompat import _portspec, config
from nmcompat._port import Port
from nmcompat.backends._base import CONF_KEYS
from nmcompat.errors import OptionError

_CONF_ALIASES = {"rings": ("tx_rings", "rx_rings"), "slots": ("tx_slots", "rx_slots")}


def _conf(spec, overrides: dict) -> dict:
    conf = dict(spec.conf)
    for key in ("tx_slots", "rx_slots"):
        if config.default_slots() and key not in conf:
            conf[key] = config.default_slots()
    for key, value in overrides.items():
        for k in _CONF_ALIASES.get(key, (key,)):
            if k not in CONF_KEYS:
                raise TypeError(f"open() got an unexpected keyword argument '{key}'")
            conf[k] = _count(spec, key, value)
    return conf


def _count(spec, key: str, value) -> int:
    """A ring or slot count given to open(): an integer in [0, 2**32)."""
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if number is None or isinstance(value, bool) or not 0 <= number < 1 << 32:
        raise OptionError(spec.text, key, "takes an integer in [0, 2**32) (0: the default; "
                          f"above the maximum it is lowered, as netmap does), not {value!r}")
    return number


def open(portspec: str, *, grammar: str = "nmport", rundir=None, extra_bufs: int = 0,  # noqa: A001
         buf_num: int = 0, buf_size: int = 0, spin_us=None, no_timestamp: bool = False,
         backend=None, admode=None, xdp_mode: str = "auto", zerocopy=None,
         multibuffer: bool = True, stack_tx=None, **conf) -> Port:
    """Open a netmap port by name and return a Port (a context manager).

    portspec uses libnetmap's grammar (``grammar="nmport"``, the default) or
    nm_open's (``grammar="legacy"``); see nmcompat._portspec.  Ring and slot
    counts (``tx_rings``, ``rx_rings``, ``rings``, ``tx_slots``, ``rx_slots``,
    ``slots``) override ``@conf:`` and apply only when the open creates the
    port.  ``extra_bufs`` buffers are granted exactly (or ENOMEM; ENOSPC when
    the runtime tmpfs cannot hold them) and linked from ``port.bufs_head``;
    put every one back on that list before close.
    ``buf_num``/``buf_size`` size a region this open creates (defaults:
    $NMCOMPAT_BUF_NUM or 163840, $NMCOMPAT_BUF_SIZE or 2048, 2112 for a VALE
    port).  ``rundir``
    (default $NMCOMPAT_RUNDIR or /dev/shm/nmcompat-<uid>) must be on tmpfs.
    ``spin_us`` is how long poll() busy-waits before sleeping (default 20).
    ``admode=1`` or ``backend="native"`` (or $NMCOMPAT_ADMODE,
    $NMCOMPAT_BACKEND) open every name through /dev/netmap, the netmap
    module's memory (an error without one); a real netmap module is also
    the default.  Otherwise NIC names (``netmap:eth0``, ``netmap:eth0-2``) go
    to the first working backend in netmap's ``admode`` order (0 best, 2
    emulated; ``backend=`` forces one; see nmcompat.config for every
    setting): with AF_XDP,
    ``xdp_mode`` is "auto" (native, else generic), "drv" or "skb";
    ``zerocopy`` None (if possible), True or False; ``multibuffer`` asks for
    frames larger than a buffer as NS_MOREFRAG chains.  While a NIC port
    binds NIC TX rings and no host rings, the host stack's frames for the
    interface are dropped, as netmap does; ``stack_tx=True`` (or
    $NMCOMPAT_STACK_TX=1) lets them leave the NIC instead.

    ``@share=PORT`` places a new pipe or VALE port in the region of PORT
    (which must be open), so buffer indexes are valid in both;
    ``@extmem:file=F[,ring-num=..,buf-num=..,...]`` builds the region in
    the user's file F, on the runtime directory's filesystem (docs/DESIGN.md
    section 4).

    Every option is checked by the backend that serves the name: a bad
    value, or a value other than the default for an option that backend
    does not use (``xdp_mode`` on a pipe), raises OptionError naming it.

    Every error is an NmcompatError: PortSpecError (EINVAL, also a
    ValueError) for a bad name, OptionError (EINVAL, also a ValueError) for a
    bad option, EOPNOTSUPP naming an option the name grammar accepts but
    nmcompat does not implement yet (@share and @extmem on NIC ports),
    EINVAL for a monitor (/r, /t, /rt, /z) of a port nobody has open,
    BackendUnavailable listing each backend's reason when nothing can serve
    a NIC name, and for everything else the errno's OSError subclass
    (PermissionError, FileNotFoundError...) saying "couldn't open <name>:
    <reason>".
    """
    if grammar not in ("nmport", "legacy"):
        raise OptionError(str(portspec), "grammar", f"takes 'nmport' or 'legacy', not {grammar!r}")
    spec = _portspec.parse(portspec, grammar=grammar)
    from nmcompat.backends import open_port
    return open_port(spec, backend=backend, admode=admode, rundir=rundir, extra_bufs=extra_bufs,
                     buf_num=buf_num, buf_size=buf_size, spin_us=spin_us,
                     no_timestamp=config.no_timestamp() if no_timestamp is False else no_timestamp,
                     xdp_mode=xdp_mode, zerocopy=zerocopy, multibuffer=multibuffer, stack_tx=stack_tx,
                     conf=_conf(spec, conf))
