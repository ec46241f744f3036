"""The control-plane benchmark (./run bench controlplane) in --quick mode: it runs,
prints a well-formed table and result, and leaves nothing behind.  Never its
speed."""
import json
import subprocess
from pathlib import Path

from testlib import bench_command, bench_env


def _run(*args, timeout=120):
    return subprocess.run(bench_command("controlplane", *args), env=bench_env(), capture_output=True,
                          text=True, timeout=timeout)


def test_quick_run_reports_every_kind_and_n(rundir):
    proc = _run("--quick", "--ports", "0,3", "--rundir", str(rundir))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("control plane: ports opened and closed per second")
    assert lines[1].split() == ["kind", "N", "opens/s", "open", "us", "close", "us", "cycles"]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    rows = {(r["kind"], r["ports"]): r for r in result["rows"]}
    assert sorted(rows) == [("pipe", 0), ("pipe", 3), ("vale", 0), ("vale", 3)]
    for (kind, n), row in rows.items():
        assert row["cycles"] == 20
        assert row["opens_per_s"] > 0 and row["open_us"] > 0 and row["close_us"] > 0
        assert any(line.split()[:2] == [kind, str(n)] for line in lines[2:6])
    assert sorted(result["ratio"]) == ["pipe", "vale"]
    for kind, ratio in result["ratio"].items():
        expect = rows[(kind, 3)]["opens_per_s"] / rows[(kind, 0)]["opens_per_s"]
        assert abs(ratio - expect) < 1e-9
        assert f"{kind}: opens/s with N=3 / with N=0 = {ratio:.2f}" in lines
    assert list(Path(rundir).iterdir()) == [], "the private run directory is left behind"


def test_bad_options_are_named():
    proc = _run("--kinds", "pipe,nic")
    assert proc.returncode == 2 and "--kinds: unknown kind 'nic'" in proc.stderr
    proc = _run("--ports", "1,x")
    assert proc.returncode == 2 and "--ports" in proc.stderr
    proc = _run("--ports", "300")
    assert proc.returncode == 2 and "0..250" in proc.stderr
