"""The engine driven from C through the netmap ring API (tests/engine/pipe_stream.c).

Sender and receiver are separate processes; the per-packet work (random
lengths up to 9000 bytes, NS_MOREFRAG chains, a header and a pattern byte
in every fragment, verification of order, lengths, chain structure and
payload) is done in C.  The same program corrupts rings at random under
AddressSanitizer and UBSan.
"""
from __future__ import annotations

import os
import random
import subprocess
import time

import pytest

from testlib import SANITIZER_ENV, parse_kv, rundir_entries

BUILDS = ["o2", "asan"]


@pytest.fixture(params=BUILDS)
def stream_exe(request):
    """pipe_stream, optimised or sanitized (with the environment it needs)."""
    if request.param == "asan":
        return request.getfixturevalue("pipe_stream_asan"), dict(SANITIZER_ENV)
    return request.getfixturevalue("pipe_stream"), {}


def _start_recv(procs, exe, env, *args):
    proc = procs.spawn([exe, "recv", *args], env=env)
    proc.expect("ready recv")
    return proc


def _max_seen(proc, tag=None):
    """Highest seq of a 'seen <tag> <seq>' progress line (None if none)."""
    best = None
    for line in proc.out:
        if line.startswith("seen "):
            _, t, s = line.split()
            if tag is None or int(t) == tag:
                best = int(s) if best is None else max(best, int(s))
    return best


def _wait_seen(proc, at_least, tag=None, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = _max_seen(proc, tag)
        if seen is not None and seen >= at_least:
            return seen
        if not proc.alive():
            break
        time.sleep(0.005)
    pytest.fail(f"receiver did not reach seq {at_least}\n" + proc.describe())


def _streams(proc):
    """[(tag, first seq)] in the order the receiver met them."""
    return [tuple(int(x) for x in line.split()[1:3])
            for line in proc.out if line.startswith("stream ")]


# ---------------------------------------------------------------------------


def test_ten_million_packets_cross_process(procs, rundir, pipe_stream):
    """10M packets, random lengths 17..9000 (MOREFRAG chains of up to 5
    slots), half-chain txsyncs mixed in: no loss, no reordering, no torn
    chain, identical counts on both sides."""
    n = 10_000_000
    recv = _start_recv(procs, pipe_stream, None, "-n", n, "-s", 11, "-T", 100)
    send = procs.spawn([pipe_stream, "send", "-n", n, "-s", 11, "-x", "-T", 100])
    s = parse_kv(send.finish(timeout=120).splitlines()[-1])
    r = parse_kv(recv.finish(timeout=30).splitlines()[-1])
    assert int(s["sent"]) == n
    assert int(r["pkts"]) == n
    assert r["last"] == f"1:{n - 1}"
    assert r["streams"] == "1"
    for key in ("bytes", "frags", "sum"):
        assert r[key] == s[key], key
    assert int(s["frags"]) > 2 * n          # lengths really span several buffers
    assert int(s["tx_pkts"]) == n and s["tx_bytes"] == s["bytes"]
    assert int(r["rx_pkts"]) == n and r["rx_bytes"] == r["bytes"]
    assert _streams(recv) == [(1, 0)]
    assert rundir_entries(rundir) == ["lock"]


@pytest.mark.parametrize("slots", [2, 3, 64])
def test_stream_slave_to_master_small_rings(procs, pipe_stream, slots):
    """The slave end sends, the master receives; rings so small that every
    packet waits for the receiver (maximum length limited to fit)."""
    n = 20_000
    maxlen = 2048 * (slots - 1) if slots <= 3 else 9000
    common = ["-k", slots, "-L", maxlen, "-s", 5, "-T", 60]
    recv = _start_recv(procs, pipe_stream, None, "-r", "master", "-n", n, *common)
    send = procs.spawn([pipe_stream, "send", "-r", "slave", "-n", n, "-x", *common])
    s = parse_kv(send.finish(60).splitlines()[-1])
    r = parse_kv(recv.finish(30).splitlines()[-1])
    assert int(r["pkts"]) == n and r["sum"] == s["sum"] and r["bytes"] == s["bytes"]
    assert "slots=%d " % slots in recv.out[0]


@pytest.mark.parametrize("recv_args,reason", [
    (["-s", "2"], "expected"),                 # other lengths than the sender's
    (["-S", "5"], "first packet has seq 0"),   # another start
])
def test_the_checker_catches_a_wrong_stream(procs, pipe_stream, recv_args, reason):
    """The verification in pipe_stream really fails on a stream it did not expect."""
    recv = _start_recv(procs, pipe_stream, None, "-n", 100, "-T", 20, *recv_args)
    procs.spawn([pipe_stream, "send", "-n", 100, "-s", 1, "-W", "-T", 20]).finish(30)
    assert recv.wait(30) == 1
    assert reason in recv.out[-1] and recv.out[-1].startswith("FAIL")


def test_receiver_killed_mid_stream(procs, rundir, stream_exe):
    """SIGKILL the receiver: the sender neither blocks for ever nor fails,
    it stops at back-pressure; a new receiver opening '}' continues from the
    ring state, and the union of what both saw has no gap."""
    exe, env = stream_exe
    n = 200_000
    recv1 = _start_recv(procs, exe, env, "-n", n, "-q", "-T", 60)
    send = procs.spawn([exe, "send", "-n", n, "-q", "-x", "-T", 60], env=env)
    _wait_seen(recv1, 20_000)
    recv1.kill()
    k1 = _max_seen(recv1)

    # the sender keeps going until the ring is full, then waits (alive)
    time.sleep(0.3)
    assert send.alive(), send.describe()
    sent = [int(line.split()[1]) for line in send.out if line.startswith("sent ")]
    assert sent and sent[-1] < n
    time.sleep(0.2)
    sent_later = [int(line.split()[1]) for line in send.out if line.startswith("sent ")]
    assert sent_later[-1] - k1 <= 1024, "the sender got further than the ring allows"

    recv2 = _start_recv(procs, exe, env, "-A", "-E", n - 1, "-q", "-T", 60)
    s = parse_kv(send.finish(60).splitlines()[-1])
    r2 = parse_kv(recv2.finish(30).splitlines()[-1])
    (tag, k2), = _streams(recv2)
    assert tag == 1
    assert k2 <= k1 + 1, f"gap: first receiver saw up to {k1}, second started at {k2}"
    assert int(r2["pkts"]) == n - k2          # contiguous to the end (checked in C too)
    assert int(s["sent"]) == n
    assert rundir_entries(rundir) == ["lock"]


def test_sender_killed_mid_stream(procs, rundir, stream_exe):
    """SIGKILL a sender several times at random moments, half-chain txsyncs
    included: the receiver sees a gapless prefix of each stream (never a
    torn or glued MOREFRAG chain), then the next sender's stream from 0."""
    exe, env = stream_exe
    rnd = random.Random(1234)
    m = 50_000
    final_tag = 9
    recv = _start_recv(procs, exe, env, "-E", m - 1, "-G", final_tag, "-q", "-T", 90)
    killed = []
    for tag in range(1, final_tag):
        send = procs.spawn([exe, "send", "-t", tag, "-n", 0, "-x", "-b", rnd.choice([1, 7, 64, 256]),
                            "-T", 60], env=env)
        send.expect("ready send")
        _wait_seen(recv, rnd.randrange(0, 5000), tag=tag)    # its stream is flowing
        time.sleep(rnd.uniform(0.0, 0.02))
        send.kill()
        killed.append(tag)
    last = procs.spawn([exe, "send", "-t", final_tag, "-n", m, "-x", "-T", 60], env=env)
    s = parse_kv(last.finish(60).splitlines()[-1])
    r = parse_kv(recv.finish(30).splitlines()[-1])
    streams = _streams(recv)
    # every stream from its first packet, in order, none resumed after the next began
    assert streams == [(tag, 0) for tag in killed + [final_tag]]
    assert r["last"] == f"{final_tag}:{m - 1}"
    assert int(s["sent"]) == m
    assert rundir_entries(rundir) == ["lock"]


def test_stream_under_sanitizers(procs, pipe_stream_asan):
    """A plain cross-process stream with the engine under ASan/UBSan."""
    n = 300_000
    env = dict(SANITIZER_ENV)
    recv = _start_recv(procs, pipe_stream_asan, env, "-n", n, "-s", 3, "-T", 100)
    send = procs.spawn([pipe_stream_asan, "send", "-n", n, "-s", 3, "-x", "-T", 100], env=env)
    s = parse_kv(send.finish(120).splitlines()[-1])
    r = parse_kv(recv.finish(30).splitlines()[-1])
    assert int(r["pkts"]) == n and r["sum"] == s["sum"]


@pytest.mark.parametrize("seed", [1, 2, 3, 20240601])
def test_corruption_fuzz_under_sanitizers(procs, pipe_stream_asan, seed):
    """Random head/cur/tail/buf_idx/len/flags corruption on both ends (pipes
    of 2..256 slots, 1-2 ring pairs each way), random txsync/rxsync/poll:
    only 0/-EINVAL/POLLERR come back, indexes stay in range, nothing
    touches memory it should not, and after every few dozen steps the
    slots are restored and 2n+3 packets must cross every ring pair both
    ways."""
    out = procs.spawn([pipe_stream_asan, "fuzz", "-p", "fz", "-s", seed, "-I", 60_000],
                      env=dict(SANITIZER_ENV)).finish(120)
    d = parse_kv(out.splitlines()[-1])
    assert int(d["iters"]) == 60_000
    assert int(d["reinits"]) > 1000          # corruption was really detected
    assert int(d["checks"]) > 1000           # and the pipe was really used afterwards
    assert int(d["stuck"]) <= int(d["pipes"]) // 4


def test_corruption_fuzz_optimised(procs, pipe_stream):
    out = procs.spawn([pipe_stream, "fuzz", "-p", "fz", "-s", 77, "-I", 200_000]).finish(120)
    d = parse_kv(out.splitlines()[-1])
    assert int(d["checks"]) > 4000


def test_strict_mode_is_honoured_for_sanitizers(monkeypatch):
    """With NMCOMPAT_STRICT=1 a missing sanitizer fails instead of skipping."""
    from testlib import skip_or_fail
    monkeypatch.setenv("NMCOMPAT_STRICT", "1")
    with pytest.raises(pytest.fail.Exception):
        skip_or_fail("no sanitizer")
    monkeypatch.delenv("NMCOMPAT_STRICT")
    with pytest.raises(pytest.skip.Exception):
        skip_or_fail("no sanitizer")


def test_pipe_stream_rejects_bad_usage(pipe_stream):
    proc = subprocess.run([str(pipe_stream), "nonsense"], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 2 and "usage" in proc.stderr
    assert os.access(pipe_stream, os.X_OK)
