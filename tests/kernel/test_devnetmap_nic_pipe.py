"""A pipe of an interface under `nmcompat exec`: tests/devnetmap/nm_nic_pipe.c
registers netmap:va, va{1 and va}1 through netmap's fd interface, finds
the pipe in the NIC's memory (one mem_id) and moves the buffer a frame from
the peer arrived in, from the NIC's RX ring through the pipe, with no copy."""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cprograms import devnetmap_program
from nic_support import frame, peer_sender, quiet



@pytest.fixture(scope="module")
def nm_nic_pipe(tmp_path_factory) -> Path:
    return devnetmap_program(tmp_path_factory.mktemp("nmnicpipe") / "nm_nic_pipe", "nm_nic_pipe.c")


def _run(argv, env):
    """Start the program, send test frames from vb until it is done."""
    quiet()
    tx = peer_sender("vb")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = proc.stdout.readline() if select.select([proc.stdout], [], [], 30)[0] else ""
        deadline = time.monotonic() + 20
        seq = 0
        while ready.startswith("ready ") and proc.poll() is None and time.monotonic() < deadline:
            tx.send(frame(seq, 120))
            seq += 1
            select.select([proc.stdout], [], [], 0.05)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        tx.close()
    return ready, proc.returncode, out, err


@pytest.mark.parametrize("admode", ["0", "2"], ids=["afxdp", "afpacket"])
def test_a_pipe_of_the_interface_is_zero_copy_under_exec(netns, rundir, nm_nic_pipe, admode):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMCOMPAT_")}
    env["NMCOMPAT_ADMODE"] = admode
    argv = [sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", str(rundir), "--",
            str(nm_nic_pipe), "va"]
    ready, rc, out, err = netns.run(_run, argv, env)
    assert ready.startswith("ready "), err
    assert rc == 0 and out.startswith("zero-copy ok "), (out, err)
