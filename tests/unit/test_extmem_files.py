"""Which files @extmem accepts: never one of the runtime directory's own
(a region's memory or control file, a switch file, the name lock), whose
bytes would then be a second region's memory as well."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

import nmcompat

RING_OBJ = 69632
IF_POOL = 8192 * 64
PAGE = 4096


def _entries(rundir, prefix):
    return sorted(n for n in os.listdir(rundir) if n.startswith(prefix))


def test_a_regions_memory_file_is_not_an_extmem_file(rundir):
    with nmcompat.open("vale3:v") as v:
        mem = rundir / f"mem.{v.info.mem_id}"
        assert mem.stat().st_size >= IF_POOL + 8 * RING_OBJ + PAGE + 64 * 2048
        before = _entries(rundir, ("mem.", "ctl."))
        with pytest.raises(OSError) as ei:
            nmcompat.open(f"netmap:d{{1@extmem:file={mem},ring-num=8", slots=8)
        assert ei.value.errno == errno.EBUSY and "runtime directory" in str(ei.value)
        assert _entries(rundir, ("mem.", "ctl.")) == before


@pytest.mark.parametrize("name", ["lock", "vale.vale3"])
def test_the_runtime_directorys_own_files_are_not_extmem_files(rundir, name):
    with nmcompat.open("vale3:v"):
        path = rundir / name
        size = path.stat().st_size
        with pytest.raises(OSError) as ei:
            nmcompat.open(f"netmap:d{{1@extmem:file={path},ring-num=8", slots=8)
        assert ei.value.errno == errno.EBUSY
        assert path.stat().st_size == size


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_a_file_others_may_write_is_not_an_extmem_file(rundir, mode):
    """Whoever may write the file may truncate it, and every process
    mapping the region then dies of SIGBUS on its next access: only the
    owner may (netmap pins the memory; a file cannot be)."""
    path = rundir.parent / f"{rundir.name}.ext"
    try:
        with open(path, "wb") as f:
            f.truncate(IF_POOL + 8 * RING_OBJ + PAGE + 512 * 2048)
        os.chmod(path, mode)
        with pytest.raises(PermissionError) as ei:
            nmcompat.open(f"netmap:d{{1@extmem:file={path},ring-num=8", slots=8)
        assert "others may write it" in str(ei.value)
        assert path.stat().st_nlink == 1 and not _entries(rundir, ("mem.", "ctl."))
        os.chmod(path, 0o640)
        with nmcompat.open(f"netmap:d{{1@extmem:file={path},ring-num=8", slots=8) as d:
            assert d.info.memsize <= path.stat().st_size
    finally:
        path.unlink(missing_ok=True)


_NATIVE = """
import json, os, sys, nmcompat
rundir, shared = sys.argv[1], sys.argv[2]
out = []
with nmcompat.open("vale8:a", backend="native") as v:
    for path in (f"{rundir}/mem.{v.info.mem_id}", shared):
        try:
            nmcompat.open(f"netmap:nx{{1@extmem:file={path},ring-num=8", backend="native", slots=8)
            out.append(0)
        except OSError as exc:
            out.append(exc.errno)
print(json.dumps(out))
"""


def test_the_same_files_are_refused_through_netmap_req_opt_extmem(rundir):
    """Under exec, NETMAP_REQ_OPT_EXTMEM with a mapping of such a file gets
    the errno in nro_status, as @extmem does."""
    shared = rundir.parent / f"{rundir.name}.ext"
    try:
        with open(shared, "wb") as f:
            f.truncate(IF_POOL + 8 * RING_OBJ + PAGE + 512 * 2048)
        os.chmod(shared, 0o666)
        argv = [sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", str(rundir), "--",
                sys.executable, "-c", _NATIVE, str(rundir), str(shared)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout.splitlines()[-1]) == [errno.EBUSY, errno.EACCES]
    finally:
        shared.unlink(missing_ok=True)


@pytest.mark.parametrize("option, key", [("buf_num", "buf-num"), ("buf_size", "buf-size")])
def test_region_options_beside_extmem_are_refused_not_dropped(rundir, option, key):
    """buf_num= and buf_size= size a region the engine makes; @extmem's
    region is sized by its file and its own keys, so they would be unused."""
    path = rundir.parent / f"{rundir.name}.ext"
    try:
        with open(path, "wb") as f:
            f.truncate(IF_POOL + 8 * RING_OBJ + PAGE + 1024 * 4096)
        with pytest.raises(nmcompat.OptionError) as ei:
            nmcompat.open(f"netmap:d{{1@extmem:file={path},ring-num=8", slots=8, **{option: 4096})
        assert ei.value.option == option and key in str(ei.value)
        assert not _entries(rundir, ("mem.", "ctl."))
    finally:
        path.unlink(missing_ok=True)


def test_an_extmem_region_short_of_buffers_says_what_to_change(rundir):
    path = rundir.parent / f"{rundir.name}.ext"
    try:
        with open(path, "wb") as f:
            f.truncate(IF_POOL + 8 * RING_OBJ + PAGE + 1024 * 2048)
        with pytest.raises(OSError) as ei:      # a 1024-slot pipe's rings need 4096 buffers
            nmcompat.open(f"netmap:d{{1@extmem:file={path},ring-num=8")
        assert ei.value.errno == errno.ENOMEM
        assert "@extmem" in str(ei.value) and "buf_num=" not in str(ei.value)
    finally:
        path.unlink(missing_ok=True)


def test_an_extmem_vale_port_short_of_buffers_says_what_to_change(rundir):
    path = rundir.parent / f"{rundir.name}.ext"
    try:
        with open(path, "wb") as f:
            f.truncate(IF_POOL + 8 * RING_OBJ + PAGE + 1024 * 2048)
        with pytest.raises(OSError) as ei:      # a VALE port's rings need 2048 buffers
            nmcompat.open(f"vale6:x@extmem:file={path},ring-num=8")
        assert ei.value.errno == errno.ENOMEM
        assert "@extmem" in str(ei.value) and "buf_num=" not in str(ei.value)
    finally:
        path.unlink(missing_ok=True)


def test_share_of_an_open_vale_port_elsewhere_says_why(rundir):
    with nmcompat.open("vale5:a"), nmcompat.open("vale5:b") as b, \
            nmcompat.open("netmap:s{1") as s, pytest.raises(OSError) as ei:
        assert b.info.mem_id != s.info.mem_id
        nmcompat.open("vale5:b@share=netmap:s{1")
    assert ei.value.errno == errno.EINVAL
    assert "@share" in str(ei.value) and "another region" in str(ei.value)
