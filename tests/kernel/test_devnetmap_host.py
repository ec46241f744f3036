"""Host rings for unmodified netmap programs: tests/devnetmap/nm_nic.c's
"host" command (REGISTER NR_REG_NIC_SW, then the stack's ARP request on the
host RX ring) under `nmcompat exec` on the namespace's veth va, on both NIC
backends.  exec's control plane makes the tap and the TCX links and hands
them over; nothing stays attached after the program exits."""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from cprograms import devnetmap_program
from host_support import NOTHING, programs
from test_devnetmap_nic import _env, _line, exec_argv

A_IP, B_IP = "10.78.0.1", "10.78.0.2"


@pytest.fixture(scope="module")
def nm_nic(tmp_path_factory) -> Path:
    return devnetmap_program(tmp_path_factory.mktemp("nmhost") / "nm_nic", "nm_nic.c")


def _host_under_exec(argv, env):
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        counts = _line(proc.stdout, 20)
        during = programs("va") if counts.startswith("host ") else None
        if counts.startswith("host "):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"to the peer", (B_IP, 9))     # the stack asks for the peer's MAC
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    while programs("va") != NOTHING and time.monotonic() < deadline:
        time.sleep(0.05)
    return counts, during, proc.returncode, out, err, programs("va")


@pytest.mark.parametrize("admode, backend", [("0", "afxdp"), ("2", "afpacket")], ids=["afxdp", "afpacket"])
def test_host_rings_of_a_netmap_program_under_exec(netns, nm_nic, rundir, admode, backend):
    netns.ip("addr", "add", f"{A_IP}/24", "dev", "va")
    for key in ("all", "default", "va"):
        subprocess.run(["ip", "netns", "exec", netns.name, "sysctl", "-qw",
                        f"net.ipv6.conf.{key}.disable_ipv6=1"], check=True)
    counts, during, rc, out, err, after = netns.run(
        _host_under_exec, exec_argv(rundir, nm_nic, "host", "va"), _env(NMCOMPAT_ADMODE=admode))
    assert counts == "host 1 1 1 1\n", err
    assert during["tcx_egress"] == 1 and during["xdp"] == (backend == "afxdp"), during
    assert during["tcx_ingress"] == (1 if backend == "afpacket" else 0), during  # the cut-off
    assert rc == 0 and out == "host rx arp\n", err
    assert after == NOTHING


def _hostcount(argv, env):
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout, out.stderr


@pytest.mark.parametrize("admode", ["0", "2"], ids=["afxdp", "afpacket"])
def test_a_register_of_the_nic_rings_only_reports_the_adapters_host_rings(netns, nm_nic, rundir, admode):
    """netmap's nr_host_tx_rings/nr_host_rx_rings describe the adapter (one
    host ring pair by default), not what the REGISTER binds: NR_REG_ALL_NIC
    on a veth reports 1 and 1 (ctrl-api-test's port_register_hwall)."""
    rc, out, err = netns.run(_hostcount, exec_argv(rundir, nm_nic, "hostcount", "va"),
                             _env(NMCOMPAT_ADMODE=admode))
    assert (rc, out) == (0, "hostcount 1 1\n"), err
