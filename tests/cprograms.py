"""The C programs tests build and run: programs of tests/devnetmap (netmap's
own fd interface, linked with nothing of nmcompat, run under `nmcompat
exec`) and libraries put in front of libc with LD_PRELOAD."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from testlib import CSRC, REPO_ROOT, skip_or_fail

DEVNETMAP = REPO_ROOT / "tests" / "devnetmap"
NM_RAW = ("nm_raw.c", "nm_raw_fds.c")       # nm_raw: its traffic modes, its modes that move an fd


def _cc(argv: Sequence[str]) -> None:
    """Runs the compiler; a failure raises CalledProcessError, its
    diagnostics in the exception and on the test's stderr."""
    if not shutil.which(argv[0]):
        skip_or_fail(f"{argv[0]} is missing")
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        done.check_returncode()


def devnetmap_program(out: Path, *sources: str, flags: Sequence[str] = ()) -> Path:
    """gcc the sources (names in tests/devnetmap) into the program out,
    against netmap's headers only (csrc/include)."""
    _cc(["gcc", "-O1", "-g", "-Wall", "-Wextra", "-Werror", f"-I{CSRC / 'include'}", "-o", str(out),
         *(str(DEVNETMAP / s) for s in sources), *flags, "-lpthread"])
    return out


def preload_library(out: Path, source: Path) -> Path:
    """cc source into the shared library out, for LD_PRELOAD (it finds the
    calls it wraps with dlsym(RTLD_NEXT))."""
    _cc(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(source), "-ldl"])
    return out
