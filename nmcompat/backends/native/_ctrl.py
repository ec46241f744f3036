"""netmap's control requests on a /dev/netmap descriptor (NIOCCTRL), built
with ctypes: struct nmreq_header, nmreq_register and nmreq_port_info_get
(netmap API 14; docs/DESIGN.md section 15)."""
from __future__ import annotations

import ctypes
import errno
import os
import stat
from typing import Optional

NETMAP_API = 14
NIOCCTRL = 0xC0586997           # _IOWR('i', 151, struct nmreq_header)
NIOCTXSYNC = 0x6994             # _IO('i', 148)
NIOCRXSYNC = 0x6995             # _IO('i', 149)
NETMAP_REQ_REGISTER = 1
NETMAP_REQ_PORT_INFO_GET = 2
DEVICE = "/dev/netmap"
NEEDS = ("backend native needs /dev/netmap (the netmap kernel module, or the emulation "
         "of a program run under nmcompat exec)")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)


class NmreqHeader(ctypes.Structure):
    _fields_ = [("nr_version", ctypes.c_uint16), ("nr_reqtype", ctypes.c_uint16),
                ("nr_reserved", ctypes.c_uint32), ("nr_name", ctypes.c_char * 64),
                ("nr_options", ctypes.c_uint64), ("nr_body", ctypes.c_uint64)]


class NmreqRegister(ctypes.Structure):
    _fields_ = [("nr_offset", ctypes.c_uint64), ("nr_memsize", ctypes.c_uint64),
                ("nr_tx_slots", ctypes.c_uint32), ("nr_rx_slots", ctypes.c_uint32),
                ("nr_tx_rings", ctypes.c_uint16), ("nr_rx_rings", ctypes.c_uint16),
                ("nr_host_tx_rings", ctypes.c_uint16), ("nr_host_rx_rings", ctypes.c_uint16),
                ("nr_mem_id", ctypes.c_uint16), ("nr_ringid", ctypes.c_uint16),
                ("nr_mode", ctypes.c_uint32), ("nr_extra_bufs", ctypes.c_uint32),
                ("pad", ctypes.c_uint32), ("nr_flags", ctypes.c_uint64)]


class NmreqPortInfoGet(ctypes.Structure):
    _fields_ = [("nr_memsize", ctypes.c_uint64),
                ("nr_tx_slots", ctypes.c_uint32), ("nr_rx_slots", ctypes.c_uint32),
                ("nr_tx_rings", ctypes.c_uint16), ("nr_rx_rings", ctypes.c_uint16),
                ("nr_host_tx_rings", ctypes.c_uint16), ("nr_host_rx_rings", ctypes.c_uint16),
                ("nr_mem_id", ctypes.c_uint16), ("pad", ctypes.c_uint16 * 3)]


assert ctypes.sizeof(NmreqHeader) == 88 and ctypes.sizeof(NmreqRegister) == 56
assert ctypes.sizeof(NmreqPortInfoGet) == 32


def control(fd: int, reqtype: int, name: bytes, body: ctypes.Structure, options=None) -> int:
    """One NIOCCTRL request on fd, with an option chain (its first option
    structure); 0 or the errno (the body is filled in)."""
    hdr = NmreqHeader(nr_version=NETMAP_API, nr_reqtype=reqtype, nr_name=name,
                      nr_body=ctypes.addressof(body),
                      nr_options=0 if options is None else ctypes.addressof(options))
    if _libc.ioctl(fd, NIOCCTRL, ctypes.addressof(hdr)) == 0:
        return 0
    return ctypes.get_errno() or errno.EIO


def register(fd: int, name: str, mode: int, ringid: int, flags: int, mem_id: int,
             extra_bufs: int, conf: dict, options=None) -> "tuple[int, NmreqRegister]":
    """NETMAP_REQ_REGISTER of name on fd: (0 or the errno, the reply)."""
    reg = NmreqRegister(nr_mode=mode, nr_ringid=ringid, nr_flags=flags, nr_mem_id=mem_id,
                        nr_extra_bufs=extra_bufs)
    for key in ("tx_slots", "rx_slots", "tx_rings", "rx_rings", "host_tx_rings", "host_rx_rings"):
        setattr(reg, f"nr_{key}", conf.get(key, 0))
    return control(fd, NETMAP_REQ_REGISTER, name.encode(), reg, options), reg


def device_answers(path: str = DEVICE, need_node: bool = True) -> Optional[str]:
    """None when path is a netmap device, else why not.  A netmap device
    opens, and answers NETMAP_REQ_PORT_INFO_GET (no name: the memory of
    nr_mem_id 1) with anything but ENOTTY, which any other character
    device answers.  need_node: the path must also be a character device
    node (a real module; the emulation under nmcompat exec has none)."""
    if need_node:
        try:
            st = os.stat(path)
        except OSError as exc:
            return f"no {path} ({exc.strerror}): {NEEDS}"
        if not stat.S_ISCHR(st.st_mode):
            return f"{path} is not a character device"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return f"no {path}: {NEEDS}"
        return f"couldn't open {path}: {exc.strerror}"
    try:
        err = control(fd, NETMAP_REQ_PORT_INFO_GET, b"", NmreqPortInfoGet())
    finally:
        os.close(fd)
    if err == errno.ENOTTY:
        return f"{path} does not answer NIOCCTRL: it is not netmap's device"
    return None
