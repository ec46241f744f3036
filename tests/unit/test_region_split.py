"""A region is two files: the netmap memory users map (mem.<id>, the memory
from offset 0) and the engine's control state (ctl.<id>, never mapped by
users).  The control header carries the layout stamp of the build that
created it; another build refuses to attach.  The package refuses an engine
built for another ABI."""
from __future__ import annotations

import errno
import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nmcompat
from nmcompat import vale
from nmcompat import _ffi
from nmcompat._ffi import ffi, lib

ROOT = Path(__file__).resolve().parents[2]
STAMP_OFS = 8                   # struct nmc_region_hdr: magic, then the layout stamp


def ctl_path(p) -> Path:
    mem = Path(p.info.region)
    return mem.with_name("ctl." + mem.name.split(".", 1)[1])


def test_memory_file_is_the_netmap_memory_from_offset_zero(rundir):
    with nmcompat.open("netmap:x{1", slots=64) as p:
        mem, ctl = Path(p.info.region), ctl_path(p)
        assert mem.name.startswith("mem.") and ctl.exists()
        for f in (mem, ctl):
            st = os.stat(f)
            assert stat.S_IMODE(st.st_mode) == 0o666 and st.st_uid == os.geteuid()
            # its second name, for an opener that dropped its privileges (region.c)
            assert os.path.samefile(f, mem.parent / "wake" / f"{mem.name}.{f.name[:3]}")
        # nothing but the netmap memory: no room for control state
        assert mem.stat().st_size == p.info.memsize
        # the netmap_if is at nr_offset of the file, as netmap's mmap at offset 0
        raw = mem.read_bytes()[p.info.nr_offset:p.info.nr_offset + 16]
        assert raw.rstrip(b"\0") == b"x{1"
        # the control header is at the start of the other file
        assert ctl.read_bytes()[:8] == b"nacregio"
        assert b"nacregio" not in mem.read_bytes()[:1 << 20]


def patch_stamp(ctl: Path, delta: int) -> int:
    with open(ctl, "r+b") as f:
        f.seek(STAMP_OFS)
        old = int.from_bytes(f.read(8), "little")
        f.seek(STAMP_OFS)
        f.write(((old + delta) % (1 << 64)).to_bytes(8, "little"))
    return old


def test_a_region_of_another_layout_is_refused(rundir):
    with nmcompat.open("netmap:x{1", slots=64) as a:
        ctl = ctl_path(a)
        stamp = patch_stamp(ctl, 1)
        assert stamp == lib.nmc_layout_stamp()
        try:
            for spec in ("netmap:x}1", "netmap:x{2"):
                with pytest.raises(OSError) as ei:
                    nmcompat.open(spec)
                assert ei.value.errno == errno.EPROTO
                msg = str(ei.value)
                assert "region was created by an incompatible nmcompat build" in msg
                assert f"{stamp:#018x}" in msg and "use another rundir" in msg
            # the foreign region was left alone: not replaced, not reaped
            assert sorted(n for n in os.listdir(rundir) if n.startswith(("mem.", "ctl.")) and "." not in n[4:]) == \
                sorted([Path(a.info.region).name, ctl.name])
        finally:
            patch_stamp(ctl, -1)
        with nmcompat.open("netmap:x}1") as b:          # the right stamp attaches again
            assert b.info.region == a.info.region


def test_a_vale_region_of_another_layout_is_refused(rundir):
    with nmcompat.open("vale0:a") as a:
        ctl = ctl_path(a)
        patch_stamp(ctl, 1 << 40)
        try:
            with pytest.raises(OSError) as ei:
                nmcompat.open("vale0:a")
            assert ei.value.errno == errno.EPROTO
            with nmcompat.open("vale0:b") as b:         # the switch keeps the foreign port
                b.inject(b"\xff" * 6 + b"\x02" + b"\0" * 53)
                b.txsync()
                assert [e.name for e in vale.ports()] == ["vale0:a", "vale0:b"]
        finally:
            patch_stamp(ctl, -(1 << 40))


def test_engine_abi_matches_the_public_header():
    text = (ROOT / "csrc" / "include" / "nmcompat.h").read_text()
    header = int(re.search(r"#define NMC_ABI_VERSION (\d+)", text).group(1))
    assert header == _ffi.ENGINE_ABI == lib.nmc_abi_version()


def test_engine_of_another_abi_is_refused_at_import(tmp_path):
    # a stand-in for a stale engine build: the real one, reporting another ABI
    code = textwrap.dedent(f"""
        import sys, types
        import nmcompat._nmc as real
        for name in [m for m in sys.modules if m.split(".")[0] == "nmcompat"]:
            del sys.modules[name]           # import the package again, over the fake
        class Lib:
            def __getattr__(self, name):
                return getattr(real.lib, name)
            def nmc_abi_version(self):
                return {_ffi.ENGINE_ABI + 1}
        fake = types.ModuleType("nmcompat._nmc")
        fake.ffi, fake.lib = real.ffi, Lib()
        sys.modules["nmcompat._nmc"] = fake
        try:
            import nmcompat
        except ImportError as exc:
            print("ImportError:", exc)
        else:
            print("imported")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ImportError: couldn't import the nmcompat engine"), out.stdout
    assert f"built for engine ABI {_ffi.ENGINE_ABI + 1}" in out.stdout
    assert f"needs ABI {_ffi.ENGINE_ABI}" in out.stdout


def test_abi_check_accepts_its_own_version():
    _ffi.check_engine_abi(_ffi.ENGINE_ABI)
    with pytest.raises(ImportError):
        _ffi.check_engine_abi(_ffi.ENGINE_ABI - 1)
    assert ffi.sizeof("struct nmc_port_info") > 0
