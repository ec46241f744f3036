"""Legacy ethtool sets (linux/ethtool.h) through SIOCETHTOOL, on devices of
this process's network namespace: what `ethtool -K` does, without needing
the tool.

    python -m nmcompat_bench._ethtool DEV...    offloads off on each DEV
"""
from __future__ import annotations

import ctypes
import fcntl
import socket
import struct
import sys

ETHTOOL_STXCSUM, ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SGRO = 0x17, 0x1F, 0x24, 0x2C
SIOCETHTOOL = 0x8946


def ethtool_set(dev: str, cmd: int, value: int) -> None:
    """One set (struct ethtool_value) on dev; OSError when the kernel refuses."""
    buf = ctypes.create_string_buffer(struct.pack("II", cmd, value), 8)
    ifr = struct.pack("16sP", dev.encode(), ctypes.addressof(buf)).ljust(40, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)


def offloads_off(*devs: str) -> None:
    """What netmap advises for its emulated mode: no segmentation offload
    (TSO, GSO) and no receive aggregation (GRO) on devs, so that no frame
    longer than the MTU crosses them."""
    for dev in devs:
        for cmd in (ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SGRO):
            ethtool_set(dev, cmd, 0)


def main(argv) -> int:
    try:
        offloads_off(*argv)
    except OSError as exc:
        print(f"couldn't switch the offloads of {' '.join(argv)} off: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
