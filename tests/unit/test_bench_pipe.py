"""The pipe benchmark in --quick mode: structure and correctness, never speed.

Every row must have moved exactly the requested packets in sequence, through
the nmcompat pipe and through the raw ring, and the private run directory
must be gone afterwards.
"""
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from testlib import assert_cpu_columns, bench_command, bench_env

SHM = Path("/dev/shm")
BATCHES = [1, 64, 512]


@pytest.fixture(scope="module")
def base_dir():
    if not SHM.is_dir():
        pytest.skip("/dev/shm is missing")
    path = Path(tempfile.mkdtemp(prefix="nmc-test-bench-", dir=SHM))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _run(*args, timeout=300):
    return subprocess.run(bench_command("pipe", *args), env=bench_env(), capture_output=True,
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
    assert {"command", "machine", "conditions", "rows"} <= set(report)
    m = report["machine"]
    assert m["kernel"] and m["cpu"] and m["nproc"] >= 1
    c = report["conditions"]
    assert c["packets"] == 200_000 and c["repeat"] == 1 and c["size"] == 60
    assert [r["batch"] for r in report["rows"]] == BATCHES
    for row in report["rows"]:
        for kind in ("nmcompat", "raw"):
            k = row[kind]
            assert k["mpps"] > 0 and len(k["runs"]) == c["repeat"]
            assert k["mpps"] == max(k["mpps_runs"])
            assert_cpu_columns(k)
        assert row["ratio"] == pytest.approx(row["nmcompat"]["mpps"] / row["raw"]["mpps"],
                                             rel=1e-2, abs=1e-3)  # ratio is rounded to 3 places
        assert row["nmcompat"]["syscalls_per_batch"] >= 0
    # the table goes to stderr when the JSON takes stdout
    assert "nmcompat Mpps" in report["_stderr"] and "machine:" in report["_stderr"]
    assert "vs limit" in report["_stderr"] and "rx ns" in report["_stderr"]


def test_every_packet_arrives_in_order(report):
    count = report["conditions"]["packets"]
    for row in report["rows"]:
        for kind in ("nmcompat", "raw"):
            for run in row[kind]["runs"]:
                assert run["packets"] == count, (row["batch"], kind)
                assert run["sent"] == count, (row["batch"], kind)
                assert run["errors"] == 0, (row["batch"], kind)
                assert run["rx"]["elapsed_ns"] > 0


def test_private_rundir_removed(report):
    assert list(report["_base"].iterdir()) == []


def test_bad_arguments():
    assert _run("--batches", "0").returncode == 2
    assert _run("--size", "4").returncode == 2


def test_the_netmap_shaped_ring_moves_every_packet_in_order(base_dir):
    """--shape adds the bare ring driven in netmap's two-ring shape, with
    and without netmap's ring->ts stamps, and the pipe opened without
    stamps: each of their runs moves every packet in sequence, the pipe is
    compared with the stamped shape and the unstamped pipe with the
    unstamped shape."""
    proc = _run("--quick", "--shape", "--json", "-", "--rundir", str(base_dir), "--batches", "1,64")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["conditions"]["shape"] is True
    count = data["conditions"]["packets"]
    for row in data["rows"]:
        for kind in ("shape", "shape_ts", "pipe_nots"):
            assert row[kind]["mpps"] > 0 and row[kind]["errors"] == 0, kind
            for run in row[kind]["runs"]:
                assert run["packets"] == count and run["sent"] == count and run["errors"] == 0
        assert row["vs_shape_ts"] == pytest.approx(row["nmcompat"]["mpps"] / row["shape_ts"]["mpps"],
                                                   rel=1e-2, abs=1e-3)
        assert row["vs_shape"] == pytest.approx(row["pipe_nots"]["mpps"] / row["shape"]["mpps"],
                                                rel=1e-2, abs=1e-3)
    assert "vs shape+ts" in proc.stderr and "no-ts Mpps" in proc.stderr
    assert list(base_dir.iterdir()) == []


def test_without_shape_there_is_no_shape_column(report):
    assert report["conditions"]["shape"] is False
    assert all("shape" not in row for row in report["rows"])
    assert "vs shape" not in report["_stderr"]
