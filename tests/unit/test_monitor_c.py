"""netmap monitors through netmap's C API (tests/devnetmap/lnm_monitor.c:
libnetmap's nmport_open and the legacy nm_open), run as a plain netmap
program and under `nmcompat exec`."""
from __future__ import annotations

import subprocess
import sys

import pytest

from test_libnetmap import DEVNETMAP, build, clean_env, run
from testlib import rundir_entries


@pytest.fixture(scope="module")
def lnm_monitor(tmp_path_factory):
    return build(tmp_path_factory.mktemp("lnmmon") / "lnm_monitor", DEVNETMAP / "lnm_monitor.c")


def test_monitors_through_libnetmap_and_nm_open(lnm_monitor, rundir):
    out = run(lnm_monitor, "l")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "monitor ok\n"
    assert rundir_entries(rundir) == ["lock"]


def test_monitors_under_exec(lnm_monitor, rundir):
    out = subprocess.run([sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", str(rundir), "--",
                          str(lnm_monitor), "x"],
                         capture_output=True, text=True, timeout=120, env=clean_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout == "monitor ok\n"
    assert rundir_entries(rundir) == ["lock"]
