"""The streamed copy of csrc/core/copy.c (VALE's copy of long frames), both
ways the engine takes, every length from 1 to 4096 bytes: exact content to
the length rounded up to 64, nothing touched around it; optimised and under
AddressSanitizer and UBSan (tests/engine/copy_stream.c)."""
from __future__ import annotations

import os
import subprocess

import pytest

from testlib import skip_or_fail
from vale_helpers import ASAN_ENV, build, sanitizers_unavailable


@pytest.mark.parametrize("sanitize", [False, True])
def test_streamed_copy_of_every_length(sanitize):
    if sanitize:
        why = sanitizers_unavailable()
        if why:
            skip_or_fail(why)
    exe = build("copy_stream", sanitize=sanitize)
    env = dict(os.environ, **ASAN_ENV) if sanitize else None
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert "AddressSanitizer" not in out and "runtime error:" not in out, out[-4000:]
    assert proc.returncode == 0, out[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "done lengths=4096", out[-2000:]


def test_a_region_whose_buffers_are_not_whole_lines_is_refused(rundir):
    """Every copy of the engine may round a length up to whole 64-byte lines
    within a buffer: a region header naming a buffer size that is not a
    multiple of 64 (otherwise consistent) must not be attached."""
    exe = build("region_bufsize")
    proc = subprocess.run([str(exe), str(rundir)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "done refused=-22", proc.stdout + proc.stderr
