"""`nmcompat status` names each monitor as it was opened (netmap's ni_name:
`x}1/r`, `x{1/t`, `x{1/zrt` for `/z`, which watches both directions), with
the rings of the end it watches, and its holders by the same name."""
from __future__ import annotations

import subprocess
import sys

import nmcompat
from nmcompat import rundir as rd


def test_every_monitor_kind_is_listed_as_opened(rundir):
    with nmcompat.open("netmap:stm{1", rundir=str(rundir)), \
            nmcompat.open("netmap:stm}1", rundir=str(rundir)), \
            nmcompat.open("netmap:stm{1/t", rundir=str(rundir)), \
            nmcompat.open("netmap:stm{1/z", rundir=str(rundir)), \
            nmcompat.open("netmap:stm}1/r", rundir=str(rundir)), \
            nmcompat.open("netmap:stm}1/rt", rundir=str(rundir)):
        st = rd.status(str(rundir))
        out = subprocess.run([sys.executable, "-m", "nmcompat.tools", "status", "--rundir",
                              str(rundir)], capture_output=True, text=True, timeout=60)
    [region] = st["regions"]
    mons = {p["name"]: p for p in region["ports"] if p["kind"] == "monitor"}
    assert sorted(mons) == ["stm{1/t", "stm{1/zrt", "stm}1/r", "stm}1/rt"]
    assert all((p["rx_rings"], p["rx_slots"], p["pipe_id"]) == (1, 1024, "") for p in mons.values())
    holders = sorted(h["port"] for h in region["holders"])
    assert holders == ["stm{1", "stm{1/t", "stm{1/zrt", "stm}1", "stm}1/r", "stm}1/rt"]
    assert out.returncode == 0, out.stderr
    for name in mons:
        assert f"port {name} [monitor]: 1x1024 tx, 1x1024 rx, 1 live holders" in out.stdout, out.stdout
