"""`./run bench afxdp --quick`: the tool runs end to end in its own network
namespace and reports every column (a number, or why not).  Structure only:
speeds are never asserted (timings on these machines are noise)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from testlib import assert_cpu_columns, bench_command, bench_env

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]


def _namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_bench_afxdp_quick(tmp_path):
    before = _namespaces()
    out = tmp_path / "bench.json"
    proc = subprocess.run(bench_command("afxdp", "--quick", "--no-install", "--json", str(out)),
                          cwd=ROOT, env=bench_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "vs DPDK" in proc.stdout and "machine: Linux" in proc.stdout, proc.stdout
    report = json.loads(out.read_text())
    assert report["command"].startswith("./run bench afxdp")
    assert {"kernel", "cpu", "nproc"} <= set(report["machine"])
    rows = {(r["direction"], r["size"]): r for r in report["rows"]}
    assert set(rows) == {("tx", 60), ("rx", 60)}
    for row in rows.values():
        assert row["nmcompat"]["mpps"] > 0, row
        assert row["afpacket"]["mpps"] > 0, row           # cc is part of the set-up
        assert row["nmc-afpacket"]["mpps"] > 0, row       # the engine's own AF_PACKET backend
        dpdk = row["dpdk"]
        assert dpdk["mpps"] is not None or dpdk["why"], row
        if dpdk["mpps"] and row["nmcompat"]["mpps"]:
            assert row["vs_dpdk"] == pytest.approx(row["nmcompat"]["mpps"] / dpdk["mpps"], rel=1e-2)
        # every measured system: CPU per packet of both sides, ratio to the row's fastest
        fastest = max(row[k]["mpps"] or 0 for k in ("nmcompat", "nmc-afpacket", "dpdk", "afpacket"))
        assert row[row["limit"]]["mpps"] == fastest
        for kind in ("nmcompat", "nmc-afpacket", "dpdk", "afpacket"):
            if row[kind]["mpps"]:
                assert_cpu_columns(row[kind])
                assert row[kind]["vs_limit"] == pytest.approx(row[kind]["mpps"] / fastest,
                                                              rel=1e-2, abs=1e-3)
    assert "vs limit" in proc.stdout and "rx ns" in proc.stdout
    leftover = {n for n in _namespaces() - before if n.startswith("nmcbench-")}
    assert not leftover, f"the tool left its namespace behind: {leftover}"

