"""The bpf(2) commands nmcompat needs, called through ctypes.

Each function fills the part of ``union bpf_attr`` its command reads (every
other byte stays zero, which the kernel requires), issues one
``syscall(__NR_bpf, cmd, &attr, size)`` and returns the result: a new file
descriptor (close-on-exec, owned by the caller) or nothing.  Failures raise
the errno's OSError subclass through :func:`nmcompat._ffi.os_error`
("couldn't <verb> <object>: <reason>", with the fix for EPERM);
:func:`prog_load` raises :class:`~nmcompat.errors.BPFLoadError` carrying the
verifier log.

All of these need CAP_BPF (and CAP_NET_ADMIN for XDP programs and links),
or root.  Constants newer than the build host's headers are defined here.
"""
from __future__ import annotations

import ctypes
import errno as _errno
import os
import platform
import struct
from dataclasses import dataclass
from typing import List, Optional, Tuple

from nmcompat._ffi import os_error
from nmcompat.errors import BPFLoadError

_NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351,
           "armv7l": 386, "i686": 357}

# Commands.
BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM = 0, 1, 2, 3
BPF_PROG_LOAD = 5
BPF_PROG_TEST_RUN = 10
BPF_PROG_GET_FD_BY_ID, BPF_MAP_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD = 13, 14, 15
BPF_LINK_CREATE, BPF_LINK_GET_FD_BY_ID, BPF_LINK_GET_NEXT_ID, BPF_LINK_DETACH = 28, 30, 31, 34
# Types, attach types, flags.
BPF_MAP_TYPE_XSKMAP = 17
BPF_PROG_TYPE_XDP = 6
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_XDP = 37
BPF_TCX_INGRESS, BPF_TCX_EGRESS = 46, 47       # Linux 6.6; not in the 6.1 headers
BPF_F_BEFORE = 1 << 3                           # TCX: before the programs there (alone: first)
BPF_LINK_TYPE_XDP = 6
BPF_F_XDP_HAS_FRAGS = 1 << 5
BPF_PSEUDO_MAP_FD = 1
BPF_ANY, BPF_NOEXIST, BPF_EXIST = 0, 1, 2
XDP_FLAGS_UPDATE_IF_NOEXIST, XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE = 1, 2, 4
XDP_FLAGS_HW_MODE, XDP_FLAGS_REPLACE = 8, 16
# XDP verdicts.
XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)

ATTR_SIZE = 144          # sizeof(union bpf_attr) in Linux 6.1 headers; the tail stays zero
OBJ_NAME_LEN = 16
LOG_SIZE = 1 << 20       # verifier log buffer for the retry after a reject
XDP_MD_SIZE = 24         # struct xdp_md: data, data_end, data_meta, ingress_ifindex,
                         # rx_queue_index, egress_ifindex

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]


class _Attr:
    """A zeroed bpf_attr (or info struct) plus the buffers it points to."""

    def __init__(self, size: int = ATTR_SIZE) -> None:
        self.buf = ctypes.create_string_buffer(size)
        self._keep: list = []

    def put(self, offset: int, fmt: str, *values) -> None:
        struct.pack_into("=" + fmt, self.buf, offset, *values)

    def get(self, offset: int, fmt: str):
        values = struct.unpack_from("=" + fmt, self.buf, offset)
        return values[0] if len(values) == 1 else values

    def ptr(self, offset: int, data) -> ctypes.Array:
        """Store a pointer to a copy of ``data`` (bytes) or to a new buffer (int size)."""
        buf = ctypes.create_string_buffer(data) if isinstance(data, int) \
            else ctypes.create_string_buffer(bytes(data), max(len(data), 1))
        self._keep.append(buf)
        self.put(offset, "Q", ctypes.addressof(buf))
        return buf

    def name(self, offset: int, name: str) -> None:
        self.buf[offset:offset + OBJ_NAME_LEN - 1] = \
            name.encode()[:OBJ_NAME_LEN - 1].ljust(OBJ_NAME_LEN - 1, b"\0")


def _call(cmd: int, attr: _Attr) -> Tuple[int, int]:
    """Issue bpf(cmd); return (result, errno), errno 0 on success."""
    nr = _NR_BPF.get(platform.machine())
    if nr is None:
        return -1, _errno.ENOSYS
    rc = _libc.syscall(nr, cmd, attr.buf, len(attr.buf))
    return (rc, 0) if rc >= 0 else (rc, ctypes.get_errno())


def _check(cmd: int, attr: _Attr, verb: str, obj: str) -> int:
    rc, err = _call(cmd, attr)
    if err:
        raise os_error(err, verb, obj)
    return rc


# -- maps -----------------------------------------------------------------

def map_create(map_type: int, key_size: int, value_size: int, max_entries: int,
               map_flags: int = 0, name: str = "") -> int:
    """Create a map; returns its fd.  Issues bpf(BPF_MAP_CREATE)."""
    attr = _Attr()
    attr.put(0, "5I", map_type, key_size, value_size, max_entries, map_flags)
    attr.name(28, name)
    return _check(BPF_MAP_CREATE, attr, "create BPF map", repr(name or "(anonymous)"))


def _elem(map_fd: int, key: bytes, value: Optional[bytes], flags: int = 0) -> _Attr:
    attr = _Attr()
    attr.put(0, "I", map_fd)
    attr.ptr(8, key)
    if value is not None:
        attr.ptr(16, value)
    attr.put(24, "Q", flags)
    return attr


def map_update(map_fd: int, key: bytes, value: bytes, flags: int = BPF_ANY,
               what: str = "BPF map") -> None:
    """Set ``key`` to ``value``.  Issues bpf(BPF_MAP_UPDATE_ELEM)."""
    _check(BPF_MAP_UPDATE_ELEM, _elem(map_fd, key, value, flags), "update", what)


def map_delete(map_fd: int, key: bytes, what: str = "BPF map") -> None:
    """Remove ``key`` (ENOENT when absent).  Issues bpf(BPF_MAP_DELETE_ELEM)."""
    _check(BPF_MAP_DELETE_ELEM, _elem(map_fd, key, None), "delete an entry of", what)


def map_lookup(map_fd: int, key: bytes, value_size: int, what: str = "BPF map") -> bytes:
    """The value at ``key``.  Issues bpf(BPF_MAP_LOOKUP_ELEM)."""
    attr = _elem(map_fd, key, None)
    out = attr.ptr(16, value_size)
    _check(BPF_MAP_LOOKUP_ELEM, attr, "look up an entry of", what)
    return out.raw[:value_size]


# -- programs ---------------------------------------------------------------

def _prog_load_attr(prog_type: int, insns: bytes, license_buf: bytes, name: str,
                    prog_flags: int, expected_attach_type: int) -> _Attr:
    attr = _Attr()
    attr.put(0, "I", prog_type)
    attr.put(4, "I", len(insns) // 8)
    attr.ptr(8, insns)
    attr.ptr(16, license_buf)
    attr.put(44, "I", prog_flags)
    attr.name(48, name)
    attr.put(68, "I", expected_attach_type)
    return attr


def prog_load(insns: bytes, license: str, name: str = "", prog_type: int = BPF_PROG_TYPE_XDP,
              prog_flags: int = 0, expected_attach_type: int = BPF_XDP,
              log_size: int = LOG_SIZE) -> int:
    """Load a program; returns its fd.  Issues bpf(BPF_PROG_LOAD).

    The first attempt runs without a log.  When it fails, the load is
    repeated with ``log_level=1`` so that the BPFLoadError raised carries the
    verifier's log in ``verifier_log`` (its errno is the first attempt's).
    """
    args = (prog_type, insns, license.encode() + b"\0", name, prog_flags, expected_attach_type)
    attr = _prog_load_attr(*args)
    rc, err = _call(BPF_PROG_LOAD, attr)
    if not err:
        return rc
    log = _verifier_log(args, log_size) if err != _errno.EPERM else ""
    message = os_error(err, "load BPF program", repr(name or "(anonymous)")).strerror
    raise BPFLoadError(err, message, log)


def _verifier_log(args, log_size: int) -> str:
    attr = _prog_load_attr(*args)
    attr.put(24, "II", 1, log_size)
    buf = attr.ptr(32, log_size)
    rc, err = _call(BPF_PROG_LOAD, attr)
    if not err:  # accepted on the second try: nothing to explain
        os.close(rc)
        return ""
    return buf.value.decode("utf-8", "replace")


@dataclass(frozen=True)
class TestRun:
    """What BPF_PROG_TEST_RUN returned."""
    retval: int
    data: bytes
    duration_ns: int
    ctx: bytes


def xdp_md(data_len: int, ingress_ifindex: int = 0, rx_queue_index: int = 0) -> bytes:
    """A ``struct xdp_md`` for :func:`prog_test_run`.

    ``rx_queue_index`` is honoured only with ``ingress_ifindex`` (a device of
    the caller's network namespace with that many RX queues).
    """
    return struct.pack("=6I", 0, data_len, 0, ingress_ifindex, rx_queue_index, 0)


def prog_test_run(prog_fd: int, data: bytes, ctx: Optional[bytes] = None, repeat: int = 1,
                  data_out_size: Optional[int] = None) -> TestRun:
    """Run a program once (or ``repeat`` times) on ``data`` in the kernel.

    No packet is sent: an XDP_REDIRECT verdict is reported, not carried out.
    Issues bpf(BPF_PROG_TEST_RUN).
    """
    out_size = data_out_size if data_out_size is not None else len(data) + 4096
    attr = _Attr()
    attr.put(0, "I", prog_fd)
    attr.put(8, "II", len(data), out_size)
    attr.ptr(16, data)
    out = attr.ptr(24, out_size)
    attr.put(32, "I", repeat)
    ctx_out = None
    if ctx is not None:
        attr.put(40, "II", len(ctx), len(ctx))
        attr.ptr(48, ctx)
        ctx_out = attr.ptr(56, len(ctx))
    _check(BPF_PROG_TEST_RUN, attr, "test-run BPF program", f"fd {prog_fd}")
    retval, size_out, duration = attr.get(4, "I"), attr.get(12, "I"), attr.get(36, "I")
    ctx_bytes = ctx_out.raw if ctx_out is not None else b""
    return TestRun(retval, out.raw[:min(size_out, out_size)], duration, ctx_bytes)


# -- objects, ids, links -------------------------------------------------------

def _get_info(fd: int, info: _Attr, what: str) -> None:
    attr = _Attr()
    attr.put(0, "II", fd, len(info.buf))
    attr.put(8, "Q", ctypes.addressof(info.buf))
    _check(BPF_OBJ_GET_INFO_BY_FD, attr, "get information about", what)


@dataclass(frozen=True)
class ProgInfo:
    id: int
    type: int
    tag: bytes
    name: str
    map_ids: Tuple[int, ...]


def prog_info(prog_fd: int, max_maps: int = 64) -> ProgInfo:
    """Id, type, tag, name and map ids of a program.  Issues bpf(BPF_OBJ_GET_INFO_BY_FD)."""
    info = _Attr(104)
    ids = info.ptr(56, 4 * max_maps)
    info.put(52, "I", max_maps)
    _get_info(prog_fd, info, f"BPF program fd {prog_fd}")
    nr = min(info.get(52, "I"), max_maps)
    return ProgInfo(info.get(4, "I"), info.get(0, "I"), info.buf.raw[8:16],
                    _cstr(info.buf.raw[64:80]), struct.unpack_from(f"={nr}I", ids.raw))


@dataclass(frozen=True)
class MapInfo:
    id: int
    type: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    name: str


def map_info(map_fd: int) -> MapInfo:
    """What the kernel knows of a map.  Issues bpf(BPF_OBJ_GET_INFO_BY_FD)."""
    info = _Attr(88)
    _get_info(map_fd, info, f"BPF map fd {map_fd}")
    map_type, map_id, key, value, entries, flags = info.get(0, "6I")
    return MapInfo(map_id, map_type, key, value, entries, flags, _cstr(info.buf.raw[24:40]))


def link_info(link_fd: int) -> Tuple[int, int, int, int]:
    """(link type, link id, program id, ifindex for XDP links) of a BPF link."""
    info = _Attr(64)
    _get_info(link_fd, info, f"BPF link fd {link_fd}")
    link_type, link_id, prog_id = info.get(0, "3I")
    ifindex = info.get(16, "I") if link_type == BPF_LINK_TYPE_XDP else 0
    return link_type, link_id, prog_id, ifindex


def _get_fd_by_id(cmd: int, obj_id: int, what: str) -> int:
    attr = _Attr()
    attr.put(0, "I", obj_id)
    return _check(cmd, attr, "open", f"{what} id {obj_id}")


def prog_get_fd_by_id(prog_id: int) -> int:
    """A new fd for the program with id ``prog_id``.  Issues bpf(BPF_PROG_GET_FD_BY_ID)."""
    return _get_fd_by_id(BPF_PROG_GET_FD_BY_ID, prog_id, "BPF program")


def map_get_fd_by_id(map_id: int) -> int:
    """A new fd for the map with id ``map_id``.  Issues bpf(BPF_MAP_GET_FD_BY_ID)."""
    return _get_fd_by_id(BPF_MAP_GET_FD_BY_ID, map_id, "BPF map")


def link_get_fd_by_id(link_id: int) -> int:
    """A new fd for the link with id ``link_id`` (it keeps the link alive).
    Issues bpf(BPF_LINK_GET_FD_BY_ID)."""
    return _get_fd_by_id(BPF_LINK_GET_FD_BY_ID, link_id, "BPF link")


def link_ids():
    """Ids of every BPF link in the system.  Issues bpf(BPF_LINK_GET_NEXT_ID)."""
    start = 0
    while True:
        attr = _Attr()
        attr.put(0, "I", start)
        rc, err = _call(BPF_LINK_GET_NEXT_ID, attr)
        if rc < 0:
            return
        start = attr.get(4, "I")
        yield start


def link_create_xdp(prog_fd: int, ifindex: int, flags: int, ifname: str = "") -> int:
    """Attach an XDP program to ``ifindex`` through a BPF link; returns the link fd.

    The program stays attached while the link fd (or a dup of it) is open.
    ``flags`` is XDP_FLAGS_SKB_MODE or XDP_FLAGS_DRV_MODE (0: the kernel picks).
    Issues bpf(BPF_LINK_CREATE).
    """
    attr = _Attr()
    attr.put(0, "4I", prog_fd, ifindex, BPF_XDP, flags)
    return _check(BPF_LINK_CREATE, attr, "attach XDP program to",
                  ifname or f"interface {ifindex}")


def link_create_tcx(prog_fd: int, ifindex: int, attach_type: int, ifname: str = "",
                    first: bool = False) -> int:
    """Attach a tc program to ``ifindex``'s ingress or egress (``attach_type``
    BPF_TCX_INGRESS or BPF_TCX_EGRESS) through a TCX link, after the
    programs already there (``first``: before them); returns the link fd.

    The program stays attached while the link fd (or a dup of it) is open.
    Issues bpf(BPF_LINK_CREATE).
    """
    attr = _Attr()
    attr.put(0, "4I", prog_fd, ifindex, attach_type, BPF_F_BEFORE if first else 0)
    side = "ingress" if attach_type == BPF_TCX_INGRESS else "egress"
    return _check(BPF_LINK_CREATE, attr, f"attach tc {side} program to",
                  ifname or f"interface {ifindex}")


BPF_PROG_QUERY = 16


def tcx_prog_ids(ifindex: int, attach_type: int, max_progs: int = 64) -> List[int]:
    """The ids of the programs attached to ``ifindex``'s TCX hook
    ``attach_type`` (BPF_TCX_INGRESS or BPF_TCX_EGRESS), in order.

    Issues bpf(BPF_PROG_QUERY).
    """
    attr = _Attr()
    attr.put(0, "II", ifindex, attach_type)
    ids = attr.ptr(16, 4 * max_progs)
    attr.put(24, "I", max_progs)
    _check(BPF_PROG_QUERY, attr, "query the tc programs of", f"interface {ifindex}")
    count = min(attr.get(24, "I"), max_progs)
    return list(struct.unpack_from(f"={count}I", ids.raw)) if count else []


def link_detach(link_fd: int) -> None:
    """Detach a link from its hook even if other fds still refer to it.

    Issues bpf(BPF_LINK_DETACH).
    """
    attr = _Attr()
    attr.put(0, "I", link_fd)
    _check(BPF_LINK_DETACH, attr, "detach", f"BPF link fd {link_fd}")


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

