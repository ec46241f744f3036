"""Build the benchmark loops (bench/csrc) as the cffi extension
nmcompat_bench._bench, linked against the engine library of the installed
nmcompat package (nmcompat/libnmcompat.so), never against a second copy of
the engine's sources.  Run by ./run setup:  python bench/build.py
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cffi import FFI

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CSRC = BENCH / "csrc"
SOURCES = ["bench.c", "bench_vale.c", "bench_vale_cost.c", "bench_xsk.c"]
HEADER = CSRC / "nmcompat_bench.h"
INCLUDES = [ROOT / "csrc" / "include", CSRC]
WARNINGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"]


def _header_decls(path: Path) -> str:
    """The engine's own header-to-cdef reader (csrc/ffi_build.py)."""
    spec = importlib.util.spec_from_file_location("nmc_ffi_build", ROOT / "csrc" / "ffi_build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.header_decls(path)


def engine_dir() -> Path:
    """The installed nmcompat package's directory, which holds libnmcompat.so."""
    spec = importlib.util.find_spec("nmcompat")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("couldn't build the benchmarks: nmcompat is not installed (pip install -e .)")
    where = Path(list(spec.submodule_search_locations)[0])
    if not (where / "libnmcompat.so").exists():
        sys.exit(f"couldn't build the benchmarks: no libnmcompat.so in {where}")
    return where


def builder(libdir: Path) -> FFI:
    ffi = FFI()
    ffi.cdef("struct nmc_port;\n" + _header_decls(HEADER))
    ffi.set_source(
        "nmcompat_bench._bench", '#include "nmcompat_bench.h"\n',
        sources=[str(CSRC / s) for s in SOURCES],
        include_dirs=[str(d) for d in INCLUDES],
        libraries=["nmcompat"], library_dirs=[str(libdir)],
        extra_link_args=[f"-Wl,-rpath,{libdir}"],
        extra_compile_args=["-std=gnu11", "-O2", "-Wall"])
    return ffi


def main() -> int:
    libdir = engine_dir()
    cc = shutil.which("cc") or "gcc"
    for src in SOURCES:     # the loops themselves under the project's warnings
        subprocess.run([cc, *WARNINGS, "-fsyntax-only", *(f"-I{d}" for d in INCLUDES),
                        str(CSRC / src)], check=True)
    with tempfile.TemporaryDirectory(prefix="nmcompat-bench-build-") as tmp:
        built = Path(builder(libdir).compile(tmpdir=tmp, verbose=False))
        for old in (BENCH / "nmcompat_bench").glob("_bench.*.so"):
            old.unlink()
        shutil.copy2(built, BENCH / "nmcompat_bench" / built.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
