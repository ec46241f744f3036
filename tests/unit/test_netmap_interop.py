"""A million frames between programs written three ways: `nmcompat pkt-gen`,
a C program on netmap's legacy API built with nmcompat-config
(tests/devnetmap/nm_interop.c: nm_open, nm_inject, nm_nextpkt, poll; run
without `nmcompat exec`), and a program that speaks only /dev/netmap's fd
interface (tests/devnetmap/nm_raw.c, nm_raw_fds.c) under `nmcompat exec`.  Every count is
exact and the C programs check every frame."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from cprograms import NM_RAW, devnetmap_program
from test_netmap_c_api import build
from testlib import rundir_entries

ROOT = Path(__file__).resolve().parents[2]
INTEROP = ROOT / "tests" / "devnetmap" / "nm_interop.c"
MILLION = 1_000_000
PKTGEN = [sys.executable, "-m", "nmcompat.tools", "pkt-gen"]
QUICK = ["-w", "0", "-T", "1000"]
SUMMARY = re.compile(r"^(Sent|Received) (\d+) packets (\d+) bytes ")


@pytest.fixture(scope="module")
def interop(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("nminterop") / "nm_interop", source=INTEROP)


@pytest.fixture(scope="module")
def nm_raw(tmp_path_factory) -> Path:
    return devnetmap_program(tmp_path_factory.mktemp("nmraw") / "nm_raw", *NM_RAW, flags=["-O2"])


def _summary(out: str) -> tuple:
    for line in out.splitlines():
        m = SUMMARY.match(line)
        if m:
            return m.group(1), int(m.group(2)), int(m.group(3))
    raise AssertionError(f"no summary in:\n{out}")


def _exec(nm_raw: Path, *args) -> list:
    return [sys.executable, "-m", "nmcompat.tools", "exec", "--", str(nm_raw), *map(str, args)]


@pytest.fixture(autouse=True)
def _no_preload(procs):
    """nm_interop must get its /dev/netmap from the library it was linked with."""
    procs.env.pop("LD_PRELOAD", None)


def test_pkt_gen_sends_a_million_to_a_legacy_api_program(procs, rundir, interop):
    rx = procs.spawn([interop, "rx", "pktgen", "netmap:pg}1", MILLION])
    rx.expect("ready", timeout=30)
    tx = procs.spawn(PKTGEN + ["-i", "netmap:pg{1", "-f", "tx", "-n", str(MILLION)] + QUICK)
    assert _summary(tx.finish(timeout=60)) == ("Sent", MILLION, 60 * MILLION)
    assert rx.finish(timeout=60).splitlines()[-1] == f"received {MILLION}"
    assert rundir_entries(rundir) == ["lock"]


def test_a_legacy_api_program_sends_a_million_to_pkt_gen(procs, rundir, interop):
    rx = procs.spawn(PKTGEN + ["-i", "netmap:ph}1", "-f", "rx", "-n", str(MILLION)] + QUICK)
    rx.expect("Receiving from", timeout=30)
    tx = procs.spawn([interop, "tx", "pktgen", "netmap:ph{1", MILLION])
    assert tx.finish(timeout=60).splitlines()[-1] == f"sent {MILLION}"
    assert _summary(rx.finish(timeout=60)) == ("Received", MILLION, 60 * MILLION)
    assert rundir_entries(rundir) == ["lock"]


@pytest.mark.parametrize("direction", ["raw-to-legacy", "legacy-to-raw"])
def test_a_raw_dev_netmap_program_and_a_legacy_api_program_exchange_a_million(procs, rundir, interop,
                                                                            nm_raw, direction):
    """nm_raw under `nmcompat exec` on one end of a pipe, nm_interop (linked
    with the emulation, no exec) on the other; frame i is nm_test.h's, checked
    byte for byte and in order by the receiver."""
    if direction == "raw-to-legacy":
        rx = procs.spawn([interop, "rx", "seq", "netmap:pi}1", MILLION])
        tx_argv, want_tx, want_rx = _exec(nm_raw, "send", "pi{1", MILLION), "send ok", "received"
    else:
        rx = procs.spawn(_exec(nm_raw, "recv", "pi}1", MILLION))
        tx_argv, want_tx, want_rx = [interop, "tx", "seq", "netmap:pi{1", MILLION], "sent", "recv ok"
    rx.expect("ready", timeout=30)
    tx = procs.spawn(tx_argv)
    assert tx.finish(timeout=60).splitlines()[-1] == f"{want_tx} {MILLION}"
    assert rx.finish(timeout=60).splitlines()[-1] == f"{want_rx} {MILLION}"
    assert rundir_entries(rundir) == ["lock"]
