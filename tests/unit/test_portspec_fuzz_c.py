"""The port-name parser under AddressSanitizer and UBSan: random texts of
both grammars' pieces and of any byte (tests/engine/portspec_fuzz.c, built
with csrc/portspec's sources only).  Any sanitizer report aborts the run."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List

import pytest

from testlib import CSRC, ENGINE_TESTS, engine_make_var, skip_or_fail
from vale_helpers import ASAN_ENV, ASAN_FLAGS, cc, sanitizers_unavailable


def parser_sources() -> List[Path]:
    return [CSRC / s for s in engine_make_var("SRCS") if s.startswith("portspec/")]


def build(out: Path, extra: List[str] = (), sources: List[Path] = ()) -> Path:
    cmd = [cc(), "-std=gnu11", "-O1", "-g", *ASAN_FLAGS, "-Wall", "-Wextra", "-Werror",
           f"-I{CSRC / 'include'}", *extra, str(ENGINE_TESTS / "portspec_fuzz.c"),
           *map(str, sources or parser_sources()), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"couldn't build portspec_fuzz:\n{' '.join(cmd)}\n{proc.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory) -> Path:
    why = sanitizers_unavailable()
    if why:
        skip_or_fail(why)
    return build(tmp_path_factory.mktemp("portspec-fuzz") / "portspec_fuzz")


def run(exe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *args], capture_output=True, text=True, errors="replace",
                          timeout=600, env=dict(os.environ, **ASAN_ENV))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_texts_under_sanitizers(fuzz, seed):
    out = run(fuzz, "-s", str(seed), "-n", "100000")
    assert out.returncode == 0 and "Sanitizer" not in out.stderr, out.stdout[-2000:] + out.stderr[-4000:]
    fields = dict(f.split("=") for f in out.stdout.split()[1:])
    assert out.stdout.startswith("done ") and int(fields["requests"]) > 10000, out.stdout


SHIM = r"""
#include "nmcompat_portspec.h"
#include <string.h>
int nmc_portspec_parse_real(const char *, int, struct nmc_portspec *, struct nmc_portspec_error *);
/* a parser whose errors point one byte past the text */
int nmc_portspec_parse(const char *text, int grammar, struct nmc_portspec *out,
                       struct nmc_portspec_error *err)
{
    int ret = nmc_portspec_parse_real(text, grammar, out, err);

    if (ret < 0)
        err->position = (unsigned)strlen(text) + 1;
    return ret;
}
"""


def test_the_harness_sees_a_broken_parser(fuzz, tmp_path):
    shim = tmp_path / "shim.c"
    shim.write_text(SHIM)
    renamed = []
    for src in parser_sources():
        obj = tmp_path / (src.stem + ".o")
        define = ["-Dnmc_portspec_parse=nmc_portspec_parse_real"] if src.name == "portspec.c" else []
        proc = subprocess.run([cc(), "-std=gnu11", "-O1", "-g", *ASAN_FLAGS, f"-I{CSRC / 'include'}",
                               *define, "-c", str(src), "-o", str(obj)], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        renamed.append(obj)
    exe = build(tmp_path / "broken", sources=[shim, *renamed])
    out = run(exe, "-s", "1", "-n", "1000")
    assert out.returncode == 1 and out.stdout.startswith("FAIL ") and "position" in out.stdout, out.stdout
