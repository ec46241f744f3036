"""The lost wakeup between a pipe's publisher and a sleeper arming at the
same moment (docs/DESIGN.md section 8), hunted across two processes."""
from __future__ import annotations

import subprocess

import pytest

from vale_helpers import build


@pytest.mark.parametrize("sanitize,trips", [(False, 200_000), (True, 20_000)])
def test_no_wakeup_is_lost_when_the_answer_races_the_arming(rundir, sanitize, trips):
    """tests/engine/pipe_pingpong.c: one packet bounced between the two
    ends, the master waiting in poll() with no spin while the slave answers
    after a delay swept across the master's arming.  The publisher reads
    the sleeper bits after the locked leave of its ring, the sleeper reads
    the index after its bit and a fence.  A lost wakeup shows as a sleep
    that ended on poll(2)'s timeout with no bell to drain, the packet
    lying unseen; the program reports it.  The race is a matter of chance:
    of builds without the publisher's barrier, 8 of 13 runs of 100,000
    trips lost a wakeup; of builds whose sleeper does not look at the index
    again after arming, 6 of 9.  The sanitized
    build is slower and seldom meets the race: it checks memory safety."""
    exe = build("pipe_pingpong", sanitize=sanitize)
    proc = subprocess.run([str(exe), str(rundir), str(trips)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"done trips={trips} "), proc.stdout
