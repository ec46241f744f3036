"""nmcompat.bpf against the running kernel: load, test-run, attach, detach, refuse.

Needs root (see conftest.py).  Every test that touches an interface runs its
body in a private network namespace holding a veth pair va/vb (the
``netns`` fixture), in a forked child; nothing outside it is touched.
"""
from __future__ import annotations

import ctypes
import errno
import io
import mmap
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from nmcompat.bpf import BPFLoadError, BPFObject, load_xsk_redirect, syscall
from nmcompat.bpf.netlink import xdp_query, xdp_set_fd
from nmcompat.bpf.syscall import XDP_PASS, XDP_REDIRECT

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "nmcompat" / "backends" / "afxdp" / "xsk_redirect.bpf.o"
STRICT = os.environ.get("NMCOMPAT_STRICT") == "1"
CLANG = shutil.which("clang-14") or shutil.which("clang")
ETH_TEST = 0x88B5                      # IEEE local experimental ethertype
PASS_INSNS = struct.pack("<BBhi", 0xB7, 0, 0, XDP_PASS) + struct.pack("<BBhi", 0x95, 0, 0, 0)
_libc = ctypes.CDLL(None, use_errno=True)


def skip_or_fail(reason: str):
    if STRICT:
        pytest.fail(f"{reason} (NMCOMPAT_STRICT=1)")
    pytest.skip(reason)


# -- helpers that run inside the namespace ----------------------------------------

class Xsk:
    """A bound AF_XDP socket with an empty fill ring: every frame it gets is dropped
    and counted, which is enough to see where the XDP program sent a frame."""

    def __init__(self, ifname: str, queue: int = 0, frames: int = 16, size: int = 2048):
        self.umem = mmap.mmap(-1, frames * size)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(self.umem))
        self.sock = socket.socket(44, socket.SOCK_RAW, 0)            # AF_XDP
        self.sock.setsockopt(283, 4, struct.pack("=QQIIII", addr, len(self.umem), size, 0, 0, 0))
        for ring in (5, 6, 2):                                       # FILL, COMPLETION, RX
            self.sock.setsockopt(283, ring, struct.pack("=I", frames))
        sxdp = struct.pack("=HHIII", 44, 0, socket.if_nametoindex(ifname), queue, 0)
        if _libc.bind(self.sock.fileno(), sxdp, len(sxdp)) != 0:
            raise OSError(ctypes.get_errno(), "bind AF_XDP")

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def received(self) -> int:
        """rx_dropped + rx_fill_ring_empty_descs of XDP_STATISTICS."""
        stats = struct.unpack("=6Q", self.sock.getsockopt(283, 7, 48))
        return stats[0] + stats[4]


def frame(marker: bytes) -> bytes:
    return b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", ETH_TEST) + \
        marker.ljust(46, b"\0")


def stack_sees(marker: bytes) -> bool:
    """Send a frame from vb; True when va's host stack (an AF_PACKET tap) receives it."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_TEST)) as rx, \
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as tx:
        rx.bind(("va", ETH_TEST))
        tx.bind(("vb", 0))
        tx.send(frame(marker))
        deadline = time.monotonic() + 1.0
        while (left := deadline - time.monotonic()) > 0:
            if select.select([rx], [], [], left)[0] and marker in rx.recv(2048):
                return True
    return False


def wait_for(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def xdp_state():
    return xdp_query(socket.if_nametoindex("va"))


def need_clang():
    if not CLANG:
        skip_or_fail("clang is not installed (apt-get install clang-14)")
    return CLANG


def clang_object(tmp_path: Path, body: str) -> Path:
    src, obj = tmp_path / "t.bpf.c", tmp_path / "t.bpf.o"
    src.write_text('#include <linux/types.h>\n#include <linux/bpf.h>\n'
                   '#define SEC(n) __attribute__((section(n), used))\n'
                   'char _license[] SEC("license") = "GPL";\n' + body)
    subprocess.run([need_clang(), "-O2", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu",
                    "-c", str(src), "-o", str(obj)], check=True)
    return obj


# -- loading and BPF_PROG_TEST_RUN (no interface needed) ------------------------------

def test_load_shipped_object():
    with load_xsk_redirect() as obj:
        assert set(obj.programs) == {"nmc_xsk_redir", "nmc_xsk_frags"} and not obj.skipped
        assert obj.program().name == "nmc_xsk_frags"            # preferred when loadable
        info = syscall.map_info(obj.map("xsks").fileno())
        assert (info.type, info.key_size, info.value_size, info.max_entries, info.name) == \
            (syscall.BPF_MAP_TYPE_XSKMAP, 4, 4, 64, "xsks")
        for prog in obj.programs.values():
            assert prog.info.type == syscall.BPF_PROG_TYPE_XDP
            assert prog.info.name == prog.name
            assert prog.info.map_ids == (info.id,)
    assert all(p.closed for p in obj.programs.values()) and obj.map("xsks").closed


@pytest.mark.parametrize("size", [14, 60, 1514])
@pytest.mark.parametrize("program", ["nmc_xsk_redir", "nmc_xsk_frags"])
def test_run_without_socket_passes_frame_unchanged(program, size):
    data = bytes((i * 7) & 0xFF for i in range(size))
    with load_xsk_redirect() as obj:
        assert obj.test_run(data, program) == (XDP_PASS, data)
        assert obj.test_run(data, program, repeat=50)[0] == XDP_PASS


def test_frags_program_takes_multi_buffer_frames():
    data = os.urandom(9000)
    with load_xsk_redirect() as obj:
        assert obj.test_run(data, "nmc_xsk_frags") == (XDP_PASS, data)


def test_run_rejects_runt_frame():
    with load_xsk_redirect() as obj, pytest.raises(OSError) as info:
        obj.test_run(b"\0" * 10)
    assert info.value.errno == errno.EINVAL and "couldn't test-run" in str(info.value)


# -- verifier rejects ------------------------------------------------------------------

def open_fds() -> set:
    return set(os.listdir("/proc/self/fd"))


def test_verifier_reject_of_raw_instructions():
    with pytest.raises(BPFLoadError) as info:
        syscall.prog_load(PASS_INSNS[:8], "GPL", "no_exit")     # r0 = 2, and no exit
    assert info.value.errno == errno.EINVAL
    assert "last insn is not an exit or jmp" in info.value.verifier_log
    assert "verifier log:" in str(info.value)


def test_verifier_reject_of_object_carries_log_and_leaks_nothing():
    """The shipped object with ctx->rx_queue_index read at offset 1000 instead of 16."""
    data = bytearray(SHIPPED.read_bytes())
    elf_file = ELFFile(io.BytesIO(bytes(data)))
    for name in ("xdp", "xdp.frags"):
        struct.pack_into("<h", data, elf_file.get_section_by_name(name)["sh_offset"] + 2, 1000)
    before = open_fds()
    with pytest.raises(BPFLoadError) as info:
        BPFObject.load(bytes(data), name="bad-ctx.o")
    assert info.value.errno == errno.EACCES
    assert "invalid bpf_context access" in info.value.verifier_log
    assert "couldn't load BPF program 'nmc_xsk_redir'" in str(info.value)
    assert open_fds() == before


def test_verifier_reject_of_clang_object(tmp_path):
    obj = clang_object(tmp_path, """
SEC("xdp") int oob(struct xdp_md *ctx)
{ return *(unsigned char *)(long)ctx->data; }   /* no bounds check */
""")
    with pytest.raises(BPFLoadError) as info:
        BPFObject.load(obj)
    assert "invalid access to packet" in info.value.verifier_log


# -- XSKMAP entries ----------------------------------------------------------------------

def _redirect_when_socket_in_map():
    with load_xsk_redirect() as obj:
        ctx = syscall.xdp_md(60, socket.if_nametoindex("va"), 0)
        data = frame(b"m")
        sock = Xsk("va", 0)
        obj.map_update("xsks", 0, sock.fileno())
        verdicts = [obj.test_run(data, p)[0] for p in obj.programs]
        with_ctx = syscall.prog_test_run(obj.program().fileno(), data, ctx).retval
        obj.map_delete("xsks", 0)
        after_delete = obj.test_run(data)[0]
        obj.map_update("xsks", 0, sock.fileno())
        sock.close()                       # closing the socket empties its entries
        after_close = obj.test_run(data)[0]
        errors = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for key in (0, 64):           # not an AF_XDP socket; key out of range
                try:
                    obj.map_update("xsks", key, udp.fileno())
                except OSError as exc:
                    errors.append((exc.errno, exc.strerror))
        return verdicts, with_ctx, after_delete, after_close, errors


def test_redirect_when_socket_in_map(netns):
    verdicts, with_ctx, after_delete, after_close, errors = \
        netns.run(_redirect_when_socket_in_map)
    assert verdicts == [XDP_REDIRECT, XDP_REDIRECT] and with_ctx == XDP_REDIRECT
    assert after_delete == XDP_PASS and after_close == XDP_PASS
    assert [e for e, _ in errors] == [errno.EOPNOTSUPP, errno.E2BIG]
    assert all(m.startswith("couldn't update BPF map 'xsks'") for _, m in errors)


# -- attaching -----------------------------------------------------------------------------

def _attach_and_traffic(mode: str):
    with load_xsk_redirect() as obj:
        link = obj.attach_xdp("va", mode=mode)
        state = xdp_state()
        attached = (link.mode, state.mode, state.prog_id, link.prog_id, obj.program().info.id)
        passes = stack_sees(b"no socket yet")
        sock = Xsk("va", 0)
        obj.map_update("xsks", 0, sock.fileno())
        redirected = not stack_sees(b"socket bound") and wait_for(sock.received)
        link.close()
        detached = xdp_state().mode
        back_to_stack = stack_sees(b"after close")
        sock.close()
        return attached, link.drv_error, passes, redirected, detached, back_to_stack


@pytest.mark.parametrize("mode", ["skb", "drv", "auto"])
def test_attach_modes(netns, mode):
    attached, drv_error, passes, redirected, detached, back = \
        netns.run(_attach_and_traffic, mode)
    used = "drv" if mode == "auto" else mode      # veth has native XDP
    link_mode, state_mode, state_prog, link_prog, our_prog = attached
    assert (link_mode, state_mode) == (used, used) and drv_error == ""
    assert state_prog == link_prog == our_prog
    assert passes, "a queue without a socket must pass frames to the host stack"
    assert redirected, "with a socket in the map, frames must go to the socket"
    assert detached is None and back


def _object_close_detaches_even_with_fd_copies():
    obj = load_xsk_redirect()
    obj.attach_xdp("va", mode="skb")
    child = os.fork()
    if child == 0:  # pragma: no cover - holds copies of every fd
        time.sleep(30)
        os._exit(0)
    try:
        attached = xdp_state().mode
        obj.close()
        return attached, xdp_state().mode
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_close_detaches(netns):
    assert netns.run(_object_close_detaches_even_with_fd_copies) == ("skb", None)


def _sigkill_detaches(mode: str):
    rfd, wfd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the owner that gets killed
        obj = load_xsk_redirect()
        link = obj.attach_xdp("va", mode=mode)
        os.write(wfd, struct.pack("=I", link.prog_id))
        time.sleep(60)
        os._exit(0)
    os.close(wfd)
    prog_id = struct.unpack("=I", os.read(rfd, 4))[0]
    os.close(rfd)
    before = xdp_state()
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    gone = wait_for(lambda: not xdp_state().attached)

    def prog_freed():
        try:
            os.close(syscall.prog_get_fd_by_id(prog_id))
            return False
        except FileNotFoundError:
            return True
    return (before.mode, before.prog_id == prog_id), gone, wait_for(prog_freed)


@pytest.mark.parametrize("mode", ["skb", "drv"])
def test_sigkill_of_owner_detaches(netns, mode):
    before, gone, freed = netns.run(_sigkill_detaches, mode)
    assert before == (mode, True)
    assert gone, "the XDP program outlived its owner"
    assert freed, "the program was not freed after its owner died"


# -- refusing programs that are not ours --------------------------------------------------

def _refusals(how: str):
    ifindex = socket.if_nametoindex("va")
    keep = []
    if how == "netlink":
        fd = syscall.prog_load(PASS_INSNS, "GPL", "foreign_pass")
        xdp_set_fd(ifindex, fd, syscall.XDP_FLAGS_SKB_MODE)
        os.close(fd)                                    # stays attached: netlink
    elif how == "link":
        fd = syscall.prog_load(PASS_INSNS, "GPL", "foreign_pass")
        keep.append(syscall.link_create_xdp(fd, ifindex, syscall.XDP_FLAGS_DRV_MODE))
        os.close(fd)
    before = xdp_state()
    errors = []
    with load_xsk_redirect() as obj:
        for mode in ("auto", "drv", "skb"):
            try:
                obj.attach_xdp("va", mode=mode)
            except OSError as exc:
                errors.append((exc.errno, exc.strerror))
    after = xdp_state()
    for fd in keep:
        os.close(fd)
    return errors, before, after


@pytest.mark.parametrize("how", ["netlink", "link"])
def test_refuses_to_replace_foreign_program(netns, how):
    errors, before, after = netns.run(_refusals, how)
    assert before.attached and after == before
    assert [e for e, _ in errors] == [errno.EBUSY] * 3
    for _, message in errors:
        assert message.startswith("couldn't attach XDP program to va: ")
        assert "'foreign_pass'" in message and "not nmcompat's" in message


def test_refuses_program_attached_by_ip(netns, tmp_path):
    obj = clang_object(tmp_path, 'SEC("xdp") int ip_pass(struct xdp_md *ctx) { return 2; }\n')
    netns.ip("link", "set", "dev", "va", "xdpgeneric", "obj", str(obj), "sec", "xdp")
    errors, before, after = netns.run(_refusals, "ip")
    assert before.mode == "skb" and after == before
    assert [e for e, _ in errors] == [errno.EBUSY] * 3
    assert all("'ip_pass'" in m and "not nmcompat's" in m for _, m in errors)


def _second_owner():
    with load_xsk_redirect() as first, load_xsk_redirect() as second:
        link = first.attach_xdp("va", mode="skb")
        messages = []
        for obj in (second, first):
            try:
                obj.attach_xdp("va", mode="skb")
            except OSError as exc:
                messages.append((exc.errno, exc.strerror))
        return link.prog_id, messages, xdp_state().prog_id


def test_refuses_second_attach_of_ours(netns):
    prog_id, messages, still = netns.run(_second_owner)
    assert still == prog_id
    assert [e for e, _ in messages] == [errno.EBUSY, errno.EBUSY]
    assert "nmcompat's XDP program 'nmc_xsk_frags'" in messages[0][1]
    assert "another owner" in messages[0][1]
    assert "this object's XDP program" in messages[1][1]


def _unknown_interface():
    with load_xsk_redirect() as obj:
        with pytest.raises(OSError) as info:
            obj.attach_xdp("nosuchif0")
        with pytest.raises(ValueError):
            obj.attach_xdp("va", mode="hw")
        return info.value.errno, str(info.value)


def test_unknown_interface_and_mode(netns):
    err, message = netns.run(_unknown_interface)
    assert err == errno.ENODEV and "nosuchif0" in message
