"""Opening an AF_XDP NIC port: engine sockets first, then the XDP program."""
from __future__ import annotations

import errno
from contextlib import ExitStack

from nmcompat._ffi import ffi, lib, os_error
from nmcompat.errors import BackendUnusable
from nmcompat._portspec import NR_REG_ALL_NIC, NR_REG_ONE_NIC
from nmcompat.backends.afxdp._attach import attach_program, release_program

_HINTS = {
    errno.EBUSY: "queue {q} of {ifname} already has an AF_XDP socket (another port, or one "
                 "still being released: retry)",
    errno.EINVAL: "queue {q} does not exist on {ifname}, or the ring geometry was refused",
    errno.EOPNOTSUPP: "zero-copy is not supported by {ifname} (use zerocopy=None or False)",
    errno.EPERM: "AF_XDP needs root (CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF)",
}


def _request(spec, ifname, ifindex, nq, bind, multibuffer, options, keep):
    conf = options.get("conf") or {}
    req = ffi.new("struct nmc_pipe_req *")
    keep.append(ffi.new("char[]", ifname.encode()))
    req.parent = keep[-1]
    if options.get("rundir"):
        keep.append(ffi.new("char[]", options["rundir"].encode()))
        req.rundir = keep[-1]
    req.mode, req.ringid, req.flags = spec.mode, spec.ringid, spec.flags
    req.tx_rings = req.rx_rings = nq
    req.tx_slots, req.rx_slots = conf.get("tx_slots", 0), conf.get("rx_slots", 0)
    req.extra_bufs = options.get("extra_bufs", 0)
    req.buf_num = options.get("buf_num", 0)
    req.spin_us = -1 if options.get("spin_us") is None else options["spin_us"]
    req.no_timestamp = int(bool(options.get("no_timestamp")))
    req.ifindex, req.xdp_bind, req.no_sg = ifindex, bind, int(not multibuffer)
    return req


def open_xsk(spec, ifname, ifindex, nq, xdp_mode, bind, multibuffer, options):
    """Returns (handle, details, closer); the closer releases the program."""
    if spec.mode not in (NR_REG_ALL_NIC, NR_REG_ONE_NIC):
        raise os_error(errno.EOPNOTSUPP, "open", spec.text, "host rings ('^', '*') are not "
                       "reachable through AF_XDP; open the NIC rings")
    if spec.mode == NR_REG_ONE_NIC and spec.ringid >= nq:
        raise os_error(errno.EINVAL, "open", spec.text, f"{ifname} has {nq} queue(s)")
    keep = []
    req = _request(spec, ifname, ifindex, nq, bind, multibuffer, options, keep)
    out = ffi.new("struct nmc_port **")
    rc = lib.nmc_xsk_open(req, out)
    if rc in (-errno.EPERM, -errno.EACCES):
        raise BackendUnusable(-rc, f"couldn't open {spec.text}: {_HINTS[errno.EPERM]}")
    if rc < 0:
        q = spec.ringid if spec.mode == NR_REG_ONE_NIC else "0.." + str(nq - 1)
        hint = _HINTS.get(-rc, "").format(q=q, ifname=ifname)
        raise os_error(-rc, "open", spec.text, hint)
    handle = out[0]
    with ExitStack() as undo:
        undo.callback(lib.nmc_port_close, handle)
        try:
            att = attach_program(ifindex, xdp_mode)
        except OSError as exc:          # the XDP hook is not ours to use here
            raise BackendUnusable(exc.errno, str(exc).split("] ", 1)[-1]) from exc
        undo.callback(release_program, att)
        details = _wire_queues(handle, att)
        undo.pop_all()
    return handle, details, lambda: release_program(att)


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
