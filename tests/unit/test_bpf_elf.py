"""nmcompat.bpf.elf on the shipped XDP object and on broken variants of it.

No root needed.  The tests that compile C need clang: they skip without it,
and fail instead when NMCOMPAT_STRICT=1.
"""
from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from nmcompat.bpf import elf
from nmcompat.bpf.loader import XSK_REDIRECT_VERSION, xsk_redirect_path
from nmcompat.errors import BPFLoadError, BPFObjectError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "nmcompat" / "backends" / "afxdp" / "xsk_redirect.bpf.o"
STRICT = os.environ.get("NMCOMPAT_STRICT") == "1"
CLANG = shutil.which("clang-14") or shutil.which("clang")
INCLUDE = "/usr/include/" + (subprocess.run(["gcc", "-print-multiarch"], capture_output=True,
                                            text=True).stdout.strip() or "x86_64-linux-gnu")
# The program, instruction by instruction (see bpf/xsk_redirect.bpf.c).
EXPECTED_CODE = [0x61, 0x18, 0xB7, 0x85, 0x95]


def need_clang():
    if CLANG:
        return CLANG
    if STRICT:
        pytest.fail("clang is required with NMCOMPAT_STRICT=1 (apt-get install clang-14)")
    pytest.skip("clang is not installed (apt-get install clang-14)")


def compile_bpf(tmp_path: Path, source: str, extra=("-g",)) -> Path:
    src, obj = tmp_path / "t.bpf.c", tmp_path / "t.bpf.o"
    src.write_text(source)
    subprocess.run([need_clang(), "-O2", "-target", "bpf", f"-I{INCLUDE}", *extra,
                    "-c", str(src), "-o", str(obj)], check=True)
    return obj


@pytest.fixture(scope="module")
def shipped() -> elf.ObjectDef:
    return elf.parse(SHIPPED)


def section_header(data: bytes, name: str):
    """(offset of the section header in the file, header) of section ``name``."""
    f = ELFFile(io.BytesIO(data))
    index = f.get_section_index(name)
    return f["e_shoff"] + index * f["e_shentsize"], f.get_section(index).header


def rename_section(data: bytes, name: str) -> bytes:
    """Point the section's name one character further ("license" -> "icense")."""
    out = bytearray(data)
    hdr_off, hdr = section_header(data, name)
    struct.pack_into("<I", out, hdr_off, hdr["sh_name"] + 1)
    return bytes(out)


def patch_section(data: bytes, name: str, offset: int, raw: bytes) -> bytes:
    out = bytearray(data)
    _hdr_off, hdr = section_header(data, name)
    pos = hdr["sh_offset"] + offset
    out[pos:pos + len(raw)] = raw
    return bytes(out)


# -- the shipped object ------------------------------------------------------

def test_shipped_object_is_the_package_data():
    assert Path(xsk_redirect_path()).resolve() == SHIPPED.resolve() \
        or "NMCOMPAT_XDP_PROG" in os.environ


def test_programs(shipped):
    assert set(shipped.programs) == {"nmc_xsk_redir", "nmc_xsk_frags"}
    plain, frags = shipped.programs["nmc_xsk_redir"], shipped.programs["nmc_xsk_frags"]
    assert (plain.section, plain.frags) == ("xdp", False)
    assert (frags.section, frags.frags) == ("xdp.frags", True)
    assert plain.insns == frags.insns
    assert plain.insn_count == 6


def test_instructions_redirect_by_rx_queue_index(shipped):
    insns = shipped.programs["nmc_xsk_redir"].insns
    codes = [insns[i] for i in range(0, len(insns), 8)]
    assert [c for c in codes if c] == EXPECTED_CODE   # the ld_imm64's second slot is 0
    code, regs, off, imm = struct.unpack_from("<BBhi", insns, 0)
    assert (regs >> 4, off) == (1, 16)                  # r2 = ctx->rx_queue_index
    assert struct.unpack_from("<i", insns, 24 + 4)[0] == 2   # r3 = XDP_PASS fallback
    assert struct.unpack_from("<i", insns, 32 + 4)[0] == 51  # call bpf_redirect_map


def test_map_relocation(shipped):
    for prog in shipped.programs.values():
        assert prog.relocs == (elf.MapReloc(1, "xsks"),)
        assert prog.insns[8] == elf.OP_LD_IMM64


def test_map_definition(shipped):
    assert shipped.maps == {"xsks": elf.MapDef("xsks", 17, 4, 4, 64, 0)}


def test_license_and_version(shipped):
    assert shipped.license == "Dual BSD/GPL"
    assert shipped.version == XSK_REDIRECT_VERSION
    assert shipped.little_endian


def test_parse_bytes_equals_parse_path(shipped):
    again = elf.parse(SHIPPED.read_bytes(), name="x")
    assert again.source == "x"
    assert (again.programs, again.maps, again.license, again.version) == \
        (shipped.programs, shipped.maps, shipped.license, shipped.version)


def test_shipped_object_is_current(tmp_path, shipped):
    """The committed object is what bpf/Makefile builds from bpf/xsk_redirect.bpf.c."""
    need_clang()
    subprocess.run(["make", "-s", "-B", "-C", str(ROOT / "bpf"), f"OUT={tmp_path}"], check=True)
    rebuilt = elf.parse(tmp_path / "xsk_redirect.bpf.o")
    for name, prog in shipped.programs.items():
        assert rebuilt.programs[name].insns == prog.insns, \
            f"{SHIPPED.name} is stale: run make -C bpf and commit it"
    assert (rebuilt.maps, rebuilt.license, rebuilt.version) == \
        (shipped.maps, shipped.license, shipped.version)


# -- malformed objects ----------------------------------------------------------

def check_error(data, fragment: str):
    with pytest.raises(BPFObjectError) as info:
        elf.parse(data, name="bad.o")
    assert fragment in str(info.value)
    assert str(info.value).startswith("couldn't parse BPF object bad.o: ")
    assert isinstance(info.value, ValueError) and isinstance(info.value, BPFLoadError)
    return info.value


def test_not_elf():
    check_error(b"#!/bin/sh\necho hello\n", "not an ELF file")
    check_error(b"", "not an ELF file")


@pytest.mark.parametrize("size", [4, 20, 64, 200, 1000, 3000])
def test_truncated(size):
    data = SHIPPED.read_bytes()[:size]
    err = check_error(data, "")
    assert "truncated" in err.reason or "corrupt" in err.reason


def test_wrong_machine():
    data = bytearray(SHIPPED.read_bytes())
    struct.pack_into("<H", data, 18, 62)  # e_machine = EM_X86_64
    check_error(bytes(data), "not a BPF object")


def test_missing_license():
    check_error(rename_section(SHIPPED.read_bytes(), "license"), "no 'license' section")


def test_no_program_section():
    data = rename_section(SHIPPED.read_bytes(), "xdp")
    data = rename_section(data, "xdp.frags")
    check_error(data, "no XDP program")


def test_unknown_relocation_type():
    data = SHIPPED.read_bytes()
    _off, hdr = section_header(data, ".relxdp")
    raw = data[hdr["sh_offset"]:hdr["sh_offset"] + 16]
    r_offset, r_info = struct.unpack("<QQ", raw)
    patched = patch_section(data, ".relxdp", 8, struct.pack("<Q", (r_info & ~0xFFFFFFFF) | 5))
    check_error(patched, "unknown relocation type 5")


def test_relocation_not_on_ld_imm64():
    data = patch_section(SHIPPED.read_bytes(), ".relxdp", 0, struct.pack("<Q", 0))
    check_error(data, "not on an ld_imm64")


def test_legacy_maps_section():
    """A "maps" section of struct { type, key_size, value_size, max_entries, flags }."""
    data = patch_section(SHIPPED.read_bytes(), ".maps", 0, struct.pack("<5I", 17, 4, 4, 8, 0))
    obj = elf.parse(rename_section(data, ".maps"))
    assert obj.maps == {"xsks": elf.MapDef("xsks", 17, 4, 4, 8, 0)}
    assert obj.programs["nmc_xsk_redir"].relocs == (elf.MapReloc(1, "xsks"),)


# -- objects compiled here (need clang) ----------------------------------------

HEADER = """
#include <linux/types.h>
#include <linux/bpf.h>
#define SEC(n) __attribute__((section(n), used))
static long (*const bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)51;
char _license[] SEC("license") = "GPL";
"""


def test_clang_legacy_maps(tmp_path):
    obj = compile_bpf(tmp_path, HEADER + """
struct legacy { __u32 type, key_size, value_size, max_entries, map_flags; };
struct legacy qmap SEC("maps") = { BPF_MAP_TYPE_XSKMAP, 4, 4, 16, 0 };
SEC("xdp") int prog(struct xdp_md *ctx)
{ return bpf_redirect_map(&qmap, ctx->rx_queue_index, XDP_PASS); }
""", extra=())
    parsed = elf.parse(obj)
    assert parsed.maps == {"qmap": elf.MapDef("qmap", 17, 4, 4, 16, 0)}
    assert parsed.programs["prog"].relocs == (elf.MapReloc(1, "qmap"),)
    assert parsed.version is None and parsed.license == "GPL"


def test_clang_btf_map_with_struct_value(tmp_path):
    obj = compile_bpf(tmp_path, HEADER + """
struct val { __u64 a; __u32 b[3]; };
struct { int (*type)[BPF_MAP_TYPE_HASH]; int (*max_entries)[128];
         int (*map_flags)[BPF_F_NO_PREALLOC]; __u16 *key; struct val *value; } h SEC(".maps");
SEC("xdp") int p1(struct xdp_md *ctx) { return bpf_redirect_map(&h, 0, 0); }
SEC("xdp") int p2(struct xdp_md *ctx) { return XDP_DROP; }
""")
    parsed = elf.parse(obj)
    assert parsed.maps["h"] == elf.MapDef("h", 1, 2, 24, 128, 1)  # BPF_F_NO_PREALLOC = 1
    assert set(parsed.programs) == {"p1", "p2"}
    assert parsed.programs["p2"].relocs == ()
    assert all(p.section == "xdp" for p in parsed.programs.values())


def test_clang_subfunction_call_is_refused(tmp_path):
    obj = compile_bpf(tmp_path, HEADER + """
__attribute__((noinline)) int helper(int x) { return x & 3; }
SEC("xdp") int prog(struct xdp_md *ctx) { return helper(ctx->rx_queue_index); }
""")
    check_error(obj.read_bytes(), "bpf-to-bpf calls are not supported")


def test_clang_global_data_is_refused(tmp_path):
    obj = compile_bpf(tmp_path, HEADER + """
__u32 counter;
SEC("xdp") int prog(struct xdp_md *ctx) { counter++; return XDP_PASS; }
""")
    check_error(obj.read_bytes(), "global data in section '.bss'")


def test_clang_btf_maps_without_debug_info(tmp_path):
    obj = compile_bpf(tmp_path, HEADER + """
struct { int (*type)[BPF_MAP_TYPE_XSKMAP]; int (*max_entries)[4]; } x SEC(".maps");
SEC("xdp") int prog(struct xdp_md *ctx) { return bpf_redirect_map(&x, 0, 0); }
""", extra=())
    check_error(obj.read_bytes(), "build with clang -g")


# -- checks the loader makes before any system call ------------------------------

def test_version_mismatch_is_refused_before_loading():
    from nmcompat.bpf import BPFObject
    with pytest.raises(BPFObjectError) as info:
        BPFObject.load(SHIPPED, expect_version=XSK_REDIRECT_VERSION + 1)
    assert f"version stamp {XSK_REDIRECT_VERSION}" in str(info.value)
    assert "make -C bpf" in str(info.value)


def test_replacement_program_needs_an_xskmap(tmp_path, monkeypatch):
    from nmcompat.bpf import load_xsk_redirect
    data = patch_section(SHIPPED.read_bytes(), ".maps", 0, struct.pack("<5I", 1, 4, 4, 8, 0))
    bad = tmp_path / "hash.o"
    bad.write_bytes(rename_section(data, ".maps"))          # legacy map of type HASH
    monkeypatch.setenv("NMCOMPAT_XDP_PROG", str(bad))
    assert xsk_redirect_path() == str(bad)
    with pytest.raises(BPFObjectError, match="no XSKMAP named 'xsks'"):
        load_xsk_redirect()
