"""@share and @extmem: the region a pipe or VALE port is placed in.

``@share=PORT`` asks for PORT's region (its mem_id; PORT must be open: a
region lives while a port holds it).  ``@extmem:file=F,...`` builds a new
region in the user's file F (on the runtime directory's filesystem).
NIC ports live in their process's interface region: they refuse both
(EOPNOTSUPP).  The native backend passes both as netmap's libnetmap does
(native/__init__.py, native/_extmem.py)."""
from __future__ import annotations

import errno
import os
from typing import List

from nmcompat import _portspec
from nmcompat._ffi import check, ffi, lib, os_error
from nmcompat.errors import OptionError

_EXTMEM_ERRORS = {
    errno.ENOENT: "the file {file} does not exist",
    errno.EXDEV: "the file {file} is not on the runtime directory's filesystem (the region "
                 "links it there): put it in the same tmpfs",
    errno.EACCES: "the file {file} is not yours, or others may write it (who may write it "
                  "may truncate it under every process mapping the region): chmod go-w",
    errno.EBUSY: "the file {file} is one of the runtime directory's own (a region's memory "
                 "or control file, a switch, the lock): give a file of your own",
    errno.ENOMEM: "the region built in {file} has too few free buffers for this port's rings "
                  "and extra buffers: a larger file (or a larger buf-num=), fewer slots, or "
                  "fewer extra_bufs",
    errno.EINVAL: "the file {file} cannot hold the pools asked for (IF pool 512 KiB, "
                  "ring-num ring objects of 69632 bytes (default 1024, at most 1024), then at "
                  "least 64 buffers of buf-size), or the port exists in another region",
}


def refuse(spec, where: str) -> None:
    """EOPNOTSUPP for @share or @extmem on a port `where` cannot place."""
    for given, option in ((spec.share, "@share"), (spec.extmem, "@extmem")):
        if given is not None:
            raise os_error(errno.EOPNOTSUPP, "open", spec.text,
                           f"option '{option}' is not supported for {where}")


def name_mem_id(rundir, parent: str) -> int:
    """The mem_id of the region port name parent lives in, or -errno
    (-ENXIO: no open port holds one)."""
    return lib.nmc_name_mem_id(ffi.NULL if rundir is None else os.fsencode(rundir), parent.encode())


def share_mem_id(spec, rundir) -> int:
    """The mem_id @share names (0 without @share)."""
    if spec.share is None:
        return spec.mem_id
    target = _portspec.parse(spec.share)
    parent = target.pipe.parent if target.pipe is not None else target.name
    rc = name_mem_id(rundir, parent)
    if rc == -errno.ENXIO:
        raise os_error(errno.ENXIO, "open", spec.text, f"@share={spec.share}: no open port "
                       f"holds the region of {parent} (open {spec.share} first)")
    check(rc, "open", spec.text, f"@share={spec.share}", rundir=rundir)
    if spec.mem_id and spec.mem_id != rc:
        raise OptionError(spec.text, "@share", f"{spec.share} is in region {rc}, "
                          f"not @{spec.mem_id}")
    return rc


def extmem(spec, keep: List, options: dict):
    """A struct nmc_extmem for @extmem (ffi.NULL without it).  The region
    options of open() would go unused: the file and @extmem's keys size it."""
    if spec.extmem is None:
        return ffi.NULL
    for option, key in (("buf_num", "buf-num"), ("buf_size", "buf-size")):
        if options.get(option):
            raise OptionError(spec.text, option, f"@extmem's region is sized by its file: "
                              f"give @extmem's {key}= instead")
    x = ffi.new("struct nmc_extmem *")
    keep.append(x)
    keep.append(ffi.new("char[]", os.fsencode(spec.extmem["file"])))
    x.file = keep[-1]
    for key, value in spec.extmem.items():
        if key != "file":
            setattr(x, key, int(value))
    return x


def _too_small(spec) -> str:
    """Why the @extmem file is too small for the pools asked, with the
    size they need ("" when it is not too small, or no file could do)."""
    keys = {k: int(v) for k, v in spec.extmem.items() if k != "file"}
    x = ffi.new("struct nmc_extmem *", keys)
    need = lib.nmc_extmem_min_size(x)
    try:
        have = os.stat(spec.extmem["file"]).st_size
    except OSError:
        return ""
    if need < 0 or have >= need:
        return ""
    asked = ", ".join(f"{k.replace('_', '-')}={v}" for k, v in keys.items()) or "the defaults"
    return (f"the file {spec.extmem['file']} ({have} bytes) is too small for the pools asked "
            f"({asked}): they need at least {need} bytes ({need / 2**20:.1f} MiB); a smaller "
            f"ring-num=, buf-num= or buf-size= shrinks that")


def extmem_detail(spec, rc: int) -> str:
    """Why an open with @extmem failed with -rc ("" if not an @extmem error)."""
    if spec.extmem is None or -rc not in _EXTMEM_ERRORS:
        return ""
    small = _too_small(spec) if rc == -errno.EINVAL else ""
    return "@extmem: " + (small or _EXTMEM_ERRORS[-rc].format(file=spec.extmem["file"]))
