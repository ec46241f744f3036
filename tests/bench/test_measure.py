"""Full-length measurement runs of the shared-memory benchmarks (minutes each):
opt-in, ``pytest -m bench`` (the default options deselect them).  They check what
every run delivered, at the lengths the published figures use; the figures
themselves are printed, never asserted.  The quick runs in tests/unit and
tests/kernel check the same programs in CI."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from testlib import bench_command, bench_env

pytestmark = pytest.mark.bench


def _measure(name: str, *args: str) -> dict:
    proc = subprocess.run(bench_command(name, "--json", "-", *args), env=bench_env(),
                          capture_output=True, text=True, timeout=1800)
    sys.stderr.write(proc.stderr)           # the table, shown with -s
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_pipe_measurement_delivers_everything_in_order():
    report = _measure("pipe")
    count = report["conditions"]["packets"]
    for row in report["rows"]:
        for kind in ("nmcompat", "raw"):
            for run in row[kind]["runs"]:
                assert (run["packets"], run["errors"]) == (count, 0), (row["batch"], kind)


def test_vale_measurement_accounts_for_every_frame():
    report = _measure("vale", "--sizes", "60,1514", "--batches", "64", "--modes", "unicast,bcast3")
    assert report["rows"]
    for row in report["rows"]:
        for kind in ("nmcompat", "raw"):
            for run in row[kind]["runs"]:
                where = (row["mode"], row["size"], row["batch"], kind)
                assert run["balanced"] and run["errors"] == 0, where
