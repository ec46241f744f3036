"""pkt-gen's packets: address ranges, MAC addresses and the template frame.

The frame is netmap's pkt-gen frame: Ethernet, IPv4 (version 4, header
length 5, TOS 0x10 "low delay", id 0, DF, TTL 64, protocol UDP, a valid
header checksum) or IPv6 (traffic class and flow 0, hop limit 64, next
header UDP), then UDP with a valid checksum, then the payload: the text
"netmap pkt-gen DIRECT payload\\n..." ("indirect" with -I) repeated over
the rest of the frame, its last byte NUL.  Addresses and ports are the low
ends of the -s/-d ranges; the engine steps them for every packet.
"""
from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass

DIRECT_PAYLOAD = b"netmap pkt-gen DIRECT payload\nhttp://info.iet.unipi.it/~luigi/netmap/ "
INDIRECT_PAYLOAD = b"netmap pkt-gen indirect payload\nhttp://info.iet.unipi.it/~luigi/netmap/ "
DEFAULT_PORT = 1234
DEFAULT_GROUP = 7               # IPv6: the last 16-bit word of the address varies
ETH_HLEN, IP4_HLEN, IP6_HLEN, UDP_HLEN = 14, 20, 40, 8
ETHERTYPE_IP, ETHERTYPE_IPV6 = 0x0800, 0x86DD
IPTOS_LOWDELAY, IP_DF, IPDEFTTL, IPV6_DEFHLIM, IPPROTO_UDP = 0x10, 0x4000, 64, 64, 17


def headers_len(af: int) -> int:
    """Ethernet + IP + UDP: the smallest frame pkt-gen can build."""
    return ETH_HLEN + (IP4_HLEN if af == 4 else IP6_HLEN) + UDP_HLEN


@dataclass
class IPRange:
    """One end of the traffic: addresses lo..hi (packed), ports lo..hi."""
    name: str
    af: int
    lo: bytes
    hi: bytes
    port_lo: int
    port_hi: int
    group: int = DEFAULT_GROUP
    end_group: int = DEFAULT_GROUP

    @property
    def varies(self) -> bool:
        return self.port_lo != self.port_hi or self.lo != self.hi

    def describe(self) -> str:
        """What pkt-gen logs: 'range is A:p to B:q' (IPv6: g@[A]:p)."""
        lo, hi = (str(ipaddress.ip_address(a)) for a in (self.lo, self.hi))
        if self.af == 4:
            return f"range is {lo}:{self.port_lo} to {hi}:{self.port_hi}"
        return (f"range is {self.group}@[{lo}]:{self.port_lo} to "
                f"{self.end_group}@[{hi}]:{self.port_hi}")


def _port(text: str) -> int:
    """strtol(text, NULL, 0) as a 16-bit port."""
    m = re.match(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if not m:
        return 0
    return int(m.group(1) + m.group(2), 0) & 0xFFFF


def _v4(text: str, port: int):
    addr, sep, rest = text.partition(":")
    try:
        packed = ipaddress.IPv4Address(addr).packed
    except ValueError:
        raise ValueError(f"invalid IPv4 address '{addr}'") from None
    return packed, (_port(rest) if sep else port), None


def _v6(text: str, port: int, group: int):
    """[group@][addr] or [group@]'['addr']'[:port]."""
    if "@" in text:
        g, _, text = text.partition("@")
        group = min(int(g, 0), 7)
    text = text[1:] if text.startswith("[") else text
    if "]" in text:
        text, _, rest = text.partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:])
    try:
        packed = ipaddress.IPv6Address(text).packed
    except ValueError:
        raise ValueError(f"invalid IPv6 address '{text}'") from None
    return packed, port, group


def parse_range(text: str, af: int) -> IPRange:
    """pkt-gen's -s/-d: addr[:port][-addr[:port]] (IPv6: see _v6).  The
    first '-' splits the range; ports default to 1234, the end's to the
    start's; IPv4 ends and ports are put in order."""
    first, dash, second = text.partition("-")
    if af == 4:
        lo, port_lo, _ = _v4(first, DEFAULT_PORT)
        hi, port_hi, _ = _v4(second, port_lo) if dash else (lo, port_lo, None)
        if lo > hi:
            lo, hi = hi, lo
        group = end_group = DEFAULT_GROUP
    else:
        lo, port_lo, group = _v6(first, DEFAULT_PORT, DEFAULT_GROUP)
        hi, port_hi, end_group = _v6(second, port_lo, group) if dash else (lo, port_lo, group)
    port_lo, port_hi = min(port_lo, port_hi), max(port_lo, port_hi)
    return IPRange(text, af, lo, hi, port_lo, port_hi, group, end_group)


def parse_mac(text: str) -> bytes:
    """ether_aton(): six hex numbers separated by ':'."""
    parts = text.split(":")
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-fA-F]{1,2}", p) for p in parts):
        raise ValueError(f"invalid MAC address '{text}'")
    return bytes(int(p, 16) for p in parts)


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def inet_sum(data: bytes, start: int = 0) -> int:
    """Ones' complement sum of big-endian 16-bit words, folded."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    total = start + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def payload(length: int, indirect: bool = False) -> bytes:
    """The text repeated over length bytes, the last one NUL."""
    if length <= 0:
        return b""
    text = INDIRECT_PAYLOAD if indirect else DIRECT_PAYLOAD
    body = (text * (length // len(text) + 1))[:length]
    return body[:-1] + b"\0"


def build_frame(af: int, size: int, src_mac: bytes, dst_mac: bytes, src: IPRange, dst: IPRange,
                indirect: bool = False) -> bytes:
    """The first frame pkt-gen sends (size bytes, without CRC)."""
    if size < headers_len(af):
        raise ValueError(f"a {size}-byte frame cannot hold Ethernet, IPv{af} and UDP headers")
    udp_len = size - ETH_HLEN - (IP4_HLEN if af == 4 else IP6_HLEN)
    body = payload(udp_len - UDP_HLEN, indirect)
    udp = struct.pack("!HHHH", src.port_lo, dst.port_lo, udp_len, 0) + body
    if af == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, IPTOS_LOWDELAY, size - ETH_HLEN, 0, IP_DF, IPDEFTTL,
                         IPPROTO_UDP, 0, src.lo, dst.lo)
        ip = ip[:10] + struct.pack("!H", ~inet_sum(ip) & 0xFFFF) + ip[12:]
        pseudo = src.lo + dst.lo + struct.pack("!HH", IPPROTO_UDP, udp_len)
        ethertype = ETHERTYPE_IP
    else:
        ip = struct.pack("!IHBB16s16s", 6 << 28, udp_len, IPPROTO_UDP, IPV6_DEFHLIM, src.lo, dst.lo)
        pseudo = src.lo + dst.lo + struct.pack("!IxxxB", udp_len, IPPROTO_UDP)
        ethertype = ETHERTYPE_IPV6
    csum = ~inet_sum(udp, inet_sum(pseudo)) & 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum or 0xFFFF) + udp[8:]
    return dst_mac + src_mac + struct.pack("!H", ethertype) + ip + udp
