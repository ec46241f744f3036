"""ethtool's settings through SIOCETHTOOL (nmcompat's ethtool_request), on
devices of this process's network namespace: what `ethtool -K` does,
without needing the tool.

    python -m nmcompat_bench._ethtool DEV...    offloads off on each DEV
"""
from __future__ import annotations

import struct
import sys
from typing import Callable, List

from nmcompat.backends._nic import ethtool_request

ETHTOOL_STXCSUM = 0x17
ETHTOOL_GSTRINGS, ETHTOOL_GSSET_INFO, ETHTOOL_SFEATURES = 0x1B, 0x37, 0x3B
ETH_SS_FEATURES, ETH_GSTRING_LEN = 4, 32


def ethtool_set(dev: str, cmd: int, value: int) -> None:
    """One legacy set (struct ethtool_value) on dev; OSError when the kernel refuses."""
    ethtool_request(dev, struct.pack("II", cmd, value))


def feature_names(dev: str) -> List[str]:
    """dev's feature names, in the order of its feature bits."""
    info = ethtool_request(dev, struct.pack("IIQI", ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_FEATURES, 0))
    count = struct.unpack_from("I", info, 16)[0]
    raw = ethtool_request(dev, struct.pack("III", ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count)
                          + bytes(count * ETH_GSTRING_LEN))[12:]
    return [raw[i * ETH_GSTRING_LEN:(i + 1) * ETH_GSTRING_LEN].split(b"\0")[0].decode()
            for i in range(count)]


def features_set(dev: str, which: Callable[[str], bool], on: bool) -> None:
    """Ask dev to switch every feature whose name `which` accepts on or off
    (the fixed ones stay as they are)."""
    names = feature_names(dev)
    words = [[0, 0] for _ in range((len(names) + 31) // 32)]
    for i, name in enumerate(names):
        if which(name):
            words[i // 32][0] |= 1 << (i % 32)        # valid
            words[i // 32][1] |= (1 << (i % 32)) if on else 0
    ethtool_request(dev, struct.pack("II", ETHTOOL_SFEATURES, len(words))
           + b"".join(struct.pack("II", v, r) for v, r in words))


def aggregating(name: str) -> bool:
    """The features that let a frame longer than the MTU across, as the
    engine counts them (csrc/transport/nic/nic_offload.c)."""
    return (name in ("rx-gro", "rx-gro-hw", "rx-lro", "tx-gso-list")
            or (name.startswith("tx-") and name.endswith("-segmentation")))


def offloads_off(*devs: str) -> None:
    """What netmap advises for its emulated mode: no segmentation offload
    and no receive aggregation on devs, so that no frame longer than the
    MTU crosses them."""
    for dev in devs:
        features_set(dev, aggregating, False)


def main(argv) -> int:
    try:
        offloads_off(*argv)
    except OSError as exc:
        print(f"couldn't switch the offloads of {' '.join(argv)} off: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
