"""`./run bench compare --quick`: every backend and every peer, end to end,
on the tool's own veth pair and shared memory.  Structure only: every row is
there with a number or an explicit "unavailable: <reason>", the PNG is a
PNG, and nothing is left behind.  Speeds are never asserted (timings on
these machines are noise).  --no-install: peers that are not installed are
reported, not installed."""
from __future__ import annotations

import glob
import json
import subprocess
from pathlib import Path

import pytest

from nmcompat_bench.compare import LIMIT_OF, SIZES, SYSTEMS
from testlib import assert_cpu_columns, bench_command, bench_env

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_bench_compare_quick(tmp_path):
    before = _namespaces()
    png = tmp_path / "compare.png"
    proc = subprocess.Popen(bench_command("compare", "--quick", "--no-install", "--json", "-",
                                          "--png", str(png)),
                            cwd=ROOT, env=bench_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    report = json.loads(out)
    # the table and the progress lines went to stderr
    assert "machine: Linux" in err and "vs peer" in err, err[-3000:]
    assert "started" in err

    assert report["command"].startswith("./run bench compare")
    assert {"kernel", "cpu", "nproc", "loadavg"} <= set(report["machine"])
    assert report["conditions"]["namespace"].startswith("nmccmp-")
    rows = {(r["system"], r["size"]): r for r in report["rows"]}
    assert set(rows) == {(s, size) for s in SYSTEMS for size in SIZES}
    for (system, size), row in rows.items():
        assert row["path"] == SYSTEMS[system][0] and row["label"] == SYSTEMS[system][2]
        if row["status"] == "ok":
            assert isinstance(row["mpps"], float) and row["mpps"] >= 0, row
            assert row["gbps"] == pytest.approx(row["mpps"] * size * 8 / 1e3, rel=1e-2, abs=1e-3)
        else:
            assert row["status"].startswith("unavailable: ") and len(row["status"]) > 14, row
            assert row["mpps"] is None, row
    for size in SIZES:                       # the engine's own rows always run
        assert rows[("nmcompat-pipe", size)]["status"] == "ok"
    for (system, size), row in rows.items():  # ratios: to the fastest peer of the path
        peers = [r["mpps"] for r in report["rows"] if r["kind"] == "peer" and r["mpps"]
                 and r["path"] == row["path"] and r["size"] == size]
        if peers and row["mpps"]:
            assert row["ratio"] == pytest.approx(row["mpps"] / max(peers), rel=1e-2, abs=1e-3)
    for (system, size), row in rows.items():  # CPU per packet, ratio to the path's limit
        if not row["mpps"]:
            continue
        unmeasured = row.get("cpu_unmeasured", [])   # a side that got no CPU in the window
        assert set(unmeasured) <= {"tx", "rx"}, row
        assert all(row[f"{side}_cpu_ns_per_pkt"] is None for side in unmeasured), row
        assert_cpu_columns(row, sides=[s for s in ("tx", "rx") if s not in unmeasured])
        if unmeasured:
            assert row["cpu_ns_per_pkt"] is None, row
        base = rows[(row["limit"], size)]
        assert base["path"] == row["path"] and base["mpps"], row
        own = LIMIT_OF.get(system)
        if own and rows[(own, size)]["mpps"]:  # the bare ring of its kind
            assert row["limit"] == own, row
            assert SYSTEMS[own][1] == "limit", row
        else:                                 # veth, no bare ring of its kind: the fastest other system
            assert row["path"] == "veth" and SYSTEMS[system][1] != "limit", row
            assert base["mpps"] == max(r["mpps"] or 0 for r in report["rows"]
                                       if r["path"] == "veth" and r["size"] == size and r["kind"] != "limit")
        assert row["vs_limit"] == pytest.approx(row["mpps"] / base["mpps"], rel=1e-2, abs=1e-3)
    assert "vs limit" in err and "rx ns" in err
    assert set(report["systems"]) == set(SYSTEMS)
    for info in report["systems"].values():
        assert info["status"] == "ok" or info["status"].startswith("unavailable: ")

    assert png.read_bytes()[:8] == PNG_MAGIC
    assert report["png"]["file"] == str(png)
    leftover = {n for n in _namespaces() - before if n.startswith("nmccmp-")}
    assert not leftover, f"the tool left its namespace behind: {leftover}"
    assert report["conditions"]["namespace"] not in _namespaces()
    assert not glob.glob(f"/var/run/dpdk/nmcc{proc.pid}*"), "testpmd's runtime files were left"

