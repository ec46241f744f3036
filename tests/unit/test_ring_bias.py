"""A ring's bias (docs/DESIGN.md §5.1): the thread that entered a ring
uncontended enters and leaves it with plain stores from then on; another
thread, a forked child, or a process that finds the holder dead revokes
it (membarrier), and one that may not call membarrier skips the ring until
the holder takes it back.  tests/engine/ring_bias.c, compiled with the
engine sources, normally and under AddressSanitizer and UBSan."""
from __future__ import annotations

import os
import subprocess

import pytest

from testlib import skip_or_fail
from vale_helpers import ASAN_ENV, build, sanitizers_unavailable

SCENARIOS = ["threads", "fork", "kill_inside", "kill_outside", "same_word", "count_wrap", "nested",
             "reap_outside", "seccomp_later", "no_membarrier"]


@pytest.mark.parametrize("sanitize", [False, True], ids=["o2", "asan"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_one_party_inside_and_nobody_locked_out(rundir, scenario, sanitize):
    if sanitize and sanitizers_unavailable():
        skip_or_fail(sanitizers_unavailable())
    exe = build("ring_bias", sanitize=sanitize)
    env = dict(os.environ, NMCOMPAT_RUNDIR=str(rundir), **(ASAN_ENV if sanitize else {}))
    proc = subprocess.run([str(exe), scenario], capture_output=True, text=True, timeout=120, env=env)
    if proc.returncode == 77:
        skip_or_fail(proc.stdout.strip())
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert proc.stdout.strip().splitlines()[-1] == f"done {scenario}"
