"""Parsers for the two netmap port-name grammars.

``parse_nmport`` follows libnetmap's ``nmport_parse`` (the current grammar),
``parse_legacy`` follows ``nm_parse``/``nm_open`` from ``netmap_user.h``.
Both are pure: they never touch files, devices or the network.  They return
a :class:`PortSpec` holding the request the kernel would receive, or raise
:class:`~nmcompat.errors.PortSpecError`.

libnetmap grammar (``grammar="nmport"``)::

    portspec  ::= prefix ":" vpname [ ringsel ] { suffix } [ options ]
    prefix    ::= "netmap"              ; nothing between "netmap" and ":"
                | "vale" ident0         ; bridge id, may be empty ("vale:x")
    vpname    ::= portname [ ( "{" | "}" ) ident1 ]
    portname  ::= { any char except - * ^ / @ { } }
    ringsel   ::= "^"                   ; NR_REG_SW
                | "^" num               ; NR_REG_ONE_SW, ring num
                | "*"                   ; NR_REG_NIC_SW
                | "-" num               ; NR_REG_ONE_NIC, ring num
    suffix    ::= "/" { flag } | "@" memid
    flag      ::= "x" | "z" | "t" | "r" | "R" | "T"
    memid     ::= num                   ; 1..65535, repeats must agree
    options   ::= "@" option { "@" option }   ; first char is not a digit
    option    ::= optname "=" text      ; assigns the option's default key
                | optname ":" [ keyval { "," keyval } ]
    keyval    ::= key "=" [ value ]     ; "-" in key means "_"; empty = unset
    optname   ::= "share" | "conf" | "extmem" | "offset"
    text      ::= { any char except "@" }
    value     ::= { any char except "@" "," }
    num       ::= digit { digit }       ; ring ids 0..4094
    ident0    ::= { letter | digit | "_" }
    ident1    ::= ( letter | digit | "_" ) ident0

    share   keys: port (default, mandatory)            -> PortSpec.share
    conf    keys: rings host_rings slots tx_rings rx_rings host_tx_rings
                  host_rx_rings tx_slots rx_slots      -> PortSpec.conf
    extmem  keys: file (default, mandatory) if_num if_size ring_num
                  ring_size buf_num buf_size           -> PortSpec.extmem
    offset  keys: initial (default, mandatory) bits    ; disabled: EOPNOTSUPP

Notes on the libnetmap grammar:

* ``nr_name`` is ``vpname`` alone for ``netmap:`` and the whole
  ``valeX:vpname`` for VALE; it must be non-empty and shorter than 64 bytes.
  ``portname`` is not validated (``netmap:eth0.100``, ``netmap:vale0:0``).
* ``{``/``}`` belong to the name: ``netmap:pipe{in-7`` is pipe ``pipe{in``
  bound to ring pair 7.  The first brace starts the pipe id.
* In both grammars two flag groups must be separated by a mem id
  (``/x/R`` is an error); a ``/`` at the end is an error, ``/@2`` is not.
* ``@`` followed by a digit is a mem id, anything else starts the options,
  after which no mem id may follow.  ``@share`` and ``@extmem`` are only
  recorded here (``open()`` refuses them, and the monitor flags ``r``,
  ``t``, ``z``, with EOPNOTSUPP until they are implemented); ``@conf`` expands rings/host_rings/slots into the
  per-direction keys, the specific keys overriding the generic ones (a
  later ``@conf`` overrides an earlier one).  Numeric option values must
  be plain decimal numbers.

Legacy grammar (``grammar="legacy"``)::

    legacy    ::= "netmap:" ifname [ lringsel ] { lsuffix }
                | "vale" ident0 ":" ident0 [ lringsel ] { lsuffix }
    ifname    ::= { any char except - * ^ { } / @ }
    lringsel  ::= "^" | "*" | "-" lnum
                | "{" lnum              ; pipe master, numeric id only
                | "}" lnum              ; pipe slave, numeric id only
    lsuffix   ::= "/" { flag } | "@" lnum    ; mem id > 0, at most once
    lnum      ::= what C strtol() reads: [ spaces ] [ "+" | "-" ] { digit },
                  no digits reads as 0 (so "-x" is ring 0, then 'x' is bad)

Differences between the two grammars:

* A name without a known prefix is "not recognised" for ``nm_open``
  (``errno`` 0), but an EINVAL syntax error for libnetmap.  Legacy needs
  the exact ``netmap:`` prefix and validates VALE port names
  (``[A-Za-z0-9_]*``); libnetmap validates neither port name.
* Names are limited to 15 bytes (``IFNAMSIZ``) in legacy, 63 in libnetmap;
  an empty name passes the legacy parser and fails libnetmap's.
* Legacy ``{N``/``}N`` are modes; like the kernel's legacy path, the result
  carries the name ``ifname{N`` with NR_REG_ALL_NIC and ring id 0.
* ``^N`` (NR_REG_ONE_SW) and options exist only in libnetmap.  Legacy
  accepts a mem id once; libnetmap accepts repeats of the same value.
* A trailing ``@`` is "unexpected end" in legacy, "invalid empty mem_id"
  in libnetmap.

Deliberate deviations from the C parsers: NUL characters are rejected, mem
ids above 65535 and option numbers that are not plain decimal numbers in
range are rejected instead of truncated, an empty pipe id is rejected even
when a suffix follows it, a second ``@extmem`` or a second, different
``@share`` is an error, and a pipe bound with a mode other than ALL_NIC or
ONE_NIC is rejected here rather than by the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from ._portspec_options import (DIGITS, FrozenMap, OptionValues,
                                legacy_header, nmport_header, parse_options,
                                read_decimal, strtol)
from .errors import PortSpecError

__all__ = [
    "NR_REG_DEFAULT", "NR_REG_ALL_NIC", "NR_REG_SW", "NR_REG_NIC_SW",
    "NR_REG_ONE_NIC", "NR_REG_PIPE_MASTER", "NR_REG_PIPE_SLAVE",
    "NR_REG_NULL", "NR_REG_ONE_SW",
    "NR_MONITOR_TX", "NR_MONITOR_RX", "NR_ZCOPY_MON", "NR_EXCLUSIVE",
    "NR_RX_RINGS_ONLY", "NR_TX_RINGS_ONLY",
    "PipeRef", "PortSpec", "PortSpecError",
    "parse", "parse_nmport", "parse_legacy",
]

NR_REG_DEFAULT = 0
NR_REG_ALL_NIC = 1
NR_REG_SW = 2
NR_REG_NIC_SW = 3
NR_REG_ONE_NIC = 4
NR_REG_PIPE_MASTER = 5
NR_REG_PIPE_SLAVE = 6
NR_REG_NULL = 7
NR_REG_ONE_SW = 8

NR_MONITOR_TX = 0x100
NR_MONITOR_RX = 0x200
NR_ZCOPY_MON = 0x400
NR_EXCLUSIVE = 0x800
NR_RX_RINGS_ONLY = 0x2000
NR_TX_RINGS_ONLY = 0x4000

_FLAG_BITS = {"x": NR_EXCLUSIVE, "z": NR_ZCOPY_MON, "t": NR_MONITOR_TX,
              "r": NR_MONITOR_RX, "R": NR_RX_RINGS_ONLY, "T": NR_TX_RINGS_ONLY}

_RING_LIMIT = 0x0FFF             # NETMAP_RING_MASK; valid ids are below it
_MEMID_MAX = 0xFFFF              # nr_mem_id is 16 bits wide


@dataclass(frozen=True)
class PipeRef:
    """The pipe a port name refers to."""

    parent: str      # parent port name as the kernel sees it
    pipe_id: str     # text after the brace: "1", "in"
    role: str        # "master" for '{', "slave" for '}'


@dataclass(frozen=True)
class PortSpec:
    """A parsed port name: the register request the kernel would receive."""

    text: str                   # the input
    grammar: str                # "nmport" | "legacy"
    subsys: str                 # "netmap" | "vale" (the prefix used)
    name: str                   # nr_name, pipe suffix included
    mode: int                   # NR_REG_*
    ringid: int
    flags: int                  # NR_* flag bits
    mem_id: int                 # 0 when not given
    conf: Mapping[str, int]     # per-direction @conf keys that were given
    share: Optional[str]        # @share port name, unresolved
    extmem: Optional[Mapping[str, str]]   # @extmem keys, file untouched
    pipe: Optional[PipeRef]     # from the name's last '{' or '}'
    vale_switch: Optional[str]  # "vale0" for "vale0:a"
    vale_port: Optional[str]    # "a" for "vale0:a{1"


# --------------------------------------------------------------------------
# public entry points

def parse(text: str, grammar: str = "nmport") -> PortSpec:
    """Parse ``text`` with the "nmport" (default) or "legacy" grammar."""
    parser = _PARSERS.get(grammar)
    if parser is None:
        raise ValueError(f"unknown port-name grammar {grammar!r}")
    return parser(text)


def parse_nmport(text: str) -> PortSpec:
    """Parse a port name the way libnetmap's ``nmport_parse`` does."""
    _check_input(text)
    subsys, name, end = nmport_header(text)
    scan = _nmport_register(text, end)
    options = parse_options(text, scan.pos)
    _check_pipe_mode(text, name, scan)
    return _make_spec(text, "nmport", subsys, name, scan, options)


def parse_legacy(text: str) -> PortSpec:
    """Parse a port name the way ``nm_open``/``nm_parse`` do."""
    _check_input(text)
    subsys, name, end = legacy_header(text)
    scan = _legacy_register(text, end)
    if scan.mode in (NR_REG_PIPE_MASTER, NR_REG_PIPE_SLAVE):
        brace = "{" if scan.mode == NR_REG_PIPE_MASTER else "}"
        name = f"{name}{brace}{scan.ringid}"
        scan.mode, scan.ringid = NR_REG_ALL_NIC, 0
    return _make_spec(text, "legacy", subsys, name, scan, OptionValues())


# --------------------------------------------------------------------------
# result assembly

def _check_input(text: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"port name must be a str, not {type(text).__name__}")
    nul = text.find("\0")
    if nul >= 0:
        raise PortSpecError(text, "embedded NUL character", nul)


def _make_spec(text: str, grammar: str, subsys: str, name: str,
               scan: _Scan, options: OptionValues) -> PortSpec:
    pipe = _pipe_of(name)
    switch, port = _vale_of(pipe.parent if pipe else name)
    extmem = None if options.extmem is None else FrozenMap(options.extmem)
    return PortSpec(
        text=text, grammar=grammar, subsys=subsys, name=name, mode=scan.mode,
        ringid=scan.ringid, flags=scan.flags, mem_id=scan.mem_id,
        conf=FrozenMap(options.conf), share=options.share, extmem=extmem,
        pipe=pipe, vale_switch=switch, vale_port=port)


def _pipe_of(name: str) -> Optional[PipeRef]:
    """The kernel takes the last '{' or '}' of the name as the pipe mark."""
    cut = max(name.rfind("{"), name.rfind("}"))
    if cut < 0:
        return None
    role = "master" if name[cut] == "{" else "slave"
    return PipeRef(parent=name[:cut], pipe_id=name[cut + 1:], role=role)


def _vale_of(base: str) -> Tuple[Optional[str], Optional[str]]:
    """Split a kernel name that the kernel resolves as a VALE port.

    The kernel compares only the first three characters ("val") and then
    splits at the first ':'.
    """
    colon = base.find(":")
    if not base.startswith("val") or colon < 0:
        return None, None
    return base[:colon], base[colon + 1:]


def _check_pipe_mode(text: str, name: str, scan: _Scan) -> None:
    if _pipe_of(name) and scan.mode not in (NR_REG_ALL_NIC, NR_REG_ONE_NIC):
        raise PortSpecError(
            text, "a pipe accepts only the all-rings or one-ring-pair mode",
            scan.mode_pos)


# --------------------------------------------------------------------------
# register suffix: one state machine for both grammars.  A state is a name
# in _STATES; its handler consumes input and returns the next state name
# (None once the libnetmap option list starts).

class _Scan:
    """Cursor and the register fields collected so far."""

    def __init__(self, text: str, pos: int, legacy: bool) -> None:
        self.text, self.pos, self.legacy = text, pos, legacy
        self.mode, self.mode_pos = NR_REG_ALL_NIC, None
        self.ringid = self.flags = self.mem_id = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        self.pos += 1
        return self.text[self.pos - 1]

    def error(self, reason: str, pos: Optional[int] = None) -> PortSpecError:
        return PortSpecError(self.text, reason,
                             self.pos if pos is None else pos)

    def run(self) -> Optional[str]:
        state: Optional[str] = "start"
        while state is not None and self.pos < len(self.text):
            state = _STATES[state](self)
        return state


def _suffix_start(scan: _Scan, char: str, complaint: str) -> str:
    if char == "/":
        return "flags"
    if char == "@":
        return "memid"
    raise scan.error(f"{complaint}: '{char}'", scan.pos - 1)


def _st_start(scan: _Scan) -> str:
    char = scan.take()
    entry = (_LEGACY_MODES if scan.legacy else _NMPORT_MODES).get(char)
    if entry is None:
        return _suffix_start(scan, char, "unknown modifier")
    scan.mode, scan.mode_pos = entry[0], scan.pos - 1
    return entry[1]


def _st_ring_done(scan: _Scan) -> str:
    return _suffix_start(scan, scan.take(), "unexpected character")


def _st_one_sw(scan: _Scan) -> str:
    if scan.peek() not in DIGITS:
        return "ring_done"
    scan.mode = NR_REG_ONE_SW
    return "number"


def _st_number(scan: _Scan) -> str:
    start = scan.pos
    if scan.legacy:
        number, scan.pos = strtol(scan.text, start)
    elif scan.peek() in DIGITS:
        number, scan.pos = read_decimal(scan.text, start)
    else:
        rest = scan.text[scan.pos:]
        raise scan.error(f"got '{rest}' while expecting a number")
    if not 0 <= number < _RING_LIMIT:
        raise scan.error(f"'{number}' out of range [0, {_RING_LIMIT})", start)
    scan.ringid = number
    return "ring_done"


def _st_flag(scan: _Scan) -> str:
    char = scan.take()
    if char == "@":
        return "memid"
    bit = _FLAG_BITS.get(char)
    if bit is None:
        raise scan.error(f"unrecognized flag: '{char}'", scan.pos - 1)
    scan.flags |= bit
    return "flags_ok"


def _st_memid(scan: _Scan) -> Optional[str]:
    if scan.legacy:
        return _legacy_memid(scan)
    if scan.peek() not in DIGITS:
        scan.pos -= 1                    # the '@' opens the option list
        return None
    start = scan.pos
    number, scan.pos = read_decimal(scan.text, start)
    if not 0 < number <= _MEMID_MAX:
        raise scan.error(f"invalid mem_id: '{number}'", start)
    if scan.mem_id and scan.mem_id != number:
        raise scan.error(f"invalid setting of mem_id to {number} "
                         f"(already set to {scan.mem_id})", start)
    scan.mem_id = number
    return "ring_done"


def _legacy_memid(scan: _Scan) -> str:
    if scan.mem_id:
        raise scan.error("double setting of memid", scan.pos - 1)
    start = scan.pos
    number, scan.pos = strtol(scan.text, start)
    if number <= 0:
        raise scan.error(f"invalid memid {number}, must be >0", start)
    if number > _MEMID_MAX:
        raise scan.error(f"memid {number} out of range [1, {_MEMID_MAX}]",
                         start)
    scan.mem_id = number
    return "ring_done"


_STATES = {"start": _st_start, "ring_done": _st_ring_done,
           "one_sw": _st_one_sw, "number": _st_number, "flags": _st_flag,
           "flags_ok": _st_flag, "memid": _st_memid}
_NMPORT_MODES = {"^": (NR_REG_SW, "one_sw"), "*": (NR_REG_NIC_SW, "ring_done"),
                 "-": (NR_REG_ONE_NIC, "number")}
_LEGACY_MODES = {"^": (NR_REG_SW, "ring_done"),
                 "*": (NR_REG_NIC_SW, "ring_done"),
                 "-": (NR_REG_ONE_NIC, "number"),
                 "{": (NR_REG_PIPE_MASTER, "number"),
                 "}": (NR_REG_PIPE_SLAVE, "number")}


def _nmport_register(text: str, pos: int) -> _Scan:
    scan = _Scan(text, pos, legacy=False)
    state = scan.run()
    if state == "memid":
        raise scan.error("invalid empty mem_id")
    if state in ("number", "flags"):
        raise scan.error("unexpected end of request")
    return scan


def _legacy_register(text: str, pos: int) -> _Scan:
    scan = _Scan(text, pos, legacy=True)
    if scan.run() not in ("start", "ring_done", "flags_ok"):
        raise scan.error("unexpected end of port name")
    return scan


_PARSERS = {"nmport": parse_nmport, "legacy": parse_legacy}
