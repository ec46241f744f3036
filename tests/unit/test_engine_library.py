"""The engine library: built once, it exports exactly the functions the public
headers declare; the cffi module nmcompat._nmc and the benchmark loops link it
instead of holding their own copies, so a process has one engine."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Set

import pytest

import nmcompat
from testlib import CSRC, REPO_ROOT, bench_command, bench_env, skip_or_fail

PUBLIC_HEADERS = ["nmcompat.h", "nmcompat_tools.h", "nmcompat_portspec.h", "net/netmap.h", "net/netmap_user.h"]
PACKAGE = Path(nmcompat.__file__).resolve().parent
BENCH_PKG = REPO_ROOT / "bench" / "nmcompat_bench"


def declared_functions(path: Path) -> Set[str]:
    """Names of the non-static functions a header declares."""
    text = path.read_text()
    text = re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)
    text = re.sub(r"'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"", "0", text)  # '{' in literals
    text = re.sub(r"#ifdef __cplusplus.*?#endif", " ", text, flags=re.S)
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    while True:                     # bodies of structs and inline functions
        stripped = re.sub(r"\{[^{}]*\}", ";", text)
        if stripped == text:
            break
        text = stripped
    names = set()
    for stmt in text.split(";"):
        stmt = " ".join(stmt.split())
        if re.search(r"\b(static|typedef)\b", stmt):
            continue
        m = re.match(r"^[A-Za-z_][\w\s\*]*?[\s\*](\w+)\s*\(.*\)$", stmt)
        if m:
            names.add(m.group(1))
    return names


def public_functions() -> Set[str]:
    names = set()
    for header in PUBLIC_HEADERS:
        names |= declared_functions(CSRC / "include" / header)
    return names


def nm(path: Path, *flags: str) -> Set[str]:
    if shutil.which("nm") is None:
        skip_or_fail("'nm' (binutils) is not on PATH")
    if not path.exists():
        skip_or_fail(f"{path} is not built (./run setup builds it)")
    out = subprocess.run(["nm", "-D", *flags, str(path)], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def test_header_reader_finds_declarations_only():
    names = public_functions()
    assert {"nmc_pipe_open", "nmc_txsync", "nmc_poll", "nmc_pktgen_run", "nmc_lb_hash"} <= names
    assert "nm_ring_space" not in names            # static inline in netmap_user.h
    assert not any(n.startswith("nmc_bench") for n in names)
    assert len(names) > 30


@pytest.mark.parametrize("lib", [PACKAGE / "libnmcompat.so", REPO_ROOT / "build" / "libnmcompat.so"],
                         ids=["package", "make"])
def test_library_exports_exactly_the_public_headers(lib):
    exported = nm(lib, "--defined-only")
    declared = public_functions()
    assert exported - declared == set(), "exported but not declared in a public header"
    assert declared - exported == set(), "declared in a public header but not exported"


def test_python_module_holds_no_engine_copy():
    ext = next(PACKAGE.glob("_nmc.*so"))
    assert nm(ext, "--defined-only") == {"PyInit__nmc"}
    assert "nmc_pipe_open" in nm(ext, "--undefined-only")      # from libnmcompat.so


def test_benchmark_loops_link_the_engine():
    ext = next(BENCH_PKG.glob("_bench.*so"), BENCH_PKG / "_bench.so")
    defined = nm(ext, "--defined-only")
    assert {"nmc_bench_pipe", "nmc_bench_vale", "nmc_bench_xsk_tx"} <= defined
    assert defined & public_functions() == set()
    assert "nmc_vale_open" in nm(ext, "--undefined-only")


def test_one_engine_in_a_process_with_the_benchmarks():
    code = ("import nmcompat, nmcompat_bench._ffi\n"
            "maps = open('/proc/self/maps').read().split('\\n')\n"
            "print(sorted({l.split()[-1] for l in maps if l.endswith('libnmcompat.so')}))\n")
    proc = subprocess.run([sys.executable, "-c", code], env=bench_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == repr([str(PACKAGE / "libnmcompat.so")])


def test_benchmarks_are_not_in_the_package():
    assert not [p for p in PACKAGE.rglob("*bench*")], "benchmark files inside nmcompat/"
    proc = subprocess.run([sys.executable, "-m", "nmcompat.tools"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "pkt-gen" in proc.stderr and "bench" not in proc.stderr
    proc = subprocess.run(bench_command("nosuch"), env=bench_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    for name in ("pipe", "vale", "afxdp", "compare"):
        assert re.search(rf"^  {name} ", proc.stderr, re.M), proc.stderr
