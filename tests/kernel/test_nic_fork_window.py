"""A fork() during a NIC open, between the making of an AF_XDP socket and
its storing where the engine's fork handler finds it (bind_fork.c, preloaded,
forks from inside the socket's bind, as another thread could then): the
child must not keep a copy of the socket (it would keep the queue bound
after the parent closed its port).  The engine makes such descriptors under
the lock its fork handler takes and lists them until stored."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cprograms import preload_library

pytestmark = pytest.mark.kernel

HERE = Path(__file__).resolve().parent

OPEN = r"""
import ctypes, sys
import nmcompat
hook = ctypes.CDLL(sys.argv[1])
hook.fork_arm()
nmcompat.open("netmap:va-0", backend="afxdp", xdp_mode="skb").close()
print("result", hook.fork_result())
"""


@pytest.fixture(scope="module")
def bind_fork(tmp_path_factory):
    return preload_library(tmp_path_factory.mktemp("forkwin") / "bind_fork.so", HERE / "bind_fork.c")


def test_fork_while_a_socket_is_made_leaves_the_child_no_copy(netns, rundir, bind_fork):
    env = dict(os.environ, LD_PRELOAD=str(bind_fork))
    r = subprocess.run(["ip", "netns", "exec", netns.name, sys.executable, "-c", OPEN, str(bind_fork)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    result = r.stdout.split()[-1]
    assert result != "-1", "no AF_XDP bind happened"
    assert result == "0", "the child forked during the open kept the new socket"
