"""The program's "bound" answer to exec's control plane names the granted
AF_XDP sockets its port uses (a queue another port of the program bound
keeps that port's socket); the control plane puts only those in the
XSKMAP and refuses an answer it cannot read."""
from __future__ import annotations

import errno

import pytest

from nmcompat.tools import _exec_nic


def test_the_sockets_named_are_the_ones_wired():
    assert _exec_nic._used(["0", "2"], 3) == [0, 2]
    assert _exec_nic._used([], 3) == []


@pytest.mark.parametrize("words", [["3"], ["1", "1"], ["x"], ["-1"]])
def test_an_answer_that_cannot_be_read_is_refused(words):
    with pytest.raises(_exec_nic.Refusal) as exc:
        _exec_nic._used(words, 3)
    assert exc.value.errno == errno.EPROTO
    assert "couldn't read the program's bound sockets" in str(exc.value)
