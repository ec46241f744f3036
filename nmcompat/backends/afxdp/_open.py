"""Opening an AF_XDP NIC port: engine sockets first, then the XDP program."""
from __future__ import annotations

import errno
from contextlib import ExitStack

from nmcompat import _space
from nmcompat._ffi import ffi, lib, os_error
from nmcompat._portspec import NR_REG_ONE_NIC
from nmcompat.backends._base import Opened
from nmcompat.errors import BackendUnusable, errno_class
from nmcompat.backends.afxdp import XDP_COPY, XDP_ZEROCOPY
from nmcompat.backends.afxdp._attach import attach_program, release_program

_HINTS = {
    errno.EBUSY: "queue {q} of {ifname} already has an AF_XDP socket: another process holds it "
                 "and this open cannot join its port (ports with host rings or another ring "
                 "count have sockets of their own), a port holds its rings with "
                 "NR_EXCLUSIVE (/x) or this open asks for NR_EXCLUSIVE beside it, a closed "
                 "socket is still being released (retry), or another process's first open of "
                 "{ifname} bound the queue while this one was making its own port and the open "
                 "again that joins it was refused too (retry: an open then joins that port)",
    errno.EINVAL: "queue {q} does not exist on {ifname}, or the ring geometry was refused",
    errno.EOPNOTSUPP: "zero-copy is not supported by {ifname} (use zerocopy=None or False)",
    errno.EPERM: "AF_XDP needs root (CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF)",
}


def refusal_text(err, pid, q, ifname):
    """Why joining another process's port on the interface was refused
    (nmc_nic_refusal's errno and process), or "" when it was not; q None:
    the port's queues, whichever they are."""
    if not err:
        return ""
    where = f"queue {q} of {ifname}" if q is not None else f"{ifname}'s port"
    if err == errno.EUSERS:
        return (f"{where} is shared by {lib.NMC_NIC_MAX_PROCS} processes already, "
                f"the most one port's sockets are shared by; close the port in one of them")
    return (f"{where} is held by process {pid}, whose AF_XDP sockets this "
            f"process must share to bind it, and the kernel refused them (pidfd_getfd: "
            f"{errno.errorcode.get(err, err)}: no ptrace rights over process {pid}); "
            f"run as the same user with those rights (CAP_SYS_PTRACE, or a ptrace_scope "
            f"that allows it), or close the port there")


def busy_text(cause, pid, q, ifname):
    """The one cause of an EBUSY the engine knows (nmc_busy_cause), or ""."""
    where = f"queue {q} of {ifname}"
    if cause == lib.NMC_BUSY_HELD_EXCLUSIVE:
        return f"{where} is held with NR_EXCLUSIVE (/x) by process {pid}; close that port first"
    if cause == lib.NMC_BUSY_ASKS_EXCLUSIVE:
        return (f"this open asks for NR_EXCLUSIVE (/x) but process {pid} holds {where}; "
                f"open without /x, or close that port first")
    if cause == lib.NMC_BUSY_OWN_OTHER_LAYOUT:
        return (f"another port of this process (pid {pid}) with another layout (host rings, or "
                f"another ring count) has the AF_XDP socket of {where}; such a port's sockets "
                f"are its own and never shared: close it first, or open the same layout")
    return ""


def _refusal(q, ifname):
    """refusal_text() of this thread's last nmc_xsk_open, else its
    busy_text()."""
    pid = ffi.new("int32_t *")
    err = lib.nmc_nic_refusal(pid)
    if err:
        return refusal_text(err, pid[0], q, ifname)
    return busy_text(lib.nmc_busy_cause(pid), pid[0], q, ifname)


def _join_mismatch(err, q, ifname, req):
    """Why a port whose socket this open would share cannot honour its
    options, for what an open alone would not refuse; "" otherwise (zero-copy
    asked of a copy-mode socket is refused as an open alone is)."""
    if err != errno.EOPNOTSUPP or req.xdp_bind & XDP_ZEROCOPY:
        return ""
    what = "in zero-copy mode" if req.xdp_bind & XDP_COPY else "with multi-buffer frames"
    return (f"queue {q} of {ifname} is bound {what} by the port this open joins (one socket "
            f"per queue, shared); open it with the options of that port, or close it there")


def open_xsk(spec, req, nq, xdp_mode, options=None, xdp=True):
    """Opened(handle, details, closer); the closer releases the program.
    Without ``xdp`` (a port of host rings only) no XDP program is attached."""
    ifname, ifindex = spec.name, req.ifindex
    out = ffi.new("struct nmc_port **")
    rc = lib.nmc_xsk_open(req, out)
    if rc in (-errno.EPERM, -errno.EACCES):
        raise errno_class(BackendUnusable, -rc)(
            -rc, f"couldn't open {spec.text}: {_HINTS[errno.EPERM]}", spec.text)
    if rc < 0:
        q = spec.ringid if spec.mode == NR_REG_ONE_NIC else (0 if nq == 1 else f"0..{nq - 1}")
        hint = ((_refusal(q, ifname) if rc == -errno.EBUSY else "") or _join_mismatch(-rc, q, ifname, req)
                or _HINTS.get(-rc, "").format(q=q, ifname=ifname) or _space.detail(-rc, options or {}))
        raise os_error(-rc, "open", spec.text, hint)
    handle = out[0]
    if not xdp:
        return Opened(handle, {"queues": ()}, None)
    with ExitStack() as undo:
        undo.callback(lib.nmc_port_close, handle)
        try:
            att = attach_program(ifindex, xdp_mode)
        except OSError as exc:          # the XDP hook is not ours to use here
            raise errno_class(BackendUnusable, exc.errno)(
                exc.errno, str(exc).split("] ", 1)[-1], spec.text) from exc
        undo.callback(release_program, att)
        details = _wire_queues(handle, att)
        undo.pop_all()
    return Opened(handle, details, lambda: release_program(att))


def _wire_queues(handle, att):
    info = ffi.new("struct nmc_xsk_info *")
    queues, zc, sg = [], [], []
    k = 0
    while lib.nmc_xsk_info(handle, k, info) == 0:
        att.add_queue(info.queue, lib.nmc_xsk_fd(handle, k))
        queues.append(info.queue)
        zc.append(bool(info.zerocopy))
        sg.append(bool(info.sg))
        k += 1
    return {"xdp_mode": att.mode, "zerocopy": all(zc) if zc else False,
            "multibuffer": all(sg) if sg else False, "queues": tuple(queues),
            "xdp_fallback_reason": att.drv_error}
