"""Joining nmcompat's XDP program while another process attaches or
detaches it (nmcompat/backends/afxdp/_attach.py).

The kernel lists a program on the interface a moment before its BPF link
can be opened by id (the id is published after the attach) and, on the
last close, a moment after the link stopped being found.  A first open
that came in that window failed with "attached without a BPF link".  The
window is a few instructions wide in the kernel, so these tests stand in
for the kernel's answers: the program is there and its link shows up only
at the third look.
"""
from __future__ import annotations

import errno
import os
import types

import pytest

from nmcompat import bpf
from nmcompat.backends.afxdp import _attach
from nmcompat.bpf import syscall

IFINDEX, PROG_ID, LINK_ID, MAP_ID = 41, 7, 5, 3


class FakeKernel:
    """nmcompat's program on IFINDEX; its link listed from look `link_from` on."""

    def __init__(self, link_from: int) -> None:
        self.looks, self.link_from, self.fds = 0, link_from, []

    def attached_programs(self, ifindex):
        prog = types.SimpleNamespace(id=PROG_ID, name=bpf.OUR_PREFIX + "redirect", map_ids=(MAP_ID,))
        return "skb", ({PROG_ID: prog} if ifindex == IFINDEX else {})

    def link_ids(self):
        self.looks += 1
        return iter([LINK_ID] if self.looks >= self.link_from else [])

    def fd(self, *_):
        fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self.fds.append(fd)
        return fd

    def link_info(self, fd):
        return syscall.BPF_LINK_TYPE_XDP, LINK_ID, PROG_ID, IFINDEX

    def map_info(self, fd):
        return types.SimpleNamespace(name=_attach.XSK_MAP)


@pytest.fixture
def kernel(monkeypatch):
    def make(link_from):
        k = FakeKernel(link_from)
        monkeypatch.setattr(bpf, "attached_programs", k.attached_programs)
        monkeypatch.setattr(syscall, "link_ids", k.link_ids)
        monkeypatch.setattr(syscall, "link_get_fd_by_id", k.fd)
        monkeypatch.setattr(syscall, "link_info", k.link_info)
        monkeypatch.setattr(syscall, "map_get_fd_by_id", k.fd)
        monkeypatch.setattr(syscall, "map_info", k.map_info)
        monkeypatch.setattr(_attach, "Attachment", _no_attach)
        return k
    return make


def _no_attach(ifindex, mode):
    raise AssertionError("attached a second program where nmcompat's is already")


def test_a_program_seen_before_its_link_is_joined_once_the_link_shows(kernel):
    k = kernel(link_from=3)
    att = _attach.attach_program(IFINDEX, "auto")
    try:
        assert isinstance(att, _attach.SharedAttachment) and att.refs == 1
        assert att.link_fd >= 0 and att.map_fd >= 0 and k.looks == 3
    finally:
        _attach.release_program(att)
    assert att.link_fd == -1 and IFINDEX not in _attach._attached


def test_a_program_whose_link_never_shows_is_ebusy_with_the_reason(kernel, monkeypatch):
    monkeypatch.setattr(_attach, "LINK_WAIT_S", 0.05)
    k = kernel(link_from=10 ** 9)
    with pytest.raises(OSError) as exc:
        _attach.attach_program(IFINDEX, "auto")
    assert exc.value.errno == errno.EBUSY and "without a BPF link" in str(exc.value)
    assert k.looks > 1 and IFINDEX not in _attach._attached
    for fd in k.fds:                    # every descriptor opened was closed again
        with pytest.raises(OSError):
            os.fstat(fd)
