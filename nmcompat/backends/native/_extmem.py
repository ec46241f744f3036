"""@extmem on the native backend: the file mapped here, its address given to
NETMAP_REQ_REGISTER in a NETMAP_REQ_OPT_EXTMEM option (as libnetmap's
nmport_extmem_from_file), and that mapping kept as the port's memory."""
from __future__ import annotations

import ctypes
import errno
import os

from nmcompat._memory import Memory
from nmcompat.errors import os_error

NETMAP_REQ_OPT_EXTMEM = 1
_POOL_FIELDS = (("if_num", "nr_if_pool_objtotal"), ("if_size", "nr_if_pool_objsize"),
                ("ring_num", "nr_ring_pool_objtotal"), ("ring_size", "nr_ring_pool_objsize"),
                ("buf_num", "nr_buf_pool_objtotal"), ("buf_size", "nr_buf_pool_objsize"))


class NmreqPoolsInfo(ctypes.Structure):
    _fields_ = [("nr_memsize", ctypes.c_uint64), ("nr_mem_id", ctypes.c_uint16),
                ("pad1", ctypes.c_uint16 * 3),
                ("nr_if_pool_offset", ctypes.c_uint64), ("nr_if_pool_objtotal", ctypes.c_uint32),
                ("nr_if_pool_objsize", ctypes.c_uint32),
                ("nr_ring_pool_offset", ctypes.c_uint64), ("nr_ring_pool_objtotal", ctypes.c_uint32),
                ("nr_ring_pool_objsize", ctypes.c_uint32),
                ("nr_buf_pool_offset", ctypes.c_uint64), ("nr_buf_pool_objtotal", ctypes.c_uint32),
                ("nr_buf_pool_objsize", ctypes.c_uint32)]


class NmreqOptExtmem(ctypes.Structure):
    _fields_ = [("nro_next", ctypes.c_uint64), ("nro_reqtype", ctypes.c_uint32),
                ("nro_status", ctypes.c_uint32), ("nro_size", ctypes.c_uint64),
                ("nro_usrptr", ctypes.c_uint64), ("nro_info", NmreqPoolsInfo)]


assert ctypes.sizeof(NmreqPoolsInfo) == 64 and ctypes.sizeof(NmreqOptExtmem) == 96


def option(spec):
    """(the option, the file's mapping) for spec's @extmem; the mapping is
    the port's memory once registered (close() it if the register fails)."""
    path = spec.extmem["file"]
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise OSError(errno.EINVAL, "empty file")
            mem = Memory(path, size, spec.text, fd=fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise os_error(exc.errno, "open", spec.text, f"@extmem: {exc.strerror} ({path})") from None
    opt = NmreqOptExtmem(nro_reqtype=NETMAP_REQ_OPT_EXTMEM, nro_size=ctypes.sizeof(NmreqOptExtmem),
                         nro_usrptr=mem.address)
    opt.nro_info.nr_memsize = size
    for key, field in _POOL_FIELDS:
        if key in spec.extmem:
            setattr(opt.nro_info, field, int(spec.extmem[key]))
    return opt, mem
