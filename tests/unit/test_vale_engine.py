"""The VALE engine under AddressSanitizer and UBSan (tests/engine/vale_fuzz.c,
tests/engine/vale_traffic.c, built together with the engine sources).

vale_fuzz corrupts, between syncs, everything a VALE port reads from
shared memory: head/cur/tail and slots (buf_idx, len, flags, ptr) of its
own rings and of the other ports' rings, and the switch file's port table,
header and learning table; then it checks canaries around the rings, that
another switch's file survives, and that fresh ports still exchange
traffic exactly.  Any sanitizer report aborts it.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from nmcompat import rundir as rd

from testlib import rundir_entries, skip_or_fail
from vale_helpers import ASAN_ENV, bad_lines, build, done_line, per_sender, sanitizers_unavailable


@pytest.fixture(scope="module")
def asan_build():
    why = sanitizers_unavailable()
    if why:
        skip_or_fail(why)
    return lambda program: build(program, sanitize=True)


def _sanitizer_report(text: str) -> bool:
    return "AddressSanitizer" in text or "runtime error:" in text or "LeakSanitizer" in text


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_corrupted_rings_and_switch_table_under_asan(asan_build, rundir, seed):
    exe = asan_build("vale_fuzz")
    env = dict(os.environ, **ASAN_ENV, NMCOMPAT_RUNDIR=str(rundir))
    proc = subprocess.run([str(exe), "-s", str(seed), "-n", "6000"], capture_output=True, text=True,
                          timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert not _sanitizer_report(out), out[-6000:]
    assert proc.returncode == 0, out[-6000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("done iterations=6000"), out[-3000:]
    assert rundir_entries(rundir) == ["lock"], "everything was reclaimed at close"


def test_concurrent_senders_under_asan(asan_build, procs):
    exe = asan_build("vale_traffic")
    env = dict(ASAN_ENV)
    n = 20_000
    recv = procs.spawn([exe, "recv", "-p", "vale0:r", "-i", 200, "-H", "-n", 2 * n, "-t", 20000], env=env)
    recv.expect("ready recv", timeout=30)
    senders = [procs.spawn([exe, "send", "-p", f"vale0:s{i}", "-i", i, "-d", 200, "-n", n, "-b", 256,
                            "-l", 60, "-L", 5000, "-s", i], env=env) for i in (1, 2)]
    for s in senders:
        s.finish(timeout=120)
        assert not _sanitizer_report(s.stdout + "".join(s.err)), s.describe()
    recv.finish(timeout=120)
    assert not _sanitizer_report("".join(recv.err)), recv.describe()
    r = done_line(recv)
    assert r["bad"] == 0, bad_lines(recv)
    assert r["pkts"] + r["rx_dropped"] == 2 * n
    assert set(per_sender(r["ids"])) == {1, 2}


def test_reused_destination_ring_keeps_a_held_lease_lock(asan_build, rundir):
    """A VALE port is closed and opened again (its ring objects reused) while
    a sender is inside the lease lock of its RX ring: retiring the ring waits
    for that sender, its lock is never overwritten under it, and the new
    port receives (tests/engine/vale_reuse.c, under the sanitizers)."""
    exe = asan_build("vale_reuse")
    env = dict(os.environ, **ASAN_ENV, NMCOMPAT_RUNDIR=str(rundir))
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)
    out = proc.stdout + proc.stderr
    assert not _sanitizer_report(out), out[-6000:]
    assert proc.returncode == 0, out[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("done obj="), out[-3000:]
    assert rundir_entries(rundir) == ["lock"], "everything was reclaimed at close"


def test_a_port_whose_sender_holds_on_is_not_reused(asan_build, rundir):
    """A VALE port is closed while a live sender holds a lease on its RX ring
    and never lets go: the close gives up waiting, the region is not kept for
    the next port, and the sender's late completion is refused
    (tests/engine/vale_stalled.c, under the sanitizers)."""
    exe = asan_build("vale_stalled")
    env = dict(os.environ, **ASAN_ENV, NMCOMPAT_RUNDIR=str(rundir))
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)
    out = proc.stdout + proc.stderr
    assert not _sanitizer_report(out), out[-6000:]
    assert proc.returncode == 0, out[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("done obj="), out[-3000:]
    assert rundir_entries(rundir) == ["lock"], "everything was reclaimed at close"


def test_a_full_ring_behind_a_dead_senders_lease_recovers(asan_build, rundir):
    """A sender dies holding a lease on a VALE port's RX ring, and the ring
    fills behind that lease while its death cannot be seen yet.  The senders
    that find the ring full then pad the dead lease and the receiver gets
    traffic again: once the pid is gone (the reader, asleep in nmc_poll, is
    woken), and for a zombie, whose pid still answers, once its holder's
    lock byte is seen free.  Before, a full ring never looked at its leases
    again and stayed stuck.  Also: an owner that dies inside the lease lock
    is repaired by the next lock call, which wakes the reader; a dead lease
    between two live ones is published with them
    (tests/engine/vale_dead_lease.c, under the sanitizers)."""
    exe = asan_build("vale_dead_lease")
    env = dict(os.environ, **ASAN_ENV, NMCOMPAT_RUNDIR=str(rundir))
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and proc.stdout.strip().endswith("done"), proc.stdout + proc.stderr[-3000:]
    assert not _sanitizer_report(out), out[-6000:]
    rd.gc(str(rundir))                  # the killed child's own port, as any killed process's
    assert rundir_entries(rundir) == ["lock"], "everything was reclaimed"


def test_a_live_senders_lease_is_not_found_dead_from_another_pid_namespace(asan_build, rundir):
    """A sender in another pid namespace (another container on the same
    runtime directory) fills a ring behind the lease of a live sender here:
    our pid is nobody's in its namespace, so kill() said ESRCH and it padded
    the slots the live sender was still copying into.  A lease now carries
    its pid namespace, and one of another namespace is judged by its
    holder's lock byte alone (tests/engine/vale_dead_lease.c other_ns)."""
    if os.geteuid() != 0:
        skip_or_fail("making a pid namespace needs root")
    exe = asan_build("vale_dead_lease")
    env = dict(os.environ, **ASAN_ENV, NMCOMPAT_RUNDIR=str(rundir))
    proc = subprocess.run([str(exe), "other_ns"], capture_output=True, text=True, timeout=120,
                          env=env)
    out = proc.stdout + proc.stderr
    if proc.returncode == 77:
        skip_or_fail(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and proc.stdout.strip().endswith("done"), out[-3000:]
    assert not _sanitizer_report(out), out[-6000:]
    rd.gc(str(rundir))
    assert rundir_entries(rundir) == ["lock"], "everything was reclaimed"


def test_a_scribbled_kring_cannot_move_a_senders_copy_out_of_the_ring(asan_build, rundir):
    """Another process of the same user sets a VALE RX ring's kring to
    NMC_MAXSLOTS slots and a lease position past the ring: a sender must
    neither take a lease there nor pad there (it used to copy into slots
    past the ring, inside the ring object; tests/engine/vale_scribbled_kring.c)."""
    exe = asan_build("vale_scribbled_kring")
    env = dict(os.environ, **ASAN_ENV, NMCOMPAT_RUNDIR=str(rundir))
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and proc.stdout.strip().startswith("done"), out[-3000:]
    assert not _sanitizer_report(out), out[-6000:]
