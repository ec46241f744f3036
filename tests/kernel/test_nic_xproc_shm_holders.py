"""The record's share memory stays reachable while any process on the
record has it: every process that maps it lists its own descriptor of it
in the record (rec->nic_shm_fds) and a joiner tries each.  Before, only the
opener's holder named a descriptor; once the opener closed its port while
a process that adopted its device descriptor kept using the record, a
third open found only that closed descriptor and made a second share
memory, cutting the adopter off the ledger (or failed)."""
from __future__ import annotations

import json
import sys

import pytest

pytestmark = pytest.mark.kernel

SHM_INO = r"""
def shm_ino():
    import os
    for n in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{n}").startswith("/memfd:nmcompat-nic-share"):
                return os.stat(f"/proc/self/fd/{n}").st_ino
        except OSError:
            pass
    return 0
"""

ADOPTER = SHM_INO + r"""
import sys
from nmcompat._ffi import ffi, lib
out = ffi.new("struct nmc_port **")
rc = lib.nmc_port_adopt(int(sys.argv[1]), out)
print("adopted", rc, shm_ino(), flush=True)
sys.stdin.readline()
if rc == 0:
    lib.nmc_port_close(out[0])
"""

JOINER = SHM_INO + r"""
import json, nmcompat
try:
    p = nmcompat.open("netmap:va-0", backend="afxdp", xdp_mode="skb")
except OSError as exc:
    print(json.dumps(["error", exc.errno, str(exc)]))
else:
    print(json.dumps(["joined", shm_ino()]))
    p.close()
"""

OPENER = r"""
import json, os, subprocess, sys
import nmcompat
from nmcompat._ffi import lib
adopter, joiner = sys.argv[1], sys.argv[2]
p = nmcompat.open("netmap:va-0", backend="afxdp", xdp_mode="skb")
dfd = lib.nmc_port_dev_fd(p._h)
assert dfd >= 0, dfd
h = subprocess.Popen([sys.executable, "-c", adopter, str(dfd)], pass_fds=(dfd,),
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
said = h.stdout.readline().split()
os.close(dfd)
p.close()                       # the adopter's descriptor keeps the holder: a local close
c = subprocess.run([sys.executable, "-c", joiner], capture_output=True, text=True, timeout=60)
h.stdin.write("x\n")
h.stdin.flush()
h.wait(timeout=30)
print("result", json.dumps({"adopter": said, "joiner": json.loads(c.stdout.splitlines()[-1])
                            if c.stdout else c.stderr[-500:]}), flush=True)
"""


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def test_joiner_finds_the_share_memory_of_an_adopter_after_the_opener_closed(netns, procs):
    a = procs.spawn(["ip", "netns", "exec", netns.name, sys.executable, "-c", OPENER, ADOPTER, JOINER])
    out = json.loads(a.expect("result ", timeout=60).split(" ", 1)[1])
    assert a.wait(30) == 0, a.describe()
    adopter, joiner = out["adopter"], out["joiner"]
    assert adopter[:2] == ["adopted", "0"] and int(adopter[2]) != 0, out
    assert joiner == ["joined", int(adopter[2])], out
