"""netmap's libnetmap C API (<libnetmap.h>: nmport_*, nmreq_*, nmctx_*),
served by libnmcompat-netmap.so.  The programs in tests/devnetmap/ are built
as netmap programs are, `cc $(nmcompat-config --cflags) prog.c
$(nmcompat-config --libs)`, and run with no `nmcompat exec` and no
LD_LIBRARY_PATH.  lnm_xchg.c is written for netmap itself (<libnetmap.h>
and nothing else of nmcompat); it and nm_xchg_legacy.c (nm_open) exchange
a million frames each way over a pipe."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testlib import SANITIZE_FLAGS, engine_make_var, rundir_entries, skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
DEVNETMAP = ROOT / "tests" / "devnetmap"
BIN = Path(sys.executable).parent
CONFIG = BIN / "nmcompat-config"
CFLAGS = "-O2 -g -Wall -Wextra -Werror"
MILLION = 1_000_000


def build(out: Path, source: Path, libs: bool = True, extra: str = "", after: str = "", cc: str = "gcc") -> Path:
    """cc $(nmcompat-config --cflags) source [$(nmcompat-config --libs)], through a shell."""
    if not shutil.which(cc):
        skip_or_fail(f"{cc} is missing")
    if not CONFIG.exists():
        skip_or_fail(f"{CONFIG} is not installed (./run setup)")
    line = (f"{cc} {CFLAGS} {extra} $(nmcompat-config --cflags) {source} -o {out}"
            + (" $(nmcompat-config --libs)" if libs else "") + f" {after}")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, line + "\n" + proc.stderr[-3000:]
    return out


def clean_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "LD_LIBRARY_PATH")}
    env.update(extra or {})
    return env


def run(prog: Path, *args, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([str(prog), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=clean_env() if env is None else env)


@pytest.fixture(scope="module")
def progs(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("libnetmap")
    return {name: build(out / name, DEVNETMAP / f"{name}.c")
            for name in ("lnm_api", "lnm_opts", "lnm_xchg", "nm_xchg_legacy")}


def exchange(legacy: Path, lnm: Path, legacy_name: str, lnm_name: str, count: int, env=None):
    """Both ends at once; each sends `count` frames and checks the `count` it receives."""
    env = clean_env() if env is None else env
    peer = subprocess.Popen([str(legacy), legacy_name, str(count)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        mine = run(lnm, lnm_name, count, env=env, timeout=300)
        out, err = peer.communicate(timeout=300)
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.wait()
    return (peer.returncode, out, err), (mine.returncode, mine.stdout, mine.stderr)


# ---------------------------------------------------------------------------
# the done-when item: nm_open and libnetmap over one pipe, no wrapper


@pytest.mark.parametrize("legacy_end, lnm_end, count", [("{", "}", MILLION), ("}", "{", 200_000)])
def test_legacy_and_libnetmap_programs_exchange_frames_over_a_pipe(progs, rundir, legacy_end, lnm_end, count):
    """nm_open's end and nmport_open's end of one pipe, each sending and
    receiving `count` frames (60 to 1459 bytes, sequence and content checked
    at the receiver), in two processes started as they are."""
    legacy, mine = exchange(progs["nm_xchg_legacy"], progs["lnm_xchg"], f"netmap:lx{legacy_end}1",
                            f"netmap:lx{lnm_end}1", count)
    assert legacy == (0, f"legacy ok sent {count} got {count}\n", ""), legacy
    assert mine == (0, f"libnetmap ok sent {count} got {count}\n", ""), mine
    assert rundir_entries(rundir) == ["lock"]


def test_the_libnetmap_program_is_a_plain_netmap_program(progs):
    """lnm_xchg.c includes <libnetmap.h> and system headers only, calls
    nothing of nmcompat's own (no nmc_ symbol), and finds libnetmap in
    libnmcompat-netmap.so, linked before libc, with no LD_LIBRARY_PATH."""
    includes = re.findall(r'^#include\s+[<"]([^>"]+)[>"]', (DEVNETMAP / "lnm_xchg.c").read_text(), re.M)
    assert set(includes) <= {"libnetmap.h", "errno.h", "poll.h", "sys/ioctl.h", "xchg_frames.h"}, includes
    frames = re.findall(r'^#include\s+[<"]([^>"]+)[>"]', (DEVNETMAP / "xchg_frames.h").read_text(), re.M)
    assert set(frames) <= {"stdint.h", "stdio.h", "stdlib.h", "string.h"}, frames
    if not shutil.which("readelf") or not shutil.which("nm"):
        skip_or_fail("binutils (readelf, nm) are missing")
    undefined = subprocess.run(["nm", "-u", str(progs["lnm_xchg"])], capture_output=True, text=True).stdout
    assert "nmport_open" in undefined and "nmc_" not in undefined, undefined
    dyn = subprocess.run(["readelf", "-d", str(progs["lnm_xchg"])], capture_output=True, text=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn)
    assert needed.index("libnmcompat-netmap.so") < needed.index("libc.so.6"), needed


def test_the_library_exports_exactly_the_headers_functions():
    """Every function <libnetmap.h> declares is defined by the package's
    libnmcompat-netmap.so, and the nm* names it exports are all declared."""
    if not shutil.which("nm"):
        skip_or_fail("'nm' (binutils) is not on PATH")
    lib = ROOT / "nmcompat" / "libnmcompat-netmap.so"
    if not lib.exists():
        skip_or_fail(f"{lib} is not built (./run setup)")
    text = re.sub(r"/\*.*?\*/", "", (CSRC / "include" / "libnetmap.h").read_text(), flags=re.S)
    declared = set(re.findall(r"^[a-z][\w ]*?[ *](nm(?:port|req|ctx)_\w+)\(", text, re.M))
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True)
    exported = {line.split()[-1] for line in out.stdout.splitlines() if line.split()[-2:-1] == ["T"]}
    assert len(declared) >= 40 and declared <= exported, declared - exported
    assert {e for e in exported if e.startswith(("nmport_", "nmreq_", "nmctx_"))} == declared


# ---------------------------------------------------------------------------
# each function as documented


def test_contexts(progs, rundir):
    """The default context (stderr, verbose 1, a lock), the error callback
    set as a field or with nmctx_set_error, verbosity, a long message, and a
    program's own context as the default: its malloc, free and lock are the
    ones used, and everything allocated is freed by nmport_close()."""
    out = run(progs["lnm_api"], "ctx", "lc")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "ctx ok\n" and out.stderr == "printed 1\nprinted 2\n"
    assert rundir_entries(rundir) == ["lock"]


@pytest.mark.parametrize("mode", ["steps", "share", "inject", "errors"])
def test_port_descriptors(progs, rundir, mode):
    """steps: prepare, register, mmap, each undone and redone, the checks
    between them (already registered, already mapped, unregistered), extra
    buffers between prepare and open_desc, a failed parse leaving the
    descriptor as it was.  share: the two ends of a pipe share one mapping
    (refcount 2, kept by the other end after a close), VALE ports have one
    each, a clone opened on one ring pair shares its parent's, @share.
    inject: NS_MOREFRAG chains, 0-byte packets, a ring without room.
    errors: netmap's errnos with the messages sent through the context."""
    out = run(progs["lnm_api"], mode, f"l{mode[:2]}")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{mode} ok\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


@pytest.mark.parametrize("mode", ["extmem", "offset", "switch", "decode"])
def test_options_and_decoders(progs, rundir, tmp_path, mode):
    """extmem and offsets reach REGISTER in the option chain; extmem of
    anonymous memory is refused there with EOPNOTSUPP (nro_status), of a file
    off the runtime directory's filesystem with EXDEV, and a file on it is
    the region's memory (the pools written back); @extmem maps its file
    with the pool keys; nmport_enable/disable_option; @conf; @share;
    the piecewise decoders with the program's own option parser."""
    extmem = tmp_path / "extmem"
    extmem.write_bytes(bytes(65536))
    shm = rundir.parent / f"{rundir.name}.extmem"
    with open(shm, "wb") as f:
        f.truncate(8192 * 64 + 8 * 69632 + 4096 + 8192 * 2048)
    try:
        args = (extmem, shm) if mode == "extmem" else ()
        out = run(progs["lnm_opts"], mode, f"o{mode[:2]}", *args)
    finally:
        shm.unlink()
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{mode} ok\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def test_the_header_compiles_and_runs_as_cpp(tmp_path, rundir):
    src = tmp_path / "lnm.cc"
    src.write_text(r'''
#include <libnetmap.h>
#include <cstdio>

int main()
{
    nmport_d *tx = nmport_open("netmap:lp{1");
    nmport_d *rx = nmport_open("netmap:lp}1");
    char frame[100] = { 1, 2, 3 };

    if (!tx || !rx || tx->mem != rx->mem || nmport_inject(tx, frame, sizeof(frame)) != (int)sizeof(frame))
        return 1;
    nmport_close(rx);
    nmport_close(tx);
    std::printf("c++ ok\n");
    return 0;
}
''')
    prog = build(tmp_path / "lnm_cc", src, cc="g++", extra="-std=c++11")
    out = run(prog)
    assert out.returncode == 0 and out.stdout == "c++ ok\n" and out.stderr == "", (out.returncode, out.stderr)
    assert rundir_entries(rundir) == ["lock"]


# ---------------------------------------------------------------------------
# under AddressSanitizer and UBSan


@pytest.fixture(scope="module")
def asan_library(tmp_path_factory) -> dict:
    """The engine, the emulation and libnetmap as one library built with
    ASan and UBSan, and the environment preloading it."""
    from testlib import engine_include_flags
    from vale_helpers import ASAN_ENV, cc, sanitizers_unavailable

    why = sanitizers_unavailable()
    if why:
        skip_or_fail(why)
    lib = tmp_path_factory.mktemp("lnmasan") / "libnmcompat-netmap-asan.so"
    sources = [str(CSRC / s) for s in engine_make_var("SRCS") + engine_make_var("DEV_SRCS")]
    cmd = [cc(), "-std=gnu11", "-O1", "-g", "-fPIC", "-shared", *SANITIZE_FLAGS, "-Wall", "-Wextra", "-Werror",
           *engine_include_flags(), f"-I{CSRC / 'devnetmap'}", *sources, "-ldl", "-lpthread", "-o", str(lib)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runtime = subprocess.run([cc(), "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return {"lib": lib, "env": clean_env(dict(ASAN_ENV, LD_PRELOAD=f"{runtime}:{lib}"))}


def test_libnetmap_under_asan_and_ubsan(tmp_path, rundir, asan_library):
    """Every mode again, and a shorter exchange, with the library
    instrumented and leak checking on (the programs linked against it)."""
    env = dict(asan_library["env"], NMCOMPAT_RUNDIR=str(rundir))
    lib = asan_library["lib"]
    progs = {name: build(tmp_path / name, DEVNETMAP / f"{name}.c", libs=False,
                         after=f"{lib} -Wl,-rpath,{lib.parent}")
             for name in ("lnm_api", "lnm_opts", "lnm_xchg", "nm_xchg_legacy")}
    extmem = tmp_path / "extmem"
    extmem.write_bytes(bytes(65536))
    runs = [("lnm_api", m, f"z{m[:2]}") for m in ("ctx", "steps", "share", "inject", "errors")]
    shm = rundir.parent / f"{rundir.name}.extmem"
    with open(shm, "wb") as f:
        f.truncate(8192 * 64 + 8 * 69632 + 4096 + 8192 * 2048)
    runs += [("lnm_opts", "extmem", "yex", extmem, shm)]
    runs += [("lnm_opts", m, f"y{m[:2]}") for m in ("offset", "switch", "decode")]
    for prog, *args in runs:
        out = run(progs[prog], *args, env=env, timeout=300)
        assert "Sanitizer" not in out.stderr and "runtime error" not in out.stderr, out.stderr[-4000:]
        assert out.returncode == 0 and out.stdout == f"{args[0]} ok\n", (args, out.stderr[-4000:])
    legacy, mine = exchange(progs["nm_xchg_legacy"], progs["lnm_xchg"], "netmap:zx{1", "netmap:zx}1", 20000,
                            env=env)
    assert legacy[0] == 0 and mine[0] == 0, (legacy, mine)
    assert "Sanitizer" not in legacy[2] + mine[2], (legacy[2][-3000:], mine[2][-3000:])
    shm.unlink()
    assert rundir_entries(rundir) == ["lock"]
