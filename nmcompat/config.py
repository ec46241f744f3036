"""Configuration: nmcompat's equivalents of netmap's module parameters.

netmap is tuned through /sys/module/netmap/parameters; nmcompat through
environment variables (read when a port or switch is created) or the
matching ``nmcompat.open()`` keyword.  This is the one list of them.  A
variable that is set but not a number in its range fails what reads it
(the engine: EINVAL where it reads it; the Python layer: an error naming
it, at any open that may read it): none is ever replaced by its default in
silence.  Numbers are decimal, 0x hex or 0 octal, as C's strtoul reads
them.

| netmap parameter   | environment              | open() keyword   | default          | applies to |
|--------------------|--------------------------|------------------|------------------|------------|
| admode             | NMCOMPAT_ADMODE          | admode=          | 0 (best)         | 0 best: a real netmap module (/dev/netmap) for every name, else pipes and VALE on the engine and NICs on AF_XDP drv, AF_XDP skb, AF_PACKET; 1 native only, for every name (pipes and VALE ports are then the kernel's; an error without /dev/netmap); 2 emulated (AF_PACKET) only, NIC ports |
| buf_num            | NMCOMPAT_BUF_NUM         | buf_num=         | 163840 (grown to fit; NIC regions 65536) | buffers of a region this open creates (0: sized for its ports, else 64..16777216; reserved; claimed on the tmpfs as ports use them; an explicit value must fit the tmpfs free space) |
| buf_size           | NMCOMPAT_BUF_SIZE        | buf_size=        | 2048 (VALE ports 2112) | buffer size of a region this open creates (64..65536, multiple of 64); a VALE port's default is 33 cache lines (docs/DESIGN.md, "VALE buffers") |
| (ring slots)       | NMCOMPAT_SLOTS           | slots=, tx_slots=, rx_slots= | 1024 | slots per ring of a port this open creates |
| generic_ringsize   | NMCOMPAT_GENERIC_RINGSIZE| (slots=)         | 1024             | slots per ring of emulated (AF_PACKET) ports |
| bridge_batch       | NMCOMPAT_BRIDGE_BATCH    | -                | 1024             | VALE: packets per forwarding batch (1..8192), fixed when the switch is created |
| -                  | NMCOMPAT_VALE_STREAM_MIN | -                | 256              | VALE: frames (fragments) of at least this many bytes are copied into the VALE ports this process opens (binding RX rings) with streaming (non-temporal) stores: faster, unless this process reads every byte of large frames (docs/DESIGN.md, "Streaming copies"); 0 never, else 64..65536 |
| no_timestamp       | NMCOMPAT_NO_TIMESTAMP    | no_timestamp=    | 0                | 1: rxsync does not set ring->ts (unless NR_TIMESTAMP is in ring->flags) |
| -                  | NMCOMPAT_STACK_TX        | stack_tx=        | 0                | NIC ports binding NIC TX rings and no host rings: 0 the host stack's frames for the interface are dropped, as netmap does (they go to a host RX ring nobody reads); 1 they still leave the NIC |
| -                  | NMCOMPAT_SPIN_US         | spin_us=         | 20               | poll(): busy-wait before sleeping, in µs (0..2147483647; 0 on busy shared CPUs) |
| -                  | NMCOMPAT_RUNDIR          | rundir=          | /dev/shm/nmcompat-<uid> | where regions, switches and sockets live (tmpfs) |
| -                  | NMCOMPAT_BACKEND         | backend=         | (by admode)      | force one backend: native (every name, through /dev/netmap), afxdp, afpacket (NIC ports); beats admode |
| -                  | NMCOMPAT_XDP_PROG        | -                | the shipped object | replacement XDP program (needs an XSKMAP "xsks") |
| -                  | NMCOMPAT_EXEC_SOCKET     | -                | set by `nmcompat exec` | the control plane the /dev/netmap emulation asks for NIC ports (the program's NMCOMPAT_ADMODE, _BACKEND, _SLOTS, _GENERIC_RINGSIZE, _XDP_PROG and _STACK_TX apply) |
"""
from __future__ import annotations

import os
import re
from typing import Optional

ADMODES = {"0": "best", "1": "native", "2": "emulated",
           "best": "best", "native": "native", "emulated": "emulated"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value, 0) if value else default
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


def admode_problem(value: object) -> str:
    """What is wrong with an admode value ("must be ..., not 'q'"), or ""."""
    raw = str(value).strip()
    return "" if raw in ADMODES else f"must be 0/best, 1/native or 2/emulated, not {raw!r}"


def admode(value: Optional[object] = None) -> str:
    """'best', 'native' or 'emulated', from the argument or NMCOMPAT_ADMODE."""
    given = value is not None
    raw = str(value if given else os.environ.get("NMCOMPAT_ADMODE", "0")).strip()
    problem = admode_problem(raw)
    if problem:
        raise ValueError(f"{'admode' if given else 'NMCOMPAT_ADMODE'} {problem}")
    return ADMODES[raw]


def default_slots(emulated: bool = False) -> int:
    if emulated:
        return _int("NMCOMPAT_GENERIC_RINGSIZE", _int("NMCOMPAT_SLOTS", 1024))
    return _int("NMCOMPAT_SLOTS", 0)        # 0: the engine's default (1024)


def no_timestamp(value: Optional[bool] = None) -> bool:
    return bool(value) if value is not None else bool(_int("NMCOMPAT_NO_TIMESTAMP", 0))


def stack_tx(value: Optional[bool] = None) -> bool:
    """Whether the host stack's frames still leave a NIC whose TX rings a
    port binds without host rings: the argument, else NMCOMPAT_STACK_TX."""
    if value is not None:
        return bool(value)
    raw = os.environ.get("NMCOMPAT_STACK_TX", "").strip()
    if raw not in ("", "0", "1"):
        raise ValueError(f"NMCOMPAT_STACK_TX must be 0 or 1, not {raw!r}")
    return raw == "1"


def _c_number(raw: str) -> Optional[int]:
    """raw as the engine's strtoul(.., 0) takes a whole string (decimal,
    0x hex, 0 octal), or None."""
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", raw):
        return int(raw, 16)
    if re.fullmatch(r"0[0-7]*", raw):
        return int(raw, 8)
    if re.fullmatch(r"[1-9][0-9]*", raw):
        return int(raw)
    return None


# The engine's variables: (default, low, high, 0 allowed, must divide by).
# The engine checks the same where it reads each one (EINVAL).
_ENGINE_VARS = {
    "NMCOMPAT_SPIN_US": (20, 0, 2**31 - 1, True, 1),
    "NMCOMPAT_BUF_NUM": (0, 64, 1 << 24, True, 1),
    "NMCOMPAT_BUF_SIZE": (2048, 64, 65536, False, 64),
}
_VALE_VARS = {
    "NMCOMPAT_BRIDGE_BATCH": (1024, 1, 8192, False, 1),
    "NMCOMPAT_VALE_STREAM_MIN": (256, 64, 65536, True, 1),
}


def _read(name: str):
    """($name as the engine reads it, None) or (None, what is wrong with it)."""
    default, low, high, zero_ok, step = {**_ENGINE_VARS, **_VALE_VARS}[name]
    raw = os.environ.get(name, "")
    if raw == "":
        return default, None
    value = _c_number(raw)
    if value is None or not ((value == 0 and zero_ok) or (low <= value <= high and value % step == 0)):
        what = f"a number in {low}..{high}" + (f", a multiple of {step}" if step > 1 else "")
        return None, f"takes {'0 or ' if zero_ok and low > 0 else ''}{what}, not {raw!r}"
    return value, None


def env_problem(*names: str) -> Optional[str]:
    """"bad environment variable X: <why>" for the first of names that is
    set but not a number in its range, or None."""
    for name in names:
        problem = _read(name)[1]
        if problem:
            return f"bad environment variable {name}: {problem}"
    return None


def _checked(name: str, port: str) -> int:
    """$name as the engine reads it, or OptionError naming it."""
    value, problem = _read(name)
    if problem:
        from nmcompat.errors import OptionError
        raise OptionError(port, name.lower().replace("nmcompat_", ""), problem, variable=name)
    return value


def check_environment(port: str, *names: str) -> None:
    """The engine variables an open of `port` may read, checked as the
    engine checks them where it reads them: OptionError naming the first
    that is set but not a number in its range."""
    for name in names:
        _checked(name, port)


def vale_stream_min(port: str = "a VALE port") -> int:
    """NMCOMPAT_VALE_STREAM_MIN as the engine reads it when a VALE port is
    opened (senders stream frames of this length and more into that port):
    256 when unset; OptionError naming the variable for anything but 0 or a
    number in 64..65536."""
    return _checked("NMCOMPAT_VALE_STREAM_MIN", port)


DEFAULT_BUF_SIZE = _ENGINE_VARS["NMCOMPAT_BUF_SIZE"][0]   # the engine's NMC_DEF_BUF_SIZE
VALE_BUF_SIZE = 2112               # the engine's NMC_VALE_BUF_SIZE


def vale_buf_size(port: str = "a VALE port") -> int:
    """The buffer size of a VALE port an open creates without buf_size=:
    $NMCOMPAT_BUF_SIZE if set, else 2112; OptionError naming the variable
    if it is set but not a size the engine takes."""
    if os.environ.get("NMCOMPAT_BUF_SIZE", "") == "":
        return VALE_BUF_SIZE
    return _checked("NMCOMPAT_BUF_SIZE", port)


def rundir() -> str:
    """The runtime directory: $NMCOMPAT_RUNDIR, else /dev/shm/nmcompat-<uid>."""
    return os.environ.get("NMCOMPAT_RUNDIR") or f"/dev/shm/nmcompat-{os.geteuid()}"


def _report(name: str):
    value, problem = _read(name)
    return f"invalid ({problem})" if problem else value


def settings() -> dict:
    """The effective values, for reports and benchmarks."""
    return {
        "admode": admode(), "buf_num": _report("NMCOMPAT_BUF_NUM") or 163840,
        "buf_size": _report("NMCOMPAT_BUF_SIZE"),
        "vale_buf_size": _report("NMCOMPAT_BUF_SIZE") if os.environ.get("NMCOMPAT_BUF_SIZE")
        else VALE_BUF_SIZE,
        "slots": default_slots() or 1024,
        "generic_ringsize": default_slots(True), "bridge_batch": _report("NMCOMPAT_BRIDGE_BATCH"),
        "no_timestamp": no_timestamp(), "spin_us": _report("NMCOMPAT_SPIN_US"),
        "stack_tx": stack_tx(), "vale_stream_min": _report("NMCOMPAT_VALE_STREAM_MIN"),
        "rundir": rundir(),
        "backend": os.environ.get("NMCOMPAT_BACKEND", ""),
    }
