"""Every allocation of a NIC open failing in turn (calloc_fault.c, preloaded):
the open fails with ENOMEM and frees every block it had allocated, on both
NIC backends, for the whole interface and with host rings.  Before, a port
whose socket array could not be allocated kept its wait list (p->kfd)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cprograms import preload_library

HERE = Path(__file__).resolve().parent

SWEEP = r"""
import ctypes, errno, json, sys
import nmcompat
fault = ctypes.CDLL(sys.argv[1])
name, backend = sys.argv[2], sys.argv[3]
leaks, k = {}, 1
while k < 400:
    fault.fault_arm(k)
    try:
        nmcompat.open(name, backend=backend).close()
        err = 0
    except OSError as exc:
        err = exc.errno
    left = fault.fault_disarm()
    if left > 0:
        break                               # the open made fewer than k callocs: all tried
    if err not in (0, errno.ENOMEM):
        leaks[k] = f"errno {err}"
    elif err == errno.ENOMEM and fault.fault_live():
        leaks[k] = f"{fault.fault_live()} blocks"
    k += 1
print(json.dumps({"tried": k - 1, "leaks": leaks}))
"""


@pytest.fixture(scope="module")
def calloc_fault(tmp_path_factory):
    return preload_library(tmp_path_factory.mktemp("fault") / "calloc_fault.so", HERE / "calloc_fault.c")


@pytest.mark.parametrize("backend", ["afpacket", "afxdp"])
@pytest.mark.parametrize("name", ["netmap:va", "netmap:va*"])
def test_a_failed_allocation_leaks_nothing(netns, calloc_fault, backend, name):
    env = dict(os.environ, LD_PRELOAD=str(calloc_fault))
    r = subprocess.run(["ip", "netns", "exec", netns.name, sys.executable, "-c", SWEEP,
                        str(calloc_fault), name, backend], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["tried"] >= 3, out
    assert out["leaks"] == {}, out
