"""Load a BPF object into the kernel and attach its XDP program.

    with load_xsk_redirect() as obj:                 # the shipped program
        with obj.attach_xdp("eth0", mode="auto") as link:
            obj.map_update("xsks", queue_id, xsk_fd)
            ...                                       # link.mode: "drv" or "skb"

Ownership: a :class:`BPFObject` owns the file descriptors of its maps,
programs and links, and ``close()`` releases them in reverse order.  XDP
programs are attached through BPF links, so the kernel detaches them when
the last fd of the link goes away, including when the owning process dies.
nmcompat never replaces an XDP program it did not attach: programs are
recognised as nmcompat's by the ``nmc_`` prefix of their name.

Every privileged call needs CAP_BPF and CAP_NET_ADMIN, or root.
"""
from __future__ import annotations

import errno as _errno
import os
import socket
import struct
import sys
from contextlib import ExitStack
from importlib import resources
from typing import Dict, Optional, Tuple, Union

from nmcompat._ffi import os_error
from nmcompat.bpf import elf, syscall
from nmcompat.bpf.netlink import ifname, xdp_query
from nmcompat.errors import BPFLoadError, BPFObjectError

__all__ = ["BPFObject", "BPFMap", "BPFProgram", "XdpLink", "OUR_PREFIX",
           "XSK_REDIRECT_VERSION", "xsk_redirect_path", "load_xsk_redirect", "attached_programs"]

#: Version stamp the shipped xsk_redirect.bpf.o must carry (bpf/xsk_redirect.bpf.c).
XSK_REDIRECT_VERSION = 1
XSK_REDIRECT_OBJECT = "xsk_redirect.bpf.o"
XSK_MAP = "xsks"
#: Names of nmcompat's XDP programs start with this.
OUR_PREFIX = "nmc_"
MODES = {"drv": syscall.XDP_FLAGS_DRV_MODE, "skb": syscall.XDP_FLAGS_SKB_MODE}
_NO_FALLBACK = (_errno.EBUSY, _errno.EPERM, _errno.EACCES, _errno.ENODEV, _errno.EEXIST)

Key = Union[int, bytes]


def _pack(value: Key, size: int, what: str) -> bytes:
    if isinstance(value, int):
        if size not in (4, 8):
            raise ValueError(f"{what} is {size} bytes; pass bytes, not an int")
        if not 0 <= value < 1 << (8 * size):
            raise ValueError(f"{what} must fit in {size} bytes, not {value}")
        return struct.pack("=I" if size == 4 else "=Q", value)
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes, not {len(value)}")
    return bytes(value)


class _Fd:
    """A file descriptor with an idempotent close()."""

    fd: int = -1

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def fileno(self) -> int:
        if self.fd < 0:
            raise ValueError(f"{self!r} is closed")
        return self.fd

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BPFMap(_Fd):
    """A map created from a :class:`~nmcompat.bpf.elf.MapDef`; owns its fd."""

    def __init__(self, definition: elf.MapDef) -> None:
        self.definition = definition
        self.name = definition.name
        d = definition
        self.fd = syscall.map_create(d.type, d.key_size, d.value_size, d.max_entries,
                                     d.map_flags, d.name)

    def __repr__(self) -> str:
        return f"<BPFMap {self.name} fd={self.fd}>"

    def _key(self, key: Key) -> bytes:
        return _pack(key, self.definition.key_size, f"the key of map '{self.name}'")

    def update(self, key: Key, value: Key, flags: int = syscall.BPF_ANY) -> None:
        """Set ``key`` to ``value`` (ints are packed as the map's u32/u64)."""
        raw = _pack(value, self.definition.value_size, f"the value of map '{self.name}'")
        syscall.map_update(self.fileno(), self._key(key), raw, flags, f"BPF map '{self.name}'")

    def delete(self, key: Key) -> None:
        """Remove ``key``; FileNotFoundError when it is absent."""
        syscall.map_delete(self.fileno(), self._key(key), f"BPF map '{self.name}'")

    def lookup(self, key: Key) -> bytes:
        """The value at ``key`` (XSKMAP values cannot be read back: EOPNOTSUPP)."""
        return syscall.map_lookup(self.fileno(), self._key(key), self.definition.value_size,
                                  f"BPF map '{self.name}'")


class BPFProgram(_Fd):
    """A loaded program; owns its fd."""

    def __init__(self, definition: elf.ProgramDef, license: str,
                 maps: Dict[str, BPFMap]) -> None:
        self.definition = definition
        self.name = definition.name
        self.frags = definition.frags
        flags = syscall.BPF_F_XDP_HAS_FRAGS if self.frags else 0
        kind = (syscall.BPF_PROG_TYPE_SCHED_CLS, 0) if definition.tc \
            else (syscall.BPF_PROG_TYPE_XDP, syscall.BPF_XDP)
        self.fd = syscall.prog_load(_relocate(definition, maps), license, definition.name,
                                    prog_type=kind[0], prog_flags=flags,
                                    expected_attach_type=kind[1])
        try:
            self.info = syscall.prog_info(self.fd)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<BPFProgram {self.name} id={self.info.id} fd={self.fd}>"

    def test_run(self, data: bytes, ctx: Optional[bytes] = None,
                 repeat: int = 1) -> Tuple[int, bytes]:
        """(verdict, frame after the program) for one run on ``data``."""
        result = syscall.prog_test_run(self.fileno(), data, ctx, repeat)
        return result.retval, result.data


def _relocate(prog: elf.ProgramDef, maps: Dict[str, BPFMap]) -> bytes:
    """The instructions with each map reference turned into a BPF_PSEUDO_MAP_FD load."""
    insns = bytearray(prog.insns)
    for reloc in prog.relocs:
        off = reloc.insn * elf.INSN_SIZE
        insns[off + 1] = (insns[off + 1] & 0x0F) | (syscall.BPF_PSEUDO_MAP_FD << 4)
        struct.pack_into("=iIi", insns, off + 4, maps[reloc.map].fileno(), 0, 0)
    return bytes(insns)


class XdpLink(_Fd):
    """An XDP program attached to an interface through a BPF link.

    ``mode`` is "drv" or "skb", the mode actually used; ``drv_error`` says
    why "auto" fell back to "skb" ("" otherwise).  ``close()`` detaches
    the program, even when a forked child still holds a copy of the fd.
    """

    def __init__(self, fd: int, ifindex: int, mode: str, program: BPFProgram,
                 drv_error: str = "") -> None:
        self.fd, self.ifindex, self.mode = fd, ifindex, mode
        self.ifname = ifname(ifindex)
        self.program, self.prog_id, self.drv_error = program.name, program.info.id, drv_error
        self.link_id = syscall.link_info(fd)[1]

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self.fd}"
        return f"<XdpLink {self.program} on {self.ifname} ({self.mode}) {state}>"

    def close(self, detach: bool = True) -> None:
        """Close the link; with ``detach`` also force the program off the
        interface even if other fds (forked copies, other processes that
        opened the link by id) still refer to it."""
        if self.fd >= 0 and detach:
            try:
                syscall.link_detach(self.fd)
            except OSError:
                pass  # already detached (interface gone): closing is what matters
        super().close()


def attached_programs(ifindex: int) -> Tuple[Optional[str], Dict[int, syscall.ProgInfo]]:
    """(mode, {prog id: info}) of the XDP programs attached to ``ifindex``.

    Needs CAP_BPF (or root) to open the programs by id.
    """
    state = xdp_query(ifindex)
    infos = {}
    for prog_id in state.prog_ids:
        try:
            fd = syscall.prog_get_fd_by_id(prog_id)
        except FileNotFoundError:
            continue  # detached meanwhile
        try:
            infos[prog_id] = syscall.prog_info(fd)
        finally:
            os.close(fd)
    return state.mode, infos


def _refuse_attached(ifindex: int, own_ids: Tuple[int, ...] = ()) -> None:
    """EBUSY when ``ifindex`` has an XDP program already, saying whose it is."""
    mode, infos = attached_programs(ifindex)
    for info in infos.values():
        label = f"'{info.name or '(unnamed)'}' (id {info.id}, {mode} mode)"
        if info.id in own_ids:
            detail = f"this object's XDP program {label} is attached to it already"
        elif info.name.startswith(OUR_PREFIX):
            detail = f"it already has nmcompat's XDP program {label}, attached by another owner"
        else:
            detail = (f"it already has XDP program {label}, which is not nmcompat's; "
                      "nmcompat will not replace it")
        raise os_error(_errno.EBUSY, "attach XDP program to", ifname(ifindex), detail)


class BPFObject:
    """The maps and programs of one BPF object file, loaded into the kernel."""

    def __init__(self, definition: elf.ObjectDef, maps: Dict[str, BPFMap],
                 programs: Dict[str, BPFProgram], skipped: Dict[str, str],
                 stack: ExitStack) -> None:
        self.definition = definition
        self.maps, self.programs, self.skipped = maps, programs, skipped
        self._stack = stack

    @classmethod
    def load(cls, src: elf.Source, *, name: Optional[str] = None,
             expect_version: Optional[int] = None) -> "BPFObject":
        """Parse ``src`` (a path or the object's bytes), create its maps, load its programs.

        A program of an ``xdp.frags`` section that the kernel refuses with
        EINVAL (no multi-buffer support before 5.18) is left out when the
        object has another program; ``skipped`` records why.
        Raises BPFObjectError (bad object, version mismatch), BPFLoadError
        (verifier reject; ``verifier_log``), or the errno's OSError.
        Issues bpf(BPF_MAP_CREATE, BPF_PROG_LOAD, BPF_OBJ_GET_INFO_BY_FD).
        """
        definition = elf.parse(src, name)
        _check_object(definition, expect_version)
        with ExitStack() as stack:
            maps = {m: stack.enter_context(BPFMap(d)) for m, d in definition.maps.items()}
            programs, skipped = _load_programs(definition, maps, stack)
            return cls(definition, maps, programs, skipped, stack.pop_all())

    def __repr__(self) -> str:
        return f"<BPFObject {self.definition.source} programs={list(self.programs)}>"

    def program(self, name: Optional[str] = None) -> BPFProgram:
        """The named program; by default the first multi-buffer one, else the first."""
        if name is not None:
            if name not in self.programs:
                raise KeyError(f"no program '{name}' in {self.definition.source} "
                               f"(it has: {', '.join(self.programs)})")
            return self.programs[name]
        ordered = sorted(self.programs.values(), key=lambda p: not p.frags)
        return ordered[0]

    def map(self, name: str) -> BPFMap:
        if name not in self.maps:
            raise KeyError(f"no map '{name}' in {self.definition.source}")
        return self.maps[name]

    def map_update(self, map_name: str, key: Key, value: Key,
                   flags: int = syscall.BPF_ANY) -> None:
        """``self.map(map_name).update(...)``: e.g. ("xsks", queue_id, xsk_fd)."""
        self.map(map_name).update(key, value, flags)

    def map_delete(self, map_name: str, key: Key) -> None:
        self.map(map_name).delete(key)

    def test_run(self, data: bytes, program: Optional[str] = None,
                 ctx: Optional[bytes] = None, repeat: int = 1) -> Tuple[int, bytes]:
        """(verdict, frame out) of one BPF_PROG_TEST_RUN; nothing is transmitted."""
        return self.program(program).test_run(data, ctx, repeat)

    def attach_xdp(self, interface: Union[int, str], mode: str = "auto",
                   program: Optional[str] = None) -> XdpLink:
        """Attach a program to an interface of the caller's network namespace.

        ``mode``: "drv" (native), "skb" (generic), or "auto" (drv, else skb;
        the link's ``mode`` says which).  Refuses with EBUSY when the
        interface has an XDP program already, ours or not.  The link belongs
        to this object: ``close()`` detaches it.
        Issues RTM_GETLINK, bpf(BPF_PROG_GET_FD_BY_ID, BPF_LINK_CREATE).
        """
        if mode not in ("auto", *MODES):
            raise ValueError(f"XDP mode must be 'auto', 'drv' or 'skb', not {mode!r}")
        ifindex = _ifindex(interface)
        prog = self.program(program)
        _refuse_attached(ifindex, tuple(p.info.id for p in self.programs.values()))
        return self._stack.enter_context(_attach(prog, ifindex, mode))

    def close(self) -> None:
        """Detach every link, unload the programs, free the maps (idempotent)."""
        self._stack.close()

    def __enter__(self) -> "BPFObject":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_object(definition: elf.ObjectDef, expect_version: Optional[int]) -> None:
    if definition.little_endian != (sys.byteorder == "little"):
        raise BPFObjectError(definition.source, "built for the other byte order "
                             "(use clang -target bpf, which follows the host)")
    if expect_version is not None and definition.version != expect_version:
        found = "no version stamp" if definition.version is None \
            else f"version stamp {definition.version}"
        raise BPFObjectError(definition.source, f"{found}, but this nmcompat needs version "
                             f"{expect_version} (rebuild it: make -C bpf)")


def _load_programs(definition: elf.ObjectDef, maps: Dict[str, BPFMap],
                   stack: ExitStack) -> Tuple[Dict[str, BPFProgram], Dict[str, str]]:
    programs: Dict[str, BPFProgram] = {}
    skipped: Dict[str, str] = {}
    has_plain = any(not p.frags for p in definition.programs.values())
    for name, prog in definition.programs.items():
        try:
            programs[name] = stack.enter_context(BPFProgram(prog, definition.license, maps))
        except BPFLoadError as exc:
            if not (prog.frags and has_plain and exc.errno == _errno.EINVAL):
                raise
            skipped[name] = str(exc)
    return programs, skipped


def _ifindex(interface: Union[int, str]) -> int:
    if isinstance(interface, int):
        return interface
    try:
        return socket.if_nametoindex(interface)
    except OSError:
        raise os_error(_errno.ENODEV, "attach XDP program to", interface,
                       "no such interface in this network namespace") from None


def _attach(prog: BPFProgram, ifindex: int, mode: str) -> XdpLink:
    name = ifname(ifindex)
    if mode != "auto":
        fd = syscall.link_create_xdp(prog.fileno(), ifindex, MODES[mode], name)
        return _link(fd, ifindex, mode, prog)
    try:
        fd = syscall.link_create_xdp(prog.fileno(), ifindex, MODES["drv"], name)
        return _link(fd, ifindex, "drv", prog)
    except OSError as exc:
        if exc.errno in _NO_FALLBACK:
            raise
        drv_error = exc.strerror or str(exc)
    fd = syscall.link_create_xdp(prog.fileno(), ifindex, MODES["skb"], name)
    return _link(fd, ifindex, "skb", prog, drv_error)


def _link(fd: int, ifindex: int, mode: str, prog: BPFProgram, drv_error: str = "") -> XdpLink:
    try:
        return XdpLink(fd, ifindex, mode, prog, drv_error)
    except BaseException:
        os.close(fd)
        raise


def xsk_redirect_path() -> str:
    """Where the shipped program is, or $NMCOMPAT_XDP_PROG when that is set."""
    override = os.environ.get("NMCOMPAT_XDP_PROG")
    if override:
        return override
    return str(resources.files("nmcompat.backends.afxdp") / XSK_REDIRECT_OBJECT)


def load_xsk_redirect(path: Optional[str] = None) -> BPFObject:
    """Load the AF_XDP redirect program (``path``, $NMCOMPAT_XDP_PROG, or the shipped one).

    The shipped object must carry XSK_REDIRECT_VERSION; a replacement must
    define an XSKMAP named "xsks" keyed by queue id.
    """
    chosen = path or xsk_redirect_path()
    shipped = chosen == str(resources.files("nmcompat.backends.afxdp") / XSK_REDIRECT_OBJECT)
    with open(chosen, "rb") as f:
        data = f.read()
    xsks = elf.parse(data, chosen).maps.get(XSK_MAP)
    if xsks is None or xsks.type != syscall.BPF_MAP_TYPE_XSKMAP:
        raise BPFObjectError(chosen, f"no XSKMAP named '{XSK_MAP}'")
    return BPFObject.load(data, name=chosen,
                          expect_version=XSK_REDIRECT_VERSION if shipped else None)
