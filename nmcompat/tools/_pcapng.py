"""pcapng (the format Wireshark and tshark write by default): a reader of
the blocks that carry packets and a writer of the minimal file.

A file is a sequence of blocks ``type u32 | total length u32 | body |
total length u32``, each padded to 4 bytes, in the byte order its Section
Header Block (SHB, type 0x0A0D0D0A, byte-order magic 0x1A2B3C4D) states.
Read here: SHB (a new section may change the byte order and resets the
interfaces), Interface Description (IDB, type 1: link type, snaplen and the
``if_tsresol`` option), Enhanced Packet (EPB, type 6: interface, 64-bit
timestamp in that interface's units, captured and original length) and
Simple Packet (SPB, type 3: no timestamp).  Other blocks are skipped.
Written: one SHB, one Ethernet IDB with microsecond timestamps (the
default resolution, so no option), then one EPB per packet.
"""
from __future__ import annotations

import struct
from typing import BinaryIO, Iterator, List, Optional, Tuple

SHB_TYPE = 0x0A0D0D0A
BYTE_ORDER_MAGIC = 0x1A2B3C4D
_IDB, _SPB, _EPB = 1, 3, 6
_OPT_TSRESOL = 9


def _pad(n: int) -> int:
    return (n + 3) & ~3


def write_header(f: BinaryIO, snaplen: int, linktype: int) -> None:
    """SHB (version 1.0, section length unknown) and one IDB."""
    shb = struct.pack("=IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
    _block(f, SHB_TYPE, shb)
    _block(f, _IDB, struct.pack("=HHI", linktype, 0, snaplen))


def write_record(f: BinaryIO, sec: int, usec: int, data, wirelen: int) -> None:
    """One EPB on interface 0; the timestamp is in microseconds."""
    data = bytes(data)
    ts = sec * 1_000_000 + usec
    body = struct.pack("=IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), max(wirelen, len(data)))
    _block(f, _EPB, body + data + b"\0" * (_pad(len(data)) - len(data)))


def _block(f: BinaryIO, kind: int, body: bytes) -> None:
    total = 12 + len(body)
    f.write(struct.pack("=II", kind, total) + body + struct.pack("=I", total))


class _Section:
    """Byte order and the interfaces (link type, timestamp units per second)."""

    def __init__(self, order: str) -> None:
        self.order = order
        self.ifaces: List[Tuple[int, int]] = []


def read(f: BinaryIO) -> Iterator[Tuple[float, bytes, int]]:
    """Yield (ts seconds, captured bytes, length on the wire) per packet of
    a pcapng file whose first 4 bytes (the SHB type) were already read."""
    section: Optional[_Section] = None
    kind: Optional[int] = SHB_TYPE
    while kind is not None:
        if kind == SHB_TYPE:
            section = _read_shb(f)
        else:
            body = _read_body(f, section.order)
            packet = _packet(section, kind, body)
            if packet is not None:
                yield packet
        raw = f.read(4)
        if raw and len(raw) < 4:
            raise ValueError("truncated pcapng block")
        kind = struct.unpack(section.order + "I", raw)[0] if raw else None


def _read_shb(f: BinaryIO) -> _Section:
    head = f.read(8)
    if len(head) < 8:
        raise ValueError("truncated pcapng section header")
    for order in ("<", ">"):
        total, magic = struct.unpack(order + "II", head)
        if magic == BYTE_ORDER_MAGIC:
            break
    else:
        raise ValueError(f"not a pcapng file (byte-order magic {head[4:].hex()})")
    _read_exact(f, total - 12)              # version, section length, options, total length
    return _Section(order)


def _read_body(f: BinaryIO, order: str) -> bytes:
    raw = _read_exact(f, 4)
    (total,) = struct.unpack(order + "I", raw)
    if total < 12 or total % 4:
        raise ValueError(f"bad pcapng block length {total}")
    return _read_exact(f, total - 8)[:-4]


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) < n:
        raise ValueError("truncated pcapng block")
    return data


def _packet(section: _Section, kind: int, body: bytes) -> Optional[Tuple[float, bytes, int]]:
    order = section.order
    if kind == _IDB:
        linktype, _, _ = struct.unpack_from(order + "HHI", body)
        section.ifaces.append((linktype, _tsresol(order, body[8:])))
        return None
    if kind == _EPB:
        iface, hi, lo, caplen, wirelen = struct.unpack_from(order + "IIIII", body)
        if iface >= len(section.ifaces):
            raise ValueError(f"pcapng packet on undeclared interface {iface}")
        return ((hi << 32 | lo) / section.ifaces[iface][1], body[20:20 + caplen], wirelen)
    if kind == _SPB:
        (wirelen,) = struct.unpack_from(order + "I", body)
        snap = len(body) - 4
        return (0.0, body[4:4 + min(wirelen, snap)], wirelen)
    return None


def _tsresol(order: str, options: bytes) -> int:
    """Timestamp units per second from if_tsresol (default 10^-6)."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(order + "HH", options, pos)
        if code == 0:
            break
        if code == _OPT_TSRESOL and length >= 1:
            value = options[pos + 4]
            return 2 ** (value & 0x7F) if value & 0x80 else 10 ** value
        pos += 4 + _pad(length)
    return 1_000_000
