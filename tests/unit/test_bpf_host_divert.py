"""The shipped tc object of host rings (bpf/host_divert.bpf.c): what the
ELF reader makes of it, and that it is what bpf/Makefile builds."""
from __future__ import annotations

import subprocess
from pathlib import Path


from nmcompat.backends._host import HOST_DIVERT_OBJECT, HOST_DIVERT_VERSION
from nmcompat.bpf import elf

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "nmcompat" / "backends" / "afxdp" / HOST_DIVERT_OBJECT
PROGRAMS = {"nmc_host_egress", "nmc_host_inject", "nmc_nic_cutoff", "nmc_stack_drop"}


def test_shipped_object_has_the_tc_programs_and_maps():
    obj = elf.parse(SHIPPED)
    assert set(obj.programs) == PROGRAMS
    assert all(p.tc and p.section == "tc" and not p.frags for p in obj.programs.values())
    assert obj.version == HOST_DIVERT_VERSION
    assert (obj.maps["cfg"].max_entries, obj.maps["cut"].max_entries) == (3, 256)
    assert obj.maps["cfg"].type == obj.maps["cut"].type == 2      # BPF_MAP_TYPE_ARRAY


def test_xdp_programs_are_not_tc():
    xsk = elf.parse(SHIPPED.with_name("xsk_redirect.bpf.o"))
    assert xsk.programs and not any(p.tc for p in xsk.programs.values())


def test_shipped_object_is_current(tmp_path):
    """The committed object is what bpf/Makefile builds from bpf/host_divert.bpf.c."""
    from test_bpf_elf import need_clang
    need_clang()
    subprocess.run(["make", "-s", "-B", "-C", str(ROOT / "bpf"), f"OUT={tmp_path}"], check=True)
    rebuilt, shipped = elf.parse(tmp_path / HOST_DIVERT_OBJECT), elf.parse(SHIPPED)
    for name, prog in shipped.programs.items():
        assert rebuilt.programs[name].insns == prog.insns, \
            f"{SHIPPED.name} is stale: run make -C bpf and commit it"
    assert (rebuilt.maps, rebuilt.version) == (shipped.maps, shipped.version)
