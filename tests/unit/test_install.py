"""Installing nmcompat as a user does, and building netmap programs against it.

The checkout's files (git's tracked and untracked-not-ignored ones: what a
fresh clone would hold, plus work not yet added) are copied to a temporary
directory.  There (a) `pip install .` into a fresh virtualenv, not editable:
the wheel must carry libnmcompat.so, libnmcompat-netmap.so, the public
headers and the pkg-config files, and from that virtualenv alone
nmcompat-config, pkg-config with --pkgconfigdir, `nmcompat exec` and the
README's "Three ways in" snippets work, with no LD_LIBRARY_PATH; (b) `make -C
csrc install PREFIX=...` (and DESTDIR=, uninstall), then programs built with
pkg-config against that prefix.  The C programs are tests/install/*.c.
`pip install .` takes the build requirements and the dependencies from the
package index, as a user's install does.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Dict, List

import pytest

from testlib import rundir_entries, skip_or_fail

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = Path("tests") / "install"
LIBRARIES = ("libnmcompat.so", "libnmcompat-netmap.so")
PKGCONFIGS = ("nmcompat.pc", "libnetmap.pc")
ENGINE_PROG = r'''
#include <stdio.h>
#include <nmcompat.h>
int main(void) { printf("abi %d\n", nmc_abi_version()); return 0; }
'''


def checkout_files() -> List[str]:
    if not shutil.which("git"):
        skip_or_fail("git is missing: can't tell the checkout's files")
    proc = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                           "--exclude-standard"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        skip_or_fail(f"{ROOT} is not a git checkout: can't tell its files ({proc.stderr.strip()})")
    return [f for f in proc.stdout.split("\0") if f and (ROOT / f).is_file()]


def clean_env(path_first: Path = None) -> Dict[str, str]:
    """This process's environment (NMCOMPAT_RUNDIR included) without what
    would let a program find nmcompat other than by its own install."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONPATH", "VIRTUAL_ENV", "PKG_CONFIG_PATH")}
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env.get('PATH', '')}"
    return env


def sh(line: str, cwd: Path, env: Dict[str, str], timeout: int = 300) -> str:
    proc = subprocess.run(["bash", "-ec", line], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{line}\nexit {proc.returncode}\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
    return proc.stdout


def runpath(prog: Path) -> str:
    out = subprocess.run(["readelf", "-d", str(prog)], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[(.*?)\]", out)
    return m.group(1) if m else ""


def needed(prog: Path) -> List[str]:
    out = subprocess.run(["readelf", "-d", str(prog)], capture_output=True, text=True, timeout=60).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)


@pytest.fixture(scope="module")
def tools():
    for tool in ("gcc", "make", "pkg-config", "readelf", "bash"):
        if not shutil.which(tool):
            skip_or_fail(f"{tool} is missing (./run setup installs it)")


@pytest.fixture(scope="module")
def tree(tmp_path_factory, tools) -> Path:
    """A copy of the checkout; it and everything beside it (the virtualenv,
    the programs, the prefixes) removed at the end."""
    top = tmp_path_factory.mktemp("install")
    dest = top / "nmcompat"
    for name in checkout_files():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    yield dest
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def fresh(tree) -> Path:
    """A fresh virtualenv (beside the copy) with `pip install <copy>` done in it."""
    env_dir = tree.parent / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    proc = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", str(tree)], cwd=tree.parent, env=clean_env(),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"pip install {tree} failed:\n{proc.stdout[-3000:]}{proc.stderr[-5000:]}"
    return env_dir


@pytest.fixture(scope="module")
def package(fresh, tree) -> Path:
    """The installed package's directory (imported from elsewhere than the copy)."""
    out = sh(f"{fresh}/bin/python -c 'import nmcompat, os; print(os.path.dirname(nmcompat.__file__))'",
             cwd=tree.parent, env=clean_env())
    path = Path(out.strip())
    assert path.is_relative_to(fresh) and "site-packages" in path.parts, path
    return path


def public_headers(tree: Path) -> List[str]:
    include = tree / "csrc" / "include"
    return sorted(str(p.relative_to(include)) for p in include.rglob("*.h"))


# ---------------------------------------------------------------------------
# (a) pip install . into a fresh virtualenv


def test_the_wheel_carries_the_libraries_headers_and_pkgconfig_files(tree, fresh, package):
    record = next(package.parent.glob("nmcompat-*.dist-info")) / "RECORD"
    listed = {line.split(",")[0] for line in record.read_text().splitlines()}
    wanted = [f"nmcompat/{name}" for name in LIBRARIES + PKGCONFIGS]
    wanted += [f"nmcompat/include/{h}" for h in public_headers(tree)]
    assert "nmcompat/include/net/netmap_user.h" in wanted
    for name in wanted:
        assert name in listed, f"{name} is not in the wheel"
        assert (package.parent / name).is_file(), name
    for pc in PKGCONFIGS:
        text = (package / pc).read_text()
        assert "prefix=${pcfiledir}\n" in text and "@" not in text, text


def test_nmcompat_config_points_into_the_installed_package(tree, fresh, package):
    env = clean_env(fresh / "bin")
    assert shutil.which("nmcompat-config", path=env["PATH"]) == str(fresh / "bin" / "nmcompat-config")
    assert sh("nmcompat-config --cflags", tree.parent, env).split() == [f"-I{package / 'include'}"]
    assert sh("nmcompat-config --libs", tree.parent, env).split() == [
        f"-L{package}", "-lnmcompat-netmap", "-lnmcompat", f"-Wl,-rpath,{package}"]
    assert sh("nmcompat-config --pkgconfigdir", tree.parent, env) == f"{package}\n"


def test_a_program_built_with_nmcompat_config_runs_without_exec_or_library_path(tree, fresh, package, rundir):
    env = clean_env(fresh / "bin")
    prog = tree.parent / "nm_hello_config"
    sh(f"gcc -Wall -Wextra -Werror $(nmcompat-config --cflags) {PROGRAMS}/nm_hello.c -o {prog} "
       f"$(nmcompat-config --libs)", tree, env)
    assert runpath(prog) == str(package)
    assert needed(prog).index("libnmcompat-netmap.so") < needed(prog).index("libc.so.6")
    assert sh(f"{prog} cfg", tree.parent, env) == "hello ok 60\n"
    assert rundir_entries(rundir) == ["lock"]


def test_pkg_config_with_pkgconfigdir_builds_both_apis(tree, fresh, package, rundir):
    """libnetmap keeps libnmcompat-netmap linked under --as-needed; nmcompat
    links the engine."""
    env = clean_env(fresh / "bin")
    env["PKG_CONFIG_PATH"] = sh("nmcompat-config --pkgconfigdir", tree.parent, env).strip()
    assert sh("pkg-config --modversion libnetmap nmcompat", tree.parent, env) == "0.1.0\n0.1.0\n"
    prog = tree.parent / "nm_hello_pc"
    sh(f"gcc -Wall -Wextra -Werror -Wl,--as-needed {PROGRAMS}/nm_hello.c -o {prog} "
       f"$(pkg-config --cflags --libs libnetmap)", tree, env)
    assert runpath(prog) == str(package) and "libnmcompat-netmap.so" in needed(prog)
    assert sh(f"{prog} pc", tree.parent, env) == "hello ok 60\n"
    (tree.parent / "engine.c").write_text(ENGINE_PROG)
    sh(f"gcc -Wall -Werror engine.c -o engine $(pkg-config --cflags --libs nmcompat)", tree.parent, env)
    assert re.fullmatch(r"abi \d+\n", sh("./engine", tree.parent, env))
    assert rundir_entries(rundir) == ["lock"]


def test_nmcompat_exec_runs_a_raw_netmap_program(tree, fresh, rundir):
    env = clean_env(fresh / "bin")
    prog = tree.parent / "raw_hello"
    sh(f"gcc -Wall -Wextra -Werror $(nmcompat-config --cflags) {PROGRAMS}/raw_hello.c -o {prog}", tree, env)
    assert not any("nmcompat" in lib for lib in needed(prog))
    assert sh(f"nmcompat exec -- {prog} ex", tree.parent, env) == "raw ok 10\n"
    assert rundir_entries(rundir) == ["lock"]


def readme_snippets(tree: Path) -> List[tuple]:
    """(language, code) of each fenced block of the README's "Three ways in"."""
    text = (tree / "README.md").read_text()
    section = re.search(r"^## Three ways in\n(.*?)^## ", text, re.S | re.M)
    assert section, "README.md has no '## Three ways in' section"
    return re.findall(r"^```(\w+)\n(.*?)^```", section.group(1), re.S | re.M)


def test_the_readmes_three_ways_in_work_as_written(tree, fresh, rundir):
    """Run from the copy's top directory, as the README's commands are; the
    Python snippet from elsewhere (not to import the copy's sources)."""
    snippets = readme_snippets(tree)
    assert [lang for lang, _ in snippets] == ["python", "sh", "sh"], snippets
    env = clean_env(fresh / "bin")
    out = subprocess.run([str(fresh / "bin" / "python"), "-c", snippets[0][1]], cwd=tree.parent, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout == "b'hello'\n", out.stderr
    assert sh(snippets[1][1], tree, env) == "hello ok 60\n"
    assert sh(snippets[2][1], tree, env) == "raw ok 10\n"
    assert rundir_entries(rundir) == ["lock"]


# ---------------------------------------------------------------------------
# (b) make -C csrc install


def installed_files(top: Path) -> List[str]:
    return sorted(str(p.relative_to(top)) for p in top.rglob("*") if not p.is_dir())


def test_make_install_then_programs_built_with_pkg_config(tree, rundir):
    prefix = tree.parent / "prefix"
    env = clean_env()
    sh(f"make -s -C csrc install PREFIX={prefix}", tree, env)
    want = sorted([f"lib/{lib}" for lib in LIBRARIES] + [f"lib/pkgconfig/{pc}" for pc in PKGCONFIGS]
                  + [f"include/{h}" for h in public_headers(tree)])
    assert installed_files(prefix) == want
    env["PKG_CONFIG_PATH"] = str(prefix / "lib" / "pkgconfig")
    assert sh("pkg-config --variable=prefix libnetmap", tree.parent, env) == f"{prefix}\n"
    prog = tree.parent / "nm_hello_prefix"
    sh(f"gcc -Wall -Wextra -Werror -Wl,--as-needed {PROGRAMS}/nm_hello.c -o {prog} "
       f"$(pkg-config --cflags --libs libnetmap)", tree, env)
    assert runpath(prog) == str(prefix / "lib")
    assert sh(f"{prog} prefix", tree.parent, env) == "hello ok 60\n"
    (tree.parent / "engine_prefix.c").write_text(ENGINE_PROG)
    sh("gcc -Wall -Werror engine_prefix.c -o engine_prefix $(pkg-config --cflags --libs nmcompat)",
       tree.parent, env)
    assert re.fullmatch(r"abi \d+\n", sh("./engine_prefix", tree.parent, env))
    sh(f"make -s -C csrc uninstall PREFIX={prefix}", tree, env)
    assert installed_files(prefix) == []
    assert rundir_entries(rundir) == ["lock"]


def test_make_install_honours_destdir_and_takes_every_header(tree):
    """A header added under include/, in a folder of its own, is installed
    too; the .pc files name the prefix, not the staging directory."""
    added = tree / "csrc" / "include" / "nmc_added" / "added.h"
    added.parent.mkdir()
    added.write_text("/* added */\n")
    try:
        stage = tree.parent / "stage"
        env = clean_env()
        sh(f"make -s -C csrc install DESTDIR={stage} PREFIX=/opt/nmc", tree, env)
        top = stage / "opt" / "nmc"
        assert "include/nmc_added/added.h" in installed_files(top)
        assert installed_files(stage) == [f"opt/nmc/{f}" for f in installed_files(top)]
        pc = (top / "lib" / "pkgconfig" / "libnetmap.pc").read_text()
        assert "prefix=/opt/nmc\nlibdir=/opt/nmc/lib\nincludedir=/opt/nmc/include\n" in pc
        sh(f"make -s -C csrc uninstall DESTDIR={stage} PREFIX=/opt/nmc", tree, env)
        assert installed_files(stage) == []
        assert not (top / "include" / "nmc_added").exists()
    finally:
        shutil.rmtree(added.parent)


def test_make_install_refuses_a_relative_directory(tree):
    for arg in ("PREFIX=relative", "LIBDIR=lib"):
        proc = subprocess.run(["make", "-s", "-C", "csrc", "install", arg], cwd=tree, env=clean_env(),
                              capture_output=True, text=True, timeout=120)
        name = arg.split("=")[0]
        assert proc.returncode != 0 and f"{name} must be an absolute path" in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------
# this checkout's own install (editable, ./run setup)

BIN = Path(sys.executable).parent


def test_the_editable_install_has_a_pkgconfigdir_too(tmp_path, tools, rundir):
    config = BIN / "nmcompat-config"
    if not config.exists():
        skip_or_fail(f"{config} is not installed (./run setup)")
    env = clean_env(BIN)
    pcdir = sh("nmcompat-config --pkgconfigdir", tmp_path, env).strip()
    assert Path(pcdir) == Path(sh("nmcompat-config --libs", tmp_path, env).split()[0][2:])
    env["PKG_CONFIG_PATH"] = pcdir
    include = sh("pkg-config --cflags-only-I libnetmap", tmp_path, env).split()
    assert len(include) == 1 and Path(include[0][2:]).resolve() == ROOT / "csrc" / "include"
    prog = tmp_path / "nm_hello"
    sh(f"gcc -Wall -Wextra -Werror {ROOT / PROGRAMS / 'nm_hello.c'} -o {prog} "
       "$(pkg-config --cflags --libs libnetmap)", tmp_path, env)
    assert sh(f"{prog} ed", tmp_path, env) == "hello ok 60\n"
    assert rundir_entries(rundir) == ["lock"]


def test_pkgconfigdir_goes_alone_and_says_what_is_missing(tmp_path, monkeypatch, capsys):
    from nmcompat.tools import config_cmd

    for args in (["--pkgconfigdir", "--cflags"], ["--libs", "--pkgconfigdir"]):
        assert config_cmd.main(args) == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            "nmcompat-config: --pkgconfigdir prints a directory, it goes alone: not with --cflags or --libs")
    (tmp_path / "include" / "net").mkdir(parents=True)
    (tmp_path / "include" / "net" / "netmap_user.h").write_text("")
    for lib in LIBRARIES:
        (tmp_path / lib).write_text("")
    monkeypatch.setattr(config_cmd, "PACKAGE", tmp_path)
    assert config_cmd.main(["--pkgconfigdir"]) == 1
    assert capsys.readouterr().err == (f"nmcompat-config: couldn't find {tmp_path / 'nmcompat.pc'}: "
                                       "the package is not built (./run setup)\n")
    for pc in PKGCONFIGS:
        (tmp_path / pc).write_text("")
    assert config_cmd.main(["--pkgconfigdir", "--pkgconfigdir"]) == 0
    assert capsys.readouterr().out == f"{tmp_path}\n"
