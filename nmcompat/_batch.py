"""Arguments of Port.send() and Port.recv(), checked before the one C call.

A bad argument raises ``BadArgument`` (EINVAL, also a ValueError) naming it
and saying what it takes; nothing is truncated or allocated silently.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from nmcompat.errors import BadArgument

MAX_SNAPLEN = 1 << 20           # bytes per received row (a packet is at most 64 KiB here)


def send_args(port: str, packets, lengths) -> Tuple[np.ndarray, np.ndarray]:
    """(packets as a C-contiguous 2-D uint8 array, lengths as uint32)."""
    if isinstance(packets, (list, tuple)) and packets and \
            isinstance(packets[0], (bytes, bytearray, memoryview)):
        raise BadArgument("send to", port, "packets", "takes a 2-D uint8 array (one row per "
                          "packet), not a list of bytes; inject() sends one bytes object, or "
                          "build the rows with numpy")
    try:
        packets = np.ascontiguousarray(packets, dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise BadArgument("send to", port, "packets", f"takes a 2-D uint8 array: {exc}") from None
    if packets.ndim != 2:
        raise BadArgument("send to", port, "packets",
                          f"takes a 2-D uint8 array (one row per packet), not {packets.ndim}-D")
    n, stride = packets.shape
    if lengths is None:
        return packets, np.full(n, stride, dtype=np.uint32)
    lengths = np.asarray(lengths)
    if lengths.shape != (n,) or lengths.dtype.kind not in "iu":
        raise BadArgument("send to", port, "lengths", f"takes {n} integers (one per packet), "
                          f"not an array of shape {lengths.shape} and type {lengths.dtype}")
    bad = np.flatnonzero((lengths < 0) | (lengths > stride))
    if len(bad):
        raise BadArgument("send to", port, "lengths", f"lengths[{bad[0]}] is {lengths[bad[0]]}, "
                          f"outside [0, {stride}] (the row has {stride} bytes)")
    return packets, np.ascontiguousarray(lengths, dtype=np.uint32)


def recv_args(port: str, rx_slots: int, max_packets: int, snaplen: int,
              out: Optional[np.ndarray], lengths: Optional[np.ndarray]):
    """(out, lengths, how many to take).  Rows are allocated for at most the
    packets the bound RX rings can hold (rx_slots), never more."""
    _in_range(port, "max_packets", max_packets, 0, 1 << 24)
    if out is None:
        _in_range(port, "snaplen", snaplen, 1, MAX_SNAPLEN)
        out = np.empty((min(max_packets, rx_slots), snaplen), dtype=np.uint8)
    if not (isinstance(out, np.ndarray) and out.flags.c_contiguous and out.dtype == np.uint8
            and out.ndim == 2):
        raise BadArgument("receive from", port, "out", "takes a C-contiguous 2-D uint8 array")
    if lengths is None:
        lengths = np.empty(out.shape[0], dtype=np.uint32)
    if not (isinstance(lengths, np.ndarray) and lengths.dtype == np.uint32
            and lengths.flags.c_contiguous and lengths.shape[0] >= out.shape[0]):
        raise BadArgument("receive from", port, "lengths", "takes a C-contiguous uint32 array "
                          f"of at least {out.shape[0]} entries (one per row of out)")
    return out, lengths, min(max_packets, out.shape[0])


def _in_range(port: str, name: str, value, low: int, high: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) \
            or not low <= value <= high:
        raise BadArgument("receive from", port, name, f"takes an integer in [{low}, {high}], "
                          f"not {value!r}")
