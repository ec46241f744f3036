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


def _answer(data: bytes):
    """What the control plane makes of the program's answer `data` to a
    grant of one AF_PACKET queue (nothing to wire)."""
    import socket
    from types import SimpleNamespace
    g = SimpleNamespace(backend="afpacket", socks=[], queues=[0])
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b:
        if data:
            b.send(data)
        else:
            b.shutdown(socket.SHUT_WR)
        try:
            _exec_nic._complete(a, g, "va")
        except _exec_nic.Refusal as exc:
            return exc.errno, str(exc)
        b.settimeout(5)
        try:
            return 0, b.recv(64).decode()
        except socket.timeout:
            return 0, "no answer"


def test_bound_is_answered_ok():
    assert _answer(b"bound") == (0, "ok")


@pytest.mark.parametrize("data, what", [(b"hello", "answered 'hello', not 'bound' or 'failed ERRNO'"),
                                        (b"", "closed the connection"),
                                        (b"failed", "couldn't read the program's failure"),
                                        (b"failed x", "couldn't read the program's failure"),
                                        (b"failed 16 17", "couldn't read the program's failure")])
def test_an_answer_the_control_plane_does_not_know_is_an_error(data, what):
    err, msg = _answer(data)
    assert err == errno.EPROTO and what in msg, (err, msg)


def test_a_failure_is_the_programs_errno():
    err, msg = _answer(b"failed 16")
    assert err == errno.EBUSY and msg.startswith("couldn't open netmap:va: Device or resource busy"), msg


def test_a_request_line_that_is_no_key_value_is_refused():
    with pytest.raises(_exec_nic.Refusal) as exc:
        _exec_nic.parse_request(b"open\nname=va\nmode=1\nringid=0\nstray")
    assert exc.value.errno == errno.EINVAL and "no key=value ['stray']" in str(exc.value)
