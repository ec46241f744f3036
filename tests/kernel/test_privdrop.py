"""A program that drops its privileges after opening its ports (as Debian's
tcpdump switches to its own user, as daemons call setuid) keeps working:
its syncs, its poll() and its close need nothing the new user lacks.

Root is needed to become another user; the ports are pipes in the test's
0700 runtime directory, which user 65534 can neither search nor write.  The
peer stays root and opens its ends after the drop, so the dropped process
wakes holders that did not exist when it still had its privileges."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cprograms import NM_RAW, devnetmap_program
from testlib import rundir_entries

FRAMES = 5000               # five times a ring: both sides wait for room and for frames


@pytest.fixture(scope="module")
def nm_raw(tmp_path_factory) -> Path:
    return devnetmap_program(tmp_path_factory.mktemp("privdrop") / "nm_raw", *NM_RAW)


def _tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmcompat.tools", *args], capture_output=True,
                          text=True, timeout=60)


def _holders() -> list:
    out = _tool("status", "--json")
    assert out.returncode == 0, out.stderr
    return [h for r in json.loads(out.stdout)["regions"] for h in r["holders"]]


def _exec(procs, nm_raw: Path, *args):
    return procs.spawn([sys.executable, "-m", "nmcompat.tools", "exec", "--", nm_raw, *args])


def _check_ok() -> None:
    out = _tool("check", "--json")
    assert out.returncode == 0, out.stdout + out.stderr


def _program_pid(exec_pid):
    """The pid of the program `nmcompat exec` (exec_pid) runs as its child."""
    with open(f"/proc/{exec_pid}/task/{exec_pid}/children") as f:
        children = f.read().split()
    assert len(children) == 1, f"nmcompat exec {exec_pid} has children {children}"
    return int(children[0])


@pytest.mark.parametrize("last", ["peer", "dropped"])
def test_pipes_work_after_the_opener_becomes_nobody(nm_raw, rundir, procs, last):
    """The dropped process sends, then receives, waiting in poll() both ways
    (its bells reach the root peer, the peer's reach it, its POLLOUT comes
    back when the peer drains); its close releases its holders at once
    (none dead left for the next open to find) and leaves its socket, which
    it may no longer unlink, to the next close; whoever closes last, the
    runtime directory is clean after gc and every buffer is in its place."""
    dropped = _exec(procs, nm_raw, "dropped", "pd{1", "pe}1", FRAMES)
    dropped.expect("dropped", timeout=30)
    peer = _exec(procs, nm_raw, "peer", "pd}1", "pe{1", FRAMES)
    assert dropped.expect("dropped done", timeout=60) == f"dropped done {FRAMES}"
    assert peer.expect("peer done", timeout=60) == f"peer done {FRAMES}"
    _check_ok()
    first, second = (dropped, peer) if last == "peer" else (peer, dropped)
    os.kill(first.pid, signal.SIGUSR1)
    first.finish(timeout=30)
    holders = _holders()
    program = _program_pid(second.pid)     # exec is the program's parent
    assert holders and all(h["alive"] and h["pid"] == program for h in holders), holders
    _check_ok()
    os.kill(second.pid, signal.SIGUSR1)
    second.finish(timeout=30)
    assert dropped.out[-1] == f"dropped ok {FRAMES}\n" and peer.out[-1] == f"peer ok {FRAMES}\n"
    assert dropped.err == [] and peer.err == []
    assert _holders() == []
    if last == "peer":      # the root peer's close removed all, the socket the dropped close left too
        assert rundir_entries(rundir) == ["lock"]
    out = _tool("gc", "--json")
    assert out.returncode == 0, out.stderr
    assert rundir_entries(rundir) == ["lock"]
    _check_ok()


PY_DROPPED = """
import os, sys, nmcompat
n = int(sys.argv[1])
tx, rx = nmcompat.open("netmap:py{1"), nmcompat.open("netmap:pz}1")
os.setgroups([]); os.setgid(65534); os.setuid(65534)
print("dropped", flush=True)
frames = [bytes([i % 256]) * 60 for i in range(n)]
sent = 0
while sent < n:
    sent += tx.inject(frames[sent]) and 1
    if sent < n and tx.tx_rings[0].space() == 0:
        assert tx.poll(nmcompat.POLLOUT, 10000) & nmcompat.POLLOUT, "no room came back"
tx.txsync()
got = 0
while got < n:
    assert rx.poll(nmcompat.POLLIN, 10000) & nmcompat.POLLIN, f"no frame after {got}"
    while True:
        pkt = rx.nextpkt()
        if pkt is None:
            break
        assert bytes(pkt[1]) == frames[got], got
        got += 1
tx.close(); rx.close()
print("python dropped ok", got, flush=True)
"""

PY_PEER = """
import sys, nmcompat
n = int(sys.argv[1])
rx, tx = nmcompat.open("netmap:py}1"), nmcompat.open("netmap:pz{1")
got = 0
while got < n:
    assert rx.poll(nmcompat.POLLIN, 10000) & nmcompat.POLLIN, f"no frame after {got}"
    while rx.nextpkt() is not None:
        got += 1
sent = 0
while sent < n:
    sent += tx.inject(bytes([sent % 256]) * 60) and 1
    if sent < n and tx.tx_rings[0].space() == 0:
        assert tx.poll(nmcompat.POLLOUT, 10000) & nmcompat.POLLOUT, "no room came back"
tx.txsync()
tx.close(); rx.close()
print("peer ok", got, flush=True)
"""


def test_python_ports_work_after_os_setuid(rundir, procs):
    """nmcompat.open(), then os.setuid(): Port.poll() both ways, close."""
    dropped = procs.python(PY_DROPPED, str(FRAMES))
    dropped.expect("dropped", timeout=30)
    peer = procs.python(PY_PEER, str(FRAMES))
    assert peer.finish(timeout=60).splitlines()[-1] == f"peer ok {FRAMES}"
    assert dropped.finish(timeout=60).splitlines()[-1] == f"python dropped ok {FRAMES}"
    assert _holders() == []
    _check_ok()
    assert _tool("gc").returncode == 0
    assert rundir_entries(rundir) == ["lock"]


PY_VALE_DROPPED = """
import os, nmcompat
a = nmcompat.open("valepd:a")
os.setgroups([]); os.setgid(65534); os.setuid(65534)
print("dropped", flush=True)
got = 0
while got < 500:
    assert a.poll(nmcompat.POLLIN, 10000) & nmcompat.POLLIN, f"no frame after {got}"
    while a.nextpkt() is not None:
        got += 1
a.close()
print("vale dropped ok", got, flush=True)
"""

PY_VALE_PEER = """
import signal, nmcompat
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
b = nmcompat.open("valepd:b")
for i in range(500):        # fewer than the receiver's ring holds: none dropped
    assert b.inject(b"\\xff" * 6 + b"\\x02\\0\\0\\0\\0\\x01" + bytes(50))
    b.txsync()
print("peer ok", flush=True)
signal.sigwait([signal.SIGUSR1])
b.close()
"""


def test_a_vale_port_receives_after_os_setuid(rundir, procs):
    """A VALE port's opener becomes nobody; a port that joins the switch
    afterwards sends to it and wakes its poll(); its close releases its
    holder and switch entry (the files it may no longer remove go with
    gc)."""
    dropped = procs.python(PY_VALE_DROPPED)
    dropped.expect("dropped", timeout=30)
    peer = procs.python(PY_VALE_PEER)
    peer.expect("peer ok", timeout=60)
    assert dropped.finish(timeout=60).splitlines()[-1] == "vale dropped ok 500"
    holders = _holders()
    assert holders and all(h["alive"] and h["pid"] == peer.pid for h in holders), holders
    _check_ok()
    os.kill(peer.pid, signal.SIGUSR1)
    peer.finish(timeout=30)
    assert _holders() == []
    assert _tool("gc").returncode == 0
    assert rundir_entries(rundir) == ["lock"]


VALE_FRAMES = 500           # fewer than a receiver's ring holds: a switch drops what finds no room


def test_a_vale_port_sends_after_the_opener_becomes_nobody(nm_raw, rundir, procs):
    """A VALE port registered as root under exec, its program then nobody,
    sends to root ports on its switch: one that opened before the drop, one
    that opened after it; each receives every frame, in order (the sender
    maps their regions only now, through its descriptor of wake/).  Then
    it receives, in poll(), from a port that joins last.  Nothing is left
    once all closed: check passes, gc leaves only the name lock."""
    early = _exec(procs, nm_raw, "recv", "valeps:early", VALE_FRAMES)
    early.expect("ready", timeout=30)
    dropped = _exec(procs, nm_raw, "dropsend", "valeps:dropped", VALE_FRAMES)
    dropped.expect("dropped", timeout=30)
    late = _exec(procs, nm_raw, "recv", "valeps:late", VALE_FRAMES)
    late.expect("ready", timeout=30)
    os.kill(dropped.pid, signal.SIGUSR1)    # exec passes it on to its program
    assert early.expect("recv ok", timeout=60) == f"recv ok {VALE_FRAMES}"
    assert late.expect("recv ok", timeout=60) == f"recv ok {VALE_FRAMES}"
    early.finish(timeout=30)
    late.finish(timeout=30)
    replier = _exec(procs, nm_raw, "send", "valeps:replier", VALE_FRAMES)
    assert replier.expect("send ok", timeout=60) == f"send ok {VALE_FRAMES}"
    replier.finish(timeout=30)
    assert dropped.expect("dropsend done", timeout=60) == f"dropsend done {VALE_FRAMES}"
    _check_ok()
    os.kill(dropped.pid, signal.SIGUSR1)
    dropped.finish(timeout=30)
    assert dropped.out[-1] == f"dropsend ok {VALE_FRAMES}\n" and dropped.err == []
    assert _holders() == []
    _check_ok()
    out = _tool("gc", "--json")
    assert out.returncode == 0, out.stderr
    assert rundir_entries(rundir) == ["lock"]
    _check_ok()
