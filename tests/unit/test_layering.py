"""The engine's layers: no file depends on a file above it.

    include/          public headers
    portspec/         the port-name parser: public headers only, calls nothing of the engine
    core/             the engine core: names no transport, calls none
    transport/<x>/    one folder per kind of port (plus transport/*.h shared ids):
                      uses the core, never another transport
    tools/            the tool loops: public headers and public functions only

Checked twice: by the `#include "..."` lines (followed through headers),
and by the symbols each compiled object references (`nm`), so that a call
declared in a private header cannot slip through either.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest

from testlib import CSRC, engine_make_var, skip_or_fail

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
DECL_RE = re.compile(r"\b(nmc_\w+)\s*\(|\bstruct\s+(nmc_\w+)")


def layer_of(path: Path, csrc: Path) -> str:
    """'include', 'core', 'transport' (shared ids), 'transport/<x>', 'tools'."""
    parts = path.relative_to(csrc).parts
    if parts[0] == "transport" and len(parts) > 2:
        return "transport/" + parts[1]
    return parts[0]


def may_include(src_layer: str, hdr_layer: str) -> bool:
    allowed = {
        "include": {"include"},
        "portspec": {"include", "portspec"},
        "core": {"include", "core"},
        "tools": {"include", "tools"},
        "transport": {"include", "core", "transport"},
    }
    if src_layer.startswith("transport/"):
        return hdr_layer in ("include", "core", "transport", src_layer)
    return hdr_layer in allowed[src_layer]


def may_call(src_layer: str, def_layer: str) -> bool:
    """May code of src_layer reference a symbol defined in def_layer?
    (tools are checked against the public declarations instead.)"""
    if src_layer in ("core", "portspec"):
        return def_layer == src_layer
    if src_layer.startswith("transport/"):
        return def_layer in ("core", src_layer)
    return True


def engine_sources(csrc: Path) -> List[Path]:
    """The engine's C files (benchmarks, outside csrc/, are not layers of it)."""
    return [csrc / s for s in engine_make_var_at(csrc, "SRCS") if not s.startswith("..")]


def engine_make_var_at(csrc: Path, name: str) -> List[str]:
    if csrc == CSRC:
        return engine_make_var(name)
    m = re.search(rf"^{name}\s*=\s*(.+)$", (csrc / "Makefile").read_text(), re.M)
    return m.group(1).split() if m else []


def resolve_include(name: str, including: Path, csrc: Path) -> Optional[Path]:
    for d in [including.parent] + [csrc / i for i in engine_make_var_at(csrc, "INCDIRS")]:
        if (d / name).is_file():
            return (d / name).resolve()
    return None


def include_violations(csrc: Path) -> List[str]:
    """Every (file, header) pair where a file reaches a header above it,
    directly or through other headers."""
    bad = []
    for src in engine_sources(csrc):
        src_layer = layer_of(src, csrc)
        seen: Set[Path] = set()
        todo: List[Tuple[Path, str]] = [(src, src.name)]
        while todo:
            f, chain = todo.pop()
            for name in INCLUDE_RE.findall(f.read_text()):
                hdr = resolve_include(name, f, csrc)
                if hdr is None or hdr in seen:
                    continue
                seen.add(hdr)
                if not may_include(src_layer, layer_of(hdr, csrc)):
                    bad.append(f"{src.relative_to(csrc)} includes {hdr.relative_to(csrc)}"
                               f" ({chain} -> {name})")
                todo.append((hdr, f"{chain} -> {name}"))
    return bad


def public_functions(csrc: Path) -> Set[str]:
    names: Set[str] = set()
    for h in (csrc / "include").glob("*.h"):
        names.update(n for pair in DECL_RE.findall(h.read_text()) for n in pair if n)
    return names


def _compile(cc: str, src: Path, out: Path, csrc: Path) -> Tuple[Set[str], Set[str]]:
    """(defined, undefined) global symbols of src compiled alone."""
    flags = ["-std=gnu11", "-O0", "-fPIC", "-c"] + \
            [f"-I{csrc / d}" for d in engine_make_var_at(csrc, "INCDIRS")]
    proc = subprocess.run([cc, *flags, str(src), "-o", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"couldn't compile {src}:\n{proc.stderr}"
    nm = subprocess.run(["nm", str(out)], capture_output=True, text=True, timeout=60, check=True)
    defined, undefined = set(), set()
    for line in nm.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[-2] == "U":
            undefined.add(fields[-1])
        elif len(fields) == 3 and fields[1] in "TDBRGSVW":
            defined.add(fields[2])
    return defined, undefined


def symbol_violations(csrc: Path, workdir: Path) -> List[str]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc or not shutil.which("nm"):
        skip_or_fail("the layering check needs cc and nm on PATH")
    srcs = engine_sources(csrc)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(
            lambda s: _compile(cc, s, workdir / (str(s.relative_to(csrc)).replace("/", "_") + ".o"), csrc),
            srcs))
    owner: Dict[str, str] = {}
    for src, (defined, _) in zip(srcs, results):
        for sym in defined:
            owner[sym] = layer_of(src, csrc)
    public = public_functions(csrc)
    bad = []
    for src, (_, undefined) in zip(srcs, results):
        layer = layer_of(src, csrc)
        for sym in sorted(undefined):
            where = owner.get(sym)
            if where is None:
                continue                        # libc and the like
            if layer == "tools":
                ok = where == "tools" or sym in public
            else:
                ok = may_call(layer, where)
            if not ok:
                bad.append(f"{src.relative_to(csrc)} ({layer}) uses {sym} of {where}")
    return bad


def test_no_file_includes_a_header_above_it():
    bad = include_violations(CSRC)
    assert not bad, "includes across layers:\n" + "\n".join(bad)


def test_no_object_references_a_symbol_above_it(tmp_path):
    bad = symbol_violations(CSRC, tmp_path)
    assert not bad, "symbols used across layers:\n" + "\n".join(bad)


def test_core_names_no_transport():
    """No kind id, transport function or transport header in the core."""
    names = re.compile(r"NMC_KIND_\w+|nmc_(pipe|vale|xsk|pkt|nic|sw|lease)_\w+|"
                       r"nmc_(vale|xsk|nic|kinds)\.h")
    public = public_functions(CSRC)
    bad = []
    for f in sorted((CSRC / "core").glob("*.[ch]")):
        for m in names.finditer(f.read_text()):
            if m.group(0) not in public:
                bad.append(f"{f.name}: {m.group(0)}")
    assert not bad, "the core names transports:\n" + "\n".join(bad)


@pytest.mark.parametrize("rule", ["include", "symbol"])
def test_the_check_sees_a_violation(tmp_path, rule):
    """A copy of the tree with one core file calling up into a transport
    is refused by each check (so neither check passes vacuously)."""
    tree = tmp_path / "csrc"
    shutil.copytree(CSRC, tree)
    port = tree / "core" / "sync.c"
    port.write_text(port.read_text().replace(
        '#include "nmc_transport.h"',
        '#include "nmc_transport.h"\n#include "nmc_vale.h"\n'
        'void nmc_layer_probe(struct nmc_port *p) { nmc_vale_ctx_close(p); }', 1))
    if rule == "include":
        assert any("core/sync.c includes transport/vale/nmc_vale.h" in b
                   for b in include_violations(tree))
    else:
        work = tmp_path / "obj"
        work.mkdir()
        assert any("core/sync.c (core) uses nmc_vale_ctx_close of transport/vale" in b
                   for b in symbol_violations(tree, work))
