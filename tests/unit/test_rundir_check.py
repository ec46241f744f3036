"""One check of the runtime directory for everyone (nmc_rundir_verify, the
check every open makes): gc, status and check refuse what open() refuses,
with the same errno, and never touch a directory that is not a runtime
directory (gc of /tmp used to remove files there).  Every message names
the directory, and its advice fits the case: chmod for a directory of
yours that is too open, another directory for a shared one like /tmp."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nmcompat
from nmcompat import rundir as rd
from nmcompat.tools import check as check_tool


def cli(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmcompat.tools", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def bad_dir(kind: str, rundir: Path, tmp_path: Path) -> Path:
    """A directory open() refuses, of the given kind."""
    if kind == "file":
        path = rundir / "a-file"
        path.write_text("")
    elif kind == "symlink":
        (rundir / "real").mkdir(mode=0o700)
        path = rundir / "link"
        path.symlink_to(rundir / "real")
    elif kind == "mode0755":
        path = rundir / "open"
        path.mkdir()
        path.chmod(0o755)
    elif kind == "shared1777":
        path = rundir / "shared"
        path.mkdir()
        path.chmod(0o1777)
    else:                                   # not on tmpfs
        path = tmp_path / "disk"
        path.mkdir(mode=0o700)
        if subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True,
                          text=True).stdout.strip() == "tmpfs":
            pytest.fail(f"{tmp_path} is on tmpfs: this test needs a directory that is not")
    return path


KINDS = {"file": errno.ENOTDIR, "symlink": errno.ENOTDIR, "mode0755": errno.EACCES,
         "shared1777": errno.EACCES, "disk": errno.EXDEV}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_gc_status_check_refuse_what_open_refuses(rundir, tmp_path, kind):
    path = bad_dir(kind, rundir, tmp_path)
    decoy = path / "mem.7" if path.is_dir() else None
    if decoy:
        decoy.write_text("not a region")
    with pytest.raises(OSError) as opened:
        nmcompat.open("netmap:rc{1", rundir=str(path))
    assert opened.value.errno == KINDS[kind]
    for call in (rd.gc, rd.status, lambda d: check_tool.check_rundir(d, must_exist=True)):
        with pytest.raises(OSError) as ei:
            call(str(path))
        assert ei.value.errno == opened.value.errno, (call, ei.value)
        assert str(path) in ei.value.strerror, ei.value.strerror
    for tool in ("gc", "status", "check"):
        out = cli(tool, "--rundir", str(path))
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (tool, out)
        assert out.stderr.startswith(f"nmcompat {tool}: ") and str(path) in out.stderr, out.stderr
    assert decoy is None or decoy.read_text() == "not a region"


def test_gc_of_a_missing_directory_says_it_does_not_exist(tmp_path):
    path = tmp_path / "none"
    with pytest.raises(FileNotFoundError) as ei:
        rd.gc(str(path))
    assert ei.value.strerror == f"couldn't reclaim in runtime directory {path}: it does not exist"
    for tool, verb in (("gc", "reclaim in"), ("status", "read"), ("check", "read")):
        out = cli(tool, "--rundir", str(path))
        assert out.returncode == 2, out
        assert out.stderr == f"nmcompat {tool}: couldn't {verb} runtime directory {path}: " \
                             "it does not exist\n"
    assert not path.exists()


def test_a_missing_default_directory_holds_nothing(tmp_path):
    """A new user's first `nmcompat status` or `gc` (no port opened yet, so no
    directory): nothing to show or reclaim, as `check` already said."""
    path = tmp_path / "not-yet"
    env = dict(os.environ, NMCOMPAT_RUNDIR=str(path))
    status, gc = cli("status", env=env), cli("gc", env=env)
    assert status.returncode == 0 and status.stdout.startswith(f"{path}: 0 regions"), status
    assert gc.returncode == 0 and "0 regions looked at" in gc.stdout, gc
    assert cli("check", env=env).returncode == 0
    assert not path.exists()


def test_tmp_is_refused_without_chmod_advice():
    """/tmp is shared: "chmod 700 /tmp" is the wrong advice."""
    if not (os.stat("/tmp").st_mode & 0o1000):
        pytest.fail("/tmp has no sticky bit here")
    out = cli("gc", "--rundir", "/tmp")
    assert out.returncode == 2 and "chmod" not in out.stderr, out.stderr
    assert "shared" in out.stderr and "/dev/shm" in out.stderr, out.stderr


@pytest.mark.parametrize("kind,says,never", [
    ("shared1777", ["has mode 1777", "shared", "/dev/shm", "NMCOMPAT_RUNDIR"], "chmod"),
    ("mode0755", ["has mode 0755", "chmod 700 {path}"], "shared"),
    ("file", ["is not a directory"], "chmod"),
    ("symlink", ["is a symbolic link"], "chmod"),
    ("disk", ["is not on tmpfs", "/dev/shm"], "chmod"),
])
def test_open_names_the_directory_and_the_right_fix(rundir, tmp_path, kind, says, never):
    path = bad_dir(kind, rundir, tmp_path)
    with pytest.raises(OSError) as ei:
        nmcompat.open("netmap:rc{1", rundir=str(path))
    text = ei.value.strerror
    assert text.startswith(f"couldn't open netmap:rc{{1: the runtime directory {path} "), text
    for word in says:
        assert word.format(path=path) in text, text
    assert never not in text, text


def test_open_names_a_directory_it_cannot_create(rundir):
    path = rundir / "no-parent" / "rd"
    with pytest.raises(FileNotFoundError) as ei:
        nmcompat.open("vale0:rc", rundir=str(path))
    assert ei.value.strerror.startswith(
        f"couldn't open vale0:rc: the runtime directory {path} does not exist and cannot be "
        f"created: {path.parent} does not exist"), ei.value.strerror


def test_vale_ctl_names_the_directory(rundir, tmp_path):
    """vale-ctl's listing said only "Permission denied" for an unusable directory."""
    path = bad_dir("shared1777", rundir, tmp_path)
    out = cli("vale-ctl", env=dict(os.environ, NMCOMPAT_RUNDIR=str(path)))
    assert out.returncode == 1 and out.stderr.startswith(
        f"failed to list ports: Permission denied (the runtime directory {path} has mode 1777: "
        "it is shared with other users"), out.stderr


@pytest.mark.parametrize("kind", ["shared1777", "mode0755", "no-parent"])
def test_exec_refuses_an_unusable_directory_before_the_program_runs(rundir, tmp_path, kind):
    """nmcompat exec --rundir /tmp ran the program, whose first open then
    failed with a bare "Permission denied"."""
    path = rundir / "none" / "rd" if kind == "no-parent" else bad_dir(kind, rundir, tmp_path)
    marker = tmp_path / "ran"
    out = cli("exec", "--rundir", str(path), "/bin/sh", "-c", f"touch {marker}")
    assert out.returncode == 2 and not marker.exists(), out
    assert out.stderr.startswith(f"nmcompat exec: couldn't use runtime directory {path}: it "), \
        out.stderr
    assert out.stderr.count("\n") == 1, out.stderr


def test_exec_runs_with_a_directory_it_will_create(rundir, tmp_path):
    marker = tmp_path / "ran"
    out = cli("exec", "--rundir", str(rundir / "new"), "/bin/sh", "-c", f"touch {marker}")
    assert out.returncode == 0 and marker.exists(), out
