"""Every field of netmap_if, netmap_ring and netmap_slot written with bad
values between engine calls (tests/engine/scribble.c "fields", built with
the engine under AddressSanitizer and UBSan): every call answers success
or EINVAL, nothing crashes, and the process holding the other end of the
pipe, or another port of the switch, finds its engine state intact.

The counts of a long run (NMCOMPAT_FUZZ_CORRUPTIONS=N, or ./run bench fuzz)
are recorded in docs/BENCHMARKS.md; CI runs CORRUPTIONS of each.
"""
from __future__ import annotations

import os
import signal

import pytest

from testlib import parse_kv, rundir_entries, skip_or_fail
from vale_helpers import ASAN_ENV, build, sanitizers_unavailable

CORRUPTIONS = int(os.environ.get("NMCOMPAT_FUZZ_CORRUPTIONS", 20000))


@pytest.fixture(scope="module")
def scribble():
    why = sanitizers_unavailable()
    if why:
        skip_or_fail(why)
    return build("scribble", sanitize=True)


def _done(proc, timeout) -> dict:
    proc.finish(timeout=timeout)
    text = proc.stdout + "".join(proc.err)
    assert "Sanitizer" not in text and "runtime error:" not in text, proc.describe()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("done ")]
    assert lines, proc.describe()
    return {k: int(v) for k, v in parse_kv(lines[-1]).items()}


@pytest.mark.parametrize("mine, other", [("x{1", "x}1"), ("x}1", "x{1"), ("valef:a", "valef:b")])
def test_every_field_corrupted_between_calls(procs, rundir, scribble, mine, other):
    timeout = 60 + CORRUPTIONS // 2000
    victim = procs.spawn([scribble, "victim", "-p", other, "-T", timeout], env=dict(ASAN_ENV))
    victim.expect("ready victim", timeout=60)
    fields = procs.spawn([scribble, "fields", "-p", mine, "-s", 7, "-n", CORRUPTIONS, "-T", timeout],
                         env=dict(ASAN_ENV))
    f = _done(fields, timeout + 30)
    os.kill(victim.pid, signal.SIGUSR1)
    v = _done(victim, 60)
    print(f"{mine}: {f}")
    assert f["corruptions"] == CORRUPTIONS and f["covered"] == f["fields"], f
    assert f["other"] == 0 and f["einval"] > 0, fields.describe()
    assert v["calls"] > 0
    assert rundir_entries(rundir) == ["lock"]
