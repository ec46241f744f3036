"""The VALE benchmark in --quick mode: structure and accounting, never speed.

A VALE sender never waits, so a receiver that falls behind loses frames:
every row must account for each frame exactly (sent == received + dropped by
the switch, on every receiving port), and nothing may arrive out of order.
The raw copy rings never drop.  The private run directory must be gone
afterwards.
"""
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from testlib import assert_cpu_columns, bench_command, bench_env

SHM = Path("/dev/shm")
SIZES = [60, 1514]
BATCHES = [1, 64, 1024]
MODES = ["unicast", "bcast3", "bcast7"]
PORTS = {"unicast": 1, "bcast3": 3, "bcast7": 7}


@pytest.fixture(scope="module")
def base_dir():
    if not SHM.is_dir():
        pytest.skip("/dev/shm is missing")
    path = Path(tempfile.mkdtemp(prefix="nmc-test-bench-vale-", dir=SHM))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _run(*args, timeout=600):
    return subprocess.run(bench_command("vale", *args), env=bench_env(), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def report(base_dir):
    proc = _run("--quick", "--json", "-", "--rundir", str(base_dir))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    data["_stderr"] = proc.stderr
    data["_base"] = base_dir
    return data


def _runs(report):
    for row in report["rows"]:
        for kind in ("nmcompat", "raw"):
            for run in row[kind]["runs"]:
                yield row, kind, run


def test_report_structure(report):
    assert {"command", "machine", "conditions", "rows", "seconds"} <= set(report)
    assert report["command"].startswith("./run bench vale")
    m = report["machine"]
    assert m["kernel"] and m["cpu"] and m["nproc"] >= 1
    c = report["conditions"]
    assert c["packets"] == 50_000 and c["repeat"] == 1
    assert c["sizes"] == SIZES and c["batches"] == BATCHES and c["modes"] == MODES
    assert c["slots"] == 1024 and c["buf_size"] == 2112        # a VALE port's, the copy ring's too
    rows = [(r["size"], r["mode"], r["batch"]) for r in report["rows"]]
    assert rows == [(s, m, b) for s in SIZES for m in MODES for b in BATCHES]
    for row in report["rows"]:
        assert row["ports"] == PORTS[row["mode"]]
        assert row["broadcast"] == (row["mode"] != "unicast")
        for kind in ("nmcompat", "raw"):
            k = row[kind]
            assert len(k["runs"]) == c["repeat"]
            assert k["out_mpps"] == max(k["out_mpps_runs"])
            assert k["in_mpps"] > 0 and k["syscalls_per_batch"] >= 0
            if k["out_mpps"]:
                assert_cpu_columns(k)
        if row["raw"]["out_mpps"]:
            assert row["ratio"] == pytest.approx(
                row["nmcompat"]["out_mpps"] / row["raw"]["out_mpps"], rel=1e-2, abs=1e-3)
    # the table goes to stderr when the JSON takes stdout
    err = report["_stderr"]
    assert "VALE out" in err and "machine:" in err and "accounting: sent == received" in err
    assert "vs limit" in err and "rx ns" in err


def test_every_frame_accounted_for(report):
    count = report["conditions"]["packets"]
    for row, kind, run in _runs(report):
        where = (row["size"], row["mode"], row["batch"], kind)
        n = row["ports"]
        rx, tx = run["rx"], run["tx"]
        assert run["sent"] == tx["packets"] == count, where
        assert run["sent"] * n == run["received"] + run["drops"], where
        assert len(rx["port_packets"]) == n, where
        for got, lost in zip(rx["port_packets"], rx["port_drops"]):
            assert got + lost == count, where
        assert sum(rx["port_packets"]) == run["received"] == rx["packets"], where
        assert run["balanced"] is True, where
        if kind == "raw":
            assert run["drops"] == 0 and run["received"] == count * n, where
        else:
            # the switch's own counters agree with what the two sides saw
            assert tx["sw_sent"] == count and tx["sw_tx_dropped"] == 0, where
            assert rx["port_forwarded"] == rx["port_packets"], where
            assert rx["sw_drops"] == run["drops"] == sum(rx["port_drops"]), where
            # unicast: the receiver's one learning frame went nowhere
            assert rx["sw_sent"] == (0 if row["broadcast"] else 1), where


def test_no_frame_out_of_order(report):
    for row, kind, run in _runs(report):
        where = (row["size"], row["mode"], row["batch"], kind)
        assert run["errors"] == 0, where
        if run["received"]:
            assert run["rx"]["elapsed_ns"] > 0, where
        # skipped sequence numbers are frames the switch dropped
        rx = run["rx"]
        assert all(g <= d for g, d in zip(rx["port_gaps"], rx["port_drops"])), where


def test_private_rundir_removed(report):
    assert list(report["_base"].iterdir()) == []


def test_bad_arguments():
    assert _run("--batches", "0").returncode == 2
    assert _run("--sizes", "20").returncode == 2
    assert _run("--modes", "multicast").returncode == 2
    assert _run("--modes", "bcast17").returncode == 2
    assert _run("--batches", "64", "--tx-bufs", "32").returncode == 2     # fewer than a batch
    assert _run("--tx-bufs", "1024").returncode == 2


def test_a_bad_buffer_size_is_named_not_replaced():
    """NMCOMPAT_BUF_SIZE sizes the VALE ports and the copy ring alike: a value
    the engine refuses stops the benchmark with its name (the copy ring
    took 2112 for it, silently)."""
    env = dict(bench_env(), NMCOMPAT_BUF_SIZE="2000")
    proc = subprocess.run(bench_command("vale", "--quick"), env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 2 and "NMCOMPAT_BUF_SIZE" in proc.stderr, proc.stderr


def test_hot_tx_buffers_account_for_every_frame(base_dir):
    """--tx-bufs 64: both senders reuse 64 buffers; every frame is still accounted for,
    in order, on VALE and on the copy ring, and the report says which buffers were used."""
    proc = _run("--quick", "--batches", "64", "--modes", "unicast,bcast3", "--tx-bufs", "64",
                "--json", "-", "--rundir", str(base_dir))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["conditions"]["tx_bufs"] == 64
    assert "64 hot ones" in proc.stderr
    for row in data["rows"]:
        for kind in ("nmcompat", "raw"):
            for run in row[kind]["runs"]:
                assert run["errors"] == 0 and run["balanced"], (row["mode"], kind, run)
                assert run["sent"] == data["conditions"]["packets"]
