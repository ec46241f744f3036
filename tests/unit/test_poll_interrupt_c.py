"""nmc_port_interrupt() from C: a thread waiting in nmc_poll() returns
-ECANCELED, on pipe and VALE ports, under AddressSanitizer and UBSan
(tests/engine/poll_interrupt.c)."""
from __future__ import annotations

import os
import subprocess

from testlib import rundir_entries, skip_or_fail
from vale_helpers import ASAN_ENV, build, sanitizers_unavailable


def test_interrupt_a_waiting_poll_under_asan(rundir):
    why = sanitizers_unavailable()
    if why:
        skip_or_fail(why)
    exe = build("poll_interrupt", sanitize=True)
    env = dict(os.environ, **ASAN_ENV, NMCOMPAT_RUNDIR=str(rundir))
    proc = subprocess.run([str(exe), "300"], capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Sanitizer" not in out and "runtime error" not in out, out[-4000:]
    assert proc.stdout.strip() == "done rounds=300", out[-2000:]
    assert rundir_entries(rundir) == ["lock"], "every port was closed"
