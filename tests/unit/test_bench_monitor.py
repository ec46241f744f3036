"""The monitor benchmark in --quick mode: structure and correctness, never
speed.  Every run, plain or monitored, must move exactly the requested
packets in sequence; the monitor must have seen some of them (as many as fit:
a copy monitor drops what does not); the private run directory must go."""
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from testlib import assert_cpu_columns, bench_command, bench_env

SHM = Path("/dev/shm")
BATCHES = [64, 512]


@pytest.fixture(scope="module")
def base_dir():
    if not SHM.is_dir():
        pytest.skip("/dev/shm is missing")
    path = Path(tempfile.mkdtemp(prefix="nmc-test-bench-mon-", dir=SHM))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _run(*args, timeout=300):
    return subprocess.run(bench_command("monitor", *args), env=bench_env(), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def report(base_dir):
    proc = _run("--quick", "--json", "-", "--rundir", str(base_dir),
                "--batches", ",".join(map(str, BATCHES)))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    data["_stderr"] = proc.stderr
    data["_base"] = base_dir
    return data


def test_report_structure(report):
    c = report["conditions"]
    assert c["packets"] == 200_000 and c["repeat"] == 1
    assert [r["batch"] for r in report["rows"]] == BATCHES
    for row in report["rows"]:
        for kind in ("plain", "monitored"):
            assert row[kind]["mpps"] > 0 and len(row[kind]["runs"]) == 1
            assert_cpu_columns(row[kind])
        assert row["ratio"] == pytest.approx(row["monitored"]["mpps"] / row["plain"]["mpps"],
                                             rel=1e-2, abs=1e-3)
    assert "with /r monitor Mpps" in report["_stderr"] and "vs limit" in report["_stderr"]


def test_every_packet_arrives_and_the_monitor_sees_them(report):
    count = report["conditions"]["packets"]
    for row in report["rows"]:
        for kind in ("plain", "monitored"):
            for run in row[kind]["runs"]:
                assert (run["packets"], run["sent"], run["errors"]) == (count, count, 0)
        assert 0 < row["monitor_seen"] <= count


def test_private_rundir_removed(report):
    assert list(report["_base"].iterdir()) == []


def test_bad_arguments():
    assert _run("--batches", "0").returncode == 2
    assert _run("--size", "4").returncode == 2
