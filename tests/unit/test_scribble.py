"""A process that writes random bytes over every byte of its netmap memory
(tests/engine/scribble.c, built with the engine under AddressSanitizer and
UBSan) cannot crash, hang or corrupt other processes' ports.

- VALE: the scribbler is a port of the switch that carries a stream from
  another process to a third.  The stream arrives exact and in order; every
  frame missing is counted as dropped at the receiver; the scribbler's own
  frames arrive as foreign garbage.
- Pipes: the scribbler holds one end; the victim holding the other end
  checks after every engine call that the engine's state of its port (in
  the control file) is intact, and keeps syncing (what it receives is
  garbage, and any sync may answer EINVAL after repairing a ring the
  scribbler wrote).  A pipe of another region carries an exact stream
  meanwhile.
- Field by field ("fields"): every field of netmap_if, netmap_ring and
  netmap_slot written with bad values between engine calls; every call
  answers success or EINVAL, and the victim on the other end of the pipe
  (or on another port of the switch) finds its engine state intact.
  CORRUPTIONS per case (NMCOMPAT_FUZZ_CORRUPTIONS=N for a long run; the
  counts reached are in docs/BENCHMARKS.md).
"""
from __future__ import annotations

import os
import signal

import pytest

from testlib import parse_kv, rundir_entries, skip_or_fail
from vale_helpers import ASAN_ENV, build, sanitizers_unavailable

CORRUPTIONS = int(os.environ.get("NMCOMPAT_FUZZ_CORRUPTIONS", 20000))
ITERS = 300                 # 300 x (1/16 of the memory + every ring), a few seconds under ASan
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


@pytest.fixture(scope="module")
def scribble():
    why = sanitizers_unavailable()
    if why:
        skip_or_fail(why)
    return build("scribble", sanitize=True)


def _sanitizer_report(text: str) -> bool:
    return "AddressSanitizer" in text or "runtime error:" in text or "LeakSanitizer" in text


def _done(proc, timeout=120) -> dict:
    proc.finish(timeout=timeout)
    text = proc.stdout + "".join(proc.err)
    assert not _sanitizer_report(text), proc.describe()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("done ")]
    assert lines, proc.describe()
    return parse_kv(lines[-1])


def _run(procs, exe, *args):
    return procs.spawn([exe, *args, "-T", 100], env=dict(ASAN_ENV))


def test_scribbler_on_a_switch_cannot_touch_a_stream_between_others(procs, rundir, scribble):
    recv = _run(procs, scribble, "recv", "-p", "vale0:b", "-a", "vale0:a", "-m", MAC_A, "-d", MAC_B)
    recv.expect("ready recv", timeout=60)
    # ready once the receiver's announcement fills its one-frame RX ring
    scrib = _run(procs, scribble, "scribbler", "-R", "-p", "vale0:s", "-s", 11, "-n", ITERS)
    scrib.expect("ready scribbler", timeout=60)
    send = _run(procs, scribble, "send", "-p", "vale0:a", "-d", MAC_B, "-m", MAC_A)
    send.expect("ready send", timeout=60)
    s = _done(scrib)
    assert int(s["iters"]) == ITERS and int(s["other"]) == 0, scrib.describe()
    os.kill(send.pid, signal.SIGUSR1)      # stream done: the last frames, answered
    a, b = _done(send), _done(recv)
    assert int(b["copies"]) == 0, recv.describe()
    # the stream went on until the sender stopped: its last frames were answered
    assert int(b["got"]) > 0 and int(a["before_stop"]) <= int(b["last"]) < int(a["sent"])
    # every frame of the stream that did not arrive was dropped at the receiver
    assert int(b["gaps"]) <= int(b["rx_dropped"]), recv.describe()
    assert int(b["foreign"]) > 0, "the scribbler's garbage reached the receiver"
    assert rundir_entries(rundir) == ["lock"]


def test_scribbler_on_a_pipe_leaves_its_peers_engine_state_intact(procs, rundir, scribble):
    victim = _run(procs, scribble, "victim", "-p", "x}1")
    recv = _run(procs, scribble, "recv", "-p", "y}1")
    victim.expect("ready victim", timeout=60)
    recv.expect("ready recv", timeout=60)
    send = _run(procs, scribble, "send", "-p", "y{1")
    send.expect("ready send", timeout=60)
    scrib = _run(procs, scribble, "scribbler", "-p", "x{1", "-s", 5, "-n", ITERS)
    s = _done(scrib)
    assert int(s["iters"]) == ITERS and int(s["other"]) == 0, scrib.describe()
    os.kill(victim.pid, signal.SIGUSR1)
    os.kill(send.pid, signal.SIGUSR1)
    v = _done(victim)
    assert int(v["calls"]) > 0 and int(v["einval"]) > 0, "the scribbles reached the victim's rings"
    a, b = _done(send), _done(recv)
    # the pipe of the other region: every frame, exact, in order
    assert (int(b["gaps"]), int(b["copies"]), int(b["foreign"])) == (0, 0, 0), recv.describe()
    assert int(b["got"]) == int(b["last"]) + 1 and int(a["before_stop"]) <= int(b["last"]) < int(a["sent"])
    assert rundir_entries(rundir) == ["lock"]


@pytest.mark.parametrize("mine, other", [("x{1", "x}1"), ("x}1", "x{1"), ("valef:a", "valef:b")])
def test_every_field_corrupted_between_calls(procs, rundir, scribble, mine, other):
    timeout = 60 + CORRUPTIONS // 2000
    victim = procs.spawn([scribble, "victim", "-p", other, "-T", timeout], env=dict(ASAN_ENV))
    victim.expect("ready victim", timeout=60)
    fields = procs.spawn([scribble, "fields", "-p", mine, "-s", 7, "-n", CORRUPTIONS, "-T", timeout],
                         env=dict(ASAN_ENV))
    f = {k: int(v) for k, v in _done(fields, timeout + 30).items()}
    os.kill(victim.pid, signal.SIGUSR1)
    v = _done(victim)
    print(f"{mine}: {f}")                   # the counts of a long run (pytest -s)
    assert f["corruptions"] == CORRUPTIONS and f["covered"] == f["fields"], f
    assert f["other"] == 0 and f["einval"] > 0, fields.describe()
    assert int(v["calls"]) > 0
    assert rundir_entries(rundir) == ["lock"]


def test_an_indirect_slot_with_a_bad_address_is_dropped_not_fatal(procs, rundir):
    """NS_INDIRECT takes an address from a user-writable slot: one that is
    not mapped drops the frame (counted) instead of crashing the sender."""
    out = procs.run_python("""
        import numpy as np
        import nmcompat
        from nmcompat import NS_INDIRECT

        def send_indirect(port, addr, length):
            ring = port.tx_rings[0]
            s = ring.slots[ring.head]
            s["ptr"], s["len"], s["flags"] = addr, length, NS_INDIRECT
            ring.head = ring.cur = ring.next(ring.head)
            port.txsync()

        with nmcompat.open("vale0:a") as a, nmcompat.open("vale0:b") as b:
            send_indirect(a, 8, 60)                     # the first page is never mapped
            send_indirect(a, (1 << 47) - 4096, 1500)    # nor the top of user space
            good = np.frombuffer(b"\\xff" * 6 + b"\\x02" + b"\\0" * 5 + b"ok" * 30, np.uint8).copy()
            send_indirect(a, good.ctypes.data, 60)
            b.rxsync()
            got = b.recv(max_packets=8, sync=False)[0]
            print("dropped", a.stats()["tx_dropped"], "got", len(got), bytes(got[0][:60]) == bytes(good[:60]))
    """, timeout=60)
    assert out.split() == ["dropped", "2", "got", "1", "True"], out
