"""./run bench vale-cost in --quick mode: every frame forwarded in order,
none dropped, the run directory gone afterwards; never its speed."""
import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from testlib import bench_command, bench_env

SHM = Path("/dev/shm")


@pytest.fixture
def base_dir():
    if not SHM.is_dir():
        pytest.skip("/dev/shm is missing")
    path = Path(tempfile.mkdtemp(prefix="nmc-test-bench-vale-cost-", dir=SHM))
    yield path
    for child in path.iterdir():
        subprocess.run(["rm", "-rf", str(child)], check=False)
    path.rmdir()


def run_cost(base_dir, *args):
    return subprocess.run(bench_command("vale-cost", "--rundir", str(base_dir), *args),
                          env=bench_env(), capture_output=True, text=True, timeout=300)


def test_quick_run_accounts_for_every_frame(base_dir):
    proc = run_cost(base_dir, "--quick", "--sizes", "60,1514", "--batches", "1,64", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rows = report["rows"]
    assert [(r["size"], r["batch"]) for r in rows] == [(60, 1), (60, 64), (1514, 1), (1514, 64)]
    for row in rows:
        assert row["accounted"], row
        for run in row["runs"]:
            assert run["sent"] == run["packets"] == report["conditions"]["packets"]
            assert run["errors"] == 0 and run["drops"] == 0
            assert run["cpu_ns"] > 0
        assert 0 < row["ns_min"] <= row["ns_median"]
    assert list(base_dir.iterdir()) == []       # the private run directory is gone


def test_hot_tx_buffers_account_for_every_frame(base_dir):
    """--tx-bufs 64: the sender reuses 64 buffers, every frame still arrives, in order."""
    proc = run_cost(base_dir, "--quick", "--sizes", "60,1514", "--tx-bufs", "64", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["conditions"]["tx_bufs"] == 64
    for row in report["rows"]:
        assert row["accounted"], row
        assert all(run["sent"] == run["packets"] == report["conditions"]["packets"] for run in row["runs"])
    assert list(base_dir.iterdir()) == []


def test_the_largest_batch_accounts_for_every_frame(base_dir):
    """511: two batches fill 1022 of the receiving ring's 1023 slots (its
    slots go back at its next rxsync, after the next send).  512 lost one
    frame in every second batch, and was accepted."""
    proc = run_cost(base_dir, "--quick", "--sizes", "60", "--batches", "511", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)["rows"]
    assert row["accounted"] and all(run["drops"] == 0 for run in row["runs"]), row


@pytest.mark.parametrize("args", [["--sizes", "21"], ["--sizes", "4096"], ["--batches", "1024"],
                                  ["--batches", "512"],
                                  ["--batches", "0"], ["--sizes", "sixty"],
                                  ["--tx-bufs", "32"], ["--tx-bufs", "1024"]])
def test_refuses_what_the_loop_cannot_run(base_dir, args):
    proc = run_cost(base_dir, "--quick", *args)
    assert proc.returncode == 2
    assert "error" in proc.stderr
