"""The process table of an AF_XDP NIC record shared across processes counts
only processes that still have the record's share memory.

The opener A opens va-0; 15 joiners join its record (the table then lists
16 processes, its limit) and then either exec another program (their pids
live on, without the record's descriptors) or are killed and left unwaited
(zombies: their pids answer kill(pid, 0), their descriptors are gone).  A
new process's join must then succeed.  Before, an entry was free only when
its pid was gone, so such entries filled the table and the join failed
with EBUSY.
"""
from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.kernel

OPENER = r"""
import os, subprocess, sys
import nmcompat

mode = sys.argv[1]
EXECD = "import sys; print('execd', flush=True); sys.stdin.readline()"
JOINER = ("import os, sys, nmcompat\n"
          f"EXECD = {EXECD!r}\n"
          "p = nmcompat.open('netmap:va-0', backend='afxdp', xdp_mode='skb')\n"
          "print('open', flush=True)\n"
          "if sys.argv[1] == 'exec':\n"
          "    os.execv(sys.executable, [sys.executable, '-c', EXECD])\n"
          "sys.stdin.readline()\n"
          "p.close()\n"
          "print('closed', flush=True)\n")

def joiner(how):
    c = subprocess.Popen([sys.executable, "-c", JOINER, how], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = c.stdout.readline()
    assert line == "open\n", (line, c.stderr.read() if c.wait(timeout=30) is not None else "")
    return c

a = nmcompat.open("netmap:va-0", backend="afxdp", xdp_mode="skb")
gone = []
for _ in range(15):                 # with A, the table's 16 entries
    c = joiner(mode)
    if mode == "exec":              # its pid lives on in another program
        assert c.stdout.readline() == "execd\n"
    else:                           # a zombie: its pid lives, its descriptors are gone
        c.kill()
        os.waitid(os.P_PID, c.pid, os.WEXITED | os.WNOWAIT)
    gone.append(c)
late = joiner("stay")               # before: EBUSY, the table full of the gone
late.stdin.write("x\n")
late.stdin.flush()
assert late.stdout.read() == "closed\n"
assert late.wait(timeout=30) == 0
for c in gone:
    if mode == "exec":
        c.stdin.write("x\n")
        c.stdin.flush()
    c.wait(timeout=30)
a.close()
print("result joined", flush=True)
"""


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


@pytest.mark.parametrize("mode", ["exec", "killed"])
def test_a_join_succeeds_when_the_table_lists_only_processes_without_the_record(netns, procs, mode):
    a = procs.spawn(["ip", "netns", "exec", netns.name, sys.executable, "-c", OPENER, mode])
    a.expect("result joined", timeout=120)
    assert a.wait(30) == 0, a.describe()
