"""What exec's control plane makes of a program's "peek" request and
"joined" report (a program under exec joining another process's NIC port:
csrc/devnetmap/nmd_nic.c, join_live)."""
from __future__ import annotations

import errno
import socket

from nmcompat.tools import _exec_adopt, _exec_nic

REPORT = b"joined\nname=va\nkind=afxdp\nhost_rings=0\nerr=%d\nrefused=%d\npid=%d"


def test_a_peek_is_read_as_an_information_request():
    verb, name, mode, ring, settings = _exec_nic.parse_request(b"peek\nname=va\nmode=1\nringid=0")
    assert (verb, name, mode, ring, settings) == ("peek", "va", 1, (0, 0, 0), {})


def test_a_refused_peek_is_answered_but_not_logged():
    """The open that follows says why; a refused info is logged."""
    logged = {}
    for verb in ("peek", "info"):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with a, b:
            b.send(f"{verb}\nname=va\nmode=1\nringid=0\nNMCOMPAT_ADMODE=7".encode())
            logs = []
            _exec_nic.serve_one(a, logs.append)
            answer = b.recv(4096).decode()
        assert answer.startswith(f"err {errno.EINVAL} "), answer
        logged[verb] = logs
    assert logged["peek"] == [] and len(logged["info"]) == 1, logged


def test_a_joined_report_is_read_with_its_verb():
    f = _exec_adopt.parse(REPORT % (0, 0, 0))
    assert f["verb"] == "joined" and f["name"] == "va"


def test_a_join_refused_by_the_kernel_names_the_holder_and_ptrace():
    text = _exec_adopt.reason(_exec_adopt.parse(REPORT % (errno.EBUSY, errno.EPERM, 4321)))
    assert text.startswith("couldn't open netmap:va: Device or resource busy: va's port is held by "
                           "process 4321, "), text
    assert "pidfd_getfd" in text and "no ptrace rights" in text, text


def test_a_join_refused_otherwise_is_ebusy_naming_the_causes():
    text = _exec_adopt.reason(_exec_adopt.parse(REPORT % (errno.EBUSY, 0, 0)))
    assert text.startswith("couldn't open netmap:va: Device or resource busy: another process's port "
                           "holds the queues of va and this open cannot join it: "), text
    assert "NR_EXCLUSIVE" in text, text
