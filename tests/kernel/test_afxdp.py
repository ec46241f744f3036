"""The AF_XDP backend against the running kernel, on a veth pair: data path,
what a port reports, errors, and cleanup.

Each test gets its own network namespace holding va <-> vb (the ``netns``
fixture; reshaped with afxdp_support.make_veth where a test needs queues or
an MTU), and its own runtime directory (``rundir``).  nmcompat opens va with
``backend="afxdp"``; the other end is a plain AF_PACKET socket on vb, so what
is checked is what the kernel really carried.  Test bodies run in the
namespace through ``netns.run`` (a forked child).
"""
from __future__ import annotations

import errno
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import nmcompat
from nmcompat.bpf import OUR_PREFIX, attached_programs

from afxdp_support import (MAC_A, MAC_B, Child, frame, make_veth, mismatch, multibuffer_expected,
                           open_retrying, open_xdp, packet_recv, packet_sender, packet_socket,
                           quiet_ipv6, send_batch, drain, wait_tx_done)

pytestmark = pytest.mark.kernel

MODES = ["drv", "skb"]
SIZES = [60, 1514]
COUNT = {60: 4000, 1514: 3000}
WINDOW = 256            # frames in flight: the sender waits for the receiver after each window
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    """Regions of these tests live in a private runtime directory."""
    yield rundir


def ifindex(name: str = "va") -> int:
    return socket.if_nametoindex(name)


def ours_attached(name: str = "va"):
    """(mode, [program names]) of the XDP programs on name."""
    mode, infos = attached_programs(ifindex(name))
    return mode, sorted(i.name for i in infos.values())


def no_loss(stats) -> bool:
    return all(s["rx_dropped"] == 0 and s["rx_fill_ring_empty_descs"] == 0 and
               s["rx_ring_full"] == 0 and s["rx_invalid_descs"] == 0 for s in stats)


# -- data path ---------------------------------------------------------------------

def _rx_from_packet_socket(mode: str, size: int, count: int):
    quiet_ipv6()
    with open_xdp("netmap:va", mode) as port, packet_sender("vb") as tx:
        assert port.info.xdp_mode == mode
        expected = [frame(i, size) for i in range(count)]
        got = []
        sent = 0
        while sent < count:
            for f in expected[sent:sent + WINDOW]:
                tx.send(f)
            sent = min(sent + WINDOW, count)
            if not drain(port, got.append, lambda: len(got) >= sent, timeout=5.0):
                break
        drain(port, got.append, lambda: False, timeout=0.2)       # nothing more may come
        stats = port.xdp_stats()
        problem = mismatch(got, expected, stats)
        assert not problem, f"{mode} RX of {count} x {size} B: {problem}"
        assert no_loss(stats), f"drops reported by the kernel: {stats}"
        return stats


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", MODES)
def test_rx_from_af_packet_is_byte_exact(netns, mode, size):
    """Frames a plain AF_PACKET socket sends on vb all reach the port on va,
    byte-exact and in order (back-pressure: a window of frames at a time)."""
    netns.run(_rx_from_packet_socket, mode, size, COUNT[size])


def _tx_to_packet_socket(mode: str, size: int, count: int):
    quiet_ipv6()
    with open_xdp("netmap:va", mode) as port, packet_socket("vb") as rx:
        expected = [frame(i, size, src=MAC_A, dst=MAC_B) for i in range(count)]
        got = []
        for start in range(0, count, WINDOW):
            burst = expected[start:start + WINDOW]
            send_batch(port, burst)
            got += packet_recv(rx, len(burst), timeout=5.0)
            if len(got) < start + len(burst):
                break
        got += packet_recv(rx, 1, timeout=0.2)                     # nothing more may come
        assert wait_tx_done(port), f"TX slots never completed: {port.xdp_stats()}"
        stats = port.xdp_stats()
        problem = mismatch(got, expected, stats)
        assert not problem, f"{mode} TX of {count} x {size} B: {problem}"
        assert all(s["tx_dropped"] == 0 and s["tx_invalid_descs"] == 0 for s in stats), stats
        ring = port.tx_rings[0]
        assert ring.space() == ring.num_slots - 1, "every TX slot is free again"
        return stats


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", MODES)
def test_tx_to_af_packet_is_byte_exact(netns, mode, size):
    """Frames the port on va sends all reach an AF_PACKET socket on vb,
    byte-exact and in order; the TX ring's tail comes back to head - 1."""
    netns.run(_tx_to_packet_socket, mode, size, COUNT[size])


def _rx_lands_at_buffer_start(mode: str):
    quiet_ipv6()
    with open_xdp("netmap:va", mode) as port, packet_sender("vb") as tx:
        frames = [frame(i, 60 + 100 * i) for i in range(8)]
        for f in frames:
            tx.send(f)
        ring = port.rx_rings[0]
        deadline = time.monotonic() + 5
        while (ring.tail - ring.head) % ring.num_slots < len(frames) and time.monotonic() < deadline:
            port.poll(nmcompat.POLLIN, 100)
        slots = [ring.slots[(ring.head + k) % ring.num_slots] for k in range(len(frames))]
        seen = []
        for f, s in zip(frames, slots):
            assert s["flags"] & nmcompat.NS_BUF_CHANGED, "RX slots carry the buffer the frame landed in"
            assert not s["flags"] & nmcompat.NS_MOREFRAG
            assert s["len"] == len(f)
            assert bytes(ring.buf(int(s["buf_idx"]))[:s["len"]]) == f, "frame at the buffer start"
            seen.append(int(s["buf_idx"]))
        assert len(set(seen)) == len(seen)
        ring.head = ring.cur = (ring.head + len(frames)) % ring.num_slots
        port.rxsync()                       # buffers go back to the kernel: more frames fit
        more = [frame(100 + i, 1000) for i in range(3 * ring.num_slots)]
        got = []
        for start in range(0, len(more), WINDOW):
            for f in more[start:start + WINDOW]:
                tx.send(f)
            assert drain(port, got.append, lambda: len(got) >= start + WINDOW, 5.0), \
                port.xdp_stats()
        assert got == more, mismatch(got, more, port.xdp_stats())


@pytest.mark.parametrize("mode", MODES)
def test_rx_frames_land_at_buffer_start(netns, mode):
    """The RX slot names the buffer the kernel wrote (NS_BUF_CHANGED), the
    frame starts at offset 0, and released buffers are reused (three ring
    lengths of frames go through)."""
    netns.run(_rx_lands_at_buffer_start, mode)


# -- what a port reports ------------------------------------------------------------

def _describe(mode: str):
    with open_xdp("netmap:va", mode) as port:
        attached = ours_attached()
        return port.info, attached, port.xdp_stats()


@pytest.mark.parametrize("mode", ["drv", "skb", "auto"])
def test_port_reports_mode_zerocopy_and_queues(netns, mode):
    info, (attached_mode, names), stats = netns.run(_describe, mode)
    want = "drv" if mode == "auto" else mode           # veth has native XDP
    assert info.backend == "afxdp"
    assert info.xdp_mode == want and attached_mode == want
    assert info.xdp_fallback_reason == ""
    assert info.zerocopy is False, "veth has no AF_XDP zero-copy"
    assert info.queues == (0,)
    assert info.multibuffer is multibuffer_expected()
    assert names and all(n.startswith(OUR_PREFIX) for n in names), names
    assert [s["queue"] for s in stats] == [0]


def _refuse_zerocopy():
    with pytest.raises(OSError) as exc:
        open_xdp("netmap:va", "drv", zerocopy=True)
    assert ours_attached() == (None, []), "a failed open leaves no program"
    with open_xdp("netmap:va", "drv", zerocopy=False) as port:
        zc = port.info.zerocopy
    return exc.value.errno, str(exc.value), zc


def test_zerocopy_true_is_refused_on_veth(netns):
    err, msg, zc = netns.run(_refuse_zerocopy)
    assert err == errno.EOPNOTSUPP
    assert "zero-copy" in msg and "zerocopy=" in msg, msg
    assert zc is False


# -- errors --------------------------------------------------------------------------

CHILD_HOLDS = """
import sys, time, nmcompat
p = nmcompat.open(sys.argv[1], backend="afxdp", xdp_mode=sys.argv[2], rundir=sys.argv[3])
print("ready", p.info.xdp_mode, flush=True)
sys.stdin.readline()
"""


def _same_queue_other_process(other_rundir):
    """Another process in another runtime directory holds va's queue: its
    port cannot be joined (another region, another UMEM), so the kernel's
    EBUSY stands (in one runtime directory the open joins it:
    test_nic_xproc.py)."""
    holder = Child(CHILD_HOLDS, "netmap:va", "drv", other_rundir)
    try:
        holder.expect("ready")
        with pytest.raises(OSError) as exc:
            open_xdp("netmap:va", "drv")
        return exc.value.errno, str(exc.value)
    finally:
        holder.kill()


def test_same_queue_held_in_another_runtime_directory_is_ebusy(netns, tmp_path_factory):
    other = Path("/dev/shm") / f"nmc-other-{tmp_path_factory.getbasetemp().name}"
    other.mkdir(mode=0o700)
    try:
        err, msg = netns.run(_same_queue_other_process, str(other))
    finally:
        shutil.rmtree(other, ignore_errors=True)
    assert err == errno.EBUSY
    assert "already has an AF_XDP socket" in msg, msg


def _missing_interface():
    with pytest.raises(OSError) as exc:
        open_xdp("netmap:nmcnothere0", "drv")
    return exc.value.errno, str(exc.value)


def test_missing_interface(netns):
    err, msg = netns.run(_missing_interface)
    assert err in (errno.ENXIO, errno.ENODEV)
    assert "nmcnothere0" in msg and "no interface" in msg, msg


def _queue_out_of_range():
    out = []
    for name in ("netmap:va-1", "netmap:va-7"):
        with pytest.raises(OSError) as exc:
            open_xdp(name, "drv")
        out.append((exc.value.errno, str(exc.value)))
    return out, ours_attached()


def test_queue_index_out_of_range(netns):
    out, attached = netns.run(_queue_out_of_range)
    for err, msg in out:
        assert err == errno.EINVAL
        assert "has 1 queue" in msg, msg
    assert attached == (None, [])


def _open_outcome(mode: str):
    try:
        with open_xdp("netmap:va", mode) as port:
            return "ok", port.info.xdp_mode, port.info.xdp_fallback_reason
    except OSError as exc:
        return "error", exc.errno, str(exc)


def test_drv_mode_with_more_peer_tx_queues_says_what_to_do(netns):
    """veth refuses native XDP when the peer has more TX queues than we have
    RX queues (ENOSPC); the message must say how to get out of it."""
    make_veth(netns, queues=1, peer_queues=4)
    kind, err, msg = netns.run(_open_outcome, "drv")
    assert kind == "error" and err == errno.ENOSPC, (kind, err, msg)
    auto = netns.run(_open_outcome, "auto")
    assert auto[:2] == ("ok", "skb") and auto[2], "auto falls back to skb and says why"
    low = msg.lower()
    assert "queue" in low and "skb" in low, \
        f"the ENOSPC message does not say what to do (e.g. 'va has 1 RX queue but its " \
        f"peer vb has 4 TX queues: use xdp_mode=\"skb\" or give va as many queues'): {msg!r}"


def _plain_program(tmp: str) -> str:
    src = (ROOT / "bpf" / "xsk_redirect.bpf.c").read_text()
    cut = src.index('SEC("xdp.frags")')
    end = src.index("/* Read by the loader")
    path = Path(tmp) / "plain.bpf.c"
    path.write_text(src[:cut] + src[end:])
    clang = shutil.which("clang-14") or shutil.which("clang")
    obj = Path(tmp) / "plain.bpf.o"
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu",
                    "-c", str(path), "-o", str(obj)], check=True, capture_output=True)
    return str(obj)


def test_drv_mode_with_jumbo_peer_mtu_and_no_frags_program_says_what_to_do(netns, tmp_path,
                                                                             monkeypatch):
    """A program without xdp.frags on a veth whose peer MTU exceeds a page
    is refused with ERANGE; the message must say how to get out of it."""
    if not (shutil.which("clang-14") or shutil.which("clang")):
        pytest.fail("clang-14 is needed (./run setup installs it)")
    monkeypatch.setenv("NMCOMPAT_XDP_PROG", _plain_program(str(tmp_path)))
    make_veth(netns, mtu=9000)
    kind, err, msg = netns.run(_open_outcome, "drv")
    assert kind == "error" and err == errno.ERANGE, (kind, err, msg)
    low = msg.lower()
    assert "mtu" in low and ("skb" in low or "frags" in low or "multi-buffer" in low), \
        f"the ERANGE message does not say what to do (e.g. 'the peer vb's MTU 9000 is too " \
        f"large for native XDP without multi-buffer: lower it or use xdp_mode=\"skb\"'): {msg!r}"


# -- cleanup -------------------------------------------------------------------------

def _close_then_reopen(mode: str):
    quiet_ipv6()
    port = open_xdp("netmap:va", mode)
    during = ours_attached()
    port.close()
    after = ours_attached()
    with open_retrying("netmap:va", mode) as again, packet_sender("vb") as tx:
        tx.send(frame(1, 60))
        got = []
        assert drain(again, got.append, lambda: bool(got), 5.0), "the reopened port receives"
        assert got == [frame(1, 60)]
    return during, after, ours_attached()


@pytest.mark.parametrize("mode", MODES)
def test_close_removes_program_and_queue_can_be_bound_again(netns, mode):
    during, after, final = netns.run(_close_then_reopen, mode)
    assert during[0] == mode and during[1]
    assert after == (None, []), f"our XDP program outlived close(): {after}"
    assert final == (None, [])


CHILD_RECEIVES = """
import sys, nmcompat
p = nmcompat.open(sys.argv[1], backend="afxdp", xdp_mode=sys.argv[2])
print("ready", flush=True)
while True:
    p.poll(nmcompat.POLLIN, 1000)
    p.dispatch(lambda h, d: None)
"""


def _sigkill_then_reopen(mode: str):
    quiet_ipv6()
    child = Child(CHILD_RECEIVES, "netmap:va", mode)
    try:
        child.expect("ready")
        during = ours_attached()
        with packet_sender("vb") as tx:                 # traffic in flight when it dies
            for i in range(200):
                tx.send(frame(i, 60))
        child.kill(signal.SIGKILL)
    finally:
        child.kill()
    deadline = time.monotonic() + 2
    while ours_attached() != (None, []) and time.monotonic() < deadline:
        time.sleep(0.02)
    after = ours_attached()
    with open_retrying("netmap:va", mode) as again, packet_sender("vb") as tx:
        tx.send(frame(7, 60))
        got = []
        assert drain(again, got.append, lambda: bool(got), 5.0), "the reopened port receives"
        assert got == [frame(7, 60)]
    return during, after


@pytest.mark.parametrize("mode", MODES)
def test_sigkill_of_owner_removes_program_and_queue_can_be_bound_again(netns, mode):
    during, after = netns.run(_sigkill_then_reopen, mode)
    assert during[0] == mode and during[1]
    assert after == (None, []), f"our XDP program outlived its killed owner: {after}"


def _last_close_detaches():
    quiet_ipv6()
    p0, p1 = open_xdp("netmap:va-0", "drv"), open_xdp("netmap:va-1", "drv")
    assert p0.info.mem_id == p1.info.mem_id, "one process, one region"
    p0.close()
    after_first = ours_attached()
    p1.close()
    return after_first, ours_attached()


def test_program_stays_until_the_last_port_on_the_interface_closes(netns):
    make_veth(netns, queues=2)
    after_first, after_last = netns.run(_last_close_detaches)
    assert after_first[0] == "drv" and after_first[1], "va-1 still needs the program"
    assert after_last == (None, [])
