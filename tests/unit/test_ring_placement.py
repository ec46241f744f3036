"""Where rings sit in the netmap memory against the buffers.

A program's per-packet loop reads the ring's header (buf_ofs, num_slots,
nr_buf_size through NETMAP_BUF and nm_ring_next; head, cur, tail) right
after storing into a frame.  A load whose address has the low 12 bits of an
earlier store waits for that store (4K aliasing), so no header field may
share a page offset with the bytes of an ordinary frame in any buffer
(DESIGN section 4, "Ring placement")."""
from __future__ import annotations

import math

import pytest

import nmcompat

PAGE = 4096
HEADER_HOT = 0x80           # buf_ofs .. buf_align: the whole header before sem[]


def page_offsets(start: int, length: int) -> set:
    return {(start + i) % PAGE for i in range(length)}


def frame_bytes(buf_base: int, buf_size: int, frame_len: int) -> set:
    """Page offsets of the first frame_len bytes of every buffer (the pattern
    repeats every PAGE / gcd(buf_size, PAGE) buffers)."""
    period = PAGE // math.gcd(buf_size, PAGE)
    out = set()
    for idx in range(period):
        out |= page_offsets(buf_base + idx * buf_size, min(frame_len, buf_size))
    return out


@pytest.mark.parametrize("buf_size, frame_len",
                         [(2048, 1920), (4096, 1920), (1024, 896), (3072, 896)])
def test_no_ring_header_shares_a_page_offset_with_a_frame(rundir, buf_size, frame_len):
    with nmcompat.open("netmap:lay{1", rundir=rundir, buf_size=buf_size, slots=64) as m, \
            nmcompat.open("netmap:lay}1", rundir=rundir) as s:
        rings = m.tx_rings + m.rx_rings + s.tx_rings + s.rx_rings
        for ring in rings:
            assert ring.nr_buf_size == buf_size
            hot = page_offsets(ring._offset, HEADER_HOT)
            clash = hot & frame_bytes(ring._buf_base, buf_size, frame_len)
            assert not clash, (f"ring at page offset {ring._offset % PAGE:#x}: its header shares "
                               f"{len(clash)} page offsets with frames of {frame_len} B")


def test_a_frame_longer_than_the_lead_is_the_first_to_reach_the_header(rundir):
    """The test above is not vacuous: the header does share page offsets with
    the bytes of a full 2048-byte buffer, past 1920."""
    with nmcompat.open("netmap:lay{2", rundir=rundir, slots=64) as m:
        ring = m.tx_rings[0]
        hot = page_offsets(ring._offset, HEADER_HOT)
        assert hot & frame_bytes(ring._buf_base, 2048, 2048)
        assert not hot & frame_bytes(ring._buf_base, 2048, 1920)
