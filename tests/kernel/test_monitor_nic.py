"""netmap monitors of a NIC port (a veth end), on every NIC backend: "va/r"
gets a byte-exact copy of what the port receives, "va/t" of what it sends
(NS_TXMON), while the port and its peer still get everything; "va/z" sees
received frames only once the port released them, and sent frames once the
kernel completed them; a monitor in another process finds the port in its
opener's region (nic.<pid>)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nmcompat._ring import NS_MOREFRAG, NS_TXMON
from nic_support import (frame, open_nic, peer_receiver, peer_recv, peer_sender, port_collect,
                         port_send, quiet, tx_done, wait_until, is_ours)

from testlib import skip_or_fail

pytestmark = pytest.mark.kernel
COUNT = 200
SOURCE = Path(__file__).resolve().parents[1] / "devnetmap" / "lnm_monitor.c"


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def held(port):
    """Our frames the RX rings hold now, not released."""
    port.rxsync()
    out = []
    for ring in port.rx_rings:
        i, data = ring.cur, b""
        while i != ring.tail:
            s = ring.slots[i]
            data += bytes(ring.buf(int(s["buf_idx"]))[:int(s["len"])])
            if not int(s["flags"]) & NS_MOREFRAG:
                if is_ours(data):
                    out.append(data)
                data = b""
            i = ring.next(i)
    return out


def drain_flags(port):
    """Our frames in the RX rings with their slot flags, released."""
    port.rxsync()
    out = []
    for ring in port.rx_rings:
        while ring.cur != ring.tail:
            s = ring.slots[ring.cur]
            data = bytes(ring.buf(int(s["buf_idx"]))[:int(s["len"])])
            if is_ours(data):
                out.append((data, int(s["flags"])))
            ring.head = ring.cur = ring.next(ring.cur)
    port.rxsync()
    return out


def collect_flags(port, want, timeout=10.0):
    got = []
    wait_until(lambda: got.extend(drain_flags(port)) or len(got) >= want, timeout)
    return got


def copies(backend, xdp_mode):
    import nmcompat
    quiet()
    rx_frames = [frame(i, 60 + (i * 29) % 1400) for i in range(COUNT)]
    tx_frames = [frame(i, 60 + (i * 31) % 1400, tag=1, src=b"\x02" + b"\0" * 4 + b"\x0a",
                       dst=b"\x02" + b"\0" * 4 + b"\x0b") for i in range(COUNT)]
    rx_sock, tx_sock = peer_receiver(), peer_sender()
    with open_nic("netmap:va", backend, xdp_mode) as port, \
            nmcompat.open("netmap:va/r") as mr, nmcompat.open("netmap:va/t") as mt, \
            nmcompat.open("netmap:va/rt") as mrt:
        assert mr.info.backend == "monitor"
        for f in rx_frames:
            tx_sock.send(f)
        got = port_collect(port, COUNT)
        seen_r = collect_flags(mr, COUNT)
        port_send(port, tx_frames)
        assert tx_done(port)
        sent = peer_recv(rx_sock, COUNT)
        seen_t = collect_flags(mt, COUNT)
        seen_rt = collect_flags(mrt, 2 * COUNT)
    return got, seen_r, sent, seen_t, seen_rt, rx_frames, tx_frames


def test_copy_monitors_of_a_nic_port(netns, nic):
    got, seen_r, sent, seen_t, seen_rt, rx_frames, tx_frames = netns.run(copies, *nic)
    assert got == rx_frames                     # the port still receives everything
    assert seen_r == [(f, 0) for f in rx_frames]
    assert sent == tx_frames                    # and everything it sends leaves
    assert seen_t == [(f, NS_TXMON) for f in tx_frames]
    assert seen_rt == [(f, 0) for f in rx_frames] + [(f, NS_TXMON) for f in tx_frames]


def zero_copy(backend, xdp_mode):
    import nmcompat
    quiet()
    frames = [frame(i, 60 + (i * 29) % 1400) for i in range(50)]
    out = [frame(i, 100, tag=2) for i in range(50)]
    tx_sock = peer_sender()
    with open_nic("netmap:va", backend, xdp_mode) as port, nmcompat.open("netmap:va/z") as z:
        for f in frames:
            tx_sock.send(f)
        assert wait_until(lambda: len(held(port)) >= len(frames))
        before = drain_flags(z)                 # received, not released: nothing
        for ring in port.rx_rings:
            ring.head = ring.cur = ring.tail
        port.rxsync()
        after = collect_flags(z, len(frames))
        port_send(port, out)
        assert tx_done(port)
        sent = collect_flags(z, len(out))
        again = [frame(i, 70, tag=3) for i in range(20)]
        for f in again:                         # the traded buffers keep working
            tx_sock.send(f)
        got = port_collect(port, len(again))
    return before, after, sent, got, frames, out, again


def test_zero_copy_monitor_of_a_nic_port(netns, nic):
    before, after, sent, got, frames, out, again = netns.run(zero_copy, *nic)
    assert before == []
    assert after == [(f, 0) for f in frames]
    assert sent == [(f, NS_TXMON) for f in out]
    assert got == again


CHILD = textwrap.dedent("""
    import sys, nmcompat
    from nmcompat._ring import NS_TXMON
    mon = nmcompat.open("netmap:va/t")
    print("ready", flush=True)
    got = []
    while len(got) < int(sys.argv[1]) and mon.poll(nmcompat.POLLIN, 10000) > 0:
        mon.dispatch(lambda h, d: got.append(bytes(d).hex()))
    print(" ".join(got), flush=True)
    mon.close()
""")


def other_process(backend, xdp_mode):
    quiet()
    frames = [frame(i, 200, tag=4) for i in range(30)]
    with open_nic("netmap:va", backend, xdp_mode) as port:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(len(frames))],
                                 stdout=subprocess.PIPE, text=True)
        try:
            ready = child.stdout.readline().strip()
            port_send(port, frames)
            out, _ = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    return ready, out.split(), [f.hex() for f in frames]


def test_monitor_in_another_process(netns, nic):
    ready, seen, frames = netns.run(other_process, *nic)
    assert ready == "ready"
    assert seen == frames


def build_lnm_monitor(out: Path) -> Path:
    """cc $(nmcompat-config --cflags) lnm_monitor.c $(nmcompat-config --libs)."""
    bindir = Path(sys.executable).parent
    if not shutil.which("gcc") or not (bindir / "nmcompat-config").exists():
        skip_or_fail("gcc and nmcompat-config (./run setup) are needed")
    line = (f"gcc -O2 -Wall -Wextra -Werror $(nmcompat-config --cflags) {SOURCE} -o {out} "
            "$(nmcompat-config --libs)")
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, line + "\n" + proc.stderr
    return out


def under_exec(prog, rundir, backend, xdp_mode):
    quiet()
    frames = [frame(i, 60 + i * 11) for i in range(20)]
    tx_sock = peer_sender()
    with open_nic("netmap:va", backend, xdp_mode) as port:
        child = subprocess.Popen([sys.executable, "-m", "nmcompat.tools", "exec", "--rundir",
                                  str(rundir), "--", str(prog), "nic", "va", str(len(frames))],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ready = child.stdout.readline().strip()
            for f in frames:
                tx_sock.send(f)
            got = port_collect(port, len(frames))
            out, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    return ready, out.split(), err, got, [f.hex() for f in frames], child.returncode


def test_monitor_through_libnetmap_under_exec(netns, nic, rundir, tmp_path):
    """A netmap program under exec (tests/devnetmap/lnm_monitor.c) monitors
    the NIC port a Python process has open."""
    prog = build_lnm_monitor(tmp_path / "lnm_monitor")
    ready, seen, err, got, frames, rc = netns.run(under_exec, prog, rundir, *nic)
    assert (ready, rc) == ("ready", 0), err
    assert [g.hex() for g in got] == frames     # the port still receives everything
    assert seen == frames


def beside_host_rings(backend, xdp_mode):
    import nmcompat
    quiet()
    frames = [frame(i, 60 + i * 7, tag=5) for i in range(20)]
    tx_sock = peer_sender()
    with nmcompat.open("netmap:va^", backend=backend) as host, \
            open_nic("netmap:va", backend, xdp_mode) as port, nmcompat.open("netmap:va/r") as mon:
        assert host.info.host_rx_rings == 1
        for f in frames:
            tx_sock.send(f)
        got = port_collect(port, len(frames))
        seen = collect_flags(mon, len(frames), timeout=5.0)
    return got, seen, frames


def test_monitor_beside_the_host_rings_watches_the_nic_rings(netns, nic):
    """The one-port bridge's shape: va^ opened first, then va, in one
    process (two records of va).  va/r watches the record that binds va's
    NIC rings, not the one of the host rings only, and sees what va gets."""
    got, seen, frames = netns.run(beside_host_rings, *nic)
    assert got == frames
    assert seen == [(f, 0) for f in frames]
