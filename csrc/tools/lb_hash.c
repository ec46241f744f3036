/*
 * lb_hash.c -- the flow hash of the load balancer.
 *
 * Symmetric: the two endpoints of a flow (address, port) are put in a
 * canonical order before hashing, so both directions of a connection land
 * on the same output pipe.  Parsed: up to two VLAN tags (802.1Q, 802.1ad),
 * IPv4 and IPv6 (with its hop-by-hop, routing, destination-options and
 * fragment headers), one level of IP-in-IP, IPv6-in-IPv4 or GRE tunnel
 * (the inner header is hashed), TCP, UDP, UDP-Lite and SCTP ports.
 * Fragments and other protocols hash their addresses only; frames that are
 * not IP hash their MAC addresses (and are counted as non-IP).  Every read
 * is bounded by the frame length.
 */
#include "tools_port.h"

#include <string.h>

#define ETH_P_IP    0x0800
#define ETH_P_IPV6  0x86dd
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88a8

struct flow {
    uint8_t a[16], b[16];       /* addresses (IPv4 in the first 4 bytes) */
    uint16_t pa, pb;            /* ports, 0 when not hashed */
    uint8_t proto, alen;
};

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t rotl(uint32_t x, int r) { return x << r | x >> (32 - r); }

/* A murmur3-style mix of 32-bit words, then its finalizer. */
static uint32_t mix_words(const uint32_t *w, uint32_t n, uint32_t h)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = w[i] * 0xcc9e2d51u;
        h ^= rotl(k, 15) * 0x1b873593u;
        h = rotl(h, 13) * 5 + 0xe6546b64u;
    }
    h ^= n * 4;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}

/* Hash the flow with its endpoints in canonical order. */
static uint32_t flow_hash(struct flow *f)
{
    uint32_t w[10];
    int c = memcmp(f->a, f->b, f->alen);

    if (c > 0 || (c == 0 && f->pa > f->pb)) {
        uint8_t t[16];
        uint16_t tp = f->pa;
        memcpy(t, f->a, 16);
        memcpy(f->a, f->b, 16);
        memcpy(f->b, t, 16);
        f->pa = f->pb;
        f->pb = tp;
    }
    memcpy(w, f->a, 16);
    memcpy(w + 4, f->b, 16);
    w[8] = (uint32_t)f->pa << 16 | f->pb;
    w[9] = f->proto;
    return mix_words(w, 10, 0x6d5a6d5au);
}

static void take_ports(struct flow *f, const uint8_t *l4, uint32_t room)
{
    switch (f->proto) {
    case 6: case 17: case 132: case 136:       /* TCP, UDP, SCTP, UDP-Lite */
        if (room >= 4) {
            f->pa = be16(l4);
            f->pb = be16(l4 + 2);
        }
        break;
    default:
        break;
    }
}

static int parse_l3(struct flow *f, uint16_t type, const uint8_t *p, uint32_t room, int depth);

/* GRE: skip the optional checksum, key and sequence words, then the inner
 * header.  Returns 1 when the inner header was parsed. */
static int parse_gre(struct flow *f, const uint8_t *p, uint32_t room, int depth)
{
    uint32_t hl;

    if (room < 4 || (p[1] & 7) != 0)            /* version 0 only */
        return 0;
    hl = 4 + 4 * (uint32_t)(!!(p[0] & 0x80) + !!(p[0] & 0x20) + !!(p[0] & 0x10));
    if (room < hl)
        return 0;
    return parse_l3(f, be16(p + 2), p + hl, room - hl, depth + 1) > 0;
}

/* A tunnel inside f's L3 header: replace f by the inner flow if it parses. */
static void inner(struct flow *f, uint8_t proto, const uint8_t *p, uint32_t room, int depth)
{
    struct flow in;
    int ok = 0;

    if (depth > 0)
        return;
    memset(&in, 0, sizeof(in));
    if (proto == 4)
        ok = parse_l3(&in, ETH_P_IP, p, room, depth + 1) > 0;
    else if (proto == 41)
        ok = parse_l3(&in, ETH_P_IPV6, p, room, depth + 1) > 0;
    else if (proto == 47)
        ok = parse_gre(&in, p, room, depth);
    if (ok)
        *f = in;
}

static int parse_ipv4(struct flow *f, const uint8_t *p, uint32_t room, int depth)
{
    uint32_t hl;

    if (room < 20 || (p[0] >> 4) != 4 || (hl = (uint32_t)(p[0] & 15) * 4) < 20 || hl > room)
        return 0;
    f->alen = 4;
    memcpy(f->a, p + 12, 4);
    memcpy(f->b, p + 16, 4);
    f->proto = p[9];
    if (be16(p + 6) & 0x3fff)                   /* a fragment: addresses only */
        return 1;
    take_ports(f, p + hl, room - hl);
    inner(f, f->proto, p + hl, room - hl, depth);
    return 1;
}

static int parse_ipv6(struct flow *f, const uint8_t *p, uint32_t room, int depth)
{
    uint32_t off = 40;
    uint8_t nh;

    if (room < 40 || (p[0] >> 4) != 6)
        return 0;
    f->alen = 16;
    memcpy(f->a, p + 8, 16);
    memcpy(f->b, p + 24, 16);
    nh = p[6];
    for (int k = 0; k < 8 && off + 8 <= room; k++) {
        if (nh == 44) {                         /* fragment header */
            if (be16(p + off + 2) & 0xfff9) {   /* offset or more-fragments: addresses only */
                f->proto = 44;
                return 1;
            }
            nh = p[off];
            off += 8;
        } else if (nh == 0 || nh == 43 || nh == 60) {
            uint8_t next = p[off];
            off += ((uint32_t)p[off + 1] + 1) * 8;
            nh = next;
        } else {
            break;
        }
    }
    f->proto = nh;
    if (off > room)
        return 1;
    take_ports(f, p + off, room - off);
    inner(f, nh, p + off, room - off, depth);
    return 1;
}

/* Returns 1 when an IP header was parsed into f, 0 otherwise. */
static int parse_l3(struct flow *f, uint16_t type, const uint8_t *p, uint32_t room, int depth)
{
    if (type == ETH_P_IP)
        return parse_ipv4(f, p, room, depth);
    if (type == ETH_P_IPV6)
        return parse_ipv6(f, p, room, depth);
    return 0;
}

/* The flow hash of one Ethernet frame; *non_ip is set when it carried no
 * IP header (then the MAC addresses were hashed). */
uint32_t nmc_lb_hash(const uint8_t *frame, uint32_t len, uint32_t *non_ip)
{
    struct flow f;
    uint32_t off = 12;
    uint16_t type;

    memset(&f, 0, sizeof(f));
    *non_ip = 1;
    if (len < 14) {
        f.alen = 6;
        return flow_hash(&f);
    }
    type = be16(frame + 12);
    for (int k = 0; k < 2 && (type == ETH_P_8021Q || type == ETH_P_8021AD) && off + 6 <= len; k++) {
        off += 4;
        type = be16(frame + off);
    }
    off += 2;
    if (parse_l3(&f, type, frame + off, len - off, 0)) {
        *non_ip = 0;
        return flow_hash(&f);
    }
    memset(&f, 0, sizeof(f));
    f.alen = 6;
    memcpy(f.a, frame + 6, 6);
    memcpy(f.b, frame, 6);
    return flow_hash(&f);
}
