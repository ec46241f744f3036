"""Just enough BTF to read BTF-defined map definitions (the ".maps" section).

A BTF-defined map is a global variable of an anonymous struct type whose
members encode the parameters in their types:

    struct { int (*type)[17]; int (*max_entries)[64]; __u32 *key; __u32 *value; } xsks;

An integer parameter N is a pointer to an array of N ints; ``key``/``value``
are pointers to the key and value types, whose sizes give key_size and
value_size.  Layout of the section: a header, a type table (records of
variable length, ids counted from 1; id 0 is void) and a string table
(see the kernel's Documentation/bpf/btf.rst).

Pure functions; errors are ValueError with a short reason.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Dict, List, Tuple

BTF_MAGIC = 0xEB9F

(KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD,
 KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC, KIND_FUNC_PROTO,
 KIND_VAR, KIND_DATASEC, KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64) = range(1, 20)

# Bytes that follow the 12-byte common record: (fixed, per vlen item).
_EXTRA = {
    KIND_INT: (4, 0), KIND_PTR: (0, 0), KIND_ARRAY: (12, 0), KIND_STRUCT: (0, 12),
    KIND_UNION: (0, 12), KIND_ENUM: (0, 8), KIND_FWD: (0, 0), KIND_TYPEDEF: (0, 0),
    KIND_VOLATILE: (0, 0), KIND_CONST: (0, 0), KIND_RESTRICT: (0, 0), KIND_FUNC: (0, 0),
    KIND_FUNC_PROTO: (0, 8), KIND_VAR: (4, 0), KIND_DATASEC: (0, 12), KIND_FLOAT: (0, 0),
    KIND_DECL_TAG: (4, 0), KIND_TYPE_TAG: (0, 0), KIND_ENUM64: (0, 12),
}
_MODIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)
_SIZED = (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_DATASEC, KIND_FLOAT)

# Map attributes given as integers, and the two given as types.
INT_ATTRS = ("type", "max_entries", "map_flags", "key_size", "value_size", "numa_node",
             "pinning", "map_extra")
TYPE_ATTRS = {"key": "key_size", "value": "value_size"}


@dataclass(frozen=True)
class BtfType:
    kind: int
    name: str
    vlen: int
    size_or_type: int  # the size for sized kinds, else the referenced type id
    extra: bytes       # kind-specific data after the common record


class Btf:
    """A parsed type table: ``types[id]`` and helpers to walk it."""

    def __init__(self, data: bytes, little_endian: bool = True, ptr_size: int = 8) -> None:
        self._e = "<" if little_endian else ">"
        self._ptr_size = ptr_size
        self.types: List[BtfType] = [BtfType(0, "", 0, 0, b"")]  # id 0: void
        self._parse(data)

    def _parse(self, data: bytes) -> None:
        e = self._e
        if len(data) < 24:
            raise ValueError(".BTF is shorter than its header")
        magic, _ver, _flags, hdr_len = struct.unpack_from(e + "HBBI", data, 0)
        if magic != BTF_MAGIC:
            raise ValueError(f".BTF has bad magic {magic:#x}")
        type_off, type_len, str_off, str_len = struct.unpack_from(e + "4I", data, 8)
        types = data[hdr_len + type_off: hdr_len + type_off + type_len]
        self._strings = data[hdr_len + str_off: hdr_len + str_off + str_len]
        if len(types) != type_len or len(self._strings) != str_len:
            raise ValueError(".BTF is truncated")
        pos = 0
        while pos < len(types):
            pos = self._parse_type(types, pos)

    def _parse_type(self, types: bytes, pos: int) -> int:
        if pos + 12 > len(types):
            raise ValueError(".BTF type table is truncated")
        name_off, info, size_or_type = struct.unpack_from(self._e + "3I", types, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if kind not in _EXTRA:
            raise ValueError(f".BTF has unknown type kind {kind}")
        fixed, per_item = _EXTRA[kind]
        end = pos + 12 + fixed + per_item * vlen
        if end > len(types):
            raise ValueError(".BTF type table is truncated")
        self.types.append(BtfType(kind, self.string(name_off), vlen, size_or_type,
                                  types[pos + 12:end]))
        return end

    def string(self, offset: int) -> str:
        end = self._strings.find(b"\0", offset)
        if offset >= len(self._strings) or end < 0:
            raise ValueError(f".BTF string offset {offset} is out of range")
        return self._strings[offset:end].decode("utf-8", "replace")

    def get(self, type_id: int) -> BtfType:
        if not 0 <= type_id < len(self.types):
            raise ValueError(f".BTF type id {type_id} is out of range")
        return self.types[type_id]

    def skip_modifiers(self, type_id: int) -> Tuple[int, BtfType]:
        for _ in range(32):
            t = self.get(type_id)
            if t.kind not in _MODIFIERS:
                return type_id, t
            type_id = t.size_or_type
        raise ValueError(".BTF has a modifier chain that is too long")

    def size_of(self, type_id: int, depth: int = 0) -> int:
        if depth > 32:
            raise ValueError(".BTF type nesting is too deep")
        _tid, t = self.skip_modifiers(type_id)
        if t.kind in _SIZED:
            return t.size_or_type
        if t.kind == KIND_PTR:
            return self._ptr_size
        if t.kind == KIND_ARRAY:
            elem, _index, nelems = struct.unpack_from(self._e + "3I", t.extra)
            return nelems * self.size_of(elem, depth + 1)
        raise ValueError(f".BTF type '{t.name or type_id}' has no size")

    def members(self, t: BtfType) -> List[Tuple[str, int]]:
        """(name, type id) of each member of a struct or union."""
        out = []
        for i in range(t.vlen):
            name_off, type_id, _offset = struct.unpack_from(self._e + "3I", t.extra, 12 * i)
            out.append((self.string(name_off), type_id))
        return out

    def datasec(self, name: str) -> List[Tuple[str, int]]:
        """(variable name, variable type id) of each variable in data section ``name``."""
        for t in self.types:
            if t.kind == KIND_DATASEC and t.name == name:
                return [self._var(struct.unpack_from(self._e + "I", t.extra, 12 * i)[0])
                        for i in range(t.vlen)]
        return []

    def _var(self, type_id: int) -> Tuple[str, int]:
        t = self.get(type_id)
        if t.kind != KIND_VAR:
            raise ValueError(f".BTF data section entry {type_id} is not a variable")
        return t.name, t.size_or_type

    def _int_attr(self, type_id: int) -> int:
        """N, from the ``int (*name)[N]`` encoding."""
        _tid, ptr = self.skip_modifiers(type_id)
        if ptr.kind != KIND_PTR:
            raise ValueError("not of the form int (*name)[N]")
        _tid, arr = self.skip_modifiers(ptr.size_or_type)
        if arr.kind != KIND_ARRAY:
            raise ValueError("not of the form int (*name)[N]")
        return struct.unpack_from(self._e + "3I", arr.extra)[2]

    def map_attrs(self, type_id: int) -> Dict[str, int]:
        """The integer attributes of a BTF-defined map whose struct type is ``type_id``."""
        _tid, t = self.skip_modifiers(type_id)
        if t.kind != KIND_STRUCT:
            raise ValueError("its type is not a struct")
        attrs: Dict[str, int] = {}
        for name, member_type in self.members(t):
            if name in INT_ATTRS:
                attrs[name] = self._int_attr(member_type)
            elif name in TYPE_ATTRS:
                _tid, ptr = self.skip_modifiers(member_type)
                if ptr.kind != KIND_PTR:
                    raise ValueError(f"attribute '{name}' is not a pointer")
                attrs[TYPE_ATTRS[name]] = self.size_of(ptr.size_or_type)
            else:
                raise ValueError(f"unsupported map attribute '{name}'")
        return attrs
