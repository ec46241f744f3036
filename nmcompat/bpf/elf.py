"""Read a clang-built BPF object file (ELF, ``-target bpf``) without loading it.

What is understood:

- program sections ``xdp`` and ``xdp.frags`` (the second is loaded with
  ``BPF_F_XDP_HAS_FRAGS``), and ``tc`` (``sched_cls``, for TCX links); a
  section may hold several programs, one per global function symbol, named
  after the function;
- map definitions: BTF-defined (section ``.maps``, parameters read from
  ``.BTF``) or legacy (section ``maps``, records of
  ``struct { u32 type, key_size, value_size, max_entries, map_flags; }``);
- ``R_BPF_64_64`` relocations of ``ld_imm64`` instructions against map
  symbols (the loader turns them into ``BPF_PSEUDO_MAP_FD`` loads);
- the ``license`` section, and the version stamp: a 32-bit global named
  ``nmc_prog_version`` in any section.

What is refused, with a :class:`~nmcompat.errors.BPFObjectError` naming the
object and the reason: anything that is not a 64-bit relocatable EM_BPF ELF
file, a missing license, a truncated file, calls to sub-functions
(``R_BPF_64_32``: mark them ``__always_inline``), references to global data
(``.data``/``.rodata``/``.bss``) or to extern symbols, and unknown
relocation types.  Debug info, ``.BTF.ext`` and other sections are ignored.

Pure: no system calls beyond reading the file, no privileges.
"""
from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

from nmcompat.bpf._btf import Btf
from nmcompat.errors import BPFObjectError

__all__ = ["PROGRAM_SECTIONS", "VERSION_SYMBOL", "MapDef", "MapReloc", "ProgramDef",
           "ObjectDef", "parse"]

#: Section name -> True when programs in it are multi-buffer aware (xdp.frags).
PROGRAM_SECTIONS = {"xdp": False, "xdp.frags": True, "tc": False}
#: Sections whose programs are tc (sched_cls) programs; the others are XDP.
TC_SECTIONS = frozenset(("tc",))
VERSION_SYMBOL = "nmc_prog_version"

INSN_SIZE = 8
OP_LD_IMM64 = 0x18
R_BPF_64_64 = 1
R_BPF_64_32 = 10
EM_BPF = 247
_LEGACY_MAP_FIELDS = ("type", "key_size", "value_size", "max_entries", "map_flags")
_DATA_PREFIXES = (".data", ".rodata", ".bss")

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]


@dataclass(frozen=True)
class MapDef:
    """A map the object defines (what ``BPF_MAP_CREATE`` needs)."""
    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int = 0


@dataclass(frozen=True)
class MapReloc:
    """Instruction ``insn`` (an ld_imm64, index in the program) loads map ``map``."""
    insn: int
    map: str


@dataclass(frozen=True)
class ProgramDef:
    """One program: its instructions as in the file, and where maps go."""
    name: str
    section: str
    insns: bytes
    relocs: Tuple[MapReloc, ...]
    frags: bool

    @property
    def tc(self) -> bool:
        """A tc (sched_cls) program, attached with a TCX link; else XDP."""
        return self.section in TC_SECTIONS

    @property
    def insn_count(self) -> int:
        return len(self.insns) // INSN_SIZE


@dataclass(frozen=True)
class ObjectDef:
    """Everything the loader needs from one object file."""
    source: str
    license: str
    version: Optional[int]
    programs: Dict[str, ProgramDef] = field(default_factory=dict)
    maps: Dict[str, MapDef] = field(default_factory=dict)
    little_endian: bool = True


def parse(src: Source, name: Optional[str] = None) -> ObjectDef:
    """Parse a BPF object from a path or from its bytes.

    ``name`` labels the object in error messages (default: the path, or
    "<bytes>").  Raises BPFObjectError (a ValueError and an OSError with
    errno ENOEXEC) for anything malformed or unsupported, and OSError when
    the file cannot be read.
    """
    if isinstance(src, (bytes, bytearray, memoryview)):
        data, label = bytes(src), name or "<bytes>"
    else:
        with open(src, "rb") as f:
            data = f.read()
        label = name or os.fspath(src)
    if data[:4] != b"\x7fELF":
        raise BPFObjectError(label, "not an ELF file")
    try:
        return _Parser(data, label).parse()
    except BPFObjectError:
        raise
    except (ELFError, struct.error, ValueError, IndexError, KeyError, UnicodeError) as exc:
        raise BPFObjectError(label, f"truncated or corrupt ELF file ({exc})") from exc


class _Parser:
    def __init__(self, data: bytes, label: str) -> None:
        self.label = label
        self.elf = ELFFile(io.BytesIO(data))
        self.endian = "<" if self.elf.little_endian else ">"

    def fail(self, reason: str) -> BPFObjectError:
        return BPFObjectError(self.label, reason)

    def parse(self) -> ObjectDef:
        self._check_header()
        self.symbols = self._symbols()
        maps = self._maps()
        programs = self._programs(maps)
        if not programs:
            raise self.fail("no XDP program (no function in a section named "
                            + " or ".join(repr(s) for s in PROGRAM_SECTIONS) + ")")
        return ObjectDef(self.label, self._license(), self._version(), programs, maps,
                         self.elf.little_endian)

    def _check_header(self) -> None:
        machine = self.elf["e_machine"]
        if machine not in ("EM_BPF", EM_BPF):
            raise self.fail(f"not a BPF object (machine {machine}, expected EM_BPF; "
                            "build with clang -target bpf)")
        if self.elf.elfclass != 64 or self.elf["e_type"] != "ET_REL":
            raise self.fail("not a 64-bit relocatable object (ET_REL)")
        sections = self.elf.num_sections()
        for i in range(sections):
            self.elf.get_section(i)  # touch every header: fail early when truncated
        if not self.elf.get_section_by_name(".symtab"):
            raise self.fail("no symbol table (.symtab); was it stripped?")

    def _symbols(self) -> list:
        return list(self.elf.get_section_by_name(".symtab").iter_symbols())

    def _section_data(self, name: str) -> bytes:
        section = self.elf.get_section_by_name(name)
        data = section.data()
        if section["sh_type"] != "SHT_NOBITS" and len(data) != section["sh_size"]:
            raise self.fail(f"section '{name}' is truncated")
        return data

    def _license(self) -> str:
        if not self.elf.get_section_by_name("license"):
            raise self.fail("no 'license' section "
                            '(add: char _license[] SEC("license") = "Dual BSD/GPL";)')
        text = self._section_data("license").split(b"\0", 1)[0].decode("ascii", "replace")
        if not text:
            raise self.fail("the 'license' section is empty")
        return text

    def _version(self) -> Optional[int]:
        for sym in self.symbols:
            if sym.name == VERSION_SYMBOL and isinstance(sym["st_shndx"], int):
                data = self.elf.get_section(sym["st_shndx"]).data()
                off = sym["st_value"]
                if sym["st_size"] != 4 or off + 4 > len(data):
                    raise self.fail(f"'{VERSION_SYMBOL}' is not a 32-bit value")
                return struct.unpack_from(self.endian + "I", data, off)[0]
        return None

    # -- maps -------------------------------------------------------------

    def _maps(self) -> Dict[str, MapDef]:
        maps: Dict[str, MapDef] = {}
        if self.elf.get_section_by_name(".maps"):
            maps.update(self._btf_maps())
        if self.elf.get_section_by_name("maps"):
            maps.update(self._legacy_maps())
        return maps

    def _btf_maps(self) -> Dict[str, MapDef]:
        if not self.elf.get_section_by_name(".BTF"):
            raise self.fail("'.maps' needs BTF type information: build with clang -g")
        btf = Btf(self._section_data(".BTF"), self.elf.little_endian)
        maps = {}
        for name, type_id in btf.datasec(".maps"):
            try:
                attrs = btf.map_attrs(type_id)
            except ValueError as exc:
                raise self.fail(f"map '{name}': {exc}") from exc
            maps[name] = self._map_def(name, attrs)
        return maps

    def _legacy_maps(self) -> Dict[str, MapDef]:
        index = self.elf.get_section_index("maps")
        data = self._section_data("maps")
        maps = {}
        for sym in self.symbols:
            if sym["st_shndx"] != index or sym["st_info"]["type"] == "STT_SECTION":
                continue
            off, size = sym["st_value"], sym["st_size"]
            count = min(size // 4, len(_LEGACY_MAP_FIELDS))
            if count < 4 or off + size > len(data):
                raise self.fail(f"legacy map '{sym.name}' is shorter than 16 bytes")
            values = struct.unpack_from(f"{self.endian}{count}I", data, off)
            maps[sym.name] = self._map_def(sym.name, dict(zip(_LEGACY_MAP_FIELDS, values)))
        return maps

    def _map_def(self, name: str, attrs: Dict[str, int]) -> MapDef:
        missing = [k for k in ("type", "key_size", "value_size", "max_entries") if k not in attrs]
        if missing:
            raise self.fail(f"map '{name}' does not set {', '.join(missing)}")
        return MapDef(name, attrs["type"], attrs["key_size"], attrs["value_size"],
                      attrs["max_entries"], attrs.get("map_flags", 0))

    # -- programs ----------------------------------------------------------

    def _programs(self, maps: Dict[str, MapDef]) -> Dict[str, ProgramDef]:
        programs: Dict[str, ProgramDef] = {}
        for index, section in enumerate(self.elf.iter_sections()):
            frags = PROGRAM_SECTIONS.get(section.name)
            if frags is None or not section["sh_flags"] & 0x4:  # SHF_EXECINSTR
                continue
            code = self._section_data(section.name)
            relocs = self._relocs(index, section.name, code, maps)
            for sym in self._functions(index, len(code)):
                start, end = sym["st_value"], sym["st_value"] + sym["st_size"]
                mine = tuple(MapReloc((off - start) // INSN_SIZE, m)
                             for off, m in relocs if start <= off < end)
                programs[sym.name] = ProgramDef(sym.name, section.name, code[start:end],
                                                mine, frags)
        return programs

    def _functions(self, index: int, size: int) -> list:
        funcs = [s for s in self.symbols
                 if s["st_shndx"] == index and s["st_info"]["type"] == "STT_FUNC"]
        for sym in funcs:
            start, length = sym["st_value"], sym["st_size"]
            if start % INSN_SIZE or length % INSN_SIZE or not length or start + length > size:
                raise self.fail(f"function '{sym.name}' has a bad extent in its section")
        return funcs

    def _symbol_at(self, shndx: int, offset: int):
        for sym in self.symbols:
            if (sym["st_shndx"] == shndx and sym["st_value"] == offset
                    and sym["st_info"]["type"] == "STT_OBJECT"):
                return sym
        return None

    def _rel_section(self, index: int) -> Optional[RelocationSection]:
        for section in self.elf.iter_sections():
            if isinstance(section, RelocationSection) and section["sh_info"] == index:
                return section
        return None

    def _relocs(self, index: int, where: str, code: bytes,
                maps: Dict[str, MapDef]) -> List[Tuple[int, str]]:
        rel = self._rel_section(index)
        if rel is None:
            return []
        if rel.is_RELA():
            raise self.fail(f"RELA relocations in section '{where}' are not supported")
        return [self._reloc(entry, where, code, maps) for entry in rel.iter_relocations()]

    def _reloc(self, rel, where: str, code: bytes, maps: Dict[str, MapDef]) -> Tuple[int, str]:
        off, rtype = rel["r_offset"], rel["r_info_type"]
        sym = self.symbols[rel["r_info_sym"]]
        if rtype == R_BPF_64_32:
            raise self.fail(f"'{where}' calls sub-function '{sym.name}' at offset {off:#x}; "
                            "bpf-to-bpf calls are not supported (make it __always_inline)")
        if rtype != R_BPF_64_64:
            raise self.fail(f"unknown relocation type {rtype} in '{where}' at offset {off:#x}")
        if off % INSN_SIZE or off + 2 * INSN_SIZE > len(code) or code[off] != OP_LD_IMM64:
            raise self.fail(f"relocation in '{where}' at offset {off:#x} is not on an "
                            "ld_imm64 instruction")
        addend = struct.unpack_from(self.endian + "i", code, off + 4)[0]
        return off, self._reloc_target(sym, addend, where, maps)

    def _reloc_target(self, sym, addend: int, where: str, maps: Dict[str, MapDef]) -> str:
        shndx = sym["st_shndx"]
        if sym["st_info"]["type"] == "STT_SECTION" and isinstance(shndx, int):
            sym = self._symbol_at(shndx, addend) or sym  # static maps: section + offset
        if shndx == "SHN_UNDEF":
            raise self.fail(f"'{where}' references undefined symbol '{sym.name}' "
                            "(extern, kconfig and ksym symbols are not supported)")
        target = self.elf.get_section(shndx).name if isinstance(shndx, int) else str(shndx)
        if target in (".maps", "maps") and sym.name in maps:
            return sym.name
        if target.startswith(_DATA_PREFIXES):
            raise self.fail(f"'{where}' uses global data in section '{target}' "
                            "(not supported: keep state in maps)")
        raise self.fail(f"'{where}' references '{sym.name or target}' in section '{target}', "
                        "which is not a map")
