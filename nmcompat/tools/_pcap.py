"""A small libpcap file writer and reader, shared by the tools (pcapng in
_pcapng.py: ``read()`` takes either format, ``Writer`` writes either).

Writes the classic format tcpdump, tshark and libpcap read: a 24-byte
global header (magic 0xa1b2c3d4 in native byte order, version 2.4,
snaplen, link type; 1 = Ethernet) and, per packet, a 16-byte record
header (seconds, microseconds, captured length, length on the wire)
followed by the captured bytes.  Reads that format in either byte order
and its nanosecond variant (magic 0xa1b23c4d).
"""
from __future__ import annotations

import struct
from typing import BinaryIO, Iterator, Tuple

from nmcompat.tools import _pcapng

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
DEFAULT_SNAPLEN = 262144
_GLOBAL = struct.Struct("=IHHiIII")
_RECORD = struct.Struct("=IIII")


def write_header(f: BinaryIO, snaplen: int = DEFAULT_SNAPLEN, linktype: int = LINKTYPE_ETHERNET) -> None:
    """The global header: version 2.4, timezone 0, accuracy 0."""
    f.write(_GLOBAL.pack(MAGIC_USEC, 2, 4, 0, 0, snaplen, linktype))


def write_record(f: BinaryIO, ts: float, data, wirelen: int = -1) -> None:
    """One packet: ts in seconds (float, or an int of nanoseconds), data the
    captured bytes, wirelen its length on the wire (default len(data))."""
    data = memoryview(data).cast("B")
    if isinstance(ts, int):
        sec, usec = divmod(ts // 1000, 1_000_000)
    else:
        sec = int(ts)
        usec = int(round((ts - sec) * 1e6))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
    wirelen = len(data) if wirelen < 0 else wirelen
    f.write(_RECORD.pack(sec & 0xFFFFFFFF, usec, len(data), max(wirelen, len(data))))
    f.write(data)


def _byte_order(magic: bytes) -> Tuple[str, int]:
    for order in ("<", ">"):
        (value,) = struct.unpack(order + "I", magic)
        if value in (MAGIC_USEC, MAGIC_NSEC):
            return order, (1_000_000_000 if value == MAGIC_NSEC else 1_000_000)
    raise ValueError(f"not a pcap file (magic {magic.hex()})")


def read_header(f: BinaryIO) -> dict:
    """Parse the global header; returns its fields plus 'order' and 'tick'."""
    raw = f.read(24)
    if len(raw) < 24:
        raise ValueError("not a pcap file (shorter than its 24-byte header)")
    order, tick = _byte_order(raw[:4])
    _, major, minor, zone, sigfigs, snaplen, linktype = struct.unpack(order + "IHHiIII", raw)
    return dict(order=order, tick=tick, version=(major, minor), thiszone=zone,
                sigfigs=sigfigs, snaplen=snaplen, linktype=linktype)


def records(f: BinaryIO, hdr: dict) -> Iterator[Tuple[float, bytes, int]]:
    rec = struct.Struct(hdr["order"] + "IIII")
    while True:
        raw = f.read(rec.size)
        if not raw:
            return
        if len(raw) < rec.size:
            raise ValueError("truncated pcap record header")
        sec, frac, caplen, wirelen = rec.unpack(raw)
        data = f.read(caplen)
        if len(data) < caplen:
            raise ValueError("truncated pcap record")
        yield sec + frac / hdr["tick"], data, wirelen


def read(path) -> Iterator[Tuple[float, bytes, int]]:
    """Yield (ts seconds, captured bytes, length on the wire) per record of
    a pcap or pcapng file."""
    with open(path, "rb") as f:
        if f.read(4) == struct.pack("=I", _pcapng.SHB_TYPE):
            yield from _pcapng.read(f)
            return
        f.seek(0)
        hdr = read_header(f)
        yield from records(f, hdr)


class Writer:
    """A capture file being written: fmt "pcap" or "pcapng"."""

    def __init__(self, f: BinaryIO, fmt: str = "pcap", snaplen: int = DEFAULT_SNAPLEN,
                 linktype: int = LINKTYPE_ETHERNET) -> None:
        if fmt not in ("pcap", "pcapng"):
            raise ValueError(f"capture format {fmt!r}: 'pcap' or 'pcapng'")
        self.file, self.fmt = f, fmt
        (_pcapng.write_header if fmt == "pcapng" else write_header)(f, snaplen, linktype)

    def write(self, sec: int, usec: int, data, wirelen: int) -> None:
        if self.fmt == "pcapng":
            _pcapng.write_record(self.file, sec, usec, data, wirelen)
        else:
            self.file.write(_RECORD.pack(sec, usec, len(data), max(wirelen, len(data))))
            self.file.write(data)
