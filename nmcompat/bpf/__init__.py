"""A small BPF loader (no libbpf): ELF parsing, bpf(2), XDP attachment.

- :mod:`nmcompat.bpf.elf` reads objects built by ``clang -target bpf``
  (pure, no privileges);
- :mod:`nmcompat.bpf.syscall` issues the bpf(2) commands;
- :mod:`nmcompat.bpf.netlink` reads an interface's XDP state;
- :mod:`nmcompat.bpf.loader` ties them together: :class:`BPFObject`.
"""
from nmcompat.bpf.loader import (OUR_PREFIX, XSK_REDIRECT_VERSION, BPFMap, BPFObject,
                                 BPFProgram, XdpLink, attached_programs, load_xsk_redirect,
                                 xsk_redirect_path)
from nmcompat.errors import BPFLoadError, BPFObjectError

load = BPFObject.load

__all__ = ["BPFObject", "BPFMap", "BPFProgram", "XdpLink", "BPFLoadError", "BPFObjectError",
           "load", "load_xsk_redirect", "xsk_redirect_path", "attached_programs",
           "OUR_PREFIX", "XSK_REDIRECT_VERSION"]
