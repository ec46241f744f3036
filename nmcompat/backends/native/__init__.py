"""The netmap module through /dev/netmap: NETMAP_REQ_REGISTER on a
descriptor of it, its memory mapped from that descriptor (docs/DESIGN.md
section 15).  Serves every kind of name (NICs, pipes, VALE ports): they are
then the kernel's, shared with the netmap programs of the machine.  Under
``nmcompat exec`` the descriptor is the emulation's, which speaks the same
ABI."""
from __future__ import annotations

import errno
import os
from typing import ClassVar, FrozenSet

from nmcompat.backends._base import CONF_KEYS, Backend, Opened, Probe
from nmcompat.backends import _memopts
from nmcompat.backends.native import _ctrl, _extmem
from nmcompat.backends.native._port import NativeHandle, NativePort
from nmcompat.errors import os_error

_DETAILS = {
    errno.ENXIO: "no such port: the name is neither a VALE port, a pipe nor an interface "
                 "the netmap module knows",
    errno.EBUSY: "a ring it binds is held exclusively (or the name is an exclusive "
                 "registration already)",
    errno.EINVAL: "netmap refused the request (a ring or memory id that does not exist, "
                  "host rings on a port without them, or a pipe limit)",
    errno.ENOMEM: "the netmap module has no memory for it (a VALE switch full, or buffers)",
}


def _share_mem_id(fd: int, spec) -> int:
    """@share=PORT: the mem_id netmap answers for PORT (PORT_INFO_GET, as
    libnetmap's nmreq_get_mem_id); without @share, the name's @N (0: none)."""
    if spec.share is None:
        return spec.mem_id
    from nmcompat import _portspec
    info = _ctrl.NmreqPortInfoGet()
    err = _ctrl.control(fd, _ctrl.NETMAP_REQ_PORT_INFO_GET, _portspec.parse(spec.share).name.encode(),
                        info)
    if err:
        raise os_error(err, "open", spec.text, f"@share={spec.share}: NETMAP_REQ_PORT_INFO_GET: "
                       + os.strerror(err))
    if spec.mem_id and spec.mem_id != info.nr_mem_id:
        raise os_error(errno.EINVAL, "open", spec.text, f"@share={spec.share} is memory "
                       f"{info.nr_mem_id}, not @{spec.mem_id}")
    return info.nr_mem_id


class NativeBackend(Backend):
    name = "native"
    takes: ClassVar[FrozenSet[str]] = frozenset(("extra_bufs",))
    conf_takes: ClassVar[FrozenSet[str]] = frozenset(CONF_KEYS)
    port_class = NativePort

    def probe(self, forced: bool = False) -> Probe:
        """A real netmap module: /dev/netmap is a character device that
        answers NIOCCTRL.  forced (backend="native", admode=1): any
        /dev/netmap that opens and answers, the emulation of nmcompat exec
        included (it has no device node)."""
        why = _ctrl.device_answers(need_node=not forced)
        if why is not None:
            return Probe(False, why)
        return Probe(True, "/dev/netmap answers NIOCCTRL" + ("" if forced else
                                                             " (the netmap kernel module)"))

    def register(self, spec, options: dict) -> Opened:
        try:
            fd = os.open(_ctrl.DEVICE, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise os_error(exc.errno, "open", spec.text, f"{exc.strerror} ({_ctrl.DEVICE})") from None
        opt = mem = None
        try:
            if spec.extmem is not None:
                opt, mem = _extmem.option(spec)
            err, reply = _ctrl.register(fd, spec.name, spec.mode, spec.ringid, spec.flags,
                                        _share_mem_id(fd, spec), options.get("extra_bufs", 0),
                                        options.get("conf") or {}, opt)
            if err:
                why = _memopts.extmem_detail(spec, -err) if opt and opt.nro_status else ""
                raise os_error(err, "open", spec.text, "NETMAP_REQ_REGISTER: "
                               + (why or _DETAILS.get(err, os.strerror(err))))
            return Opened(NativeHandle(fd, spec, reply, mem))
        except BaseException:
            os.close(fd)
            if mem is not None:
                mem.close()
            raise
