"""Name header and option list of the netmap port-name grammars.

The grammars are documented in :mod:`nmcompat._portspec`.  This module
checks the name part of a port name (prefix, bridge, port and pipe ids,
length), turns the libnetmap option list (``@name...``) into plain values
and holds the small helpers the parsers share.  Nothing here opens a file
or a device: ``@extmem`` keeps its file name and ``@share`` its port name
for the caller to resolve.
"""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass
from typing import Dict, Iterator, Mapping, Optional, Tuple

from .errors import PortSpecError

DIGITS = frozenset("0123456789")
IDENT_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")

_LONG_MAX = 2 ** 63 - 1
_C_SPACE = " \t\n\v\f\r"
_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF
_NMPORT_NAMSIZ = 64              # NETMAP_REQ_IFNAMSIZ
_LEGACY_NAMSIZ = 16              # IFNAMSIZ
_NMPORT_STOP = "-*^/@"
_LEGACY_STOP = "-*^{}/@"
_NMPORT_PREFIXES = (("netmap", False), ("vale", True))

# key -> (value text, index of the value in the port name)
_Keys = Dict[str, Tuple[str, int]]


# --------------------------------------------------------------------------
# shared helpers

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


def find_any(text: str, chars: str, start: int, end: int) -> int:
    """Index of the first of ``chars`` in text[start:end], else ``end``."""
    for index in range(start, end):
        if text[index] in chars:
            return index
    return end


def first_non_ident(text: str, start: int, end: int) -> Optional[int]:
    """Index of the first character in text[start:end] outside [A-Za-z0-9_]."""
    for index in range(start, end):
        if text[index] not in IDENT_CHARS:
            return index
    return None


def clamp_int(digits: str, cap: int) -> int:
    """Value of a decimal digit string, saturated at ``cap`` (like strtol)."""
    significant = digits.lstrip("0")
    if len(significant) > len(str(cap)):
        return cap
    return min(int(significant or "0"), cap)


def read_decimal(text: str, pos: int) -> Tuple[int, int]:
    """Read the digits at text[pos:]; return (value, index after them)."""
    end = pos
    while end < len(text) and text[end] in DIGITS:
        end += 1
    return clamp_int(text[pos:end], _LONG_MAX), end


def strtol(text: str, pos: int) -> Tuple[int, int]:
    """Read a number like C strtol(): (value, end), or (0, pos) if none."""
    start = pos
    while start < len(text) and text[start] in _C_SPACE:
        start += 1
    sign = -1 if text.startswith("-", start) else 1
    if text.startswith(("-", "+"), start):
        start += 1
    value, end = read_decimal(text, start)
    return (sign * value, end) if end > start else (0, pos)


def decimal_value(text: str, value: str, position: int, limit: int,
                  what: str) -> int:
    """Parse an option value that must be a decimal number in [0, limit]."""
    if not value or not DIGITS.issuperset(value):
        raise PortSpecError(text, f"{what}: invalid number '{value}'",
                            position)
    number = clamp_int(value, limit + 1)
    if number > limit:
        raise PortSpecError(
            text, f"{what}: '{value}' out of range [0, {limit}]", position)
    return number


# --------------------------------------------------------------------------
# port names (the part before the register suffix)

def _check_length(text: str, start: int, end: int, size: int,
                  reason: str) -> None:
    """Reject text[start:end] if it needs ``size`` bytes or more in UTF-8."""
    used = 0
    for index in range(start, end):
        code = ord(text[index])
        used += 1 if code < 0x80 else 2 if code < 0x800 else \
            3 if code < 0x10000 else 4
        if used >= size:
            raise PortSpecError(text, reason, index)


def nmport_header(text: str) -> Tuple[str, str, int]:
    """Return (subsys, kernel name, index where the name ends)."""
    prefix, allow_id = _nmport_prefix(text)
    colon = text.find(":", len(prefix))
    if colon < 0:
        raise PortSpecError(text, "missing ':'", len(text))
    _check_subsys_id(text, prefix, allow_id, colon)
    start = colon + 1 if prefix == "netmap" else 0
    end = find_any(text, _NMPORT_STOP, colon + 1, len(text))
    _check_pipe_id(text, colon + 1, end)
    _check_length(text, start, end, _NMPORT_NAMSIZ,
                  f"name '{text[start:end]}' too long")
    if end == start:
        raise PortSpecError(text, "invalid empty port name", start)
    return prefix, text[start:end], end


def _nmport_prefix(text: str) -> Tuple[str, bool]:
    for prefix, allow_id in _NMPORT_PREFIXES:
        if text.startswith(prefix):
            return prefix, allow_id
    raise PortSpecError(text, "invalid request, prefix unknown or missing", 0)


def _check_subsys_id(text: str, prefix: str, allow_id: bool,
                     colon: int) -> None:
    if colon > len(prefix) and not allow_id:
        raise PortSpecError(
            text, f"no identifier allowed between '{prefix}' and ':'",
            len(prefix))
    bad = first_non_ident(text, len(prefix), colon)
    if bad is not None:
        raise PortSpecError(
            text, f"invalid identifier '{text[len(prefix):colon]}'", bad)


def _check_pipe_id(text: str, start: int, end: int) -> None:
    brace = find_any(text, "{}", start, end)
    if brace == end:
        return
    if brace + 1 == end:
        raise PortSpecError(text, "invalid empty pipe name", brace + 1)
    bad = first_non_ident(text, brace + 1, end)
    if bad is not None:
        raise PortSpecError(
            text, f"invalid pipe name '{text[brace + 1:end]}'", bad)


def legacy_header(text: str) -> Tuple[str, str, int]:
    if text.startswith("vale"):
        return _legacy_vale_header(text)
    if not text.startswith("netmap:"):
        raise PortSpecError(
            text, "name not recognised (it must start with 'netmap:' or "
            "'vale')", 0, errno=0)
    end = find_any(text, _LEGACY_STOP, 7, len(text))
    _check_length(text, 7, end, _LEGACY_NAMSIZ, "name too long")
    return "netmap", text[7:end], end


def _legacy_vale_header(text: str) -> Tuple[str, str, int]:
    colon = text.find(":")
    if colon < 0:
        raise PortSpecError(text, "missing ':' in vale name", len(text))
    bad = first_non_ident(text, 4, colon)
    if bad is not None:
        raise PortSpecError(text, "invalid bridge name", bad)
    end = find_any(text, _LEGACY_STOP, colon + 1, len(text))
    bad = first_non_ident(text, colon + 1, end)
    if bad is not None:
        raise PortSpecError(text, "invalid bridge port name", bad)
    _check_length(text, 0, end, _LEGACY_NAMSIZ, "name too long")
    return "vale", text[:end], end


# --------------------------------------------------------------------------
# option table

@dataclass(frozen=True)
class _OptionDef:
    keys: Tuple[str, ...]
    default: Optional[str] = None        # key that "@name=value" assigns
    mandatory: Tuple[str, ...] = ()
    disabled: bool = False               # recognised, but EOPNOTSUPP


_CONF_GENERIC = {
    "rings": ("tx_rings", "rx_rings"),
    "host_rings": ("host_tx_rings", "host_rx_rings"),
    "slots": ("tx_slots", "rx_slots"),
}
_CONF_SPECIFIC = ("tx_rings", "rx_rings", "host_tx_rings", "host_rx_rings",
                  "tx_slots", "rx_slots")
_EXTMEM_NUMERIC = ("if_num", "if_size", "ring_num", "ring_size",
                   "buf_num", "buf_size")

_OPTIONS = {
    "share": _OptionDef(("port",), "port", ("port",)),
    "conf": _OptionDef(tuple(_CONF_GENERIC) + _CONF_SPECIFIC),
    "extmem": _OptionDef(("file",) + _EXTMEM_NUMERIC, "file", ("file",)),
    "offset": _OptionDef(("initial", "bits"), "initial", ("initial",),
                         disabled=True),
}


class OptionValues:
    """What the option list asked for; filled in while parsing."""

    def __init__(self) -> None:
        self.conf: Dict[str, int] = {}
        self.share: Optional[str] = None
        self.extmem: Optional[Dict[str, str]] = None


# --------------------------------------------------------------------------
# option list syntax

def parse_options(text: str, pos: int) -> OptionValues:
    """Parse the options starting at text[pos] (an '@', or the end of text)."""
    values = OptionValues()
    while pos < len(text):
        start = pos + 1
        end = text.find("@", start)
        end = len(text) if end < 0 else end
        if end == start:
            raise PortSpecError(text, "invalid empty option", start)
        _parse_option(text, start, end, values)
        pos = end
    return values


def _parse_option(text: str, start: int, end: int,
                  values: OptionValues) -> None:
    delim = find_any(text, ":=", start, end)
    name = text[start:delim]
    odef = _OPTIONS.get(name)
    if odef is None:
        raise PortSpecError(text, f"unknown option: '{name}'", start)
    if odef.disabled:
        raise PortSpecError(text, f"option '{name}' is not supported", start,
                            _errno.EOPNOTSUPP)
    keys = _read_body(text, name, odef, delim, end)
    for key in odef.mandatory:
        if key not in keys:
            raise PortSpecError(
                text, f"option '{name}': mandatory key '{key}' not assigned",
                start)
    _APPLY[name](text, values, keys)


def _read_body(text: str, name: str, odef: _OptionDef, delim: int,
               end: int) -> _Keys:
    if delim == end:
        raise PortSpecError(
            text, f"syntax error: missing body after '{name}'", end)
    if text[delim] == ":":
        return _parse_keys(text, name, odef, delim + 1, end)
    if odef.default is None:
        raise PortSpecError(
            text, f"syntax error: '=' not valid after '{name}'", delim)
    if delim + 1 == end:
        raise PortSpecError(text, f"missing value for option '{name}'", end)
    return {odef.default: (text[delim + 1:end], delim + 1)}


def _split(text: str, sep: str, pos: int,
           end: int) -> Iterator[Tuple[int, int]]:
    """Yield (start, end) of the sep-separated items of text[pos:end]."""
    if pos == end:
        return
    while True:
        cut = text.find(sep, pos, end)
        if cut < 0:
            yield pos, end
            return
        yield pos, cut
        pos = cut + 1


def _parse_keys(text: str, name: str, odef: _OptionDef, pos: int,
                end: int) -> _Keys:
    found: _Keys = {}
    for item_start, item_end in _split(text, ",", pos, end):
        _parse_key(text, name, odef, item_start, item_end, found)
    return found


def _parse_key(text: str, name: str, odef: _OptionDef, start: int, end: int,
               found: _Keys) -> None:
    equal = text.find("=", start, end)
    key_end = end if equal < 0 else equal
    key = text[start:key_end].replace("-", "_")
    if not key:
        raise PortSpecError(text, f"option '{name}': empty key", start)
    if key not in odef.keys:
        raise PortSpecError(text, f"unknown key: '{key}'", start)
    if key in found:
        raise PortSpecError(
            text, f"option '{name}': duplicate key '{key}', "
            f"already set to '{found[key][0]}'", start)
    if equal < 0:
        raise PortSpecError(
            text, f"option '{name}': missing '=value' for key '{key}'", end)
    if equal + 1 < end:          # "key=" leaves the key unset, as libnetmap
        found[key] = (text[equal + 1:end], equal + 1)


# --------------------------------------------------------------------------
# option semantics

def _apply_conf(text: str, values: OptionValues, keys: _Keys) -> None:
    for generic, targets in _CONF_GENERIC.items():
        if generic in keys:
            number = _conf_number(text, generic, keys[generic])
            for target in targets:
                values.conf[target] = number
    for key in _CONF_SPECIFIC:           # specific keys win over generic ones
        if key in keys:
            values.conf[key] = _conf_number(text, key, keys[key])


def _conf_number(text: str, key: str, entry: Tuple[str, int]) -> int:
    limit = _U32_MAX if key.endswith("slots") else _U16_MAX
    return decimal_value(text, entry[0], entry[1], limit,
                         f"option 'conf': key '{key}'")


def _apply_share(text: str, values: OptionValues, keys: _Keys) -> None:
    port, pos = keys["port"]
    try:
        nmport_header(port)
    except PortSpecError as exc:
        inner = pos + (exc.position or 0)
        raise PortSpecError(text, f"option 'share': {exc.reason}", inner,
                            exc.errno) from None
    if values.share is not None and values.share != port:
        raise PortSpecError(
            text, f"option 'share': already set to '{values.share}'", pos)
    values.share = port


def _apply_extmem(text: str, values: OptionValues, keys: _Keys) -> None:
    if values.extmem is not None:
        raise PortSpecError(text, "option 'extmem': extmem already in use",
                            keys["file"][1])
    for key in _EXTMEM_NUMERIC:
        if key in keys:
            decimal_value(text, keys[key][0], keys[key][1], _U32_MAX,
                          f"option 'extmem': key '{key}'")
    values.extmem = {key: value for key, (value, _) in keys.items()}


_APPLY = {
    "conf": _apply_conf,
    "share": _apply_share,
    "extmem": _apply_extmem,
}
