"""Ring views (nmc_rings_send, nmc_rings_forward: the native backend's batch
helpers) against a peer thread that rewrites a TX ring's cur while they
run (tests/engine/rings_race.c, built with the engine under
AddressSanitizer and UBSan).  Each index is read once and checked before it
is used: the calls answer a count or EINVAL and never touch memory past the
ring.  A view that checked one read of cur and used another (send after its
room check, forward with the TX cur it read before the room check) walked
the slot index some 32 GiB off the ring.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from testlib import parse_kv, skip_or_fail
from vale_helpers import ASAN_ENV, build, sanitizers_unavailable

CALLS = 1_000_000


@pytest.fixture(scope="module")
def rings_race():
    why = sanitizers_unavailable()
    if why:
        skip_or_fail(why)
    return build("rings_race", sanitize=True)


def test_a_ring_view_never_follows_a_cur_rewritten_under_it(rings_race):
    proc = subprocess.run([str(rings_race), "-n", str(CALLS)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, **ASAN_ENV))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    # the program checked that the views work on the rings once quiet again
    done = [parse_kv(ln) for ln in proc.stdout.splitlines() if ln.startswith("done ")]
    assert done and set(done[-1]) == {"send", "forward", "einval"}, text[-4000:]
