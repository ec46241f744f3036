"""./run bench devnetmap in --quick mode: both loops build and run, the table and
result are well formed, nothing is left behind.  Never its speed."""
import json
import subprocess
from pathlib import Path

from testlib import bench_command, bench_env


def _run(*args, timeout=300):
    return subprocess.run(bench_command("devnetmap", *args), env=bench_env(), capture_output=True,
                          text=True, timeout=timeout)


def test_quick_run(rundir):
    proc = _run("--quick", "--batches", "64,1", "--rundir", str(rundir))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("devnetmap: a pipe loop through netmap's interface")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert [r["batch"] for r in result["rows"]] == [64, 1]
    for row in result["rows"]:
        assert row["netmap_mpps"] > 0 and row["engine_mpps"] > 0
        assert abs(row["ratio"] - row["netmap_runs"][0] / row["engine_runs"][0]) < 1e-9
        for kind in ("netmap", "engine"):      # one process sends and receives: one figure
            assert 0 < row[f"{kind}_cpu_ns_per_pkt"] < 1e9, row
    assert "vs limit" in proc.stdout and "CPU ns" in proc.stdout
    assert list(Path(rundir).iterdir()) == [], "the private run directory is left behind"


def test_bad_options_are_named():
    proc = _run("--batches", "0")
    assert proc.returncode == 2 and "--batches" in proc.stderr
