"""A process out of file descriptors: the open that hits EMFILE fails with
an error naming the port and leaves nothing behind (no region, no name, no
socket), whichever step of the open runs out, and the ports opened before
it close cleanly, also out of descriptors."""
from __future__ import annotations

import os

import pytest

from testlib import rundir_entries

FILL = """
    import os, resource, sys, nmcompat
    limit, kind = int(sys.argv[1]), sys.argv[2]
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    ports, err = [], None
    for i in range(200):
        try:
            ports.append(nmcompat.open(f"vale0:e{i}" if kind == "vale" else f"netmap:p{i}{{0"))
        except OSError as exc:
            err = exc
            break
    rundir = os.environ["NMCOMPAT_RUNDIR"]
    want = set()
    for p in ports:
        mem = os.path.basename(p.info.region)
        want |= {mem, "ctl." + mem[4:]}
    names = set(os.listdir(rundir))
    for n in names:                 # regions kept for reuse (spare.c) are no leak
        if n.startswith("spare."):
            mem = os.readlink(os.path.join(rundir, n))
            want |= {mem, "ctl." + mem[4:]}
    extra = sorted(n for n in names if n.startswith(("mem.", "ctl.")) and
                   not n.endswith(".sock") and n not in want)
    dangling = sorted(n for n in names if n.startswith("parent.") and
                      os.readlink(os.path.join(rundir, n)) not in names)
    print("result", len(ports), err.errno if err else 0, extra, dangling, flush=True)
    for p in ports:
        p.close()
    print("closed", sorted(os.listdir(rundir)), flush=True)
"""


@pytest.mark.parametrize("kind", ["pipe", "vale"])
def test_an_open_that_runs_out_of_descriptors_leaves_nothing(rundir, procs, kind):
    """Every limit from 14 to 25 descriptors: the failing open is at a
    different step each time (region files, sockets, the switch, Python's
    mapping)."""
    for limit in range(14, 26):
        out = procs.python(FILL, str(limit), kind).finish(timeout=60)
        result = [ln for ln in out.splitlines() if ln.startswith("result")][0]
        assert result.endswith(" 24 [] []"), (limit, result)
        assert out.splitlines()[-1].startswith("closed "), (limit, out)
        assert rundir_entries(rundir) == ["lock"], (limit, out)
