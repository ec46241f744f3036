"""The two netmap port-name grammars, parsed by the engine's C parser.

``parse_nmport`` follows libnetmap's ``nmport_parse`` (the current grammar),
``parse_legacy`` follows ``nm_parse``/``nm_open`` from ``netmap_user.h``.
Both are pure: they never touch files, devices or the network.  They return
a :class:`PortSpec` holding the request the kernel would receive, or raise
:class:`~nmcompat.errors.PortSpecError`.  The parsing is done by
``nmc_portspec_parse`` (csrc/portspec/, declared in
csrc/include/nmcompat_portspec.h), the one implementation of both grammars:
this module turns its result into Python objects, and its byte positions
into positions in the ``str``.

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
  recorded here (``open()`` refuses them with EOPNOTSUPP until they are
  implemented); ``@conf`` expands rings/host_rings/slots into the
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
range are rejected instead of truncated, a name of 4096 bytes or more
(UTF-8) is rejected ("port name too long"), an empty pipe id is rejected even
when a suffix follows it, a second ``@extmem`` or a second, different
``@share`` is an error, and a pipe bound with a mode other than ALL_NIC or
ONE_NIC is rejected here rather than by the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping, Optional

from ._ffi import ffi, lib
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

# the flag letters of "/..." (the parser's table, for code that writes names)
_FLAG_BITS = {"x": NR_EXCLUSIVE, "z": NR_ZCOPY_MON, "t": NR_MONITOR_TX,
              "r": NR_MONITOR_RX, "R": NR_RX_RINGS_ONLY, "T": NR_TX_RINGS_ONLY}

_GRAMMARS = {"nmport": lib.NMC_PORTSPEC_NMPORT,
             "legacy": lib.NMC_PORTSPEC_LEGACY}
_SUBSYS = {lib.NMC_PORTSPEC_NETMAP: "netmap", lib.NMC_PORTSPEC_VALE: "vale"}
_ROLES = {lib.NMC_PORTSPEC_PIPE_MASTER: "master",
          lib.NMC_PORTSPEC_PIPE_SLAVE: "slave"}
# conf_given bit -> (key, field of struct nmc_portspec)
_CONF_KEYS = tuple(
    (bit, key, "conf_" + key) for bit, key in (
        (lib.NMC_PORTSPEC_CONF_TX_RINGS, "tx_rings"),
        (lib.NMC_PORTSPEC_CONF_RX_RINGS, "rx_rings"),
        (lib.NMC_PORTSPEC_CONF_HOST_TX_RINGS, "host_tx_rings"),
        (lib.NMC_PORTSPEC_CONF_HOST_RX_RINGS, "host_rx_rings"),
        (lib.NMC_PORTSPEC_CONF_TX_SLOTS, "tx_slots"),
        (lib.NMC_PORTSPEC_CONF_RX_SLOTS, "rx_slots")))
# index in extmem_span -> key
_EXTMEM_KEYS = (
    (lib.NMC_PORTSPEC_EXTMEM_FILE, "file"),
    (lib.NMC_PORTSPEC_EXTMEM_IF_NUM, "if_num"),
    (lib.NMC_PORTSPEC_EXTMEM_IF_SIZE, "if_size"),
    (lib.NMC_PORTSPEC_EXTMEM_RING_NUM, "ring_num"),
    (lib.NMC_PORTSPEC_EXTMEM_RING_SIZE, "ring_size"),
    (lib.NMC_PORTSPEC_EXTMEM_BUF_NUM, "buf_num"),
    (lib.NMC_PORTSPEC_EXTMEM_BUF_SIZE, "buf_size"))


class FrozenMap(Mapping):
    """Immutable and hashable mapping, stored as a sorted tuple of pairs."""

    __slots__ = ("_items",)

    def __init__(self, items=()) -> None:
        self._items = tuple(sorted(dict(items).items()))

    def __getitem__(self, key):
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"FrozenMap({dict(self._items)!r})"


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
    if grammar not in _GRAMMARS:
        raise ValueError(f"unknown port-name grammar {grammar!r}")
    if not isinstance(text, str):
        raise TypeError(f"port name must be a str, not {type(text).__name__}")
    nul = text.find("\0")
    if nul >= 0:
        raise PortSpecError(text, "embedded NUL character", nul)
    raw = text.encode("utf-8", "surrogatepass")
    out = ffi.new("struct nmc_portspec *")
    err = ffi.new("struct nmc_portspec_error *")
    if lib.nmc_portspec_parse(raw, _GRAMMARS[grammar], out, err) < 0:
        raise PortSpecError(text, _decode(ffi.string(err.message)),
                            len(_decode(raw[:err.position])), err.errnum)
    return _make_spec(text, grammar, raw, out)


def parse_nmport(text: str) -> PortSpec:
    """Parse a port name the way libnetmap's ``nmport_parse`` does."""
    return parse(text, "nmport")


def parse_legacy(text: str) -> PortSpec:
    """Parse a port name the way ``nm_open``/``nm_parse`` do."""
    return parse(text, "legacy")


# --------------------------------------------------------------------------
# result assembly

def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def _string(field) -> str:
    return _decode(ffi.string(field))


def _make_spec(text: str, grammar: str, raw: bytes, out) -> PortSpec:
    name = out.name
    pipe = None
    if name.pipe_role in _ROLES:
        pipe = PipeRef(parent=_string(name.parent),
                       pipe_id=_string(name.pipe_id),
                       role=_ROLES[name.pipe_role])
    vale = name.vale
    return PortSpec(
        text=text, grammar=grammar, subsys=_SUBSYS[out.subsys],
        name=_string(out.nr_name), mode=out.nr_mode, ringid=out.nr_ringid,
        flags=out.nr_flags, mem_id=out.mem_id,
        conf=FrozenMap((key, getattr(out, field))
                       for bit, key, field in _CONF_KEYS
                       if out.conf_given & bit),
        share=_string(out.share) if out.share_given else None,
        extmem=_extmem_of(raw, out), pipe=pipe,
        vale_switch=_string(name.vale_switch) if vale else None,
        vale_port=_string(name.vale_port) if vale else None)


def _extmem_of(raw: bytes, out) -> Optional[FrozenMap]:
    """The @extmem keys given, with their values as written."""
    if not out.extmem_given:
        return None
    values = {}
    for index, key in _EXTMEM_KEYS:
        if out.extmem_given_keys & (1 << index):
            span = out.extmem_span[index]
            values[key] = _decode(raw[span.pos:span.pos + span.len])
    return FrozenMap(values)
