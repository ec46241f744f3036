"""A NIC port's netmap descriptor passed with SCM_RIGHTS under `nmcompat
exec` (tests/devnetmap/nm_raw_fds.c, modes passnic and passgone).

The receiver exec()s a fresh image that never opened the descriptor: its
first netmap call (here the mmap) adopts the port, joining the opener's
record as another process's open does (test_nic_xproc.py), its AF_XDP
sockets duplicates of the opener's taken with pidfd_getfd.  Once the opener
closed its port (and its sockets with it) the receiver's first call is
EOWNERDEAD.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from afxdp_support import packet_recv, packet_sender, packet_socket, quiet_ipv6
from cprograms import NM_RAW, devnetmap_program
from testlib import rundir_entries

pytestmark = pytest.mark.kernel

SRC = bytes.fromhex("020000000001")     # nm_test.h's frames come from there
ETH_P_ALL = 3
FRAMES = 300


@pytest.fixture(scope="module")
def nm_raw(tmp_path_factory) -> Path:
    return devnetmap_program(tmp_path_factory.mktemp("nicpass") / "nm_raw", *NM_RAW)


def nm_frame(i: int) -> bytes:
    """Frame i of nm_test.h (fill, frame_len)."""
    n = 60 + i % 200
    head = b"\xff" * 6 + SRC
    return head + bytes((i * 7 + k) & 0xFF for k in range(12, n))


def _exec(nm_raw, *args):
    return subprocess.run([sys.executable, "-m", "nmcompat.tools", "exec", "--", str(nm_raw), *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def _pass_and_capture(nm_raw, n):
    quiet_ipv6("va", "vb")
    with packet_socket("vb", proto=ETH_P_ALL) as rx:
        out = _exec(nm_raw, "passnic", "va", n)
        got = packet_recv(rx, n, timeout=5.0, keep=lambda d: bytes(d[6:12]) == SRC)
    return out.returncode, out.stdout, out.stderr, got


def test_a_nic_fd_passed_with_scm_rights_sends_from_its_receiver(netns, nm_raw, rundir):
    rc, out, err, got = netns.run(_pass_and_capture, nm_raw, FRAMES)
    assert rc == 0 and out == f"passnic ok {FRAMES}\n", err
    assert got == [nm_frame(i) for i in range(FRAMES)]
    assert rundir_entries(rundir) == ["lock"]


@contextmanager
def _started(nm_raw, *args):
    """nm_raw ARGS under exec, started (stdout and stderr piped); killed
    at the end unless it exited."""
    prog = subprocess.Popen([sys.executable, "-m", "nmcompat.tools", "exec", "--", str(nm_raw), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield prog
    finally:
        if prog.poll() is None:
            prog.kill()
            prog.wait()


def _run(nm_raw, *args):
    out = _exec(nm_raw, *args)
    return out.returncode, out.stdout, out.stderr


@pytest.mark.parametrize("args, ok", [(("passgone", "va", 1), "passgone ok 1\n"),
                                      (("keepexec", "va"), "keepexec ok\n")],
                         ids=["opener-closed", "kept-across-exec"])
def test_a_nic_fd_without_its_openers_sockets_is_eownerdead(netns, nm_raw, rundir, args, ok):
    """The opener closed its port before the receiver's first call, or the
    opener itself exec()ed with the descriptor (exec closed its sockets)."""
    rc, out, err = netns.run(_run, nm_raw, *args)
    assert rc == 0 and out == ok, err
    gc = subprocess.run([sys.executable, "-m", "nmcompat.tools", "gc"], capture_output=True, text=True,
                        timeout=60)
    assert gc.returncode == 0, gc.stderr
    assert rundir_entries(rundir) == ["lock"]


def _plain_beside_program(nm_raw, n):
    """A program under exec receives n frames on va; meanwhile this (plain)
    process opens va/T, which joins the program's record, and sends."""
    import nmcompat
    from afxdp_support import MAC_A, MAC_B, frame, packet_sender, send_all, tag_seq, wait_tx_done
    quiet_ipv6("va", "vb")
    with _started(nm_raw, "recv", "va", n) as prog:
        ready = prog.stdout.readline()
        with packet_socket("vb") as rx, nmcompat.open("netmap:va/T", backend="afxdp") as t, \
                packet_sender("vb") as tx:
            region = t.info.region
            send_all(t, [frame(i, 70, 4, src=MAC_A, dst=MAC_B) for i in range(64)])
            done = wait_tx_done(t)
            out_frames = [tag_seq(f) for f in packet_recv(rx, 64)]
            for i in range(n):
                tx.send(nm_frame(i))
        out, err = prog.communicate(timeout=30)
    return ready, region, done, out_frames, prog.returncode, out, err


def test_a_plain_process_joins_a_programs_port_under_exec(netns, nm_raw, rundir):
    ready, region, done, out_frames, rc, out, err = netns.run(_plain_beside_program, nm_raw, FRAMES)
    assert ready == "ready\n", err
    assert Path(region).parent == rundir and done
    assert out_frames == [(4, i) for i in range(64)]
    assert rc == 0 and out == f"recv ok {FRAMES}\n", err
    assert rundir_entries(rundir) == ["lock"]


def _keep_after_opener_closed(nm_raw, n):
    """passkeep: the receiver adopted va, its opener closed its port; then
    n frames come to va from vb."""
    quiet_ipv6("va", "vb")
    with _started(nm_raw, "passkeep", "va", n) as prog:
        ready = prog.stdout.readline()
        if ready == "ready\n":
            with packet_sender("vb") as tx:
                for i in range(n):
                    tx.send(nm_frame(i))
        out, err = prog.communicate(timeout=60)
    return ready, prog.returncode, out, err


def test_an_adopted_nic_port_keeps_receiving_once_its_opener_closed(netns, nm_raw, rundir):
    """The adopted port holds the XDP program (its link, from exec's
    control plane) as its opener's port did: once that port closed, the
    program and the XSKMAP entry of the queue stay, and frames arrive."""
    ready, rc, out, err = netns.run(_keep_after_opener_closed, nm_raw, FRAMES)
    assert ready == "ready\n", err
    assert rc == 0 and out == f"passkeep ok {FRAMES}\n", err
    assert rundir_entries(rundir) == ["lock"]


NR_REG_ALL_NIC, NR_REG_NIC_SW = 1, 3


def _passrefused(nm_raw, mode, admode):
    env = dict(os.environ, NMCOMPAT_ADMODE=admode)
    return subprocess.run([sys.executable, "-m", "nmcompat.tools", "exec", "--", str(nm_raw), "passrefused",
                           str(mode), "va", str(errno.EOPNOTSUPP)], capture_output=True, text=True, timeout=60,
                          env=env)


@pytest.mark.parametrize("mode, admode, why", [
    (NR_REG_NIC_SW, "0", "a port with host rings is not shared with another process"),
    (NR_REG_ALL_NIC, "2", "a port over AF_PACKET is not shared with another process")],
    ids=["host-rings", "afpacket"])
def test_a_nic_fd_that_cannot_be_adopted_is_eopnotsupp_with_the_reason(netns, nm_raw, rundir, mode, admode,
                                                                       why):
    """Host rings (their tap is the opener's) and AF_PACKET (its rings are
    copies its sockets fill) are not joined: the receiver's calls are
    EOPNOTSUPP, not ENOTTY, and exec prints why."""
    out = netns.run(_passrefused, nm_raw, mode, admode)
    assert out.returncode == 0 and out.stdout == f"passrefused ok {errno.EOPNOTSUPP}\n", out.stderr
    assert f"couldn't adopt the netmap:va descriptor this program received: {os.strerror(errno.EOPNOTSUPP)}: " \
           f"{why}" in out.stderr, out.stderr
    assert rundir_entries(rundir) == ["lock"]
