"""The host stack's frames while a port binds a NIC's TX rings and no host
rings: netmap drops them (they go to a host RX ring nobody reads), and so
does nmcompat, with nmc_stack_drop on the interface's egress, unless
stack_tx=True or NMCOMPAT_STACK_TX=1 keeps them flowing (docs/DESIGN.md §12).

va keeps 10.77.0.1/24 and a permanent neighbour entry for a ghost address,
so the stack sends a UDP frame at once (no ARP); vb stays in the namespace
with a packet socket that sees what leaves va.  The port's own test frame,
sent after the stack's on the same CPU (nic_support.quiet), marks the point
by which the stack's frame would have arrived.
"""
from __future__ import annotations

import errno
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

import nic_support
from host_support import A_IP, GHOST_IP, NOTHING, programs, udp_dport
from test_devnetmap_nic import _env, _line, exec_argv, nm_nic  # noqa: F401 (a fixture)

DPORT = 9876
ETH_P_ALL = 3
MARKER = nic_support.frame(0, 60, src=nic_support.MAC_A, dst=nic_support.BROADCAST)


def _address(netns) -> None:
    netns.ip("addr", "add", f"{A_IP}/24", "dev", "va")
    netns.ip("neigh", "add", GHOST_IP, "lladdr", "02:00:00:00:00:9f", "dev", "va", "nud", "permanent")


def _stack_send() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(b"from the stack", (GHOST_IP, DPORT))
        except OSError as exc:          # a dropped frame may say ENOBUFS
            if exc.errno != errno.ENOBUFS:
                raise


def _is_marker(data: bytes) -> bool:
    return data[6:12] == nic_support.MAC_A and data[12:14] == b"\x88\xb5"


def _seen(rx: socket.socket, until_marker: bool, timeout: float = 10.0) -> tuple:
    """(the stack's frame seen, the marker seen), reading vb until the
    marker (until_marker) or the stack's frame arrives, at most timeout."""
    stack = marker = False
    deadline = time.monotonic() + timeout
    while not (marker if until_marker else stack):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([rx], [], [], left)[0]:
            break
        data, addr = rx.recvfrom(65536)
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        stack |= udp_dport(data) == DPORT
        marker |= _is_marker(data)
    return stack, marker


def _stack_leaves(rx: socket.socket) -> bool:
    _stack_send()
    return _seen(rx, until_marker=False)[0]


def _with_port(backend, xdp_mode, options: dict, env: dict) -> dict:
    nic_support.quiet()
    os.environ.update(env)
    rx = nic_support.peer_receiver("vb", ETH_P_ALL)
    port = nic_support.open_nic("netmap:va", backend, xdp_mode, **options)
    try:
        during = programs("va")
        _stack_send()
        nic_support.port_send(port, [MARKER])
        held = _seen(rx, until_marker=True)
    finally:
        port.close()
    return {"during": during, "held": held, "after": programs("va"), "left": _stack_leaves(rx)}


@pytest.mark.parametrize("options, env, flowing", [
    ({}, {}, False),
    ({"stack_tx": True}, {}, True),
    ({}, {"NMCOMPAT_STACK_TX": "1"}, True),
    ({"stack_tx": False}, {"NMCOMPAT_STACK_TX": "1"}, False),
], ids=["netmap-drops", "stack_tx", "env", "keyword-beats-env"])
def test_the_stacks_frames_while_a_port_binds_the_nic_tx_rings(nic, netns, options, env, flowing):
    backend, xdp_mode = nic
    _address(netns)
    r = netns.run(_with_port, backend, xdp_mode, options, env)
    assert r["held"] == (flowing, True), r
    assert r["during"]["tcx_egress"] == (0 if flowing else 1), r
    assert r["after"] == NOTHING, r
    assert r["left"], "the stack's frames do not leave va after the port closed"


def _rx_only(backend, xdp_mode) -> tuple:
    nic_support.quiet()
    rx = nic_support.peer_receiver("vb", ETH_P_ALL)
    port = nic_support.open_nic("netmap:va/R", backend, xdp_mode)
    try:
        return programs("va")["tcx_egress"], _stack_leaves(rx)
    finally:
        port.close()


def test_a_port_of_the_rx_rings_only_leaves_the_stacks_frames_alone(nic, netns):
    """NR_RX_RINGS_ONLY binds no TX ring: netmap leaves the stack's frames be."""
    backend, xdp_mode = nic
    _address(netns)
    assert netns.run(_rx_only, backend, xdp_mode) == (0, True)


KILLED = r"""
import sys, time
import nmcompat
port = nmcompat.open("netmap:va", backend=sys.argv[1], xdp_mode=sys.argv[2])
print("open", flush=True)
time.sleep(3600)
"""


def _after_kill(backend: str, xdp_mode: str) -> tuple:
    nic_support.quiet()
    rx = nic_support.peer_receiver("vb", ETH_P_ALL)
    child = subprocess.Popen([sys.executable, "-c", KILLED, backend, xdp_mode],
                             stdout=subprocess.PIPE, text=True)
    try:
        opened = child.stdout.readline().strip()
        during = programs("va")
        blocked = not _stack_leaves(rx) if opened == "open" else None
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    nic_support.wait_until(lambda: programs("va") == NOTHING)
    return opened, during["tcx_egress"], blocked, programs("va"), _stack_leaves(rx)


def test_a_killed_port_leaves_no_drop_behind(nic, netns):
    backend, xdp_mode = nic
    _address(netns)
    opened, egress, blocked, after, left = netns.run(_after_kill, backend,
                                                     xdp_mode or "auto")
    assert (opened, egress, blocked) == ("open", 1, True)
    assert after == NOTHING and left


def _under_exec(argv, env) -> dict:
    nic_support.quiet()
    rx = nic_support.peer_receiver("vb", ETH_P_ALL)
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    r = {}
    try:
        r["held"] = _line(proc.stdout, 20)
        if r["held"] == "held\n":
            r["during"] = programs("va")
            _stack_send()
            proc.stdin.write("go\n")
            proc.stdin.flush()
            r["sent"] = _line(proc.stdout, 20)
            r["seen"] = _seen(rx, until_marker=True)
        proc.stdin.close()
        r["rc"], r["err"] = proc.wait(timeout=30), proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    nic_support.wait_until(lambda: programs("va") == NOTHING)
    r["after"], r["left"] = programs("va"), _stack_leaves(rx)
    return r


@pytest.mark.parametrize("admode", ["0", "2"], ids=["afxdp", "afpacket"])
@pytest.mark.parametrize("stack_tx", ["", "1"], ids=["netmap-drops", "stack_tx"])
def test_a_netmap_program_under_exec_binding_the_nic_rings(netns, nm_nic, rundir, admode, stack_tx):
    """exec's control plane attaches the drop (a link the program's port
    holds) unless the program's NMCOMPAT_STACK_TX=1."""
    _address(netns)
    env = _env(NMCOMPAT_ADMODE=admode, **({"NMCOMPAT_STACK_TX": stack_tx} if stack_tx else {}))
    r = netns.run(_under_exec, exec_argv(rundir, nm_nic, "hold", "va"), env)
    assert (r["held"], r.get("sent")) == ("held\n", "sent\n"), r
    assert r["seen"] == (bool(stack_tx), True), r
    assert r["during"]["tcx_egress"] == (0 if stack_tx else 1), r
    assert r["rc"] == 0 and r["after"] == NOTHING and r["left"], r
